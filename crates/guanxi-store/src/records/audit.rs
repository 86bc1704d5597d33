//! The audit trail: one row per create, update, delete, restore, purge and transition, written
//! in the same transaction as the change, holding who, when, which record and every changed
//! field as old → new. Read per record (field history) or across records.

use guanxi_core::{Actor, DomainError, Label, ObjectDef};
use serde::Serialize;
use serde_json::Value as Json;
use sqlx::Row;

use super::Engine;
use super::scope::{push_read_scope, require, view_of};
use crate::db::Backend;
use crate::error::StoreResult;
use crate::hooks::Values;
use crate::sql::Sql;
use guanxi_core::time_fmt::now_utc;

/// One audit row.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditEntry {
    pub id: String,
    pub at: String,
    pub actor_id: String,
    pub actor_name: String,
    pub object: String,
    pub record_id: String,
    pub action: String,
    pub title: Option<String>,
    /// `[{"field": "name", "old": …, "new": …}, …]`
    pub changes: Json,
}

/// One state transition.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StateHistoryEntry {
    pub id: String,
    pub action: String,
    pub from_state: String,
    pub to_state: String,
    pub actor_id: String,
    pub actor_name: String,
    pub at: String,
    pub remark: Option<String>,
}

/// Filters for the cross-record audit view.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub object: Option<String>,
    pub record_id: Option<String>,
    pub actor_id: Option<String>,
    pub action: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Entries older than this id (the previous page's last id).
    pub before: Option<String>,
    pub limit: u32,
}

/// Writes an audit row on the transaction's connection.
#[expect(
    clippy::too_many_arguments,
    reason = "one row, one call; a struct would only rename the columns"
)]
pub(super) async fn write(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    actor: &Actor,
    object: &str,
    record_id: &str,
    action: &str,
    title: Option<String>,
    changes: Json,
) -> StoreResult<()> {
    entry_sql(backend, actor, object, record_id, action, title, changes.to_string())
        .query()
        .execute(conn)
        .await?;
    Ok(())
}

/// The statement that [`write`] runs, for callers that send it with others (`Batch`).
pub(super) fn entry_sql(
    backend: Backend,
    actor: &Actor,
    object: &str,
    record_id: &str,
    action: &str,
    title: Option<String>,
    changes: String,
) -> Sql {
    let mut sql = Sql::of(backend, INSERT_ENTRIES);
    push_entry(&mut sql, actor, object, &now_utc(), record_id, action, title, changes);
    sql
}

/// The create entries of many records in one statement (multi-row creates), all at `at`: for
/// each record its id, title and [`created_changes`]. The caller keeps the statement's binds
/// under the database's limit (nine per entry).
pub(super) fn created_entries_sql<'a>(
    backend: Backend,
    actor: &Actor,
    object: &str,
    at: &str,
    entries: impl IntoIterator<Item = (&'a str, Option<String>, String)>,
) -> Sql {
    let mut sql = Sql::of(backend, INSERT_ENTRIES);
    for (n, (record_id, title, changes)) in entries.into_iter().enumerate() {
        if n > 0 {
            sql.push(", ");
        }
        push_entry(&mut sql, actor, object, at, record_id, "create", title, changes);
    }
    sql
}

/// Bound parameters of one entry of [`created_entries_sql`].
pub(super) const ENTRY_BINDS: usize = 9;

const INSERT_ENTRIES: &str =
    "INSERT INTO audit_log (id, at, actor_id, actor_name, object, record_id, action, title, changes) VALUES ";

/// One `(…)` row of an audit INSERT.
#[expect(
    clippy::too_many_arguments,
    reason = "one row, one call; a struct would only rename the columns"
)]
fn push_entry(
    sql: &mut Sql,
    actor: &Actor,
    object: &str,
    at: &str,
    record_id: &str,
    action: &str,
    title: Option<String>,
    changes: String,
) {
    sql.push("(")
        .bind(uuid::Uuid::now_v7().to_string())
        .push(", ")
        .bind(at)
        .push(", ")
        .bind(actor.id.as_str())
        .push(", ")
        .bind(actor.name.as_str())
        .push(", ")
        .bind(object)
        .push(", ")
        .bind(record_id)
        .push(", ")
        .bind(action)
        .push(", ")
        .bind(title)
        .push(", ")
        .bind(changes)
        .push(")");
}

/// The values of a create, serialised as one JSON object in the order given.
struct CreatedValues<'a>(&'a Values);

impl Serialize for CreatedValues<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, v)))
    }
}

/// The `changes` of a create's audit entry as stored: every field given a value, as one JSON
/// object `{"field": new, …}`, which [`entry`] reads back as the `[{"field", "old": null,
/// "new"}]` list of every other entry. A bulk load writes one per record, and the list form
/// repeated `{"field": …, "old": null, "new": …}` around every value: half of the audit
/// table's bytes, and the audit table was a third of a generated dataset (decision 0015).
/// Written straight to text (building JSON values first was a sixth of a bulk load's engine
/// time).
pub(super) fn created_changes(values: &Values) -> String {
    serde_json::to_string(&CreatedValues(values)).unwrap_or_else(|_| "{}".to_owned())
}

/// The stored `changes` of an entry as readers get them: a create's compact object (see
/// [`created_changes`]) becomes the list of `{"field", "old": null, "new"}` changes; every
/// other entry (and a create written before) is read as written.
fn stored_changes(action: &str, text: &str) -> Json {
    match serde_json::from_str(text).unwrap_or(Json::Null) {
        Json::Object(created) if action == "create" => Json::Array(
            created
                .into_iter()
                .map(|(field, new)| serde_json::json!({"field": field, "old": null, "new": new}))
                .collect(),
        ),
        other => other,
    }
}

/// Drops the changes of fields outside the actor's view of the object, and the whole entry
/// when an update changed only such fields (its mere existence would tell of a hidden edit).
fn visible_changes(mut e: AuditEntry, view: &ObjectDef) -> Option<AuditEntry> {
    if let Some(changes) = e.changes.as_array_mut() {
        let before = changes.len();
        changes.retain(|c| c["field"].as_str().is_none_or(|f| view.field(f).is_some()));
        if before > 0 && changes.is_empty() && e.action == "update" {
            return None;
        }
    }
    Some(e)
}

fn entry(row: &sqlx::any::AnyRow) -> StoreResult<AuditEntry> {
    let changes: String = row.try_get("changes")?;
    let action: String = row.try_get("action")?;
    let changes = stored_changes(&action, &changes);
    Ok(AuditEntry {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        actor_id: row.try_get("actor_id")?,
        actor_name: row.try_get("actor_name")?,
        object: row.try_get("object")?,
        record_id: row.try_get("record_id")?,
        action,
        title: row.try_get("title")?,
        changes,
    })
}

impl Engine {
    /// The field history of one record the actor may read, oldest first, without the changes of
    /// fields hidden from the actor. Works for records in the recycle bin too.
    pub async fn history(&self, actor: &Actor, object_key: &str, id: &str) -> StoreResult<Vec<AuditEntry>> {
        let full = self.object(object_key)?;
        let scope = require(actor, &full, "read")?;
        let object = view_of(&full, actor);
        let mut exists = Sql::of(self.db.backend(), "SELECT 1 AS one FROM ");
        exists.ident(&object.table).push(" WHERE \"id\" = ").bind(id);
        push_read_scope(&mut exists, actor, &full, scope);
        if exists.query().fetch_optional(self.db.reader()).await?.is_none() {
            return Err(DomainError::NotFound {
                object: object.key.clone(),
                id: id.to_owned(),
            }
            .into());
        }
        let mut sql = Sql::of(
            self.db.backend(),
            "SELECT id, at, actor_id, actor_name, object, record_id, action, title, changes FROM audit_log WHERE object = ",
        );
        sql.bind(object.key.as_str())
            .push(" AND record_id = ")
            .bind(id)
            .push(" ORDER BY id");
        let rows = sql.query().fetch_all(self.db.reader()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.extend(visible_changes(entry(r)?, &object));
        }
        Ok(out)
    }

    /// Audit entries across records, newest first.
    pub async fn audit(&self, actor: &Actor, q: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        if actor.scope("audit", "read").is_none() {
            return Err(
                DomainError::Forbidden(Label::new("没有查看操作日志的权限", "you may not read the audit log")).into(),
            );
        }
        let snapshot = self.catalog.snapshot();
        let mut sql = Sql::of(
            self.db.backend(),
            "SELECT id, at, actor_id, actor_name, object, record_id, action, title, changes FROM audit_log WHERE 1 = 1",
        );
        let eq = [
            ("object", &q.object),
            ("record_id", &q.record_id),
            ("actor_id", &q.actor_id),
            ("action", &q.action),
        ];
        for (col, value) in eq {
            if let Some(v) = value {
                sql.push(" AND ").ident(col).push(" = ").bind(v.as_str());
            }
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
        // Only entries of records the reader may read: per object, all of them or those inside
        // the read scope (entries of purged records stay visible to readers with scope `all`).
        if !actor.is_unrestricted() {
            sql.push(" AND (1 = 0");
            for o in snapshot.objects() {
                let Some(scope) = actor.scope(&o.key, "read") else {
                    continue;
                };
                sql.push(" OR (object = ").bind(o.key.as_str());
                if scope != guanxi_core::access::Scope::All {
                    sql.push(" AND record_id IN (SELECT id FROM ")
                        .ident(&o.table)
                        .push(" WHERE 1 = 1");
                    push_read_scope(&mut sql, actor, o, scope);
                    sql.push(")");
                }
                sql.push(")");
            }
            sql.push(")");
        }
        let limit = if q.limit == 0 { 50 } else { q.limit.min(50_000) };
        sql.push(" ORDER BY id DESC LIMIT ").bind(i64::from(limit));
        let rows = sql.query().fetch_all(self.db.reader()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let e = entry(r)?;
            let e = match snapshot.object(&e.object) {
                Ok(o) => visible_changes(e, &view_of(&o, actor)),
                Err(_) => Some(e),
            };
            out.extend(e);
        }
        Ok(out)
    }

    /// The transitions of one record, oldest first.
    pub async fn state_history(
        &self,
        actor: &Actor,
        object_key: &str,
        id: &str,
    ) -> StoreResult<Vec<StateHistoryEntry>> {
        self.get(actor, object_key, id, false).await?;
        let object = self.object(object_key)?;
        let mut sql = Sql::of(
            self.db.backend(),
            "SELECT id, action, from_state, to_state, actor_id, actor_name, at, remark FROM state_history WHERE object = ",
        );
        sql.bind(object.key.as_str())
            .push(" AND record_id = ")
            .bind(id)
            .push(" ORDER BY id");
        let rows = sql.query().fetch_all(self.db.reader()).await?;
        rows.iter()
            .map(|row| {
                Ok(StateHistoryEntry {
                    id: row.try_get("id")?,
                    action: row.try_get("action")?,
                    from_state: row.try_get("from_state")?,
                    to_state: row.try_get("to_state")?,
                    actor_id: row.try_get("actor_id")?,
                    actor_name: row.try_get("actor_name")?,
                    at: row.try_get("at")?,
                    remark: row.try_get("remark")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use guanxi_core::Value;
    use serde_json::json;

    /// What a create writes reads back as the change list the audit readers expect, with every
    /// kind of value as `Value::to_json` gives it and empty fields left out; and it is stored as
    /// a compact object, not the list.
    #[test]
    fn created_changes_list_every_given_field_as_json() {
        let values: Values = vec![
            ("name".into(), Value::Text("中平能源 \"A\"".into())),
            ("employees".into(), Value::Int(120)),
            ("ratio".into(), Value::Float(0.5)),
            ("bad_ratio".into(), Value::Float(f64::NAN)),
            ("is_key".into(), Value::Bool(true)),
            (
                "value".into(),
                Value::Money {
                    amount: 12_345,
                    currency: "CNY".into(),
                },
            ),
            ("tags".into(), Value::Json(json!(["a", "b"]))),
            ("email".into(), Value::Null),
        ];
        let stored = created_changes(&values);
        assert!(
            stored.starts_with(r#"{"name":"中平能源 \"A\"","employees":120,"#),
            "{stored}"
        );
        let written = stored_changes("create", &stored);
        let expected: Vec<Json> = values
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| json!({"field": k, "old": null, "new": v.to_json()}))
            .collect();
        assert_eq!(written, Json::Array(expected));
        assert_eq!(written[3]["new"], Json::Null, "a non-finite number is written as null");
        assert_eq!(written[5]["new"], json!({"amount": 12_345, "currency": "CNY"}));
    }

    /// Entries written before creates were stored compactly, and every other action, read as
    /// they were written.
    #[test]
    fn stored_change_lists_read_unchanged() {
        let list = json!([{"field": "name", "old": null, "new": "中平"}]);
        assert_eq!(stored_changes("create", &list.to_string()), list);
        assert_eq!(stored_changes("update", &list.to_string()), list);
        let object = json!({"merge_id": "m1"});
        assert_eq!(
            stored_changes("merge", &object.to_string()),
            object,
            "only creates are expanded"
        );
        assert_eq!(stored_changes("create", "not json"), Json::Null);
    }
}
