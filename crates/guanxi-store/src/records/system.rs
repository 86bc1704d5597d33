//! Changes that rules make rather than people: a job setting the value tier, a workflow moving
//! a record in or out of the public pool. They write fields that are read-only to users, so
//! they bypass input validation and permission checks (the caller applied its own rule) but
//! keep everything else a change has: the version bump that optimistic concurrency relies on,
//! the audit entry, the after-update hooks and the search index, in the caller's transaction.

use guanxi_core::{Actor, DomainError, ObjectDef, Value};
use serde_json::{Value as Json, json};

use super::codec::{Record, column_binds, decode_row};
use super::write::{fetch_row, title_of, version_of};
use super::{Engine, audit, search};
use crate::error::StoreResult;
use crate::hooks::{AnyTx, HookCtx};
use crate::sql::Sql;
use guanxi_core::time_fmt::now_utc;

impl Engine {
    /// Sets standard fields of one live record under `action` (e.g. `classify`, `claim`),
    /// with `remark` in the audit entry. Returns the new record, the unchanged one when the
    /// values are already stored (nothing is written then), or `None` when the record does not
    /// exist or was deleted. `expected_version`, when given, must match the stored version.
    #[expect(clippy::too_many_arguments, reason = "one change, described in full")]
    pub async fn apply_system_change(
        &self,
        tx: &mut AnyTx,
        actor: &Actor,
        object_key: &str,
        id: &str,
        values: &[(String, Value)],
        action: &str,
        remark: Option<&str>,
        expected_version: Option<i64>,
    ) -> StoreResult<Option<Record>> {
        let snapshot = self.catalog.snapshot();
        let object = snapshot.object(object_key)?;
        let backend = self.db.backend();
        let Some(row) = fetch_row(&mut *tx, backend, &object, id, false, None).await? else {
            return Ok(None);
        };
        let old = decode_row(&object, &row, false)?;
        let version = version_of(&old);
        if let Some(expected) = expected_version
            && expected != version
        {
            return Err(DomainError::VersionConflict {
                expected,
                actual: version,
            }
            .into());
        }
        let mut diffs = Vec::new();
        let mut cols = Vec::new();
        for (key, value) in values {
            let field = standard_field(&object, key)?;
            let before = old.get(key).cloned().unwrap_or(Json::Null);
            let after = value.to_json();
            if before != after {
                let mut diff = json!({"field": key, "old": before, "new": after, "action": action});
                if let Some(r) = remark {
                    diff["remark"] = json!(r);
                }
                diffs.push(diff);
                cols.extend(column_binds(field, value));
            }
        }
        if cols.is_empty() {
            return Ok(Some(old));
        }
        let mut sql = Sql::of(backend, "UPDATE ");
        sql.ident(&object.table)
            .push(" SET \"version\" = \"version\" + 1, \"updated_at\" = ")
            .bind(now_utc())
            .push(", \"updated_by\" = ")
            .bind(actor.id.as_str());
        for (col, bind) in cols {
            sql.push(", ").ident(&col).push(" = ").bind(bind);
        }
        sql.push(" WHERE \"id\" = ")
            .bind(id)
            .push(" AND \"version\" = ")
            .bind(version);
        if sql.query().execute(&mut **tx).await?.rows_affected() == 0 {
            return Err(DomainError::VersionConflict {
                expected: version,
                actual: version + 1,
            }
            .into());
        }
        let Some(new_row) = fetch_row(&mut *tx, backend, &object, id, false, None).await? else {
            return Ok(None);
        };
        let new = decode_row(&object, &new_row, false)?;
        audit::write(
            &mut *tx,
            backend,
            actor,
            &object.key,
            id,
            action,
            title_of(&object, &new),
            Json::Array(diffs),
        )
        .await?;
        for h in &self.hooks.for_object(&object.key) {
            let mut ctx = HookCtx {
                tx: &mut *tx,
                actor,
                object: &object,
                backend,
            };
            h.after_update(&mut ctx, &old, &new).await?;
        }
        search::after_change(&mut *tx, backend, &snapshot, &object, &new, Some(&old)).await?;
        Ok(Some(new))
    }
}

/// A standard (column) field of the object; rules never write custom fields.
fn standard_field<'a>(object: &'a ObjectDef, key: &str) -> StoreResult<&'a guanxi_core::FieldDef> {
    match object.field(key) {
        Some(f) if !f.custom && key != "id" && key != "version" => Ok(f),
        _ => Err(anyhow::anyhow!("{} has no standard field '{key}' a rule may set", object.key).into()),
    }
}
