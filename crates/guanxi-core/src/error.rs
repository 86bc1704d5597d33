//! Domain errors. Each variant maps to one HTTP status and one stable error code at the edge;
//! the messages are bilingual so the API can answer in the caller's language.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::i18n::{Label, Lang};

/// One problem with one field: a stable machine code plus a message in both languages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub code: &'static str,
    pub message: Label,
}

impl FieldError {
    pub fn new(code: &'static str, zh: impl Into<String>, en: impl Into<String>) -> Self {
        FieldError {
            code,
            message: Label {
                zh: zh.into(),
                en: en.into(),
            },
        }
    }
}

/// Every field error of one request, collected so the user sees all of them at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(pub BTreeMap<String, Vec<FieldError>>);

impl FieldErrors {
    pub fn add(&mut self, field: &str, error: FieldError) {
        self.0.entry(field.to_owned()).or_default().push(error);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn single(field: &str, error: FieldError) -> Self {
        let mut errors = FieldErrors::default();
        errors.add(field, error);
        errors
    }

    /// Adds every error of `other` under its own key.
    pub fn merge(&mut self, other: FieldErrors) {
        for (field, errors) in other.0 {
            self.0.entry(field).or_default().extend(errors);
        }
    }

    /// Prefixes every key, used when a bulk operation reports errors per record.
    pub fn merge_prefixed(&mut self, prefix: &str, other: FieldErrors) {
        for (field, errors) in other.0 {
            for e in errors {
                self.add(&format!("{prefix}.{field}"), e);
            }
        }
    }

    /// Returns `Ok(())` when empty, so validators can end with `errors.into_result()?`.
    pub fn into_result(self) -> Result<(), DomainError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(DomainError::Validation(self))
        }
    }

    /// Messages per field in one language.
    pub fn messages(&self, lang: Lang) -> BTreeMap<String, Vec<String>> {
        self.0
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().map(|e| e.message.get(lang).to_owned()).collect()))
            .collect()
    }

    /// Stable codes per field.
    pub fn codes(&self) -> BTreeMap<String, Vec<&'static str>> {
        self.0
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().map(|e| e.code).collect()))
            .collect()
    }
}

/// What can go wrong in the domain, independent of transport.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("unknown object {0}")]
    UnknownObject(String),
    #[error("{object} {id} not found")]
    NotFound { object: String, id: String },
    #[error("validation failed")]
    Validation(FieldErrors),
    /// A request parameter (filter, sort, cursor, fields) is not acceptable.
    #[error("invalid query: {}", .0.en)]
    InvalidQuery(Label),
    /// The caller's version is not the stored one.
    #[error("version conflict: expected {expected}, stored {actual}")]
    VersionConflict { expected: i64, actual: i64 },
    /// The record is referenced elsewhere or otherwise cannot be changed now.
    #[error("conflict: {}", .0.en)]
    Conflict(Label),
    /// A state-machine action that is not allowed from the current state.
    #[error("invalid transition: {}", .0.en)]
    InvalidTransition(Label),
    #[error("forbidden: {}", .0.en)]
    Forbidden(Label),
    /// A business rule refuses the request in the record's current situation (a customer not
    /// in the pool, a claim limit reached); `code` is the stable API error code.
    #[error("refused ({code}): {}", .message.en)]
    Refused { code: &'static str, message: Label },
}

impl DomainError {
    pub fn invalid_query(zh: impl Into<String>, en: impl Into<String>) -> Self {
        DomainError::InvalidQuery(Label {
            zh: zh.into(),
            en: en.into(),
        })
    }

    pub fn refused(code: &'static str, zh: impl Into<String>, en: impl Into<String>) -> Self {
        DomainError::Refused {
            code,
            message: Label {
                zh: zh.into(),
                en: en.into(),
            },
        }
    }

    pub fn conflict(zh: impl Into<String>, en: impl Into<String>) -> Self {
        DomainError::Conflict(Label {
            zh: zh.into(),
            en: en.into(),
        })
    }
}
