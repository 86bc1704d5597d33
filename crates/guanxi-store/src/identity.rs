//! Storage for identity: the secret columns of users (password hashes, second-factor secrets),
//! sessions, remember-me tokens, sign-in challenges, API tokens, one-time email tokens,
//! captchas, sign-in throttling and the login log. Everything secret is stored hashed where it
//! only needs to be compared (tokens, codes) and is never part of a record the engine returns.

use std::collections::BTreeMap;

use guanxi_core::access::{Access, FieldRules, Grants};
use guanxi_core::time_fmt::now_utc;
use serde::Serialize;
use serde_json::Value as Json;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::Db;
use crate::error::StoreResult;
use crate::sql::{Bind, Sql, get_bool};

/// What sign-in needs to know about a user.
#[derive(Debug, Clone)]
pub struct UserAuth {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub status: String,
    pub department_id: Option<String>,
    pub manager_id: Option<String>,
    pub role_ids: Vec<String>,
    pub password_hash: Option<String>,
    pub password_history: Vec<String>,
    pub password_changed_at: Option<String>,
    pub locked_until: Option<String>,
    pub email_verified_at: Option<String>,
    pub totp_enabled: bool,
    pub totp_secret: Option<String>,
    pub totp_pending_secret: Option<String>,
    pub recovery_codes: Vec<String>,
}

const USER_COLUMNS: &str = "id, username, display_name, email, status, department_id, manager_id, role_ids, \
     password_hash, password_history, password_changed_at, locked_until, email_verified_at, totp_enabled, \
     totp_secret, totp_pending_secret, recovery_codes";

fn json_list(text: Option<String>) -> Vec<String> {
    text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

fn user_from_row(row: &AnyRow) -> StoreResult<UserAuth> {
    Ok(UserAuth {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        email: row.try_get("email")?,
        status: row.try_get("status")?,
        department_id: row.try_get("department_id")?,
        manager_id: row.try_get("manager_id")?,
        role_ids: json_list(row.try_get("role_ids")?),
        password_hash: row.try_get("password_hash")?,
        password_history: json_list(row.try_get("password_history")?),
        password_changed_at: row.try_get("password_changed_at")?,
        locked_until: row.try_get("locked_until")?,
        email_verified_at: row.try_get("email_verified_at")?,
        totp_enabled: get_bool(row, "totp_enabled")?.unwrap_or(false),
        totp_secret: row.try_get("totp_secret")?,
        totp_pending_secret: row.try_get("totp_pending_secret")?,
        recovery_codes: json_list(row.try_get("recovery_codes")?),
    })
}

/// Finds a live user by username or email (case-insensitive).
pub async fn find_user_by_login(db: &Db, login: &str) -> StoreResult<Option<UserAuth>> {
    let login = login.trim().to_lowercase();
    let mut sql = Sql::of(db.backend(), "SELECT ");
    sql.push(USER_COLUMNS)
        .push(" FROM users WHERE deleted_at IS NULL AND (lower(username) = ")
        .bind(login.as_str())
        .push(" OR lower(email) = ")
        .bind(login.as_str())
        .push(") ORDER BY id LIMIT 1");
    let row = sql.query().fetch_optional(db.reader()).await?;
    row.as_ref().map(user_from_row).transpose()
}

/// Finds a live user by id.
pub async fn find_user(db: &Db, id: &str) -> StoreResult<Option<UserAuth>> {
    let mut sql = Sql::of(db.backend(), "SELECT ");
    sql.push(USER_COLUMNS)
        .push(" FROM users WHERE deleted_at IS NULL AND id = ")
        .bind(id);
    let row = sql.query().fetch_optional(db.writer()).await?;
    row.as_ref().map(user_from_row).transpose()
}

/// A role as sign-in sees it.
#[derive(Debug, Clone, Serialize)]
pub struct RoleGrant {
    pub id: String,
    pub name: String,
    pub code: Option<String>,
    pub require_2fa: bool,
    #[serde(skip)]
    pub grants: Grants,
    #[serde(skip)]
    pub field_rules: FieldRules,
}

/// The live roles with these ids.
pub async fn roles(db: &Db, ids: &[String]) -> StoreResult<Vec<RoleGrant>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::of(
        db.backend(),
        "SELECT id, name, code, permissions, field_rules, require_2fa FROM roles WHERE deleted_at IS NULL AND id IN (",
    );
    sql.bind_list(ids.iter().map(|i| Bind::Text(i.clone())))
        .push(") ORDER BY name");
    let rows = sql.query().fetch_all(db.reader()).await?;
    rows.iter()
        .map(|row| {
            let permissions: Option<String> = row.try_get("permissions")?;
            let rules: Option<String> = row.try_get("field_rules")?;
            Ok(RoleGrant {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                code: row.try_get("code")?,
                require_2fa: get_bool(row, "require_2fa")?.unwrap_or(false),
                // A malformed grant grants nothing (the role hook refuses them on save).
                grants: permissions
                    .and_then(|p| serde_json::from_str(&p).ok())
                    .unwrap_or_default(),
                field_rules: rules.and_then(|r| serde_json::from_str(&r).ok()).unwrap_or_default(),
            })
        })
        .collect()
}

/// Ids reached by following `parent` links downwards from `root` (the root included).
async fn descendants(db: &Db, table: &str, parent_column: &str, root: &str) -> StoreResult<Vec<String>> {
    let text = format!(
        "WITH RECURSIVE tree(id, depth) AS (SELECT id, 0 FROM {table} WHERE id = ? AND deleted_at IS NULL \
         UNION ALL SELECT t.id, tree.depth + 1 FROM {table} t JOIN tree ON t.{parent_column} = tree.id \
         WHERE t.deleted_at IS NULL AND tree.depth < 64) SELECT id FROM tree"
    );
    let mut sql = Sql::new(db.backend());
    // Rebuild with a proper placeholder for the backend.
    let (before, after) = text.split_once('?').unwrap_or((&text, ""));
    sql.push(before).bind(root).push(after);
    let rows = sql.query().fetch_all(db.reader()).await?;
    rows.iter().map(|r| Ok(r.try_get::<String, _>("id")?)).collect()
}

/// Computes what a user may do: merged role grants, subordinates and department tree.
pub async fn access_for(db: &Db, user: &UserAuth) -> StoreResult<(Access, Vec<RoleGrant>)> {
    let roles = roles(db, &user.role_ids).await?;
    let (grants, field_rules) = Access::merge_roles(roles.iter().map(|r| (&r.grants, &r.field_rules)));
    let mut subordinate_ids = descendants(db, "users", "manager_id", &user.id).await?;
    subordinate_ids.retain(|id| id != &user.id);
    let department_tree_ids = match &user.department_id {
        Some(d) => descendants(db, "departments", "parent_id", d).await?,
        None => Vec::new(),
    };
    Ok((
        Access {
            grants,
            field_rules,
            subordinate_ids,
            department_tree_ids,
        },
        roles,
    ))
}

/// Sets a new password hash, keeping the previous ones for the reuse check.
pub async fn set_password(db: &Db, user_id: &str, hash: &str, history: &[String], keep: usize) -> StoreResult<()> {
    let mut previous: Vec<String> = history.to_vec();
    previous.truncate(keep);
    let now = now_utc();
    let mut sql = Sql::of(db.backend(), "UPDATE users SET password_hash = ");
    sql.bind(hash)
        .push(", password_history = ")
        .bind(Json::from(previous).to_string())
        .push(", password_changed_at = ")
        .bind(now.as_str())
        .push(", updated_at = ")
        .bind(now.as_str())
        .push(", version = version + 1 WHERE id = ")
        .bind(user_id);
    sql.query().execute(db.writer()).await?;
    Ok(())
}

/// Sets one of the users table's sign-in columns (status, last_login_at, locked_until,
/// email_verified_at, totp fields, recovery_codes). `column` is one of a fixed list.
pub async fn set_user_column(db: &Db, user_id: &str, column: &str, value: Bind) -> StoreResult<()> {
    const ALLOWED: &[&str] = &[
        "status",
        "last_login_at",
        "locked_until",
        "email_verified_at",
        "totp_enabled",
        "totp_secret",
        "totp_pending_secret",
        "recovery_codes",
    ];
    if !ALLOWED.contains(&column) {
        return Err(anyhow::anyhow!("column {column} is not a sign-in column").into());
    }
    let mut sql = Sql::of(db.backend(), "UPDATE users SET ");
    sql.ident(column)
        .push(" = ")
        .bind(value)
        .push(", version = version + 1 WHERE id = ")
        .bind(user_id);
    sql.query().execute(db.writer()).await?;
    Ok(())
}

// ----- sessions -----

/// A stored session.
#[derive(Debug, Clone, Serialize)]
pub struct SessionRow {
    #[serde(skip)]
    pub token_hash: String,
    /// A short public id (first 16 characters of the hash), for listing and revoking.
    pub id: String,
    #[serde(skip)]
    pub user_id: String,
    #[serde(skip)]
    pub csrf_token: String,
    pub created_at: String,
    pub last_seen_at: String,
    pub expires_at: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub remembered: bool,
}

fn session_from_row(row: &AnyRow) -> StoreResult<SessionRow> {
    let token_hash: String = row.try_get("id")?;
    Ok(SessionRow {
        id: token_hash.chars().take(16).collect(),
        token_hash,
        user_id: row.try_get("user_id")?,
        csrf_token: row.try_get("csrf_token")?,
        created_at: row.try_get("created_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
        expires_at: row.try_get("expires_at")?,
        ip: row.try_get("ip")?,
        user_agent: row.try_get("user_agent")?,
        remembered: get_bool(row, "remembered")?.unwrap_or(false),
    })
}

#[expect(clippy::too_many_arguments, reason = "one row, one call")]
pub async fn create_session(
    db: &Db,
    token_hash: &str,
    user_id: &str,
    csrf_token: &str,
    expires_at: &str,
    ip: Option<&str>,
    user_agent: Option<&str>,
    remembered: bool,
) -> StoreResult<()> {
    let now = now_utc();
    let mut sql = Sql::of(
        db.backend(),
        "INSERT INTO sessions (id, user_id, csrf_token, created_at, last_seen_at, expires_at, ip, user_agent, remembered) VALUES (",
    );
    sql.bind(token_hash)
        .push(", ")
        .bind(user_id)
        .push(", ")
        .bind(csrf_token)
        .push(", ")
        .bind(now.as_str())
        .push(", ")
        .bind(now.as_str())
        .push(", ")
        .bind(expires_at)
        .push(", ")
        .bind(ip)
        .push(", ")
        .bind(user_agent.map(|u| u.chars().take(300).collect::<String>()))
        .push(", ")
        .bind(Bind::Bool(remembered))
        .push(")");
    sql.query().execute(db.writer()).await?;
    Ok(())
}

pub async fn get_session(db: &Db, token_hash: &str) -> StoreResult<Option<SessionRow>> {
    let mut sql = Sql::of(db.backend(), "SELECT * FROM sessions WHERE id = ");
    sql.bind(token_hash);
    let row = sql.query().fetch_optional(db.reader()).await?;
    row.as_ref().map(session_from_row).transpose()
}

pub async fn touch_session(db: &Db, token_hash: &str) -> StoreResult<()> {
    let mut sql = Sql::of(db.backend(), "UPDATE sessions SET last_seen_at = ");
    sql.bind(now_utc()).push(" WHERE id = ").bind(token_hash);
    sql.query().execute(db.writer()).await?;
    Ok(())
}

pub async fn list_sessions(db: &Db, user_id: &str) -> StoreResult<Vec<SessionRow>> {
    let mut sql = Sql::of(db.backend(), "SELECT * FROM sessions WHERE user_id = ");
    sql.bind(user_id).push(" ORDER BY created_at DESC");
    let rows = sql.query().fetch_all(db.reader()).await?;
    rows.iter().map(session_from_row).collect()
}

/// Deletes one session by its full hash.
pub async fn delete_session(db: &Db, token_hash: &str) -> StoreResult<()> {
    let mut sql = Sql::of(db.backend(), "DELETE FROM sessions WHERE id = ");
    sql.bind(token_hash);
    sql.query().execute(db.writer()).await?;
    Ok(())
}

/// Ends every session of a user except `keep`, and forgets every remember-me token.
pub async fn end_user_sessions(db: &Db, user_id: &str, keep: Option<&str>) -> StoreResult<u64> {
    let mut sql = Sql::of(db.backend(), "DELETE FROM sessions WHERE user_id = ");
    sql.bind(user_id);
    if let Some(k) = keep {
        sql.push(" AND id <> ").bind(k);
    }
    let n = sql.query().execute(db.writer()).await?.rows_affected();
    let mut rt = Sql::of(db.backend(), "DELETE FROM remember_tokens WHERE user_id = ");
    rt.bind(user_id);
    rt.query().execute(db.writer()).await?;
    Ok(n)
}

// ----- remember-me tokens -----

pub async fn create_remember_token(
    db: &Db,
    selector: &str,
    validator_hash: &str,
    user_id: &str,
    expires_at: &str,
) -> StoreResult<()> {
    let mut sql = Sql::of(
        db.backend(),
        "INSERT INTO remember_tokens (selector, validator_hash, user_id, expires_at, created_at) VALUES (",
    );
    sql.bind(selector)
        .push(", ")
        .bind(validator_hash)
        .push(", ")
        .bind(user_id)
        .push(", ")
        .bind(expires_at)
        .push(", ")
        .bind(now_utc())
        .push(")");
    sql.query().execute(db.writer()).await?;
    Ok(())
}

/// Removes and returns a remember-me token (each is used once, then rotated).
pub async fn take_remember_token(db: &Db, selector: &str) -> StoreResult<Option<(String, String, String)>> {
    let mut sql = Sql::of(db.backend(), "DELETE FROM remember_tokens WHERE selector = ");
    sql.bind(selector)
        .push(" RETURNING validator_hash, user_id, expires_at");
    let row = sql.query().fetch_optional(db.writer()).await?;
    Ok(match row {
        Some(r) => Some((
            r.try_get("validator_hash")?,
            r.try_get("user_id")?,
            r.try_get("expires_at")?,
        )),
        None => None,
    })
}

// ----- sign-in throttling -----

/// Failures counted for one sign-in name.
#[derive(Debug, Clone, Default)]
pub struct Attempts {
    pub failures: i64,
    pub window_start: Option<String>,
    pub locked_until: Option<String>,
}

pub async fn attempts(db: &Db, key: &str) -> StoreResult<Attempts> {
    let mut sql = Sql::of(
        db.backend(),
        "SELECT failures, window_start, locked_until FROM login_attempts WHERE login_key = ",
    );
    sql.bind(key);
    Ok(match sql.query().fetch_optional(db.writer()).await? {
        Some(r) => Attempts {
            failures: r.try_get("failures")?,
            window_start: r.try_get("window_start")?,
            locked_until: r.try_get("locked_until")?,
        },
        None => Attempts::default(),
    })
}

pub async fn save_attempts(db: &Db, key: &str, a: &Attempts) -> StoreResult<()> {
    let mut del = Sql::of(db.backend(), "DELETE FROM login_attempts WHERE login_key = ");
    del.bind(key);
    let mut tx = db.writer().begin().await?;
    del.query().execute(&mut *tx).await?;
    if a.failures > 0 || a.locked_until.is_some() {
        let mut ins = Sql::of(
            db.backend(),
            "INSERT INTO login_attempts (login_key, failures, window_start, locked_until) VALUES (",
        );
        ins.bind(key)
            .push(", ")
            .bind(a.failures)
            .push(", ")
            .bind(a.window_start.clone().unwrap_or_else(now_utc))
            .push(", ")
            .bind(a.locked_until.clone())
            .push(")");
        ins.query().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

// ----- login log -----

/// One sign-in attempt.
#[derive(Debug, Clone, Serialize)]
pub struct LoginLogEntry {
    pub id: String,
    pub at: String,
    pub user_id: Option<String>,
    pub login: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub result: String,
    pub reason: Option<String>,
}

pub async fn log_login(db: &Db, e: &LoginLogEntry) -> StoreResult<()> {
    let mut sql = Sql::of(
        db.backend(),
        "INSERT INTO login_log (id, at, user_id, login, ip, user_agent, result, reason) VALUES (",
    );
    sql.bind(e.id.as_str())
        .push(", ")
        .bind(e.at.as_str())
        .push(", ")
        .bind(e.user_id.clone())
        .push(", ")
        .bind(e.login.chars().take(100).collect::<String>())
        .push(", ")
        .bind(e.ip.clone())
        .push(", ")
        .bind(e.user_agent.as_ref().map(|u| u.chars().take(300).collect::<String>()))
        .push(", ")
        .bind(e.result.as_str())
        .push(", ")
        .bind(e.reason.clone())
        .push(")");
    sql.query().execute(db.writer()).await?;
    Ok(())
}

/// Filters of the login log.
#[derive(Debug, Clone, Default)]
pub struct LoginLogQuery {
    pub user_id: Option<String>,
    pub login: Option<String>,
    pub result: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub before: Option<String>,
    pub limit: u32,
}

pub async fn login_log(db: &Db, q: &LoginLogQuery) -> StoreResult<Vec<LoginLogEntry>> {
    let mut sql = Sql::of(
        db.backend(),
        "SELECT id, at, user_id, login, ip, user_agent, result, reason FROM login_log WHERE 1 = 1",
    );
    for (col, v) in [("user_id", &q.user_id), ("result", &q.result)] {
        if let Some(v) = v {
            sql.push(" AND ").ident(col).push(" = ").bind(v.as_str());
        }
    }
    if let Some(login) = &q.login {
        sql.push(" AND lower(login) = ").bind(login.to_lowercase());
    }
    if let Some(from) = &q.from {
        sql.push(" AND at >= ").bind(from.as_str());
    }
    if let Some(to) = &q.to {
        sql.push(" AND at <= ").bind(to.as_str());
    }
    if let Some(before) = &q.before {
        sql.push(" AND id < ").bind(before.as_str());
    }
    let limit = if q.limit == 0 { 50 } else { q.limit.min(100_000) };
    sql.push(" ORDER BY id DESC LIMIT ").bind(i64::from(limit));
    let rows = sql.query().fetch_all(db.reader()).await?;
    rows.iter()
        .map(|r| {
            Ok(LoginLogEntry {
                id: r.try_get("id")?,
                at: r.try_get("at")?,
                user_id: r.try_get("user_id")?,
                login: r.try_get("login")?,
                ip: r.try_get("ip")?,
                user_agent: r.try_get("user_agent")?,
                result: r.try_get("result")?,
                reason: r.try_get("reason")?,
            })
        })
        .collect()
}

/// Deletes login-log and audit entries older than `before` (retention clean-up).
pub async fn purge_logs_before(db: &Db, before: &str) -> StoreResult<(u64, u64)> {
    let mut a = Sql::of(db.backend(), "DELETE FROM login_log WHERE at < ");
    a.bind(before);
    let logins = a.query().execute(db.writer()).await?.rows_affected();
    let mut b = Sql::of(db.backend(), "DELETE FROM audit_log WHERE at < ");
    b.bind(before);
    let audits = b.query().execute(db.writer()).await?.rows_affected();
    Ok((logins, audits))
}

// ----- one-time secrets: captchas, challenges, email tokens -----

pub async fn create_captcha(db: &Db, id: &str, answer_hash: &str, expires_at: &str) -> StoreResult<()> {
    let mut sql = Sql::of(
        db.backend(),
        "INSERT INTO captchas (id, answer_hash, expires_at) VALUES (",
    );
    sql.bind(id)
        .push(", ")
        .bind(answer_hash)
        .push(", ")
        .bind(expires_at)
        .push(")");
    sql.query().execute(db.writer()).await?;
    Ok(())
}

/// Removes a captcha and returns its answer hash if it has not expired (each is tried once).
pub async fn take_captcha(db: &Db, id: &str) -> StoreResult<Option<String>> {
    let mut sql = Sql::of(db.backend(), "DELETE FROM captchas WHERE id = ");
    sql.bind(id).push(" RETURNING answer_hash, expires_at");
    let Some(row) = sql.query().fetch_optional(db.writer()).await? else {
        return Ok(None);
    };
    let expires: String = row.try_get("expires_at")?;
    Ok((expires > now_utc()).then(|| row.try_get("answer_hash")).transpose()?)
}

/// A pending sign-in step (second factor or forced password change).
#[derive(Debug, Clone)]
pub struct Challenge {
    pub id: String,
    pub user_id: String,
    pub kind: String,
    pub remember: bool,
    pub email_code_hash: Option<String>,
    pub attempts: i64,
    pub expires_at: String,
}

pub async fn create_challenge(db: &Db, c: &Challenge) -> StoreResult<()> {
    let mut sql = Sql::of(
        db.backend(),
        "INSERT INTO login_challenges (id, user_id, kind, remember, email_code_hash, attempts, expires_at) VALUES (",
    );
    sql.bind(c.id.as_str())
        .push(", ")
        .bind(c.user_id.as_str())
        .push(", ")
        .bind(c.kind.as_str())
        .push(", ")
        .bind(Bind::Bool(c.remember))
        .push(", ")
        .bind(c.email_code_hash.clone())
        .push(", 0, ")
        .bind(c.expires_at.as_str())
        .push(")");
    sql.query().execute(db.writer()).await?;
    Ok(())
}

pub async fn get_challenge(db: &Db, id: &str) -> StoreResult<Option<Challenge>> {
    let mut sql = Sql::of(db.backend(), "SELECT * FROM login_challenges WHERE id = ");
    sql.bind(id);
    let Some(r) = sql.query().fetch_optional(db.writer()).await? else {
        return Ok(None);
    };
    let c = Challenge {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        kind: r.try_get("kind")?,
        remember: get_bool(&r, "remember")?.unwrap_or(false),
        email_code_hash: r.try_get("email_code_hash")?,
        attempts: r.try_get("attempts")?,
        expires_at: r.try_get("expires_at")?,
    };
    Ok((c.expires_at > now_utc()).then_some(c))
}

pub async fn update_challenge(db: &Db, id: &str, attempts: i64, email_code_hash: Option<&str>) -> StoreResult<()> {
    let mut sql = Sql::of(db.backend(), "UPDATE login_challenges SET attempts = ");
    sql.bind(attempts).push(", email_code_hash = ").bind(email_code_hash);
    sql.push(" WHERE id = ").bind(id);
    sql.query().execute(db.writer()).await?;
    Ok(())
}

pub async fn delete_challenge(db: &Db, id: &str) -> StoreResult<()> {
    let mut sql = Sql::of(db.backend(), "DELETE FROM login_challenges WHERE id = ");
    sql.bind(id);
    sql.query().execute(db.writer()).await?;
    Ok(())
}

pub async fn create_email_token(
    db: &Db,
    token_hash: &str,
    user_id: &str,
    purpose: &str,
    expires_at: &str,
) -> StoreResult<()> {
    let mut sql = Sql::of(
        db.backend(),
        "INSERT INTO auth_tokens (token_hash, user_id, purpose, expires_at, created_at) VALUES (",
    );
    sql.bind(token_hash)
        .push(", ")
        .bind(user_id)
        .push(", ")
        .bind(purpose)
        .push(", ")
        .bind(expires_at)
        .push(", ")
        .bind(now_utc())
        .push(")");
    sql.query().execute(db.writer()).await?;
    Ok(())
}

/// The user of a valid (unused, unexpired) one-time token, without using it up.
pub async fn peek_email_token(db: &Db, token_hash: &str, purpose: &str) -> StoreResult<Option<String>> {
    let mut sql = Sql::of(db.backend(), "SELECT user_id FROM auth_tokens WHERE token_hash = ");
    sql.bind(token_hash)
        .push(" AND purpose = ")
        .bind(purpose)
        .push(" AND used_at IS NULL AND expires_at > ")
        .bind(now_utc());
    let row = sql.query().fetch_optional(db.writer()).await?;
    Ok(row.map(|r| r.try_get("user_id")).transpose()?)
}

/// Marks a one-time token used and returns its user, if it exists, fits the purpose, is unused
/// and has not expired. A second use finds nothing.
pub async fn consume_email_token(db: &Db, token_hash: &str, purpose: &str) -> StoreResult<Option<String>> {
    let now = now_utc();
    let mut sql = Sql::of(db.backend(), "UPDATE auth_tokens SET used_at = ");
    sql.bind(now.as_str())
        .push(" WHERE token_hash = ")
        .bind(token_hash)
        .push(" AND purpose = ")
        .bind(purpose)
        .push(" AND used_at IS NULL AND expires_at > ")
        .bind(now.as_str())
        .push(" RETURNING user_id");
    let row = sql.query().fetch_optional(db.writer()).await?;
    Ok(row.map(|r| r.try_get("user_id")).transpose()?)
}

// ----- API tokens -----

/// An API token as listed (never with its secret).
#[derive(Debug, Clone, Serialize)]
pub struct ApiTokenRow {
    pub id: String,
    #[serde(skip)]
    pub user_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

fn token_from_row(r: &AnyRow) -> StoreResult<ApiTokenRow> {
    Ok(ApiTokenRow {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        name: r.try_get("name")?,
        scopes: json_list(r.try_get("scopes")?),
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        last_used_at: r.try_get("last_used_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

pub async fn create_api_token(db: &Db, t: &ApiTokenRow, token_hash: &str) -> StoreResult<()> {
    let mut sql = Sql::of(
        db.backend(),
        "INSERT INTO api_tokens (id, user_id, name, token_hash, scopes, created_at, expires_at) VALUES (",
    );
    sql.bind(t.id.as_str())
        .push(", ")
        .bind(t.user_id.as_str())
        .push(", ")
        .bind(t.name.as_str())
        .push(", ")
        .bind(token_hash)
        .push(", ")
        .bind(Json::from(t.scopes.clone()).to_string())
        .push(", ")
        .bind(t.created_at.as_str())
        .push(", ")
        .bind(t.expires_at.clone())
        .push(")");
    sql.query().execute(db.writer()).await?;
    Ok(())
}

/// The live (unrevoked, unexpired) token with this hash.
pub async fn find_api_token(db: &Db, token_hash: &str) -> StoreResult<Option<ApiTokenRow>> {
    let mut sql = Sql::of(db.backend(), "SELECT * FROM api_tokens WHERE token_hash = ");
    sql.bind(token_hash).push(" AND revoked_at IS NULL");
    let Some(r) = sql.query().fetch_optional(db.reader()).await? else {
        return Ok(None);
    };
    let t = token_from_row(&r)?;
    if t.expires_at.as_deref().is_some_and(|e| e <= now_utc().as_str()) {
        return Ok(None);
    }
    Ok(Some(t))
}

pub async fn list_api_tokens(db: &Db, user_id: &str) -> StoreResult<Vec<ApiTokenRow>> {
    let mut sql = Sql::of(db.backend(), "SELECT * FROM api_tokens WHERE user_id = ");
    sql.bind(user_id).push(" ORDER BY created_at DESC");
    let rows = sql.query().fetch_all(db.reader()).await?;
    rows.iter().map(token_from_row).collect()
}

/// Revokes a token of the given user; returns whether one was revoked.
pub async fn revoke_api_token(db: &Db, user_id: &str, id: &str) -> StoreResult<bool> {
    let mut sql = Sql::of(db.backend(), "UPDATE api_tokens SET revoked_at = ");
    sql.bind(now_utc())
        .push(" WHERE id = ")
        .bind(id)
        .push(" AND user_id = ")
        .bind(user_id)
        .push(" AND revoked_at IS NULL");
    Ok(sql.query().execute(db.writer()).await?.rows_affected() > 0)
}

pub async fn touch_api_token(db: &Db, id: &str) -> StoreResult<()> {
    let mut sql = Sql::of(db.backend(), "UPDATE api_tokens SET last_used_at = ");
    sql.bind(now_utc()).push(" WHERE id = ").bind(id);
    sql.query().execute(db.writer()).await?;
    Ok(())
}

// ----- settings -----

/// Reads every system parameter.
pub async fn settings(db: &Db) -> StoreResult<BTreeMap<String, Json>> {
    let rows = sqlx::query("SELECT key, value FROM settings")
        .fetch_all(db.reader())
        .await?;
    let mut out = BTreeMap::new();
    for r in rows {
        let key: String = r.try_get("key")?;
        let value: String = r.try_get("value")?;
        out.insert(key, serde_json::from_str(&value).unwrap_or(Json::Null));
    }
    Ok(out)
}

/// Stores one system parameter.
/// One setting, or `None` when it was never set (or does not hold JSON).
pub async fn get_setting(db: &Db, key: &str) -> StoreResult<Option<Json>> {
    let mut sql = Sql::of(db.backend(), "SELECT value FROM settings WHERE key = ");
    sql.bind(key);
    let row = sql.query().fetch_optional(db.reader()).await?;
    let value: Option<String> = row.map(|r| r.try_get("value")).transpose()?;
    Ok(value.and_then(|v| serde_json::from_str(&v).ok()))
}

pub async fn set_setting(db: &Db, key: &str, value: &Json) -> StoreResult<()> {
    let mut tx = db.writer().begin().await?;
    let mut del = Sql::of(db.backend(), "DELETE FROM settings WHERE key = ");
    del.bind(key);
    del.query().execute(&mut *tx).await?;
    let mut ins = Sql::of(db.backend(), "INSERT INTO settings (key, value, updated_at) VALUES (");
    ins.bind(key)
        .push(", ")
        .bind(value.to_string())
        .push(", ")
        .bind(now_utc())
        .push(")");
    ins.query().execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}
