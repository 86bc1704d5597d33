//! Identity and access (PRODUCT.md module 1; seed 000 §2.2–2.4, seed 004 ch. 7): accounts,
//! sign-in with throttling, captcha and lockout, second factors, sessions with CSRF protection,
//! remember-me, API tokens, self-registration and password reset by email, and the login log.
//! Users, roles and departments are ordinary records; the permissions they grant are enforced by
//! the record engine.

pub mod admin;
pub mod auth;
mod captcha_image;
pub mod hooks;
pub mod me;
pub mod secrets;
pub mod session;
pub mod totp;

use std::sync::Arc;

use axum::Router;
use guanxi_core::Actor;
use guanxi_store::hooks::HookRegistry;
use guanxi_store::{Engine, identity};
use serde_json::{Map, Value as Json, json};

use crate::config::Config;
use crate::state::AppState;

/// State shared by the identity code: the cache of signed-in users and their sessions.
#[derive(Default)]
pub struct IdentityState {
    pub cache: session::SignInCache,
}

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(auth::router())
        .merge(me::router())
        .merge(admin::router())
}

pub fn register_hooks(registry: &mut HookRegistry, config: &Config, identity: &Arc<IdentityState>) {
    registry.register(
        "user",
        Arc::new(hooks::UserHooks {
            reserved: config.auth.reserved_usernames.clone(),
            public_url: config.auth.public_url.clone(),
            identity: identity.clone(),
        }),
    );
    registry.register(
        "role",
        Arc::new(hooks::RoleHooks {
            identity: identity.clone(),
        }),
    );
}

/// A user to create from the command line or a test.
pub struct NewUser<'a> {
    pub username: &'a str,
    pub display_name: &'a str,
    pub email: Option<&'a str>,
    pub password: &'a str,
    /// Role codes, e.g. `admin`, `salesperson`.
    pub roles: &'a [&'a str],
    pub department_id: Option<&'a str>,
    pub manager_id: Option<&'a str>,
}

/// Creates an active user with a password through the engine (so the username rules, audit and
/// hooks apply). The password must satisfy the policy.
pub async fn create_user(engine: &Engine, config: &Config, spec: &NewUser<'_>) -> anyhow::Result<String> {
    let errors = guanxi_core::password::check_password(&config.auth.password, spec.password, spec.username);
    if let Some(e) = errors.first() {
        anyhow::bail!("password refused: {}", e.message.en);
    }
    let db = engine.db();
    let mut role_ids = Vec::new();
    for code in spec.roles {
        let mut sql = guanxi_store::sql::Sql::of(
            db.backend(),
            "SELECT id FROM roles WHERE deleted_at IS NULL AND code = ",
        );
        sql.bind(*code);
        let row = sql
            .query()
            .fetch_optional(db.reader())
            .await?
            .ok_or_else(|| anyhow::anyhow!("no role with code {code}"))?;
        role_ids.push(sqlx::Row::try_get::<String, _>(&row, "id")?);
    }
    let mut input = Map::new();
    input.insert("username".into(), json!(spec.username));
    input.insert("display_name".into(), json!(spec.display_name));
    if let Some(e) = spec.email {
        input.insert("email".into(), json!(e));
    }
    input.insert("role_ids".into(), json!(role_ids));
    if let Some(d) = spec.department_id {
        input.insert("department_id".into(), json!(d));
    }
    if let Some(m) = spec.manager_id {
        input.insert("manager_id".into(), json!(m));
    }
    let record = engine
        .create(&Actor::system(), "user", &input)
        .await
        .map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
    let id = record.get("id").and_then(Json::as_str).unwrap_or_default().to_owned();
    let hash = secrets::hash_password(spec.password.to_owned()).await?;
    identity::set_password(db, &id, &hash, &[], config.auth.password.history).await?;
    Ok(id)
}

fn describe(e: &guanxi_store::StoreError) -> String {
    match e {
        guanxi_store::StoreError::Domain(guanxi_core::DomainError::Validation(f)) => f
            .messages(guanxi_core::Lang::En)
            .into_iter()
            .map(|(k, v)| format!("{k}: {}", v.join("; ")))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}
