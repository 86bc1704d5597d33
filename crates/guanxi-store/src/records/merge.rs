//! Merging records (issue 5 §5: customers) and undoing a merge, each in one transaction.
//!
//! A merge keeps one record (the target) and retires the others (the sources):
//!
//! 1. the actor needs `update` on the target and `delete` on every source, found through the
//!    same `locate` as every other write (404 outside the read scope, 403 outside the action's);
//!    the versions the caller read may be given and are checked (409 `version_conflict`);
//! 2. every record of another object that points at a source through a standard relation field
//!    (contacts, follow-ups, care actions, a converted lead's customer, and whatever objects
//!    later declare such a field) is moved to the target, each with an audit entry;
//! 3. the sources go to the recycle bin (the usual delete, with hooks and audit) and point at
//!    the target (`merged_into_id`, when the object has that field);
//! 4. the target takes the field values chosen from sources, and fills its empty fields from
//!    the first source that has a value — an ordinary update with hooks and audit;
//! 5. a row in `record_merges` (and `record_merge_moves`) remembers all of it, so that
//!    [`Engine::undo_merge`] can put everything back.
//!
//! Undo restores the sources, moves back the records that still point at the target and puts
//! back the target's overwritten values. It is refused (nothing changes) when that would lose
//! later work: a target value set by the merge was changed since, a source was changed,
//! restored or purged since, the target was deleted, or a source's unique value is now used
//! by another live record.

use std::collections::BTreeMap;
use std::sync::Arc;

use guanxi_core::meta::FieldType;
use guanxi_core::time_fmt::now_utc;
use guanxi_core::value::{Mode, validate_input};
use guanxi_core::{Actor, DomainError, FieldDef, FieldError, FieldErrors, Label, ObjectDef};
use serde::Serialize;
use serde_json::{Map, Value as Json, json};
use sqlx::{AnyConnection, Row};

use super::Engine;
use super::audit;
use super::codec::{Record, decode_row};
use super::scope::{push_read_scope, require, view_of};
use super::search;
use super::write::{duplicate_error, fetch_row, locate, not_found, title_of, version_of, visible};
use crate::catalog::Snapshot;
use crate::db::Backend;
use crate::error::{StoreError, StoreResult};
use crate::hooks::AnyTx;
use crate::sql::{Bind, Sql};

/// Most sources one merge may name.
pub const MAX_MERGE_SOURCES: usize = 20;

/// What to merge.
#[derive(Debug, Clone, Default)]
pub struct MergeRequest {
    pub target_id: String,
    pub source_ids: Vec<String>,
    /// Field → the source whose value the target takes (even over a value of its own).
    pub fields: BTreeMap<String, String>,
    /// The target's version the caller based the merge on.
    pub target_version: Option<i64>,
    /// Each source's version the caller based the merge on.
    pub source_versions: BTreeMap<String, i64>,
}

/// A merged record, by id and title.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MergeSource {
    pub id: String,
    pub title: Option<String>,
}

/// One merge as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MergeEntry {
    pub id: String,
    pub object: String,
    pub target_id: String,
    pub target_title: Option<String>,
    pub sources: Vec<MergeSource>,
    /// Field → `{"from": source id, "old": target value before, "new": value set}`.
    pub fields: Json,
    /// How many related records were moved to the target.
    pub moved: i64,
    /// `merged` or `undone`.
    pub status: String,
    pub merged_by: String,
    pub merged_by_name: String,
    pub merged_at: String,
    pub undone_by: Option<String>,
    pub undone_at: Option<String>,
}

/// The result of a merge or an undo.
#[derive(Debug, Clone, Serialize)]
pub struct MergeOutcome {
    pub merge: MergeEntry,
    /// The target as the actor sees it afterwards.
    pub target: Record,
    /// Related records moved (by a merge) or moved back (by an undo), per object.
    pub moved: BTreeMap<String, i64>,
    /// Records an undo left with the target because they were moved elsewhere since.
    pub kept: i64,
}

/// One reason an undo cannot proceed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UndoConflict {
    /// `target_deleted`, `target_field_changed`, `source_changed`, `source_restored`,
    /// `source_purged` or `unique_taken`.
    pub code: &'static str,
    pub record_id: Option<String>,
    pub field: Option<String>,
    pub message: Label,
}

/// Why an undo was refused.
#[derive(Debug, Clone)]
pub enum UndoRefusal {
    AlreadyUndone,
    Conflicts(Vec<UndoConflict>),
}

/// Whether a merge may copy a field from a source to the target.
/// Fields a merge may copy to the target. Attachments stay with their record: a file is kept by
/// one record, and the merged source keeps its files in the recycle bin (undo gives them back).
fn mergeable(f: &FieldDef) -> bool {
    !f.system
        && !f.read_only
        && f.numbering.is_none()
        && !matches!(f.field_type, FieldType::State | FieldType::Attachments { .. })
}

fn is_empty(v: &Json) -> bool {
    match v {
        Json::Null => true,
        Json::String(s) => s.is_empty(),
        Json::Array(a) => a.is_empty(),
        Json::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Relation fields of other objects that point at `object`: the records a merge moves.
fn children(snapshot: &Snapshot, object: &ObjectDef) -> Vec<(Arc<ObjectDef>, String)> {
    let mut out = Vec::new();
    for o in snapshot.objects().filter(|o| o.key != object.key) {
        for f in o.fields.iter().filter(|f| !f.custom) {
            if matches!(&f.field_type, FieldType::Relation { object: t } if *t == object.key) {
                out.push((o.clone(), f.key.clone()));
            }
        }
    }
    out
}

fn field_error(code: &'static str, zh: String, en: String) -> FieldError {
    FieldError::new(code, zh, en)
}

/// Checks the request's shape before anything is read.
fn check_request(view: &ObjectDef, req: &MergeRequest) -> Result<(), DomainError> {
    let mut errors = FieldErrors::default();
    if req.source_ids.is_empty() {
        errors.add(
            "source_ids",
            field_error(
                "required",
                "请至少选择一个要合并进来的记录".into(),
                "name at least one record to merge into the target".into(),
            ),
        );
    }
    if req.source_ids.len() > MAX_MERGE_SOURCES {
        errors.add(
            "source_ids",
            field_error(
                "too_many",
                format!("一次最多合并{MAX_MERGE_SOURCES}条记录"),
                format!("a merge takes at most {MAX_MERGE_SOURCES} records"),
            ),
        );
    }
    if req.source_ids.contains(&req.target_id) {
        errors.add(
            "source_ids",
            field_error(
                "target_in_sources",
                "保留的记录不能同时作为被合并的记录".into(),
                "the target cannot also be one of the records merged into it".into(),
            ),
        );
    }
    let mut seen = std::collections::HashSet::new();
    if req.source_ids.iter().any(|s| !seen.insert(s)) {
        errors.add(
            "source_ids",
            field_error(
                "duplicate_ids",
                "同一条记录被列出多次".into(),
                "a record is listed more than once".into(),
            ),
        );
    }
    for (key, source) in &req.fields {
        let path = format!("fields.{key}");
        match view.field(key) {
            None => errors.add(
                &path,
                field_error(
                    "unknown_field",
                    format!("“{}”没有字段“{key}”", view.label.zh),
                    format!("{} has no field '{key}'", view.label.en),
                ),
            ),
            Some(f) if !mergeable(f) => errors.add(
                &path,
                field_error(
                    "not_mergeable",
                    format!("“{}”由系统维护，合并时不能选择", f.label.zh),
                    format!("{} is kept by the system and cannot be chosen in a merge", f.label.en),
                ),
            ),
            Some(_) if !req.source_ids.contains(source) => errors.add(
                &path,
                field_error(
                    "not_a_source",
                    "取值来源必须是被合并的记录之一".into(),
                    "the value must come from one of the merged records".into(),
                ),
            ),
            Some(_) => {}
        }
    }
    for id in req.source_versions.keys() {
        if !req.source_ids.contains(id) {
            errors.add(
                &format!("source_versions.{id}"),
                field_error(
                    "not_a_source",
                    "只能为被合并的记录给出版本号".into(),
                    "versions can only be given for the merged records".into(),
                ),
            );
        }
    }
    errors.into_result()
}

fn check_version(record: &Record, expected: Option<i64>) -> Result<(), DomainError> {
    let actual = version_of(record);
    match expected {
        Some(expected) if expected != actual => Err(DomainError::VersionConflict { expected, actual }),
        _ => Ok(()),
    }
}

/// Bumps a record's version without changing a field (its related records changed).
async fn touch(
    conn: &mut AnyConnection,
    backend: Backend,
    object: &ObjectDef,
    id: &str,
    actor: &Actor,
) -> StoreResult<()> {
    let mut sql = Sql::of(backend, "UPDATE ");
    sql.ident(&object.table)
        .push(" SET \"version\" = \"version\" + 1, \"updated_at\" = ")
        .bind(now_utc())
        .push(", \"updated_by\" = ")
        .bind(actor.id.as_str())
        .push(" WHERE \"id\" = ")
        .bind(id);
    sql.query().execute(conn).await?;
    Ok(())
}

/// One related record a merge moved.
struct Move {
    object: String,
    record_id: String,
    field: String,
    from_id: String,
}

/// Points each related record in `rows` (id, title, current parent) at the parent `to` gives for
/// it (from its id and current parent), with an audit entry each.
#[expect(clippy::too_many_arguments, reason = "one step of a merge or its undo")]
async fn repoint(
    tx: &mut AnyTx,
    backend: Backend,
    actor: &Actor,
    child: &ObjectDef,
    field: &str,
    rows: &[(String, Option<String>, String)],
    to: impl Fn(&str, &str) -> String,
    merge_id: &str,
) -> StoreResult<()> {
    let now = now_utc();
    for (id, title, from) in rows {
        let target = to(id, from);
        let mut sql = Sql::of(backend, "UPDATE ");
        sql.ident(&child.table)
            .push(" SET ")
            .ident(field)
            .push(" = ")
            .bind(target.as_str())
            .push(", \"version\" = \"version\" + 1, \"updated_at\" = ")
            .bind(now.as_str())
            .push(", \"updated_by\" = ")
            .bind(actor.id.as_str())
            .push(" WHERE \"id\" = ")
            .bind(id.as_str());
        sql.query().execute(&mut **tx).await?;
        audit::write(
            &mut *tx,
            backend,
            actor,
            &child.key,
            id,
            "update",
            title.clone(),
            json!([{"field": field, "old": from, "new": target, "merge_id": merge_id}]),
        )
        .await?;
    }
    Ok(())
}

/// Related records of `child` whose `field` is one of `parents`: (id, title, parent).
async fn related(
    conn: &mut AnyConnection,
    backend: Backend,
    child: &ObjectDef,
    field: &str,
    parents: &[String],
    ids: Option<&[String]>,
) -> StoreResult<Vec<(String, Option<String>, String)>> {
    let mut out = Vec::new();
    let title_is_column = child.field(&child.title_field).is_some_and(|f| !f.custom);
    for part in parents.chunks(500) {
        let mut sql = Sql::of(backend, "SELECT \"id\", ");
        sql.ident(field).push(" AS parent_id");
        if title_is_column {
            sql.push(", ").ident(&child.title_field).push(" AS title");
        }
        sql.push(" FROM ")
            .ident(&child.table)
            .push(" WHERE ")
            .ident(field)
            .push(" IN (")
            .bind_list(part.iter().map(|p| Bind::Text(p.clone())))
            .push(")");
        if let Some(ids) = ids {
            sql.push(" AND \"id\" IN (")
                .bind_list(ids.iter().map(|i| Bind::Text(i.clone())))
                .push(")");
        }
        sql.push(" ORDER BY \"id\"");
        for row in sql.query().fetch_all(&mut *conn).await? {
            let title = if title_is_column {
                row.try_get::<Option<String>, _>("title").ok().flatten()
            } else {
                None
            };
            out.push((row.try_get("id")?, title, row.try_get("parent_id")?));
        }
    }
    Ok(out)
}

fn entry_from_row(row: &sqlx::any::AnyRow) -> StoreResult<MergeEntry> {
    let sources: String = row.try_get("source_ids")?;
    let fields: String = row.try_get("fields")?;
    let sources: Vec<String> = serde_json::from_str(&sources).unwrap_or_default();
    Ok(MergeEntry {
        id: row.try_get("id")?,
        object: row.try_get("object")?,
        target_id: row.try_get("target_id")?,
        target_title: None,
        sources: sources.into_iter().map(|id| MergeSource { id, title: None }).collect(),
        fields: serde_json::from_str(&fields).unwrap_or(Json::Null),
        moved: row.try_get("moved_count")?,
        status: row.try_get("status")?,
        merged_by: row.try_get("merged_by")?,
        merged_by_name: row.try_get("merged_by_name")?,
        merged_at: row.try_get("merged_at")?,
        undone_by: row.try_get("undone_by")?,
        undone_at: row.try_get("undone_at")?,
    })
}

const MERGE_COLUMNS: &str = "id, object, target_id, source_ids, fields, source_versions, moved_count, status, \
     merged_by, merged_by_name, merged_at, undone_by, undone_at";

impl Engine {
    /// Merges `req.source_ids` into `req.target_id` (see the module documentation).
    pub async fn merge(&self, actor: &Actor, object_key: &str, req: &MergeRequest) -> StoreResult<MergeOutcome> {
        let snapshot = self.catalog.snapshot();
        let full = snapshot.object(object_key)?;
        let view = view_of(&full, actor);
        require(actor, &full, "update")?;
        require(actor, &full, "delete")?;
        check_request(&view, req)?;
        let backend = self.db.backend();
        let mut tx: AnyTx = self.db.writer().begin().await?;
        let (target_row, target_scope) =
            locate(&mut tx, backend, &full, actor, &req.target_id, "update", false).await?;
        let target = decode_row(&full, &target_row, false)?;
        check_version(&target, req.target_version)?;
        let mut sources = Vec::with_capacity(req.source_ids.len());
        for id in &req.source_ids {
            let (row, _) = locate(&mut tx, backend, &full, actor, id, "delete", false).await?;
            let record = decode_row(&full, &row, false)?;
            check_version(&record, req.source_versions.get(id).copied())?;
            sources.push((id.clone(), row, record));
        }

        // The values the target takes: chosen ones, then empty fields filled in source order.
        let mut field_log = Map::new();
        let mut input = Map::new();
        for f in view.fields.iter().filter(|f| mergeable(f)) {
            let current = target.get(&f.key).cloned().unwrap_or(Json::Null);
            let chosen = match req.fields.get(&f.key) {
                Some(from) => sources
                    .iter()
                    .find(|(id, _, _)| id == from)
                    .map(|(id, _, r)| (id.clone(), r.get(&f.key).cloned().unwrap_or(Json::Null))),
                None if is_empty(&current) => sources
                    .iter()
                    .find_map(|(id, _, r)| r.get(&f.key).filter(|v| !is_empty(v)).map(|v| (id.clone(), v.clone()))),
                None => None,
            };
            if let Some((from, value)) = chosen
                && value != current
            {
                field_log.insert(f.key.clone(), json!({"from": from, "old": current, "new": value}));
                input.insert(f.key.clone(), value);
            }
        }
        let changes = validate_input(&view, &input, Mode::Update, &*snapshot).map_err(DomainError::Validation)?;

        let merge_id = uuid::Uuid::now_v7().to_string();
        // Related records follow the sources to the target.
        let mut moves = Vec::new();
        let mut moved: BTreeMap<String, i64> = BTreeMap::new();
        for (child, field) in children(&snapshot, &full) {
            let rows = related(&mut tx, backend, &child, &field, &req.source_ids, None).await?;
            if rows.is_empty() {
                continue;
            }
            repoint(
                &mut tx,
                backend,
                actor,
                &child,
                &field,
                &rows,
                |_, _| req.target_id.clone(),
                &merge_id,
            )
            .await?;
            *moved.entry(child.key.clone()).or_default() += i64::try_from(rows.len()).unwrap_or(i64::MAX);
            moves.extend(rows.into_iter().map(|(id, _, from)| Move {
                object: child.key.clone(),
                record_id: id,
                field: field.clone(),
                from_id: from,
            }));
        }

        // The sources go to the recycle bin, marked as merged into the target. This comes before
        // the target's update so that a unique value (a credit code) can move to the target.
        let mut source_versions = Map::new();
        let mut merged_sources = Vec::new();
        for (id, row, record) in &sources {
            self.delete_locked(&mut tx, &full, actor, row, None).await?;
            if full.field("merged_into_id").is_some() {
                let mut mark = Sql::of(backend, "UPDATE ");
                mark.ident(&full.table)
                    .push(" SET \"merged_into_id\" = ")
                    .bind(req.target_id.as_str())
                    .push(" WHERE \"id\" = ")
                    .bind(id.as_str());
                mark.query().execute(&mut *tx).await?;
            }
            let title = title_of(&full, record);
            audit::write(
                &mut tx,
                backend,
                actor,
                &full.key,
                id,
                "merge",
                title.clone(),
                json!([{"field": "merged_into_id", "old": null, "new": req.target_id, "merge_id": merge_id}]),
            )
            .await?;
            let row = fetch_row(&mut tx, backend, &full, id, true, None)
                .await?
                .ok_or_else(|| not_found(&full, id))?;
            source_versions.insert(id.clone(), json!(version_of(&decode_row(&full, &row, false)?)));
            merged_sources.push(MergeSource { id: id.clone(), title });
        }

        let target_after = if changes.is_empty() {
            touch(&mut tx, backend, &full, &req.target_id, actor).await?;
            let row = fetch_row(&mut tx, backend, &full, &req.target_id, false, None)
                .await?
                .ok_or_else(|| not_found(&full, &req.target_id))?;
            visible(&view, decode_row(&full, &row, false)?)
        } else {
            self.update_locked(
                &mut tx,
                &snapshot,
                &full,
                &view,
                actor,
                (&target_row, target_scope),
                None,
                changes,
            )
            .await?
        };
        let moved_total: i64 = moved.values().sum();
        audit::write(
            &mut tx,
            backend,
            actor,
            &full.key,
            &req.target_id,
            "merge",
            title_of(&full, &target_after),
            json!([{"merge_id": merge_id, "sources": merged_sources, "moved": moved}]),
        )
        .await?;
        search::reindex(&mut tx, backend, &snapshot, &full, &req.target_id).await?;

        let now = now_utc();
        let mut ins = Sql::of(
            backend,
            "INSERT INTO record_merges (id, object, target_id, source_ids, fields, source_versions, moved_count, status, merged_by, merged_by_name, merged_at) VALUES (",
        );
        ins.bind(merge_id.as_str())
            .push(", ")
            .bind(full.key.as_str())
            .push(", ")
            .bind(req.target_id.as_str())
            .push(", ")
            .bind(json!(req.source_ids).to_string())
            .push(", ")
            .bind(Json::Object(field_log.clone()).to_string())
            .push(", ")
            .bind(Json::Object(source_versions).to_string())
            .push(", ")
            .bind(moved_total)
            .push(", 'merged', ")
            .bind(actor.id.as_str())
            .push(", ")
            .bind(actor.name.as_str())
            .push(", ")
            .bind(now.as_str())
            .push(")");
        ins.query().execute(&mut *tx).await?;
        for chunk in moves.chunks(200) {
            let mut sql = Sql::of(
                backend,
                "INSERT INTO record_merge_moves (merge_id, object, record_id, field, from_id) VALUES ",
            );
            for (i, m) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.push("(")
                    .bind(merge_id.as_str())
                    .push(", ")
                    .bind(m.object.as_str())
                    .push(", ")
                    .bind(m.record_id.as_str())
                    .push(", ")
                    .bind(m.field.as_str())
                    .push(", ")
                    .bind(m.from_id.as_str())
                    .push(")");
            }
            sql.query().execute(&mut *tx).await?;
        }
        tx.commit().await?;

        let merge = MergeEntry {
            id: merge_id,
            object: full.key.clone(),
            target_id: req.target_id.clone(),
            target_title: title_of(&full, &target_after),
            sources: merged_sources,
            fields: Json::Object(field_log),
            moved: moved_total,
            status: "merged".into(),
            merged_by: actor.id.clone(),
            merged_by_name: actor.name.clone(),
            merged_at: now,
            undone_by: None,
            undone_at: None,
        };
        Ok(MergeOutcome {
            merge,
            target: target_after,
            moved,
            kept: 0,
        })
    }

    /// Undoes a merge (see the module documentation). `Ok(Err(_))` tells why it was refused;
    /// nothing changed then.
    pub async fn undo_merge(
        &self,
        actor: &Actor,
        object_key: &str,
        merge_id: &str,
    ) -> StoreResult<Result<MergeOutcome, UndoRefusal>> {
        let snapshot = self.catalog.snapshot();
        let full = snapshot.object(object_key)?;
        let view = view_of(&full, actor);
        require(actor, &full, "update")?;
        require(actor, &full, "delete")?;
        let read = require(actor, &full, "read")?;
        let backend = self.db.backend();
        let merge_missing = || -> StoreError {
            DomainError::NotFound {
                object: "merge".into(),
                id: merge_id.to_owned(),
            }
            .into()
        };
        let mut tx: AnyTx = self.db.writer().begin().await?;
        let mut sql = Sql::of(backend, "SELECT ");
        sql.push(MERGE_COLUMNS)
            .push(" FROM record_merges WHERE id = ")
            .bind(merge_id)
            .push(" AND object = ")
            .bind(full.key.as_str());
        if backend == Backend::Postgres {
            sql.push(" FOR UPDATE");
        }
        let Some(row) = sql.query().fetch_optional(&mut *tx).await? else {
            return Err(merge_missing());
        };
        let mut entry = entry_from_row(&row)?;
        let recorded_versions: Map<String, Json> = row
            .try_get::<String, _>("source_versions")
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        let target_id = entry.target_id.clone();

        let mut conflicts = Vec::new();
        // A merge is as visible as its target.
        let target_row = match locate(&mut tx, backend, &full, actor, &target_id, "update", false).await {
            Ok(found) => Some(found),
            Err(StoreError::Domain(DomainError::NotFound { .. })) => {
                if fetch_row(&mut tx, backend, &full, &target_id, true, Some((actor, read, true)))
                    .await?
                    .is_none()
                {
                    return Err(merge_missing());
                }
                conflicts.push(UndoConflict {
                    code: "target_deleted",
                    record_id: Some(target_id.clone()),
                    field: None,
                    message: Label::new(
                        "保留的记录已被删除，请先恢复它",
                        "the record kept by the merge was deleted; restore it first",
                    ),
                });
                None
            }
            Err(e) => return Err(e),
        };
        if entry.status == "undone" {
            return Ok(Err(UndoRefusal::AlreadyUndone));
        }
        let target = target_row
            .as_ref()
            .map(|(row, _)| decode_row(&full, row, false))
            .transpose()?;
        let fields: Map<String, Json> = entry.fields.as_object().cloned().unwrap_or_default();
        if let Some(target) = &target {
            for (key, change) in &fields {
                let now = target.get(key).cloned().unwrap_or(Json::Null);
                if now != change["new"] {
                    let label = full
                        .field(key)
                        .map_or_else(|| Label::new(key, key), |f| f.label.clone());
                    conflicts.push(UndoConflict {
                        code: "target_field_changed",
                        record_id: Some(target_id.clone()),
                        field: Some(key.clone()),
                        message: Label {
                            zh: format!("合并后“{}”又被修改过，撤销会丢失该修改", label.zh),
                            en: format!(
                                "{} was changed after the merge; undoing would lose that change",
                                label.en
                            ),
                        },
                    });
                }
            }
        }
        let mut sources = Vec::new();
        for s in &entry.sources {
            match locate(&mut tx, backend, &full, actor, &s.id, "delete", true).await {
                Ok((row, _)) => {
                    let record = decode_row(&full, &row, false)?;
                    if recorded_versions.get(&s.id).and_then(Json::as_i64) != Some(version_of(&record)) {
                        conflicts.push(UndoConflict {
                            code: "source_changed",
                            record_id: Some(s.id.clone()),
                            field: None,
                            message: Label::new(
                                "被合并的记录在合并后又被修改过",
                                "a merged record was changed after the merge",
                            ),
                        });
                    }
                    sources.push((s.id.clone(), record));
                }
                Err(StoreError::Domain(DomainError::NotFound { .. })) => {
                    let live = fetch_row(&mut tx, backend, &full, &s.id, false, None).await?.is_some();
                    conflicts.push(if live {
                        UndoConflict {
                            code: "source_restored",
                            record_id: Some(s.id.clone()),
                            field: None,
                            message: Label::new(
                                "被合并的记录已从回收站恢复",
                                "a merged record was already restored from the recycle bin",
                            ),
                        }
                    } else {
                        UndoConflict {
                            code: "source_purged",
                            record_id: Some(s.id.clone()),
                            field: None,
                            message: Label::new("被合并的记录已被彻底删除", "a merged record was purged"),
                        }
                    });
                }
                Err(e) => return Err(e),
            }
        }
        let (Some((target_row, target_scope)), true) = (target_row, conflicts.is_empty()) else {
            return Ok(Err(UndoRefusal::Conflicts(conflicts)));
        };

        // The target's overwritten values come back first, so that the sources' unique values
        // (a credit code that moved to the target) are free again.
        let restore: Map<String, Json> = fields
            .iter()
            .filter(|(k, _)| full.field(k).is_some())
            .map(|(k, c)| (k.clone(), c["old"].clone()))
            .collect();
        let changes = validate_input(&full, &restore, Mode::Update, &*snapshot).map_err(DomainError::Validation)?;
        let target_after = if changes.is_empty() {
            touch(&mut tx, backend, &full, &target_id, actor).await?;
            let row = fetch_row(&mut tx, backend, &full, &target_id, false, None)
                .await?
                .ok_or_else(|| not_found(&full, &target_id))?;
            visible(&view, decode_row(&full, &row, false)?)
        } else {
            self.update_locked(
                &mut tx,
                &snapshot,
                &full,
                &view,
                actor,
                (&target_row, target_scope),
                None,
                changes,
            )
            .await?
        };
        for (id, record) in &sources {
            for field in full
                .fields
                .iter()
                .filter(|f| f.unique && !f.custom && f.numbering.is_none())
            {
                let Some(value) = record.get(&field.key).and_then(Json::as_str) else {
                    continue;
                };
                let mut sql = Sql::of(backend, "SELECT 1 AS one FROM ");
                sql.ident(&full.table)
                    .push(" WHERE ")
                    .ident(&field.key)
                    .push(" = ")
                    .bind(value)
                    .push(" AND \"deleted_at\" IS NULL LIMIT 1");
                if sql.query().fetch_optional(&mut *tx).await?.is_some() {
                    let e = duplicate_error(field, value);
                    conflicts.push(UndoConflict {
                        code: "unique_taken",
                        record_id: Some(id.clone()),
                        field: Some(field.key.clone()),
                        message: e.message,
                    });
                }
            }
        }
        if !conflicts.is_empty() {
            // Dropping the transaction rolls back the target's restored values.
            return Ok(Err(UndoRefusal::Conflicts(conflicts)));
        }

        let now = now_utc();
        for (id, record) in &sources {
            let mut sql = Sql::of(backend, "UPDATE ");
            sql.ident(&full.table)
                .push(" SET \"deleted_at\" = NULL, \"deleted_by\" = NULL, \"version\" = \"version\" + 1, \"updated_at\" = ")
                .bind(now.as_str())
                .push(", \"updated_by\" = ")
                .bind(actor.id.as_str());
            if full.field("merged_into_id").is_some() {
                sql.push(", \"merged_into_id\" = NULL");
            }
            sql.push(" WHERE \"id\" = ").bind(id.as_str());
            sql.query().execute(&mut *tx).await?;
            audit::write(
                &mut tx,
                backend,
                actor,
                &full.key,
                id,
                "unmerge",
                title_of(&full, record),
                json!([{"field": "merged_into_id", "old": target_id, "new": null, "merge_id": merge_id}]),
            )
            .await?;
            search::after_lifecycle(&mut tx, backend, &snapshot, &full, record, true).await?;
        }

        // Related records go back to where they came from, unless they were moved since.
        let mut sql = Sql::of(
            backend,
            "SELECT object, record_id, field, from_id FROM record_merge_moves WHERE merge_id = ",
        );
        sql.bind(merge_id).push(" ORDER BY object, field, record_id");
        let mut planned: BTreeMap<(String, String), BTreeMap<String, String>> = BTreeMap::new();
        for row in sql.query().fetch_all(&mut *tx).await? {
            planned
                .entry((row.try_get("object")?, row.try_get("field")?))
                .or_default()
                .insert(row.try_get("record_id")?, row.try_get("from_id")?);
        }
        let mut moved: BTreeMap<String, i64> = BTreeMap::new();
        let mut kept = 0i64;
        for ((object, field), records) in planned {
            let Ok(child) = snapshot.object(&object) else {
                kept += i64::try_from(records.len()).unwrap_or(i64::MAX);
                continue;
            };
            let ids: Vec<String> = records.keys().cloned().collect();
            let mut still = Vec::new();
            for part in ids.chunks(500) {
                still.extend(
                    related(
                        &mut tx,
                        backend,
                        &child,
                        &field,
                        std::slice::from_ref(&target_id),
                        Some(part),
                    )
                    .await?,
                );
            }
            kept += i64::try_from(records.len() - still.len()).unwrap_or(0);
            let back = |id: &str, from: &str| records.get(id).cloned().unwrap_or_else(|| from.to_owned());
            repoint(&mut tx, backend, actor, &child, &field, &still, back, merge_id).await?;
            *moved.entry(object.clone()).or_default() += i64::try_from(still.len()).unwrap_or(i64::MAX);
        }
        for (id, _) in &sources {
            search::reindex(&mut tx, backend, &snapshot, &full, id).await?;
        }
        search::reindex(&mut tx, backend, &snapshot, &full, &target_id).await?;
        audit::write(
            &mut tx,
            backend,
            actor,
            &full.key,
            &target_id,
            "unmerge",
            title_of(&full, &target_after),
            json!([{"merge_id": merge_id, "sources": entry.sources, "moved_back": moved}]),
        )
        .await?;
        let mut done = Sql::of(backend, "UPDATE record_merges SET status = 'undone', undone_by = ");
        done.bind(actor.id.as_str())
            .push(", undone_at = ")
            .bind(now.as_str())
            .push(" WHERE id = ")
            .bind(merge_id);
        done.query().execute(&mut *tx).await?;
        tx.commit().await?;
        entry.status = "undone".into();
        entry.undone_by = Some(actor.id.clone());
        entry.undone_at = Some(now);
        entry.target_title = title_of(&full, &target_after);
        for s in &mut entry.sources {
            s.title = sources
                .iter()
                .find(|(id, _)| *id == s.id)
                .and_then(|(_, r)| title_of(&full, r));
        }
        Ok(Ok(MergeOutcome {
            merge: entry,
            target: target_after,
            moved,
            kept,
        }))
    }

    /// Merges whose target the actor may read, newest first; `before` is the previous page's
    /// last id.
    pub async fn list_merges(
        &self,
        actor: &Actor,
        object_key: &str,
        target_id: Option<&str>,
        before: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<MergeEntry>> {
        let full = self.object(object_key)?;
        let read = require(actor, &full, "read")?;
        let view = view_of(&full, actor);
        let backend = self.db.backend();
        let mut sql = Sql::of(backend, "SELECT ");
        sql.push(MERGE_COLUMNS)
            .push(" FROM record_merges WHERE object = ")
            .bind(full.key.as_str());
        if let Some(t) = target_id {
            sql.push(" AND target_id = ").bind(t);
        }
        if let Some(b) = before {
            sql.push(" AND id < ").bind(b);
        }
        if !actor.is_unrestricted() {
            sql.push(" AND target_id IN (SELECT \"id\" FROM ")
                .ident(&full.table)
                .push(" WHERE 1 = 1");
            push_read_scope(&mut sql, actor, &full, read);
            sql.push(")");
        }
        sql.push(" ORDER BY id DESC LIMIT ")
            .bind(i64::from(limit.clamp(1, 200)));
        let rows = sql.query().fetch_all(self.db.reader()).await?;
        let mut entries = rows.iter().map(entry_from_row).collect::<StoreResult<Vec<_>>>()?;
        // Titles of the records the reader may read (merged ones sit in the recycle bin).
        let mut ids: Vec<String> = entries
            .iter()
            .flat_map(|e| std::iter::once(e.target_id.clone()).chain(e.sources.iter().map(|s| s.id.clone())))
            .collect();
        ids.sort();
        ids.dedup();
        let mut titles: BTreeMap<String, Option<String>> = BTreeMap::new();
        let title_is_column = full.field(&full.title_field).is_some_and(|f| !f.custom);
        if title_is_column {
            for part in ids.chunks(500) {
                let mut sql = Sql::of(backend, "SELECT \"id\", ");
                sql.ident(&full.title_field)
                    .push(" AS title FROM ")
                    .ident(&full.table)
                    .push(" WHERE \"id\" IN (")
                    .bind_list(part.iter().map(|i| Bind::Text(i.clone())))
                    .push(")");
                push_read_scope(&mut sql, actor, &full, read);
                for row in sql.query().fetch_all(self.db.reader()).await? {
                    titles.insert(row.try_get("id")?, row.try_get::<Option<String>, _>("title")?);
                }
            }
        }
        for e in &mut entries {
            e.target_title = titles.get(&e.target_id).cloned().flatten();
            for s in &mut e.sources {
                s.title = titles.get(&s.id).cloned().flatten();
            }
            if let Some(fields) = e.fields.as_object_mut() {
                fields.retain(|k, _| view.field(k).is_some());
            }
        }
        Ok(entries)
    }
}
