//! Guanxi's domain layer: the metadata that describes every business object, record values and
//! their validation, the filter language of lists, declared state machines and the built-in
//! object catalogue. Nothing here knows about HTTP or SQL, so every rule can be unit-tested alone.

pub mod access;
pub mod actor;
pub mod classification;
pub mod dedup;
pub mod error;
pub mod filter;
pub mod i18n;
pub mod meta;
pub mod objects;
pub mod password;
pub mod search;
pub mod state;
pub mod time_fmt;
pub mod value;

pub use actor::Actor;
pub use error::{DomainError, FieldError, FieldErrors};
pub use i18n::{Label, Lang};
pub use meta::{FieldDef, FieldType, NumberingRule, ObjectDef};
pub use value::Value;
