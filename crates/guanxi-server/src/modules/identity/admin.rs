//! Administration around identity: the login log, setting a user's password (which the user
//! must change at next sign-in), system parameters, and the log retention clean-up.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use guanxi_core::DomainError;
use guanxi_core::time_fmt::format_utc;
use guanxi_store::identity::{self, LoginLogQuery};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};
use time::OffsetDateTime;

use super::auth::check_new_password;
use super::secrets::hash_password;
use super::session::require_permission;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, CurrentActor};
use crate::routes::data;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/logs/logins", get(login_log))
        .route("/api/v1/logs/logins/export", get(export_login_log))
        .route("/api/v1/admin/users/{id}/password", post(set_user_password))
        .route("/api/v1/admin/settings", get(get_settings).patch(update_settings))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LoginLogParams {
    user_id: Option<String>,
    login: Option<String>,
    /// success, failure or challenge
    result: Option<String>,
    from: Option<String>,
    to: Option<String>,
    before: Option<String>,
    limit: Option<u32>,
}

/// The login log (time, user, IP, user agent, result, reason). Needs `audit.read`.
#[utoipa::path(get, path = "/api/v1/logs/logins", tag = "admin", operation_id = "login_log", summary = "The login log (needs audit.read)", params(LoginLogParams), responses((status = 200, description = "The login log (needs audit.read)"), (status = 403, body = crate::error::ErrorEnvelope)))]
pub async fn login_log(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    ApiQuery(p): ApiQuery<LoginLogParams>,
) -> ApiResult<impl IntoResponse> {
    Ok(data(query_login_log(&state, &actor, p).await?))
}

/// The login log as CSV (UTF-8 with a byte-order mark so Excel shows Chinese correctly), up to
/// 100,000 entries matching the filters.
#[utoipa::path(get, path = "/api/v1/logs/logins/export", tag = "admin", operation_id = "export_login_log",
    summary = "The login log as CSV (needs audit.read)", params(LoginLogParams),
    responses((status = 200, description = "CSV file", content_type = "text/csv"), (status = 403, body = crate::error::ErrorEnvelope)))]
pub async fn export_login_log(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    ApiQuery(mut p): ApiQuery<LoginLogParams>,
) -> ApiResult<impl IntoResponse> {
    p.limit = Some(p.limit.unwrap_or(100_000).min(100_000));
    let rows = query_login_log(&state, &actor, p).await?;
    let mut out = csv::Writer::from_writer(vec![0xEF, 0xBB, 0xBF]);
    let write = |out: &mut csv::Writer<Vec<u8>>| -> Result<(), csv::Error> {
        out.write_record([
            "时间 Time (UTC)",
            "用户ID User id",
            "登录名 Login",
            "IP",
            "浏览器 User agent",
            "结果 Result",
            "原因 Reason",
        ])?;
        for r in &rows {
            out.write_record([
                r.at.as_str(),
                r.user_id.as_deref().unwrap_or(""),
                r.login.as_str(),
                r.ip.as_deref().unwrap_or(""),
                r.user_agent.as_deref().unwrap_or(""),
                r.result.as_str(),
                r.reason.as_deref().unwrap_or(""),
            ])?;
        }
        Ok(())
    };
    write(&mut out).map_err(ApiError::internal)?;
    let bytes = out.into_inner().map_err(|e| ApiError::internal(e.to_string()))?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                axum::http::header::CONTENT_DISPOSITION,
                "attachment; filename=\"login-log.csv\"",
            ),
        ],
        bytes,
    ))
}

async fn query_login_log(
    state: &AppState,
    actor: &guanxi_core::Actor,
    p: LoginLogParams,
) -> ApiResult<Vec<guanxi_store::identity::LoginLogEntry>> {
    require_permission(actor, "audit.read")?;
    let normalise = |t: Option<String>| t.map(|s| guanxi_core::time_fmt::parse_datetime(&s).unwrap_or(s));
    let q = LoginLogQuery {
        user_id: p.user_id,
        login: p.login,
        result: p.result,
        from: normalise(p.from),
        to: normalise(p.to),
        before: p.before,
        limit: p.limit.unwrap_or(50),
    };
    Ok(identity::login_log(&state.db, &q).await?)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPasswordBody {
    password: String,
}

/// Sets a user's password (for new accounts and forgotten passwords). The user must change it
/// at the next sign-in, and every session of the user ends.
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/password", tag = "admin", operation_id = "set_user_password", summary = "Set a user's temporary password (needs user.manage)", params(("id" = String, Path)), request_body = SetPasswordBody, responses((status = 204, description = "Set a user's temporary password (needs user.manage)"), (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope), (status = 422, body = crate::error::ErrorEnvelope)))]
pub async fn set_user_password(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SetPasswordBody>,
) -> ApiResult<StatusCode> {
    require_permission(&actor, "user.manage")?;
    state.engine.get(&actor, "user", &id, false).await?;
    let user = identity::find_user(&state.db, &id)
        .await?
        .ok_or(DomainError::NotFound {
            object: "user".into(),
            id: id.clone(),
        })?;
    let history = check_new_password(&state, &user, &body.password, "password").await?;
    let hash = hash_password(body.password).await.map_err(ApiError::internal)?;
    identity::set_password(&state.db, &id, &hash, &history, state.config.auth.password.history).await?;
    // An administrator-chosen password is temporary: expire it now.
    let mut sql = guanxi_store::sql::Sql::of(
        state.db.backend(),
        "UPDATE users SET password_changed_at = NULL WHERE id = ",
    );
    sql.bind(id.as_str());
    sql.query()
        .execute(state.db.writer())
        .await
        .map_err(guanxi_store::StoreError::from)?;
    super::session::end_user_sessions(&state, &id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Parameters an administrator may change at run time, with their kinds.
const SETTINGS: &[(&str, &str)] = &[
    ("company_name", "text"),
    ("time_zone", "text"),
    ("export_max_rows", "integer"),
    ("sla_default_hours", "integer"),
    ("announcement", "text"),
    (crate::modules::pool::MAX_OWNED_SETTING, "integer"),
    (crate::modules::pool::RECLAIM_DAYS_SETTING, "integer"),
];

#[utoipa::path(get, path = "/api/v1/admin/settings", tag = "admin", operation_id = "get_settings", summary = "System parameters (needs system.manage)", responses((status = 200, description = "System parameters (needs system.manage)"), (status = 403, body = crate::error::ErrorEnvelope)))]
pub async fn get_settings(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
) -> ApiResult<impl IntoResponse> {
    require_permission(&actor, "system.manage")?;
    let stored = identity::settings(&state.db).await?;
    let a = &state.config.auth;
    Ok(data(json!({
        "editable": SETTINGS.iter().map(|(k, kind)| json!({"key": k, "type": kind, "value": stored.get(*k)})).collect::<Vec<_>>(),
        "configured": {
            "password_policy": a.password,
            "session_idle_minutes": a.session_idle_minutes,
            "session_absolute_hours": a.session_absolute_hours,
            "lock_after_failures": a.lock_after_failures,
            "lock_minutes": a.lock_minutes,
            "captcha_after_failures": a.captcha_after_failures,
            "registration_enabled": a.registration_enabled,
            "log_retention_days": state.config.log_retention_days,
        }
    })))
}

#[utoipa::path(patch, path = "/api/v1/admin/settings", tag = "admin", operation_id = "update_settings", summary = "Change system parameters (needs system.manage)", responses((status = 200, description = "Change system parameters (needs system.manage)"), (status = 403, body = crate::error::ErrorEnvelope), (status = 422, body = crate::error::ErrorEnvelope)))]
pub async fn update_settings(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    ApiJson(body): ApiJson<Map<String, Json>>,
) -> ApiResult<impl IntoResponse> {
    require_permission(&actor, "system.manage")?;
    let mut errors = guanxi_core::FieldErrors::default();
    for (k, v) in &body {
        match SETTINGS.iter().find(|(key, _)| key == k) {
            None => errors.add(
                k,
                guanxi_core::FieldError::new("unknown_field", "未知参数", "unknown parameter"),
            ),
            Some((_, "integer")) if !v.is_i64() && !v.is_null() => {
                errors.add(
                    k,
                    guanxi_core::FieldError::new("invalid_type", "应为整数", "must be an integer"),
                );
            }
            Some((_, "text")) if !v.is_string() && !v.is_null() => {
                errors.add(
                    k,
                    guanxi_core::FieldError::new("invalid_type", "应为文本", "must be text"),
                );
            }
            _ => {
                if let Err(guanxi_core::DomainError::Validation(e)) = crate::modules::pool::check_setting(k, v) {
                    errors.merge(e);
                }
            }
        }
    }
    errors.into_result()?;
    for (k, v) in &body {
        identity::set_setting(&state.db, k, v).await?;
    }
    get_settings(State(state), CurrentActor(actor)).await
}

/// Deletes login and operation log entries older than the retention period. Run daily.
pub async fn purge_old_logs(state: &AppState) -> anyhow::Result<()> {
    let days = state.config.log_retention_days;
    if days <= 0 {
        return Ok(());
    }
    let before = format_utc(OffsetDateTime::now_utc() - time::Duration::days(days));
    let (logins, audits) = identity::purge_logs_before(&state.db, &before).await?;
    if logins + audits > 0 {
        tracing::info!(logins, audits, %before, "purged old log entries");
    }
    Ok(())
}
