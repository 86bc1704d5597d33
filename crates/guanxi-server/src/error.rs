//! The one error envelope of the API: `{"error": {"code", "message", "fields", "field_codes",
//! "request_id"}}`. Codes are stable and machine-readable; messages are for people, in the
//! caller's language. A handler returns [`ApiError`]; the [`localize_errors`] middleware renders
//! it in the request's language and logs server errors with their cause — a 500 never shows
//! the cause to the client.

use std::sync::Arc;

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use guanxi_core::{DomainError, FieldErrors, Label, Lang};
use guanxi_store::StoreError;
use serde::Serialize;

/// An error on its way to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: Label,
    pub fields: Option<FieldErrors>,
    /// Extra machine-readable facts (e.g. `captcha_required`, `locked_until`).
    pub details: Option<serde_json::Value>,
    /// The cause of a server error, logged and never sent.
    pub internal: Option<Arc<String>>,
}

pub type ApiResult<T, E = ApiError> = Result<T, E>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, zh: impl Into<String>, en: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: Label {
                zh: zh.into(),
                en: en.into(),
            },
            fields: None,
            details: None,
            internal: None,
        }
    }

    pub fn internal(cause: impl std::fmt::Debug) -> Self {
        let mut e = ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "服务器内部错误，请稍后重试；如果问题持续，请联系管理员并提供请求编号",
            "internal server error; please retry, and give the request id to your administrator if it persists",
        );
        e.internal = Some(Arc::new(format!("{cause:?}")));
        e
    }

    /// Adds machine-readable details.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn unauthenticated() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "请先登录",
            "please sign in",
        )
    }

    pub fn route_not_found() -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "route_not_found",
            "接口不存在",
            "no such API endpoint",
        )
    }

    pub fn bad_request(code: &'static str, zh: impl Into<String>, en: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, zh, en)
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::UnknownObject(key) => ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_object",
                format!("对象“{key}”不存在"),
                format!("there is no object '{key}'"),
            ),
            DomainError::NotFound { object, id } => ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("记录不存在或已删除（{object} {id}）"),
                format!("{object} {id} does not exist or was deleted"),
            ),
            DomainError::Validation(fields) => {
                let mut err = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation_failed",
                    "提交的数据有误，请按提示修改",
                    "some fields are not valid",
                );
                err.fields = Some(fields);
                err
            }
            DomainError::InvalidQuery(label) => ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "invalid_query",
                message: label,
                fields: None,
                details: None,
                internal: None,
            },
            DomainError::VersionConflict { expected, actual } => ApiError::new(
                StatusCode::CONFLICT,
                "version_conflict",
                format!("记录已被他人修改（您的版本 {expected}，当前版本 {actual}），请刷新后重试"),
                format!(
                    "the record was changed by someone else (your version {expected}, current {actual}); reload and try again"
                ),
            ),
            DomainError::Conflict(label) => ApiError {
                status: StatusCode::CONFLICT,
                code: "conflict",
                message: label,
                fields: None,
                details: None,
                internal: None,
            },
            DomainError::InvalidTransition(label) => ApiError {
                status: StatusCode::CONFLICT,
                code: "invalid_transition",
                message: label,
                fields: None,
                details: None,
                internal: None,
            },
            DomainError::Forbidden(label) => ApiError {
                status: StatusCode::FORBIDDEN,
                code: "forbidden",
                message: label,
                fields: None,
                details: None,
                internal: None,
            },
            DomainError::Refused { code, message } => ApiError {
                status: StatusCode::CONFLICT,
                code,
                message,
                fields: None,
                details: None,
                internal: None,
            },
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Domain(d) => d.into(),
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // The body is written by `localize_errors`, which knows the request's language; this
        // default (zh-CN) only shows if that middleware is missing.
        let body = envelope(&self, Lang::Zh, None);
        let mut res = (self.status, Json(body)).into_response();
        res.extensions_mut().insert(Arc::new(self));
        res
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

/// The error object. `fields` maps each bad field to its messages, `field_codes` to its codes.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `validation_failed`, `version_conflict`.
    pub code: String,
    /// Human-readable message in the caller's language (Accept-Language; zh-CN by default).
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<std::collections::BTreeMap<String, Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field_codes: Option<std::collections::BTreeMap<String, Vec<&'static str>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

fn envelope(e: &ApiError, lang: Lang, request_id: Option<String>) -> ErrorEnvelope {
    ErrorEnvelope {
        error: ErrorBody {
            code: e.code.to_owned(),
            message: e.message.get(lang).to_owned(),
            fields: e.fields.as_ref().map(|f| f.messages(lang)),
            field_codes: e.fields.as_ref().map(FieldErrors::codes),
            details: e.details.clone(),
            request_id,
        },
    }
}

/// Renders API errors in the caller's language with the request id, and logs server errors.
pub async fn localize_errors(req: Request, next: Next) -> Response {
    let lang = Lang::from_accept_language(req.headers().get("accept-language").and_then(|v| v.to_str().ok()));
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let res = next.run(req).await;
    let Some(err) = res.extensions().get::<Arc<ApiError>>().cloned() else {
        return res;
    };
    if let Some(cause) = &err.internal {
        tracing::error!(%method, %path, request_id = request_id.as_deref().unwrap_or(""), cause = %cause, "request failed");
    }
    let (mut parts, _) = res.into_parts();
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    let body = envelope(&err, lang, request_id);
    let mut out = (parts.status, Json(body)).into_response();
    for (k, v) in &parts.headers {
        if k != axum::http::header::CONTENT_TYPE {
            out.headers_mut().insert(k, v.clone());
        }
    }
    out.headers_mut().insert(
        "content-language",
        HeaderValue::from_static(match lang {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }),
    );
    out
}
