//! Signing in and out (seed 000 §2.2–2.4): password sign-in with throttling, captcha and
//! lockout, the second factor (TOTP, emailed code, recovery code), forced change of an expired
//! password, self-registration with email verification and administrator approval, and password
//! reset by an emailed single-use link.
//!
//! Answers never reveal whether a name exists: an unknown name and a wrong password get the same
//! error after the same amount of work, and throttling counts by the name typed, known or not.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use guanxi_core::password::{check_password, check_username};
use guanxi_core::time_fmt::{format_utc, now_utc};
use guanxi_core::{Actor, FieldErrors};
use guanxi_store::identity::{self, Attempts, Challenge, LoginLogEntry, UserAuth};
use guanxi_store::sql::Bind;
use serde::Deserialize;
use serde_json::{Value as Json, json};
use time::OffsetDateTime;

use super::me::me_view;
use super::secrets::{constant_time_eq, hash_password, random_digits, random_token, token_hash, verify_password};
use super::session::{self, account_usable, clear_cookies, client_ip, secure_cookies, start_session};
use super::{captcha_image, totp};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::mail::{Mail, SEND_EMAIL};
use crate::routes::data;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/config", get(auth_config))
        .route("/api/v1/auth/captcha", get(new_captcha))
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/login/second-factor", post(second_factor))
        .route("/api/v1/auth/login/email-code", post(send_email_code))
        .route("/api/v1/auth/password/expired", post(change_expired_password))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/auth/register", post(register))
        .route("/api/v1/auth/verify-email", post(verify_email))
        .route("/api/v1/auth/password/forgot", post(forgot_password))
        .route("/api/v1/auth/password/reset", post(reset_password))
}

/// The actor that self-registration acts as; the user hooks recognise it.
pub const REGISTRATION_ACTOR: &str = "self-registration";

fn registration_actor() -> Actor {
    Actor {
        id: REGISTRATION_ACTOR.into(),
        name: "自助注册".into(),
        ..Actor::system()
    }
}

#[utoipa::path(get, path = "/api/v1/auth/config", tag = "auth", operation_id = "auth_config", summary = "Sign-in settings for the login page (public)", responses((status = 200, description = "Sign-in settings for the login page (public)")))]
pub async fn auth_config(State(state): State<AppState>) -> impl IntoResponse {
    let a = &state.config.auth;
    data(json!({
        "registration_enabled": a.registration_enabled,
        "password_policy": a.password,
        "username_pattern": "^[A-Za-z0-9][A-Za-z0-9_]{2,19}$",
        "captcha_after_failures": a.captcha_after_failures,
        "lock_after_failures": a.lock_after_failures,
    }))
}

#[utoipa::path(get, path = "/api/v1/auth/captcha", tag = "auth", operation_id = "new_captcha", summary = "A new image captcha (public)", responses((status = 200, description = "A new image captcha (public)")))]
pub async fn new_captcha(State(state): State<AppState>) -> ApiResult<impl IntoResponse> {
    let (answer, image) = tokio::task::spawn_blocking(captcha_image::generate)
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let id = uuid::Uuid::now_v7().to_string();
    let expires = format_utc(OffsetDateTime::now_utc() + time::Duration::minutes(5));
    identity::create_captcha(&state.db, &id, &token_hash(&answer), &expires).await?;
    Ok(data(json!({"captcha_id": id, "image": image})))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    login: String,
    password: String,
    #[serde(default)]
    remember_me: bool,
    captcha_id: Option<String>,
    captcha_answer: Option<String>,
}

/// What a successful step returns: signed in, or the next step.
pub(super) async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
    user: &UserAuth,
    remember: bool,
) -> ApiResult<Response> {
    let (session, cookies) = start_session(state, headers, &user.id, remember).await?;
    identity::set_user_column(&state.db, &user.id, "last_login_at", Bind::Text(now_utc())).await?;
    if user.status == "locked" {
        identity::set_user_column(&state.db, &user.id, "status", Bind::Text("active".into())).await?;
        state.identity.cache.clear();
    }
    let principal = session::load_actor(state, &user.id)
        .await?
        .ok_or_else(ApiError::unauthenticated)?;
    let me = me_view(&principal);
    let mut res = data(json!({"status": "ok", "me": me, "csrf_token": session.csrf_token})).into_response();
    for c in cookies {
        res.headers_mut().append(axum::http::header::SET_COOKIE, c);
    }
    Ok(res)
}

fn log_entry(
    headers: &HeaderMap,
    login: &str,
    user_id: Option<&str>,
    result: &str,
    reason: Option<&str>,
) -> LoginLogEntry {
    LoginLogEntry {
        id: uuid::Uuid::now_v7().to_string(),
        at: now_utc(),
        user_id: user_id.map(str::to_owned),
        login: login.to_owned(),
        ip: client_ip(headers),
        user_agent: headers
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        result: result.to_owned(),
        reason: reason.map(str::to_owned),
    }
}

fn invalid_credentials(captcha_required: bool) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "用户名或密码错误",
        "wrong username or password",
    )
    .with_details(json!({"captcha_required": captcha_required}))
}

fn locked(until: &str) -> ApiError {
    ApiError::new(
        StatusCode::LOCKED,
        "account_locked",
        "登录失败次数过多，账号已临时锁定，请稍后再试或联系管理员",
        "too many failed sign-ins: the account is locked for a while; try later or ask an administrator",
    )
    .with_details(json!({"locked_until": until}))
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", operation_id = "login", summary = "Sign in with username or email and password", request_body = LoginBody, responses((status = 200, description = "Sign in with username or email and password"), (status = 401, body = crate::error::ErrorEnvelope), (status = 403, body = crate::error::ErrorEnvelope), (status = 423, body = crate::error::ErrorEnvelope)))]
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult<Response> {
    let cfg = &state.config.auth;
    let login = body.login.trim().to_lowercase();
    let key = format!("login:{login}");
    let now = OffsetDateTime::now_utc();
    let now_s = format_utc(now);
    let mut attempts = identity::attempts(&state.db, &key).await?;
    let window_start = format_utc(now - time::Duration::minutes(cfg.failure_window_minutes));
    if attempts
        .window_start
        .as_deref()
        .is_some_and(|w| w < window_start.as_str())
        && attempts.locked_until.is_none()
    {
        attempts = Attempts::default();
    }
    if let Some(until) = attempts.locked_until.clone() {
        if until > now_s {
            identity::log_login(&state.db, &log_entry(&headers, &login, None, "failure", Some("locked"))).await?;
            return Err(locked(&until));
        }
        attempts = Attempts::default();
    }
    let captcha_required = attempts.failures >= cfg.captcha_after_failures;
    if captcha_required {
        let (Some(id), Some(answer)) = (&body.captcha_id, &body.captcha_answer) else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "captcha_required",
                "请输入图片验证码",
                "enter the characters shown in the image",
            )
            .with_details(json!({"captcha_required": true})));
        };
        let expected = identity::take_captcha(&state.db, id).await?;
        let given = token_hash(&answer.trim().to_lowercase());
        if !expected.is_some_and(|e| constant_time_eq(&e, &given)) {
            identity::log_login(
                &state.db,
                &log_entry(&headers, &login, None, "failure", Some("captcha")),
            )
            .await?;
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "captcha_invalid",
                "图片验证码错误或已过期，请重新输入",
                "the captcha was wrong or has expired; try a new one",
            )
            .with_details(json!({"captcha_required": true})));
        }
    }

    let user = identity::find_user_by_login(&state.db, &login).await?;
    let ok = verify_password(body.password, user.as_ref().and_then(|u| u.password_hash.clone())).await;
    let Some(user) = user.filter(|_| ok) else {
        attempts.failures += 1;
        if attempts.window_start.is_none() {
            attempts.window_start = Some(now_s.clone());
        }
        let known = identity::find_user_by_login(&state.db, &login).await?;
        let lock_now = attempts.failures >= cfg.lock_after_failures;
        if lock_now {
            let until = format_utc(now + time::Duration::minutes(cfg.lock_minutes));
            attempts.locked_until = Some(until.clone());
            if let Some(u) = &known {
                identity::set_user_column(&state.db, &u.id, "status", Bind::Text("locked".into())).await?;
                identity::set_user_column(&state.db, &u.id, "locked_until", Bind::Text(until)).await?;
                session::end_user_sessions(&state, &u.id, None).await?;
            }
        }
        identity::save_attempts(&state.db, &key, &attempts).await?;
        let reason = if lock_now {
            "wrong_password_locked"
        } else {
            "wrong_password"
        };
        identity::log_login(
            &state.db,
            &log_entry(
                &headers,
                &login,
                known.as_ref().map(|u| u.id.as_str()),
                "failure",
                Some(reason),
            ),
        )
        .await?;
        if let Some(until) = attempts.locked_until {
            return Err(locked(&until));
        }
        return Err(invalid_credentials(attempts.failures >= cfg.captcha_after_failures));
    };

    // The password was right: from here on the answers may speak about the account.
    let refuse = |code: &'static str, zh: &str, en: &str| ApiError::new(StatusCode::FORBIDDEN, code, zh, en);
    let outcome = match user.status.as_str() {
        "pending" => Err(refuse(
            "account_pending",
            "账号正在等待管理员审核（如未验证邮箱，请先点击邮件中的链接）",
            "the account is waiting for approval by an administrator (verify your email first if you have not)",
        )),
        "disabled" => Err(refuse(
            "account_disabled",
            "账号已停用，请联系管理员",
            "the account is disabled; ask an administrator",
        )),
        "locked" if !account_usable(&user) => Err(locked(user.locked_until.as_deref().unwrap_or(""))),
        _ => Ok(()),
    };
    if let Err(e) = outcome {
        identity::log_login(
            &state.db,
            &log_entry(&headers, &login, Some(&user.id), "failure", Some(e.code)),
        )
        .await?;
        return Err(e);
    }
    identity::save_attempts(&state.db, &key, &Attempts::default()).await?;
    next_step(&state, &headers, &user, body.remember_me, &login).await
}

/// After the password: a second factor if the user or a role needs one, then a forced change of
/// an expired password, then the session.
pub async fn next_step(
    state: &AppState,
    headers: &HeaderMap,
    user: &UserAuth,
    remember: bool,
    login: &str,
) -> ApiResult<Response> {
    let roles = identity::roles(&state.db, &user.role_ids).await?;
    let needs_2fa = user.totp_enabled || roles.iter().any(|r| r.require_2fa);
    if needs_2fa {
        let mut methods = Vec::new();
        if user.totp_enabled {
            methods.push("totp");
            methods.push("recovery");
        }
        if user.email.is_some() {
            methods.push("email");
        }
        let id = challenge(state, user, "second_factor", remember).await?;
        identity::log_login(
            &state.db,
            &log_entry(headers, login, Some(&user.id), "challenge", Some("second_factor")),
        )
        .await?;
        return Ok(data(json!({"status": "second_factor", "challenge_id": id, "methods": methods})).into_response());
    }
    if password_expired(state, user) {
        let id = challenge(state, user, "password_expired", remember).await?;
        identity::log_login(
            &state.db,
            &log_entry(headers, login, Some(&user.id), "challenge", Some("password_expired")),
        )
        .await?;
        return Ok(data(json!({"status": "password_expired", "challenge_id": id})).into_response());
    }
    identity::log_login(&state.db, &log_entry(headers, login, Some(&user.id), "success", None)).await?;
    signed_in(state, headers, user, remember).await
}

fn password_expired(state: &AppState, user: &UserAuth) -> bool {
    let days = state.config.auth.password.expiry_days;
    if days <= 0 {
        return false;
    }
    let limit = format_utc(OffsetDateTime::now_utc() - time::Duration::days(days));
    user.password_changed_at.as_deref().is_none_or(|c| c < limit.as_str())
}

pub async fn challenge(state: &AppState, user: &UserAuth, kind: &str, remember: bool) -> ApiResult<String> {
    let id = random_token().map_err(ApiError::internal)?;
    identity::create_challenge(
        &state.db,
        &Challenge {
            id: id.clone(),
            user_id: user.id.clone(),
            kind: kind.into(),
            remember,
            email_code_hash: None,
            attempts: 0,
            expires_at: format_utc(OffsetDateTime::now_utc() + time::Duration::minutes(10)),
        },
    )
    .await?;
    Ok(id)
}

fn challenge_gone() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "challenge_expired",
        "验证已过期，请重新登录",
        "this sign-in step has expired; sign in again",
    )
}

pub async fn load_challenge(state: &AppState, id: &str, kind: &str) -> ApiResult<(Challenge, UserAuth)> {
    let c = identity::get_challenge(&state.db, id)
        .await?
        .filter(|c| c.kind == kind && c.attempts < 5)
        .ok_or_else(challenge_gone)?;
    let user = identity::find_user(&state.db, &c.user_id)
        .await?
        .ok_or_else(challenge_gone)?;
    Ok((c, user))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondFactorBody {
    challenge_id: String,
    method: String,
    code: String,
}

#[utoipa::path(post, path = "/api/v1/auth/login/second-factor", tag = "auth", operation_id = "second_factor", summary = "Complete sign-in with a TOTP, emailed or recovery code", request_body = SecondFactorBody, responses((status = 200, description = "Complete sign-in with a TOTP, emailed or recovery code"), (status = 401, body = crate::error::ErrorEnvelope)))]
pub async fn second_factor(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SecondFactorBody>,
) -> ApiResult<Response> {
    let (c, user) = load_challenge(&state, &body.challenge_id, "second_factor").await?;
    let code = body.code.trim().replace(' ', "");
    let ok = match body.method.as_str() {
        "totp" => user
            .totp_secret
            .as_deref()
            .is_some_and(|s| totp::check(s, &user.username, &code)),
        "email" => c
            .email_code_hash
            .as_deref()
            .is_some_and(|h| constant_time_eq(h, &token_hash(&code))),
        "recovery" => {
            let hash = token_hash(&code.to_lowercase());
            let mut codes = user.recovery_codes.clone();
            let before = codes.len();
            codes.retain(|c| !constant_time_eq(c, &hash));
            if codes.len() < before {
                identity::set_user_column(
                    &state.db,
                    &user.id,
                    "recovery_codes",
                    Bind::Text(Json::from(codes).to_string()),
                )
                .await?;
                true
            } else {
                false
            }
        }
        _ => false,
    };
    if !ok {
        identity::update_challenge(&state.db, &c.id, c.attempts + 1, c.email_code_hash.as_deref()).await?;
        identity::log_login(
            &state.db,
            &log_entry(
                &headers,
                &user.username,
                Some(&user.id),
                "failure",
                Some("second_factor"),
            ),
        )
        .await?;
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_code",
            "验证码错误",
            "the code is not correct",
        ));
    }
    identity::delete_challenge(&state.db, &c.id).await?;
    if password_expired(&state, &user) {
        let id = challenge(&state, &user, "password_expired", c.remember).await?;
        return Ok(data(json!({"status": "password_expired", "challenge_id": id})).into_response());
    }
    identity::log_login(
        &state.db,
        &log_entry(&headers, &user.username, Some(&user.id), "success", None),
    )
    .await?;
    signed_in(&state, &headers, &user, c.remember).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChallengeBody {
    challenge_id: String,
}

#[utoipa::path(post, path = "/api/v1/auth/login/email-code", tag = "auth", operation_id = "send_email_code", summary = "Email a sign-in code for a second-factor challenge", request_body = ChallengeBody, responses((status = 202, description = "Email a sign-in code for a second-factor challenge"), (status = 401, body = crate::error::ErrorEnvelope)))]
pub async fn send_email_code(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ChallengeBody>,
) -> ApiResult<StatusCode> {
    let (c, user) = load_challenge(&state, &body.challenge_id, "second_factor").await?;
    let Some(email) = user.email.clone() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_email",
            "账号没有登记邮箱",
            "the account has no email address",
        ));
    };
    let code = random_digits(6).map_err(ApiError::internal)?;
    identity::update_challenge(&state.db, &c.id, c.attempts, Some(&token_hash(&code))).await?;
    queue_mail(
        &state,
        Mail {
            to: email,
            subject: "Guanxi 登录验证码 / sign-in code".into(),
            body: format!(
                "您的登录验证码是 {code}，10分钟内有效。\nYour sign-in code is {code}. It expires in 10 minutes."
            ),
        },
    )
    .await?;
    Ok(StatusCode::ACCEPTED)
}

/// Queues a mail for the job worker.
pub async fn queue_mail(state: &AppState, mail: Mail) -> ApiResult<()> {
    let mut conn = state
        .db
        .writer()
        .acquire()
        .await
        .map_err(guanxi_store::StoreError::from)?;
    guanxi_store::jobs::enqueue(&mut conn, state.db.backend(), SEND_EMAIL, &mail.payload(), None, 5).await?;
    Ok(())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpiredBody {
    challenge_id: String,
    new_password: String,
}

#[utoipa::path(post, path = "/api/v1/auth/password/expired", tag = "auth", operation_id = "change_expired_password", summary = "Set a new password when the old one has expired", request_body = ExpiredBody, responses((status = 200, description = "Set a new password when the old one has expired"), (status = 401, body = crate::error::ErrorEnvelope), (status = 422, body = crate::error::ErrorEnvelope)))]
pub async fn change_expired_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ExpiredBody>,
) -> ApiResult<Response> {
    let (c, user) = load_challenge(&state, &body.challenge_id, "password_expired").await?;
    set_new_password(&state, &user, &body.new_password, "new_password").await?;
    identity::delete_challenge(&state.db, &c.id).await?;
    let user = identity::find_user(&state.db, &user.id)
        .await?
        .ok_or_else(challenge_gone)?;
    identity::log_login(
        &state.db,
        &log_entry(
            &headers,
            &user.username,
            Some(&user.id),
            "success",
            Some("password_changed"),
        ),
    )
    .await?;
    signed_in(&state, &headers, &user, c.remember).await
}

/// Checks a new password against the policy and the user's recent passwords, stores it and ends
/// every session of the user.
pub async fn set_new_password(state: &AppState, user: &UserAuth, password: &str, field: &str) -> ApiResult<()> {
    let previous = check_new_password(state, user, password, field).await?;
    let policy = &state.config.auth.password;
    let hash = hash_password(password.to_owned()).await.map_err(ApiError::internal)?;
    identity::set_password(&state.db, &user.id, &hash, &previous, policy.history).await?;
    session::end_user_sessions(state, &user.id, None).await?;
    Ok(())
}

/// Checks a new password against the policy and the user's recent passwords; returns the
/// hashes to keep as history.
pub async fn check_new_password(
    state: &AppState,
    user: &UserAuth,
    password: &str,
    field: &str,
) -> ApiResult<Vec<String>> {
    let policy = &state.config.auth.password;
    let mut errors = FieldErrors::default();
    for e in check_password(policy, password, &user.username) {
        errors.add(field, e);
    }
    let mut previous: Vec<String> = user.password_hash.iter().cloned().collect();
    previous.extend(user.password_history.iter().cloned());
    previous.truncate(policy.history.max(1));
    for old in &previous {
        if verify_password(password.to_owned(), Some(old.clone())).await {
            errors.add(
                field,
                guanxi_core::FieldError::new(
                    "password_reused",
                    format!("不能使用最近{}次用过的密码", policy.history),
                    format!("the password must differ from the last {}", policy.history),
                ),
            );
            break;
        }
    }
    errors.into_result()?;
    Ok(previous)
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", operation_id = "logout", summary = "Sign out (ends the session and the remember-me token)", responses((status = 204, description = "Sign out (ends the session and the remember-me token)")))]
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    if let Some(token) = session::cookie(&headers, session::SESSION_COOKIE) {
        session::end_session(&state, &token_hash(token)).await?;
    }
    if let Some((selector, _)) = session::cookie(&headers, session::REMEMBER_COOKIE).and_then(|v| v.split_once('.')) {
        identity::take_remember_token(&state.db, selector).await?;
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    for c in clear_cookies(secure_cookies(&state, &headers)) {
        res.headers_mut().append(axum::http::header::SET_COOKIE, c);
    }
    Ok(res)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    username: String,
    display_name: String,
    email: String,
    mobile: Option<String>,
    password: String,
}

/// Self-registration (seed 000 §2.2.1): the account starts pending, a verification link goes
/// to the email address, and an administrator approves it.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", operation_id = "register", summary = "Register an account (pending email verification and approval)", request_body = RegisterBody, responses((status = 201, description = "Register an account (pending email verification and approval)"), (status = 403, body = crate::error::ErrorEnvelope), (status = 422, body = crate::error::ErrorEnvelope)))]
pub async fn register(State(state): State<AppState>, ApiJson(body): ApiJson<RegisterBody>) -> ApiResult<Response> {
    if !state.config.auth.registration_enabled {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "registration_disabled",
            "系统未开放自助注册",
            "self-registration is turned off",
        ));
    }
    let mut errors = FieldErrors::default();
    if let Some(e) = check_username(&body.username, &state.config.auth.reserved_usernames) {
        errors.add("username", e);
    }
    for e in check_password(&state.config.auth.password, &body.password, &body.username) {
        errors.add("password", e);
    }
    errors.into_result()?;
    let mut input = serde_json::Map::new();
    input.insert("username".into(), json!(body.username));
    input.insert("display_name".into(), json!(body.display_name));
    input.insert("email".into(), json!(body.email));
    if let Some(m) = body.mobile {
        input.insert("mobile".into(), json!(m));
    }
    let record = state.engine.create(&registration_actor(), "user", &input).await?;
    let id = record.get("id").and_then(Json::as_str).unwrap_or_default().to_owned();
    let hash = hash_password(body.password).await.map_err(ApiError::internal)?;
    identity::set_password(&state.db, &id, &hash, &[], 0).await?;
    Ok((StatusCode::CREATED, data(json!({"status": "verification_sent"}))).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    token: String,
}

#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "auth", operation_id = "verify_email", summary = "Verify an email address with the mailed token", request_body = TokenBody, responses((status = 200, description = "Verify an email address with the mailed token"), (status = 422, body = crate::error::ErrorEnvelope)))]
pub async fn verify_email(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TokenBody>,
) -> ApiResult<impl IntoResponse> {
    let user_id = identity::consume_email_token(&state.db, &token_hash(&body.token), "verify_email")
        .await?
        .ok_or_else(invalid_link)?;
    identity::set_user_column(&state.db, &user_id, "email_verified_at", Bind::Text(now_utc())).await?;
    Ok(data(json!({"status": "pending_approval"})))
}

fn invalid_link() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_token",
        "链接无效、已使用或已过期",
        "the link is invalid, already used or expired",
    )
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotBody {
    login: String,
}

/// Always 202, whether or not the account exists (BR-8: only active accounts get a link).
#[utoipa::path(post, path = "/api/v1/auth/password/forgot", tag = "auth", operation_id = "forgot_password", summary = "Mail a single-use password reset link (always 202)", request_body = ForgotBody, responses((status = 202, description = "Mail a single-use password reset link (always 202)")))]
pub async fn forgot_password(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ForgotBody>,
) -> ApiResult<StatusCode> {
    if let Some(user) = identity::find_user_by_login(&state.db, &body.login).await?
        && user.status == "active"
        && let Some(email) = user.email.clone()
    {
        let token = random_token().map_err(ApiError::internal)?;
        let expires = format_utc(OffsetDateTime::now_utc() + time::Duration::minutes(30));
        identity::create_email_token(&state.db, &token_hash(&token), &user.id, "reset_password", &expires).await?;
        let link = format!(
            "{}/reset-password?token={token}",
            state.config.auth.public_url.trim_end_matches('/')
        );
        queue_mail(
            &state,
            Mail {
                to: email,
                subject: "Guanxi 重置密码 / reset your password".into(),
                body: format!(
                    "{}，您好：\n请在30分钟内打开以下链接设置新密码（只能使用一次）：\n{link}\n\nTo set a new password, open the link above within 30 minutes. It works once.\n",
                    user.display_name
                ),
            },
        )
        .await?;
    }
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    token: String,
    new_password: String,
}

#[utoipa::path(post, path = "/api/v1/auth/password/reset", tag = "auth", operation_id = "reset_password", summary = "Set a new password with a reset token", request_body = ResetBody, responses((status = 200, description = "Set a new password with a reset token"), (status = 422, body = crate::error::ErrorEnvelope)))]
pub async fn reset_password(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ResetBody>,
) -> ApiResult<impl IntoResponse> {
    let hash = token_hash(&body.token);
    // Check the new password before using up the link, so a weak password can be corrected.
    let user_id = identity::peek_email_token(&state.db, &hash, "reset_password")
        .await?
        .ok_or_else(invalid_link)?;
    let user = identity::find_user(&state.db, &user_id)
        .await?
        .ok_or_else(invalid_link)?;
    check_new_password(&state, &user, &body.new_password, "new_password").await?;
    // Consuming is atomic: of two concurrent uses of one link, one finds it already used.
    identity::consume_email_token(&state.db, &hash, "reset_password")
        .await?
        .ok_or_else(invalid_link)?;
    set_new_password(&state, &user, &body.new_password, "new_password").await?;
    Ok(data(json!({"status": "password_changed"})))
}
