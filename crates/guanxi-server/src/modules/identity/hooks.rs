//! Rules on user and role records, enforced in the record engine so they hold for every path
//! (API, import, admin pages): usernames follow BR-1 and are stored lower-case; nobody changes
//! their own roles and only holders of `user.assign_roles` change anyone's; role grants must be
//! well-formed; self-registered accounts start pending with a verification email queued in the
//! same transaction; disabling an account ends its sessions. Any change to users or roles clears
//! the cached permissions.

use std::sync::Arc;

use async_trait::async_trait;
use guanxi_core::access::{FieldRules, Grants};
use guanxi_core::password::check_username;
use guanxi_core::time_fmt::format_utc;
use guanxi_core::{DomainError, FieldError, FieldErrors, Label, Value};
use guanxi_store::hooks::{HookCtx, RecordHooks, Values};
use guanxi_store::sql::Sql;
use guanxi_store::{Record, StoreResult};
use serde_json::Value as Json;
use time::OffsetDateTime;

use super::IdentityState;
use super::auth::REGISTRATION_ACTOR;
use super::secrets::{random_token, token_hash};
use crate::mail::{Mail, SEND_EMAIL};

pub struct UserHooks {
    pub reserved: Vec<String>,
    pub public_url: String,
    pub identity: Arc<IdentityState>,
}

fn lower(values: &mut Values, key: &str) {
    for (k, v) in values.iter_mut() {
        if k == key
            && let Value::Text(t) = v
        {
            *t = t.to_lowercase();
        }
    }
}

fn field_error(field: &str, code: &'static str, zh: &str, en: &str) -> guanxi_store::StoreError {
    DomainError::Validation(FieldErrors::single(field, FieldError::new(code, zh, en))).into()
}

impl UserHooks {
    fn check(&self, values: &mut Values) -> StoreResult<()> {
        lower(values, "username");
        lower(values, "email");
        if let Some((_, Value::Text(name))) = values.iter().find(|(k, _)| k == "username")
            && let Some(e) = check_username(name, &self.reserved)
        {
            return Err(DomainError::Validation(FieldErrors::single("username", e)).into());
        }
        Ok(())
    }
}

#[async_trait]
impl RecordHooks for UserHooks {
    async fn before_create(&self, ctx: &mut HookCtx<'_>, values: &mut Values) -> StoreResult<()> {
        self.check(values)?;
        if ctx.actor.id == REGISTRATION_ACTOR {
            values.retain(|(k, _)| k != "role_ids" && k != "owner_id" && k != "department_id");
            values.push(("status".into(), Value::Text("pending".into())));
        } else if values.iter().any(|(k, v)| k == "role_ids" && !v.is_null()) && !ctx.actor.can("user.assign_roles") {
            return Err(DomainError::Forbidden(Label::new("没有分配角色的权限", "you may not assign roles")).into());
        }
        Ok(())
    }

    async fn after_create(&self, ctx: &mut HookCtx<'_>, record: &Record) -> StoreResult<()> {
        self.identity.cache.clear();
        if ctx.actor.id != REGISTRATION_ACTOR {
            return Ok(());
        }
        let (Some(id), Some(email)) = (
            record.get("id").and_then(Json::as_str),
            record.get("email").and_then(Json::as_str),
        ) else {
            return Ok(());
        };
        // The verification link is stored and mailed in the registration's own transaction.
        let token = random_token()?;
        let expires = format_utc(OffsetDateTime::now_utc() + time::Duration::hours(24));
        let mut sql = Sql::of(
            ctx.backend,
            "INSERT INTO auth_tokens (token_hash, user_id, purpose, expires_at, created_at) VALUES (",
        );
        sql.bind(token_hash(&token))
            .push(", ")
            .bind(id)
            .push(", 'verify_email', ")
            .bind(expires)
            .push(", ")
            .bind(guanxi_core::time_fmt::now_utc())
            .push(")");
        sql.query().execute(&mut **ctx.tx).await?;
        let name = record.get("display_name").and_then(Json::as_str).unwrap_or("");
        let link = format!("{}/verify-email?token={token}", self.public_url.trim_end_matches('/'));
        let mail = Mail {
            to: email.to_owned(),
            subject: "Guanxi 验证邮箱 / verify your email".into(),
            body: format!(
                "{name}，您好：\n请在24小时内打开以下链接验证邮箱，验证后等待管理员审核：\n{link}\n\nOpen the link above within 24 hours to verify your email; an administrator then approves the account.\n"
            ),
        };
        ctx.enqueue_job(SEND_EMAIL, &mail.payload()).await?;
        Ok(())
    }

    async fn before_update(&self, ctx: &mut HookCtx<'_>, old: &Record, changes: &mut Values) -> StoreResult<()> {
        self.check(changes)?;
        if changes.iter().any(|(k, _)| k == "role_ids") {
            let own = old.get("id").and_then(Json::as_str) == Some(ctx.actor.id.as_str());
            if own {
                return Err(field_error(
                    "role_ids",
                    "forbidden",
                    "不能修改自己的角色",
                    "you cannot change your own roles",
                ));
            }
            if !ctx.actor.can("user.assign_roles") {
                return Err(
                    DomainError::Forbidden(Label::new("没有分配角色的权限", "you may not assign roles")).into(),
                );
            }
        }
        Ok(())
    }

    async fn after_update(&self, ctx: &mut HookCtx<'_>, old: &Record, new: &Record) -> StoreResult<()> {
        self.identity.cache.clear();
        let status = new.get("status").and_then(Json::as_str);
        if status != old.get("status").and_then(Json::as_str)
            && matches!(status, Some("disabled" | "locked"))
            && let Some(id) = new.get("id").and_then(Json::as_str)
        {
            {
                let mut sql = Sql::of(ctx.backend, "DELETE FROM sessions WHERE user_id = ");
                sql.bind(id);
                sql.query().execute(&mut **ctx.tx).await?;
                let mut rt = Sql::of(ctx.backend, "DELETE FROM remember_tokens WHERE user_id = ");
                rt.bind(id);
                rt.query().execute(&mut **ctx.tx).await?;
            }
        }
        if status == Some("active")
            && old.get("status").and_then(Json::as_str) == Some("locked")
            && let Some(id) = new.get("id").and_then(Json::as_str)
        {
            {
                let mut sql = Sql::of(ctx.backend, "UPDATE users SET locked_until = NULL WHERE id = ");
                sql.bind(id);
                sql.query().execute(&mut **ctx.tx).await?;
            }
        }
        Ok(())
    }

    async fn before_delete(&self, ctx: &mut HookCtx<'_>, record: &Record) -> StoreResult<()> {
        if record.get("id").and_then(Json::as_str) == Some(ctx.actor.id.as_str()) {
            return Err(DomainError::conflict("不能删除自己的账号", "you cannot delete your own account").into());
        }
        Ok(())
    }

    async fn after_delete(&self, ctx: &mut HookCtx<'_>, record: &Record) -> StoreResult<()> {
        self.identity.cache.clear();
        if let Some(id) = record.get("id").and_then(Json::as_str) {
            let mut sql = Sql::of(ctx.backend, "DELETE FROM sessions WHERE user_id = ");
            sql.bind(id);
            sql.query().execute(&mut **ctx.tx).await?;
        }
        Ok(())
    }
}

pub struct RoleHooks {
    pub identity: Arc<IdentityState>,
}

/// Checks the shape of `permissions` and `field_rules`.
fn check_grants(values: &Values) -> StoreResult<()> {
    let mut errors = FieldErrors::default();
    for (k, v) in values {
        let Value::Json(json) = v else { continue };
        let ok = match k.as_str() {
            "permissions" => serde_json::from_value::<Grants>(json.clone()).is_ok(),
            "field_rules" => serde_json::from_value::<FieldRules>(json.clone()).is_ok(),
            _ => true,
        };
        if !ok {
            errors.add(
                k,
                FieldError::new(
                    "invalid_grants",
                    "格式应为 {对象: {操作: 数据范围}}，数据范围为 self、subordinates、department、department_tree、all；字段规则为 hidden 或 read_only",
                    "expected {object: {action: scope}} with scopes self, subordinates, department, department_tree, all; field rules are hidden or read_only",
                ),
            );
        }
    }
    Ok(errors.into_result()?)
}

#[async_trait]
impl RecordHooks for RoleHooks {
    async fn before_create(&self, _ctx: &mut HookCtx<'_>, values: &mut Values) -> StoreResult<()> {
        check_grants(values)
    }

    async fn after_create(&self, _ctx: &mut HookCtx<'_>, _record: &Record) -> StoreResult<()> {
        self.identity.cache.clear();
        Ok(())
    }

    async fn before_update(&self, _ctx: &mut HookCtx<'_>, _old: &Record, changes: &mut Values) -> StoreResult<()> {
        check_grants(changes)
    }

    async fn after_update(&self, _ctx: &mut HookCtx<'_>, _old: &Record, _new: &Record) -> StoreResult<()> {
        self.identity.cache.clear();
        Ok(())
    }

    async fn after_delete(&self, _ctx: &mut HookCtx<'_>, _record: &Record) -> StoreResult<()> {
        self.identity.cache.clear();
        Ok(())
    }
}
