//! The signed-in user's own things: who am I and what may I do (for the UI's menus and fields),
//! profile, password change, active sessions, the authenticator app, and API tokens.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use guanxi_core::time_fmt::{format_utc, now_utc};
use guanxi_core::{DomainError, FieldError, FieldErrors};
use guanxi_store::identity::{self, ApiTokenRow};
use guanxi_store::sql::Bind;
use serde::Deserialize;
use serde_json::{Value as Json, json};
use time::OffsetDateTime;

use super::auth::set_new_password;
use super::secrets::{random_token, token_hash, verify_password};
use super::session::{API_TOKEN_PREFIX, CurrentPrincipal, Principal, start_session};
use super::totp;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::routes::data;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/me", get(get_me))
        .route("/api/v1/me/profile", patch(update_profile))
        .route("/api/v1/me/password", post(change_password))
        .route("/api/v1/me/sessions", get(list_sessions))
        .route("/api/v1/me/sessions/revoke-all", post(revoke_all_sessions))
        .route("/api/v1/me/sessions/{id}", delete(revoke_session))
        .route("/api/v1/me/totp/setup", post(totp_setup))
        .route("/api/v1/me/totp/enable", post(totp_enable))
        .route("/api/v1/me/totp/disable", post(totp_disable))
        .route("/api/v1/me/tokens", get(list_tokens).post(create_token))
        .route("/api/v1/me/tokens/{id}", delete(revoke_token))
}

/// What the UI needs about the caller: the user, roles, grants and field rules.
pub fn me_view(p: &Principal) -> Json {
    let access = p.actor.access.as_deref();
    json!({
        "user": {
            "id": p.user.id,
            "username": p.user.username,
            "display_name": p.user.display_name,
            "email": p.user.email,
            "department_id": p.user.department_id,
            "totp_enabled": p.user.totp_enabled,
        },
        "roles": p.roles.iter().map(|r| json!({"id": r.id, "name": r.name, "code": r.code})).collect::<Vec<_>>(),
        "permissions": access.map(|a| serde_json::to_value(&a.grants).unwrap_or(Json::Null)),
        "field_rules": access.map(|a| serde_json::to_value(&a.field_rules).unwrap_or(Json::Null)),
        "is_admin": super::session::is_admin(&p.actor),
        "token_scopes": p.token_scopes,
    })
}

#[utoipa::path(get, path = "/api/v1/me", tag = "me", operation_id = "get_me", summary = "The caller: user, roles, permissions and field rules", responses((status = 200, description = "The caller: user, roles, permissions and field rules"), (status = 401, body = crate::error::ErrorEnvelope)))]
pub async fn get_me(CurrentPrincipal(p): CurrentPrincipal) -> impl IntoResponse {
    data(me_view(&p))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileBody {
    display_name: Option<String>,
    email: Option<String>,
    mobile: Option<String>,
}

/// Changes one's own name and contact details (not roles, department or status). Goes through
/// the engine as the system on the user's own record, so validation and audit apply.
#[utoipa::path(patch, path = "/api/v1/me/profile", tag = "me", operation_id = "update_profile", summary = "Change own name and contact details", request_body = ProfileBody, responses((status = 200, description = "Change own name and contact details"), (status = 422, body = crate::error::ErrorEnvelope)))]
pub async fn update_profile(
    State(state): State<AppState>,
    CurrentPrincipal(p): CurrentPrincipal,
    ApiJson(body): ApiJson<ProfileBody>,
) -> ApiResult<impl IntoResponse> {
    let mut input = serde_json::Map::new();
    for (k, v) in [
        ("display_name", body.display_name),
        ("email", body.email),
        ("mobile", body.mobile),
    ] {
        if let Some(v) = v {
            input.insert(k.into(), json!(v));
        }
    }
    let current = state
        .engine
        .get(&guanxi_core::Actor::system(), "user", &p.user.id, false)
        .await?;
    let version = current.get("version").and_then(Json::as_i64).unwrap_or(0);
    let mut as_self = guanxi_core::Actor::system();
    as_self.id = p.actor.id.clone();
    as_self.name = p.actor.name.clone();
    let updated = state
        .engine
        .update(&as_self, "user", &p.user.id, version, &input)
        .await?;
    state.identity.cache.clear();
    Ok(data(updated))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    current_password: String,
    new_password: String,
}

/// Changes one's password (BR-6). Every session ends; this browser gets a fresh one.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "me", operation_id = "change_password", summary = "Change own password (ends every other session)", request_body = PasswordBody, responses((status = 200, description = "Change own password (ends every other session)"), (status = 422, body = crate::error::ErrorEnvelope)))]
pub async fn change_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    CurrentPrincipal(p): CurrentPrincipal,
    ApiJson(body): ApiJson<PasswordBody>,
) -> ApiResult<Response> {
    let user = identity::find_user(&state.db, &p.user.id)
        .await?
        .ok_or_else(ApiError::unauthenticated)?;
    if !verify_password(body.current_password, user.password_hash.clone()).await {
        return Err(DomainError::Validation(FieldErrors::single(
            "current_password",
            FieldError::new(
                "wrong_password",
                "当前密码不正确",
                "the current password is not correct",
            ),
        ))
        .into());
    }
    set_new_password(&state, &user, &body.new_password, "new_password").await?;
    let (_, cookies) = start_session(&state, &headers, &user.id, false).await?;
    let mut res = data(json!({"status": "password_changed"})).into_response();
    for c in cookies {
        res.headers_mut().append(axum::http::header::SET_COOKIE, c);
    }
    Ok(res)
}

#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "me", operation_id = "list_sessions", summary = "Own active sessions", responses((status = 200, description = "Own active sessions")))]
pub async fn list_sessions(
    State(state): State<AppState>,
    CurrentPrincipal(p): CurrentPrincipal,
) -> ApiResult<impl IntoResponse> {
    let current = p.session.as_ref().map(|s| s.token_hash.clone());
    let sessions = identity::list_sessions(&state.db, &p.user.id).await?;
    let rows: Vec<Json> = sessions
        .iter()
        .map(|s| {
            let mut v = serde_json::to_value(s).unwrap_or(Json::Null);
            v["current"] = json!(current.as_deref() == Some(s.token_hash.as_str()));
            v
        })
        .collect();
    Ok(data(rows))
}

#[utoipa::path(delete, path = "/api/v1/me/sessions/{id}", tag = "me", operation_id = "revoke_session", summary = "End one of own sessions", params(("id" = String, Path)), responses((status = 204, description = "End one of own sessions"), (status = 404, body = crate::error::ErrorEnvelope)))]
pub async fn revoke_session(
    State(state): State<AppState>,
    CurrentPrincipal(p): CurrentPrincipal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let sessions = identity::list_sessions(&state.db, &p.user.id).await?;
    let Some(s) = sessions.iter().find(|s| s.id == id) else {
        return Err(DomainError::NotFound {
            object: "session".into(),
            id,
        }
        .into());
    };
    super::session::end_session(&state, &s.token_hash).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Signs out everywhere else (this session stays).
#[utoipa::path(post, path = "/api/v1/me/sessions/revoke-all", tag = "me", operation_id = "revoke_all_sessions", summary = "End every other session", responses((status = 200, description = "End every other session")))]
pub async fn revoke_all_sessions(
    State(state): State<AppState>,
    CurrentPrincipal(p): CurrentPrincipal,
) -> ApiResult<impl IntoResponse> {
    let keep = p.session.as_ref().map(|s| s.token_hash.clone());
    let ended = super::session::end_user_sessions(&state, &p.user.id, keep.as_deref()).await?;
    Ok(data(json!({"ended": ended})))
}

#[utoipa::path(post, path = "/api/v1/me/totp/setup", tag = "me", operation_id = "totp_setup", summary = "Start authenticator set-up: secret, otpauth URL, QR code", responses((status = 200, description = "Start authenticator set-up: secret, otpauth URL, QR code")))]
pub async fn totp_setup(
    State(state): State<AppState>,
    CurrentPrincipal(p): CurrentPrincipal,
) -> ApiResult<impl IntoResponse> {
    let secret = totp::new_secret().map_err(ApiError::internal)?;
    let (url, qr) = totp::enrolment(&secret, &p.user.username).map_err(ApiError::internal)?;
    identity::set_user_column(&state.db, &p.user.id, "totp_pending_secret", Bind::Text(secret.clone())).await?;
    Ok(data(json!({"secret": secret, "otpauth_url": url, "qr_image": qr})))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    code: String,
}

fn wrong_code() -> ApiError {
    DomainError::Validation(FieldErrors::single(
        "code",
        FieldError::new("invalid_code", "验证码错误", "the code is not correct"),
    ))
    .into()
}

/// Turns the authenticator on once the user proves the app works; returns recovery codes once.
#[utoipa::path(post, path = "/api/v1/me/totp/enable", tag = "me", operation_id = "totp_enable", summary = "Confirm a code and turn the authenticator on; returns recovery codes", request_body = CodeBody, responses((status = 200, description = "Confirm a code and turn the authenticator on; returns recovery codes"), (status = 422, body = crate::error::ErrorEnvelope)))]
pub async fn totp_enable(
    State(state): State<AppState>,
    CurrentPrincipal(p): CurrentPrincipal,
    ApiJson(body): ApiJson<CodeBody>,
) -> ApiResult<impl IntoResponse> {
    let user = identity::find_user(&state.db, &p.user.id)
        .await?
        .ok_or_else(ApiError::unauthenticated)?;
    let Some(secret) = user.totp_pending_secret.clone() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "totp_not_started",
            "请先开始绑定",
            "start the set-up first",
        ));
    };
    if !totp::check(&secret, &user.username, body.code.trim()) {
        return Err(wrong_code());
    }
    let mut codes = Vec::new();
    let mut hashes = Vec::new();
    for _ in 0..8 {
        let code: String = random_token()
            .map_err(ApiError::internal)?
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(10)
            .collect();
        let code = code.to_lowercase();
        hashes.push(token_hash(&code));
        codes.push(code);
    }
    identity::set_user_column(&state.db, &user.id, "totp_secret", Bind::Text(secret)).await?;
    identity::set_user_column(&state.db, &user.id, "totp_pending_secret", Bind::NullText).await?;
    identity::set_user_column(&state.db, &user.id, "totp_enabled", Bind::Bool(true)).await?;
    identity::set_user_column(
        &state.db,
        &user.id,
        "recovery_codes",
        Bind::Text(Json::from(hashes).to_string()),
    )
    .await?;
    state.identity.cache.clear();
    Ok(data(json!({"recovery_codes": codes})))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableBody {
    password: String,
}

#[utoipa::path(post, path = "/api/v1/me/totp/disable", tag = "me", operation_id = "totp_disable", summary = "Turn the authenticator off (needs the password)", request_body = DisableBody, responses((status = 204, description = "Turn the authenticator off (needs the password)"), (status = 422, body = crate::error::ErrorEnvelope)))]
pub async fn totp_disable(
    State(state): State<AppState>,
    CurrentPrincipal(p): CurrentPrincipal,
    ApiJson(body): ApiJson<DisableBody>,
) -> ApiResult<StatusCode> {
    let user = identity::find_user(&state.db, &p.user.id)
        .await?
        .ok_or_else(ApiError::unauthenticated)?;
    if !verify_password(body.password, user.password_hash.clone()).await {
        return Err(DomainError::Validation(FieldErrors::single(
            "password",
            FieldError::new("wrong_password", "密码不正确", "the password is not correct"),
        ))
        .into());
    }
    identity::set_user_column(&state.db, &user.id, "totp_enabled", Bind::Bool(false)).await?;
    identity::set_user_column(&state.db, &user.id, "totp_secret", Bind::NullText).await?;
    identity::set_user_column(&state.db, &user.id, "recovery_codes", Bind::Text("[]".into())).await?;
    state.identity.cache.clear();
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/me/tokens", tag = "me", operation_id = "list_tokens", summary = "Own API tokens (never their secrets)", responses((status = 200, description = "Own API tokens (never their secrets)")))]
pub async fn list_tokens(
    State(state): State<AppState>,
    CurrentPrincipal(p): CurrentPrincipal,
) -> ApiResult<impl IntoResponse> {
    Ok(data(identity::list_api_tokens(&state.db, &p.user.id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTokenBody {
    name: String,
    /// `read` and/or `write`.
    scopes: Vec<String>,
    /// 1–3650 days; none means it never expires.
    expires_in_days: Option<i64>,
}

/// Creates an API token for integrations. The token is shown once; only its hash is kept.
#[utoipa::path(post, path = "/api/v1/me/tokens", tag = "me", operation_id = "create_token", summary = "Create an API token (shown once)", request_body = NewTokenBody, responses((status = 201, description = "Create an API token (shown once)"), (status = 422, body = crate::error::ErrorEnvelope)))]
pub async fn create_token(
    State(state): State<AppState>,
    CurrentPrincipal(p): CurrentPrincipal,
    ApiJson(body): ApiJson<NewTokenBody>,
) -> ApiResult<impl IntoResponse> {
    let mut errors = FieldErrors::default();
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        errors.add(
            "name",
            FieldError::new("required", "请填写1–100个字符的名称", "give a name of 1–100 characters"),
        );
    }
    if body.scopes.is_empty() || body.scopes.iter().any(|s| s != "read" && s != "write") {
        errors.add(
            "scopes",
            FieldError::new(
                "invalid_option",
                "权限范围只能是 read 或 write",
                "scopes are read and/or write",
            ),
        );
    }
    if body.expires_in_days.is_some_and(|d| !(1..=3650).contains(&d)) {
        errors.add(
            "expires_in_days",
            FieldError::new("out_of_range", "有效期为1–3650天", "expiry is 1–3650 days"),
        );
    }
    errors.into_result()?;
    let token = format!("{API_TOKEN_PREFIX}{}", random_token().map_err(ApiError::internal)?);
    let row = ApiTokenRow {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: p.user.id.clone(),
        name,
        scopes: body.scopes,
        created_at: now_utc(),
        expires_at: body
            .expires_in_days
            .map(|d| format_utc(OffsetDateTime::now_utc() + time::Duration::days(d))),
        last_used_at: None,
        revoked_at: None,
    };
    identity::create_api_token(&state.db, &row, &token_hash(&token)).await?;
    let mut view = serde_json::to_value(&row).unwrap_or(Json::Null);
    view["token"] = json!(token);
    Ok((StatusCode::CREATED, data(view)))
}

#[utoipa::path(delete, path = "/api/v1/me/tokens/{id}", tag = "me", operation_id = "revoke_token", summary = "Revoke an API token", params(("id" = String, Path)), responses((status = 204, description = "Revoke an API token"), (status = 404, body = crate::error::ErrorEnvelope)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    CurrentPrincipal(p): CurrentPrincipal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if identity::revoke_api_token(&state.db, &p.user.id, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(DomainError::NotFound {
            object: "api_token".into(),
            id,
        }
        .into())
    }
}
