//! The public pool (公海, issue 5 §6) of objects declared with `with_public_pool`: records
//! without an owner. Claiming makes the caller the owner (within a per-user limit); releasing
//! gives a record back with a reason. Both are workflow changes written through
//! [`Engine::apply_system_change`], so they carry a version bump and an audit entry.
//!
//! Who may do what: claiming needs the `<object>.claim` grant, which also makes the pool
//! readable (see `scope::push_read_scope`); releasing needs the update permission on the record
//! (its owner with scope `self`, a manager with a department scope), checked by the same
//! `locate` as every update, so a record outside the caller's reach is 404 or 403 as usual.

use guanxi_core::time_fmt::now_utc;
use guanxi_core::{Actor, DomainError, FieldError, FieldErrors, ObjectDef, Value};
use serde_json::Value as Json;
use sqlx::Row;

use super::Engine;
use super::codec::{Record, decode_row};
use super::scope::{require, view_of};
use super::write::{fetch_row, locate, not_found, visible};
use crate::db::Backend;
use crate::error::StoreResult;
use crate::hooks::AnyTx;
use crate::sql::Sql;

/// Longest release reason kept.
pub const MAX_REASON_CHARS: usize = 500;

fn pooled(object: &ObjectDef) -> StoreResult<()> {
    if object.public_pool {
        Ok(())
    } else {
        Err(DomainError::invalid_query(
            format!("“{}”没有公海", object.label.zh),
            format!("{} records have no public pool", object.label.en),
        )
        .into())
    }
}

fn owner_of(record: &Record) -> Option<&str> {
    record.get("owner_id").and_then(Json::as_str).filter(|s| !s.is_empty())
}

/// Live records of the object that `owner` owns.
pub async fn count_owned(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    object: &ObjectDef,
    owner: &str,
) -> StoreResult<i64> {
    let mut sql = Sql::of(backend, "SELECT count(*) AS n FROM ");
    sql.ident(&object.table)
        .push(" WHERE \"owner_id\" = ")
        .bind(owner)
        .push(" AND \"deleted_at\" IS NULL");
    Ok(sql.query().fetch_one(conn).await?.try_get("n")?)
}

impl Engine {
    /// Makes the actor the owner of a pool record (and puts it in the actor's department).
    /// Refused with `not_in_pool` when someone owns it and with `pool_limit_reached` when the
    /// actor already owns `max_owned` records (`None` or 0: no limit).
    pub async fn claim(
        &self,
        actor: &Actor,
        object_key: &str,
        id: &str,
        max_owned: Option<i64>,
    ) -> StoreResult<Record> {
        let object = self.object(object_key)?;
        pooled(&object)?;
        require(actor, &object, "claim")?;
        let Some(read) = actor.scope(&object.key, "read") else {
            return Err(not_found(&object, id));
        };
        let backend = self.db.backend();
        let mut tx: AnyTx = self.db.writer().begin().await?;
        if backend == Backend::Postgres {
            // One claim at a time per user, so two parallel claims cannot both pass the limit
            // (SQLite has a single writer already).
            let mut lock = Sql::of(backend, "SELECT id FROM users WHERE id = ");
            lock.bind(actor.id.as_str()).push(" FOR UPDATE");
            lock.query().fetch_optional(&mut *tx).await?;
        }
        let row = fetch_row(&mut tx, backend, &object, id, false, Some((actor, read, true)))
            .await?
            .ok_or_else(|| not_found(&object, id))?;
        let current = decode_row(&object, &row, false)?;
        if let Some(owner) = owner_of(&current) {
            return Err(if owner == actor.id {
                DomainError::refused(
                    "not_in_pool",
                    format!("该{}已由您负责，不在公海中", object.label.zh),
                    format!(
                        "you already own this {}; it is not in the pool",
                        object.label.en.to_lowercase()
                    ),
                )
            } else {
                DomainError::refused(
                    "not_in_pool",
                    format!("该{}已有负责人，不在公海中", object.label.zh),
                    format!(
                        "this {} has an owner and is not in the pool",
                        object.label.en.to_lowercase()
                    ),
                )
            }
            .into());
        }
        if let Some(max) = max_owned.filter(|m| *m > 0) {
            let owned = count_owned(&mut tx, backend, &object, &actor.id).await?;
            if owned >= max {
                return Err(DomainError::refused(
                    "pool_limit_reached",
                    format!("您已负责{owned}个{}，达到上限{max}个，不能再领取", object.label.zh),
                    format!(
                        "you already own {owned} {} records, the limit is {max}; release one before claiming more",
                        object.label.en.to_lowercase()
                    ),
                )
                .into());
            }
        }
        let mut values = vec![("owner_id".to_owned(), Value::Text(actor.id.clone()))];
        if let Some(dept) = &actor.department_id {
            values.push(("department_id".to_owned(), Value::Text(dept.clone())));
        }
        if object.field("claimed_at").is_some() {
            values.push(("claimed_at".to_owned(), Value::Text(now_utc())));
        }
        let record = self
            .apply_system_change(&mut tx, actor, &object.key, id, &values, "claim", None, None)
            .await?
            .ok_or_else(|| not_found(&object, id))?;
        tx.commit().await?;
        Ok(visible(&view_of(&object, actor), record))
    }

    /// Gives a record back to the pool with a reason. Needs the update permission on it;
    /// refused with `not_owned` when it is in the pool already.
    pub async fn release(
        &self,
        actor: &Actor,
        object_key: &str,
        id: &str,
        reason: &str,
        expected_version: Option<i64>,
    ) -> StoreResult<Record> {
        let object = self.object(object_key)?;
        pooled(&object)?;
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
            return Err(DomainError::Validation(FieldErrors::single(
                "reason",
                FieldError::new(
                    if reason.is_empty() { "required" } else { "too_long" },
                    format!("请填写退回原因（不超过{MAX_REASON_CHARS}字）"),
                    format!("give a reason of at most {MAX_REASON_CHARS} characters"),
                ),
            ))
            .into());
        }
        let backend = self.db.backend();
        let mut tx: AnyTx = self.db.writer().begin().await?;
        let (row, _) = locate(&mut tx, backend, &object, actor, id, "update", false).await?;
        let current = decode_row(&object, &row, false)?;
        if owner_of(&current).is_none() {
            return Err(DomainError::refused(
                "not_owned",
                format!("该{}已在公海中", object.label.zh),
                format!("this {} is already in the pool", object.label.en.to_lowercase()),
            )
            .into());
        }
        let record = self
            .release_in(&mut tx, actor, &object, id, reason, "release", expected_version)
            .await?
            .ok_or_else(|| not_found(&object, id))?;
        tx.commit().await?;
        Ok(visible(&view_of(&object, actor), record))
    }

    /// Puts a record back in the pool inside the caller's transaction, without permission
    /// checks (for the automatic reclaim, action `reclaim`).
    #[expect(clippy::too_many_arguments, reason = "one change, described in full")]
    pub async fn release_in(
        &self,
        tx: &mut AnyTx,
        actor: &Actor,
        object: &ObjectDef,
        id: &str,
        reason: &str,
        action: &str,
        expected_version: Option<i64>,
    ) -> StoreResult<Option<Record>> {
        let mut values = vec![("owner_id".to_owned(), Value::Null)];
        if object.field("claimed_at").is_some() {
            values.push(("claimed_at".to_owned(), Value::Null));
        }
        if object.field("released_at").is_some() {
            values.push(("released_at".to_owned(), Value::Text(now_utc())));
        }
        if object.field("release_reason").is_some() {
            values.push(("release_reason".to_owned(), Value::Text(reason.to_owned())));
        }
        self.apply_system_change(
            tx,
            actor,
            &object.key,
            id,
            &values,
            action,
            Some(reason),
            expected_version,
        )
        .await
    }
}
