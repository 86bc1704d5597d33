//! Changing records. Every operation is one transaction: validation has already happened in the
//! core, then permission and scope checks, hooks, reference and uniqueness checks, numbering, the
//! row change, the audit entry and the after-hooks run on the same connection and commit together
//! or not at all.
//!
//! Optimistic concurrency: an update names the version it was based on; the row is updated only
//! `WHERE version = expected`, so of two concurrent updates with one version exactly one wins and
//! the other gets a version conflict.
//!
//! Permissions: every write first locates its row inside the actor's scope for the action. A row
//! the actor cannot read is "not found" (no probing by id); one it can read but not change is
//! "forbidden". Values are validated against the actor's view of the object, so hidden fields
//! cannot be set and read-only ones are refused.

use std::sync::Arc;

use guanxi_core::access::Scope;
use guanxi_core::meta::FieldType;
use guanxi_core::value::{Mode, validate_input};
use guanxi_core::{Actor, DomainError, FieldDef, FieldError, FieldErrors, Label, ObjectDef, Value};
use serde_json::{Map, Value as Json, json};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::audit;
use super::codec::{Record, column_binds, custom_map, decode_row, push_select_list};
use super::group_commit::PendingCreate;
use super::scope::{covers, forbidden, push_read_scope, push_scope, require, sees_pool, view_of};
use super::search::{self, SearchEntries};
use super::{Engine, MAX_BULK};
use crate::catalog::Snapshot;
use crate::db::Backend;
use crate::error::{StoreError, StoreResult};
use crate::files;
use crate::hooks::{AnyTx, HookCtx, Values};
use crate::numbering;
use crate::sql::{Batch, Bind, Sql};
use guanxi_core::time_fmt::{now_utc, today_shanghai};

pub(super) fn not_found(object: &ObjectDef, id: &str) -> StoreError {
    DomainError::NotFound {
        object: object.key.clone(),
        id: id.to_owned(),
    }
    .into()
}

pub(super) fn title_of(object: &ObjectDef, record: &Record) -> Option<String> {
    record
        .get(&object.title_field)
        .and_then(Json::as_str)
        .map(str::to_owned)
}

pub(super) fn version_of(record: &Record) -> i64 {
    record.get("version").and_then(Json::as_i64).unwrap_or(0)
}

fn text_of<'a>(values: &'a Values, record: Option<&'a Record>, key: &str) -> Option<&'a str> {
    match values.iter().find(|(k, _)| k == key) {
        Some((_, Value::Text(t))) => Some(t.as_str()),
        Some(_) => None,
        None => record.and_then(|r| r.get(key)).and_then(Json::as_str),
    }
}

/// Rows of a multi-row create that passed validation, each with the id it will be written
/// with: [`Engine::prepare_batch`] makes it, [`Engine::write_batch`] writes it.
#[derive(Debug)]
pub struct PreparedBatch {
    actor: Actor,
    snapshot: Arc<Snapshot>,
    full: Arc<ObjectDef>,
    view: Arc<ObjectDef>,
    /// Every input's outcome so far: its validation error, or `None` for a row to write.
    results: Vec<Option<StoreResult<Record>>>,
    /// The rows to write, in input order.
    rows: Vec<PreparedRow>,
}

/// A valid row of a [`PreparedBatch`].
#[derive(Debug)]
struct PreparedRow {
    /// Its index among the inputs.
    input: usize,
    /// The id the record is created with.
    id: String,
    values: Values,
}

impl PreparedBatch {
    /// The id the `input`-th row will be created with, `None` when it failed validation.
    pub fn id(&self, input: usize) -> Option<&str> {
        self.rows
            .binary_search_by_key(&input, |r| r.input)
            .ok()
            .map(|at| self.rows[at].id.as_str())
    }

    /// The validation error of the `input`-th row, if it has one.
    pub fn error(&self, input: usize) -> Option<&StoreError> {
        match self.results.get(input) {
            Some(Some(Err(e))) => Some(e),
            _ => None,
        }
    }
}

/// Which rows a fetch may return: those in an actor's scope, and for a read scope (`true`)
/// also the object's public pool when the actor may claim from it.
pub(super) type Limit<'a> = Option<(&'a Actor, Scope, bool)>;

/// Reads one row inside a transaction, locking it on PostgreSQL, limited to a scope when given.
pub(super) async fn fetch_row(
    conn: &mut AnyConnection,
    backend: Backend,
    object: &ObjectDef,
    id: &str,
    deleted: bool,
    limit: Limit<'_>,
) -> StoreResult<Option<AnyRow>> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Ok(None);
    }
    let mut sql = Sql::of(backend, "SELECT ");
    push_select_list(&mut sql, object);
    sql.push(" FROM ")
        .ident(&object.table)
        .push(" WHERE \"id\" = ")
        .bind(id);
    sql.push(if deleted {
        " AND \"deleted_at\" IS NOT NULL"
    } else {
        " AND \"deleted_at\" IS NULL"
    });
    match limit {
        Some((actor, scope, true)) => push_read_scope(&mut sql, actor, object, scope),
        Some((actor, scope, false)) => push_scope(&mut sql, actor, scope),
        None => {}
    }
    if backend == Backend::Postgres {
        sql.push(" FOR UPDATE");
    }
    Ok(sql.query().fetch_optional(conn).await?)
}

/// Finds the row an action applies to, with the scope that allowed it. A row the actor cannot
/// read does not exist for it (404), even if the action's scope would cover it (an owner moved
/// to another department no longer reaches the records left behind); a readable row outside the
/// action's scope is forbidden (403).
pub(super) async fn locate(
    conn: &mut AnyConnection,
    backend: Backend,
    object: &ObjectDef,
    actor: &Actor,
    id: &str,
    action: &str,
    deleted: bool,
) -> StoreResult<(AnyRow, Scope)> {
    let scope = require(actor, object, action)?;
    let Some(read) = actor.scope(&object.key, "read") else {
        return Err(not_found(object, id));
    };
    let Some(row) = fetch_row(&mut *conn, backend, object, id, deleted, Some((actor, read, true))).await? else {
        return Err(not_found(object, id));
    };
    // A pool record is readable beyond the read scope, so the action's own scope is checked
    // even when it equals the read scope.
    if (scope != read || (action != "read" && sees_pool(actor, object)))
        && scope != Scope::All
        && fetch_row(&mut *conn, backend, object, id, deleted, Some((actor, scope, false)))
            .await?
            .is_none()
    {
        return Err(forbidden(object, action).into());
    }
    Ok((row, scope))
}

/// Whether a record with this owner and department stays inside both the action's scope and
/// the actor's read scope: nobody creates or moves a record to where they could not see it.
fn placeable(actor: &Actor, object: &ObjectDef, scope: Scope, owner: Option<&str>, department: Option<&str>) -> bool {
    let read = actor.scope(&object.key, "read");
    covers(actor, scope, owner, department) && read.is_some_and(|r| covers(actor, r, owner, department))
}

pub(super) fn set_default(values: &mut Values, key: &str, value: Value) {
    if !values.iter().any(|(k, _)| k == key) {
        values.push((key.to_owned(), value));
    }
}

/// Whether a live record of `target` with this id exists and the actor may read it.
async fn reachable(
    conn: &mut AnyConnection,
    backend: Backend,
    target: &ObjectDef,
    actor: &Actor,
    id: &str,
) -> StoreResult<bool> {
    let Some(scope) = actor.scope(&target.key, "read") else {
        return Ok(false);
    };
    let mut sql = Sql::of(backend, "SELECT 1 AS one FROM ");
    sql.ident(&target.table)
        .push(" WHERE \"id\" = ")
        .bind(id)
        .push(" AND \"deleted_at\" IS NULL");
    push_read_scope(&mut sql, actor, target, scope);
    Ok(sql.query().fetch_optional(conn).await?.is_some())
}

fn missing_target(target: &ObjectDef) -> FieldError {
    FieldError::new(
        "not_found",
        format!("所选{}不存在或已删除", target.label.zh),
        format!(
            "the selected {} does not exist or was deleted",
            target.label.en.to_lowercase()
        ),
    )
}

/// Checks that relations point at live records the actor may read and that unique fields are
/// unique among live records.
async fn check_references(
    conn: &mut AnyConnection,
    backend: Backend,
    snapshot: &Snapshot,
    object: &ObjectDef,
    actor: &Actor,
    values: &Values,
    own_id: Option<&str>,
) -> StoreResult<()> {
    let mut errors = FieldErrors::default();
    for (key, value) in values {
        let Some(field) = object.field(key) else {
            continue;
        };
        match (&field.field_type, value) {
            (FieldType::Relation { object: target }, Value::Text(id)) => {
                let target = snapshot.object(target)?;
                if !reachable(&mut *conn, backend, &target, actor, id).await? {
                    errors.add(key, missing_target(&target));
                }
            }
            (FieldType::MultiRelation { object: target }, Value::Json(ids)) => {
                let target = snapshot.object(target)?;
                for id in ids.as_array().into_iter().flatten().filter_map(Json::as_str) {
                    if !reachable(&mut *conn, backend, &target, actor, id).await? {
                        errors.add(key, missing_target(&target));
                        break;
                    }
                }
            }
            _ => {}
        }
        let Value::Text(text) = value else { continue };
        if field.unique && !field.custom && field.numbering.is_none() {
            let mut sql = Sql::of(backend, "SELECT 1 AS one FROM ");
            sql.ident(&object.table)
                .push(" WHERE ")
                .ident(&field.key)
                .push(" = ")
                .bind(text.as_str())
                .push(" AND \"deleted_at\" IS NULL");
            if let Some(id) = own_id {
                sql.push(" AND \"id\" <> ").bind(id);
            }
            sql.push(" LIMIT 1");
            if sql.query().fetch_optional(&mut *conn).await?.is_some() {
                errors.add(key, duplicate_error(field, text));
            }
        }
    }
    Ok(errors.into_result()?)
}

pub(super) fn duplicate_error(field: &FieldDef, value: &str) -> FieldError {
    FieldError::new(
        "duplicate",
        format!("{}“{value}”已被其他记录使用", field.label.zh),
        format!("{} '{value}' is already used by another record", field.label.en),
    )
}

/// Splits values into column assignments and the merged custom JSON.
pub(super) fn assignments(
    object: &ObjectDef,
    values: &Values,
    mut custom: Map<String, Json>,
) -> (Vec<(String, Bind)>, Map<String, Json>) {
    let mut cols = Vec::new();
    for (key, value) in values {
        let Some(field) = object.field(key) else { continue };
        if field.custom {
            if value.is_null() {
                custom.remove(key);
            } else {
                custom.insert(key.clone(), value.to_json());
            }
        } else {
            cols.extend(column_binds(field, value));
        }
    }
    (cols, custom)
}

fn outside_scope(object: &ObjectDef) -> StoreError {
    DomainError::Forbidden(Label {
        zh: format!("不能把{}分配到您权限范围以外的负责人或部门", object.label.zh),
        en: format!(
            "you may not give a {} to an owner or department outside your scope",
            object.label.en.to_lowercase()
        ),
    })
    .into()
}

impl Engine {
    /// Creates a record from an API body.
    pub async fn create(&self, actor: &Actor, object_key: &str, input: &Map<String, Json>) -> StoreResult<Record> {
        let snapshot = self.catalog.snapshot();
        let full = snapshot.object(object_key)?;
        let scope = require(actor, &full, "create")?;
        let view = view_of(&full, actor);
        let values = self
            .prepare_checked(actor, &snapshot, &full, &view, scope, input)
            .await?;
        // Written by the writer task together with any other creates waiting for the writer
        // (group_commit.rs); answered once committed.
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.create_grouped(PendingCreate {
            actor: actor.clone(),
            snapshot,
            full,
            view,
            values,
            answer,
        })
        .await?;
        answered
            .await
            .map_err(|_| anyhow::anyhow!("the create writer stopped before answering"))?
    }

    /// Creates a record inside the caller's transaction, with every check of [`Engine::create`]:
    /// for hooks and workflows that must create related records atomically (lead conversion).
    pub async fn create_in_tx(
        &self,
        tx: &mut AnyTx,
        actor: &Actor,
        object_key: &str,
        input: &Map<String, Json>,
    ) -> StoreResult<Record> {
        let snapshot = self.catalog.snapshot();
        let full = snapshot.object(object_key)?;
        let scope = require(actor, &full, "create")?;
        let view = view_of(&full, actor);
        let values = self
            .prepare_checked(actor, &snapshot, &full, &view, scope, input)
            .await?;
        self.create_in(tx, actor, &snapshot, &full, &view, values).await
    }

    /// Creates many records in one transaction (for imports and demo data). Valid rows are
    /// written with multi-row statements (see `batch.rs`); when a chunk holds a row that fails
    /// a database check, the chunk is replayed row by row, each row under its own savepoint,
    /// so the failing row is reported at its index with its own error and the others commit.
    /// The batch costs one commit.
    pub async fn create_batch(
        &self,
        actor: &Actor,
        object_key: &str,
        inputs: &[Map<String, Json>],
    ) -> StoreResult<Vec<StoreResult<Record>>> {
        self.create_batch_with(actor, object_key, inputs, SearchEntries::Immediate)
            .await
    }

    /// [`Engine::create_batch`], choosing how the records' search entries are written:
    /// `Staged` leaves them to [`Engine::merge_staged_search`] (large imports, decision 0014).
    pub async fn create_batch_with(
        &self,
        actor: &Actor,
        object_key: &str,
        inputs: &[Map<String, Json>],
        entries: SearchEntries,
    ) -> StoreResult<Vec<StoreResult<Record>>> {
        let prepared = self.prepare_batch(actor, object_key, inputs).await?;
        self.write_batch(prepared, entries).await
    }

    /// The first half of [`Engine::create_batch`]: validation, defaults and scope checks of
    /// every row, and each valid row's id, without touching the database's writer. A bulk load
    /// prepares its next rows while the writer writes the last ones, and knows a row's id
    /// before it is written (a generated customer's contacts name it).
    pub async fn prepare_batch(
        &self,
        actor: &Actor,
        object_key: &str,
        inputs: &[Map<String, Json>],
    ) -> StoreResult<PreparedBatch> {
        let snapshot = self.catalog.snapshot();
        let full = snapshot.object(object_key)?;
        let scope = require(actor, &full, "create")?;
        let view = view_of(&full, actor);
        let mut results: Vec<Option<StoreResult<Record>>> = Vec::with_capacity(inputs.len());
        let mut rows: Vec<PreparedRow> = Vec::with_capacity(inputs.len());
        for (i, input) in inputs.iter().enumerate() {
            match self.prepare_checked(actor, &snapshot, &full, &view, scope, input).await {
                Ok(values) => {
                    rows.push(PreparedRow {
                        input: i,
                        id: uuid::Uuid::now_v7().to_string(),
                        values,
                    });
                    results.push(None);
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        Ok(PreparedBatch {
            actor: actor.clone(),
            snapshot,
            full,
            view,
            results,
            rows,
        })
    }

    /// The second half of [`Engine::create_batch`]: writes the prepared rows in one
    /// transaction and returns every input's outcome in order.
    pub async fn write_batch(
        &self,
        batch: PreparedBatch,
        entries: SearchEntries,
    ) -> StoreResult<Vec<StoreResult<Record>>> {
        let PreparedBatch {
            actor,
            snapshot,
            full,
            view,
            mut results,
            rows: prepared,
        } = batch;
        let actor = &actor;
        let mut tx: AnyTx = self.db.writer().begin().await?;
        if !prepared.is_empty() {
            // No savepoint around the multi-row path: on SQLite a savepoint copies every page it
            // touches to a sub-journal, which costs more than the statements. A failed chunk
            // rolls the whole (still empty) transaction back instead and starts again.
            let rows: Vec<(String, Values)> = prepared.iter().map(|r| (r.id.clone(), r.values.clone())).collect();
            match self
                .create_many(&mut tx, actor, &snapshot, &full, &view, rows, entries)
                .await
            {
                Ok(Ok(records)) => {
                    for (row, record) in prepared.iter().zip(records) {
                        results[row.input] = Some(Ok(record));
                    }
                }
                outcome => {
                    // A row failed a database check (or the statement itself failed): start
                    // again one row at a time to find and report it.
                    if let Err(e) = outcome {
                        tracing::debug!(error = %e, "multi-row create failed; replaying row by row");
                    }
                    tx.rollback().await?;
                    tx = self.db.writer().begin().await?;
                    for row in prepared {
                        sqlx::raw_sql("SAVEPOINT gx_row").execute(&mut *tx).await?;
                        match self
                            .create_in_as(&mut tx, actor, &snapshot, &full, &view, row.id, row.values)
                            .await
                        {
                            Ok(record) => {
                                sqlx::raw_sql("RELEASE SAVEPOINT gx_row").execute(&mut *tx).await?;
                                results[row.input] = Some(Ok(record));
                            }
                            Err(e) => {
                                sqlx::raw_sql("ROLLBACK TO SAVEPOINT gx_row").execute(&mut *tx).await?;
                                sqlx::raw_sql("RELEASE SAVEPOINT gx_row").execute(&mut *tx).await?;
                                results[row.input] = Some(Err(e));
                            }
                        }
                    }
                }
            }
        }
        tx.commit().await?;
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(anyhow::anyhow!("batch row without an outcome").into())))
            .collect())
    }

    /// Runs the `check_input` hooks of an object and returns the field errors they found.
    pub async fn check_input(
        &self,
        actor: &Actor,
        object_key: &str,
        input: &Map<String, Json>,
        old: Option<&Record>,
    ) -> StoreResult<FieldErrors> {
        let object = self.object(object_key)?;
        let mut errors = FieldErrors::default();
        for h in self.hooks.for_object(&object.key) {
            h.check_input(actor, &object, input, old, &mut errors).await?;
        }
        Ok(errors)
    }

    /// Field validation and the `check_input` hooks together: either error list alone would
    /// hide the other's problems from the user.
    fn merge_checks(validated: Result<Values, FieldErrors>, mut extra: FieldErrors) -> StoreResult<Values> {
        match validated {
            Ok(values) => {
                extra.into_result()?;
                Ok(values)
            }
            Err(mut errors) => {
                errors.merge(std::mem::take(&mut extra));
                Err(DomainError::Validation(errors).into())
            }
        }
    }

    /// [`Engine::prepare_create`] plus the `check_input` hooks, with all field errors merged.
    async fn prepare_checked(
        &self,
        actor: &Actor,
        snapshot: &Snapshot,
        full: &ObjectDef,
        view: &ObjectDef,
        scope: Scope,
        input: &Map<String, Json>,
    ) -> StoreResult<Values> {
        let prepared = self.prepare_create(actor, snapshot, full, view, scope, input);
        let extra = self.check_input(actor, &full.key, input, None).await?;
        match prepared {
            Ok(values) => Self::merge_checks(Ok(values), extra),
            Err(StoreError::Domain(DomainError::Validation(errors))) => Self::merge_checks(Err(errors), extra),
            Err(e) => Err(e),
        }
    }

    /// Validation and defaults of a create, before any database work.
    fn prepare_create(
        &self,
        actor: &Actor,
        snapshot: &Snapshot,
        full: &ObjectDef,
        view: &ObjectDef,
        scope: Scope,
        input: &Map<String, Json>,
    ) -> StoreResult<Values> {
        let mut values = validate_input(view, input, Mode::Create, snapshot).map_err(DomainError::Validation)?;
        set_default(&mut values, "owner_id", Value::Text(actor.id.clone()));
        if let Some(dept) = &actor.department_id {
            set_default(&mut values, "department_id", Value::Text(dept.clone()));
        }
        if !placeable(
            actor,
            full,
            scope,
            text_of(&values, None, "owner_id"),
            text_of(&values, None, "department_id"),
        ) {
            return Err(outside_scope(full));
        }
        Ok(values)
    }

    /// The database part of a create, inside the caller's transaction.
    pub(super) async fn create_in(
        &self,
        tx: &mut AnyTx,
        actor: &Actor,
        snapshot: &Snapshot,
        full: &ObjectDef,
        view: &ObjectDef,
        values: Values,
    ) -> StoreResult<Record> {
        let id = uuid::Uuid::now_v7().to_string();
        self.create_in_as(tx, actor, snapshot, full, view, id, values).await
    }

    /// [`Engine::create_in`] with the new record's id chosen by the caller (a prepared row's).
    #[expect(
        clippy::too_many_arguments,
        reason = "the create path's context (transaction, actor, catalog snapshot, object and view) plus the row"
    )]
    async fn create_in_as(
        &self,
        tx: &mut AnyTx,
        actor: &Actor,
        snapshot: &Snapshot,
        full: &ObjectDef,
        view: &ObjectDef,
        id: String,
        mut values: Values,
    ) -> StoreResult<Record> {
        let backend = self.db.backend();
        let hooks = self.hooks.for_object(&full.key);
        for h in &hooks {
            let mut ctx = HookCtx {
                tx: &mut *tx,
                actor,
                object: full,
                backend,
            };
            h.before_create(&mut ctx, &mut values).await?;
        }
        let attached = files::resolve_attachments(&mut *tx, backend, full, actor, &mut values, None).await?;
        check_references(&mut *tx, backend, snapshot, full, actor, &values, None).await?;
        for field in full.fields.iter().filter(|f| f.numbering.is_some()) {
            if let Some(rule) = &field.numbering {
                let key = format!("{}.{}", full.key, field.key);
                let number = numbering::next_number(&mut *tx, backend, &key, rule, today_shanghai()).await?;
                values.push((field.key.clone(), Value::Text(number)));
            }
        }
        if let Some(machine) = &full.state_machine {
            set_default(&mut values, &machine.field, Value::Text(machine.initial.clone()));
        }

        let now = now_utc();
        let (cols, custom) = assignments(full, &values, Map::new());
        let mut sql = Sql::of(backend, "INSERT INTO ");
        sql.ident(&full.table)
            .push(" (\"id\", \"version\", \"created_at\", \"created_by\", \"updated_at\", \"updated_by\", \"custom\"");
        for (col, _) in &cols {
            sql.push(", ").ident(col);
        }
        sql.push(") VALUES (")
            .bind(id.as_str())
            .push(", 1, ")
            .bind(now.as_str())
            .push(", ")
            .bind(actor.id.as_str())
            .push(", ")
            .bind(now.as_str())
            .push(", ")
            .bind(actor.id.as_str())
            .push(", ")
            .bind(Json::Object(custom).to_string());
        for (_, bind) in cols {
            sql.push(", ").bind(bind);
        }
        // The row comes back as stored (defaults, normalised values) from the insert itself.
        sql.push(") RETURNING ");
        push_select_list(&mut sql, full);
        let row = sql.query().fetch_one(&mut **tx).await?;
        files::link(&mut *tx, backend, &attached, &id).await?;
        let stored = decode_row(full, &row, false)?;
        // The audit entry goes to the database with the search entries, in one call.
        let mut pending = Batch::new(backend);
        pending.push(audit::entry_sql(
            backend,
            actor,
            &full.key,
            &id,
            "create",
            title_of(full, &stored),
            audit::created_changes(&values),
        ));
        for h in &hooks {
            let mut ctx = HookCtx {
                tx: &mut *tx,
                actor,
                object: full,
                backend,
            };
            h.after_create(&mut ctx, &stored).await?;
        }
        // A new record has no index entries and no children yet: its terms are inserted
        // straight from the stored row (and its search parent, if any, is reindexed).
        search::index_created(
            &mut *tx,
            backend,
            snapshot,
            full,
            std::slice::from_ref(&stored),
            pending,
            SearchEntries::Immediate,
        )
        .await?;
        decode_row(view, &row, false)
    }

    /// Applies a partial update based on `expected_version`.
    pub async fn update(
        &self,
        actor: &Actor,
        object_key: &str,
        id: &str,
        expected_version: i64,
        input: &Map<String, Json>,
    ) -> StoreResult<Record> {
        let snapshot = self.catalog.snapshot();
        let full = snapshot.object(object_key)?;
        let view = view_of(&full, actor);
        let validated = validate_input(&view, input, Mode::Update, &*snapshot);
        if let Err(errors) = &validated
            && self.hooks.for_object(&full.key).is_empty()
        {
            return Err(DomainError::Validation(errors.clone()).into());
        }
        let mut tx: AnyTx = self.db.writer().begin().await?;
        let (row, scope) = locate(&mut tx, self.db.backend(), &full, actor, id, "update", false).await?;
        let old = decode_row(&full, &row, false)?;
        let extra = self.check_input(actor, &full.key, input, Some(&old)).await?;
        let changes = Self::merge_checks(validated, extra)?;
        let record = self
            .update_locked(
                &mut tx,
                &snapshot,
                &full,
                &view,
                actor,
                (&row, scope),
                Some(expected_version),
                changes,
            )
            .await?;
        tx.commit().await?;
        Ok(record)
    }

    /// The update of one located row, shared by single and bulk updates.
    #[expect(
        clippy::too_many_arguments,
        reason = "internal step shared by update and bulk update"
    )]
    pub(super) async fn update_locked(
        &self,
        tx: &mut AnyTx,
        snapshot: &Snapshot,
        full: &ObjectDef,
        view: &ObjectDef,
        actor: &Actor,
        (row, scope): (&AnyRow, Scope),
        expected_version: Option<i64>,
        mut changes: Values,
    ) -> StoreResult<Record> {
        let backend = self.db.backend();
        let old = decode_row(full, row, false)?;
        let id = old.get("id").and_then(Json::as_str).unwrap_or_default().to_owned();
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
        let hooks = self.hooks.for_object(&full.key);
        for h in &hooks {
            let mut ctx = HookCtx {
                tx: &mut *tx,
                actor,
                object: full,
                backend,
            };
            h.before_update(&mut ctx, &old, &mut changes).await?;
        }
        let attached = files::resolve_attachments(&mut *tx, backend, full, actor, &mut changes, Some(&old)).await?;
        let mut diffs = Vec::new();
        changes.retain(|(k, v)| {
            let before = old.get(k).cloned().unwrap_or(Json::Null);
            let after = v.to_json();
            if before == after {
                false
            } else {
                diffs.push(json!({"field": k, "old": before, "new": after}));
                true
            }
        });
        if changes.is_empty() {
            return Ok(visible(view, old));
        }
        let moves = changes.iter().any(|(k, _)| k == "owner_id" || k == "department_id");
        if moves
            && !placeable(
                actor,
                full,
                scope,
                text_of(&changes, Some(&old), "owner_id"),
                text_of(&changes, Some(&old), "department_id"),
            )
        {
            return Err(outside_scope(full));
        }
        check_references(&mut *tx, backend, snapshot, full, actor, &changes, Some(&id)).await?;
        let (cols, custom) = assignments(full, &changes, custom_map(row)?);
        let mut sql = Sql::of(backend, "UPDATE ");
        sql.ident(&full.table)
            .push(" SET \"version\" = \"version\" + 1, \"updated_at\" = ")
            .bind(now_utc())
            .push(", \"updated_by\" = ")
            .bind(actor.id.as_str())
            .push(", \"custom\" = ")
            .bind(Json::Object(custom).to_string());
        for (col, bind) in cols {
            sql.push(", ").ident(&col).push(" = ").bind(bind);
        }
        sql.push(" WHERE \"id\" = ")
            .bind(id.as_str())
            .push(" AND \"version\" = ")
            .bind(version)
            .push(" RETURNING ");
        // The row comes back as stored from the update itself.
        push_select_list(&mut sql, full);
        let Some(new_row) = sql.query().fetch_optional(&mut **tx).await? else {
            return Err(DomainError::VersionConflict {
                expected: version,
                actual: version + 1,
            }
            .into());
        };
        files::link(&mut *tx, backend, &attached, &id).await?;
        let new = decode_row(full, &new_row, false)?;
        audit::write(
            &mut *tx,
            backend,
            actor,
            &full.key,
            &id,
            "update",
            title_of(full, &new),
            Json::Array(diffs),
        )
        .await?;
        for h in &hooks {
            let mut ctx = HookCtx {
                tx: &mut *tx,
                actor,
                object: full,
                backend,
            };
            h.after_update(&mut ctx, &old, &new).await?;
        }
        search::after_change(&mut *tx, backend, snapshot, full, &new, Some(&old)).await?;
        Ok(visible(view, new))
    }

    /// Moves a record to the recycle bin.
    pub async fn delete(
        &self,
        actor: &Actor,
        object_key: &str,
        id: &str,
        expected_version: Option<i64>,
    ) -> StoreResult<()> {
        let object = self.object(object_key)?;
        let mut tx: AnyTx = self.db.writer().begin().await?;
        let (row, _) = locate(&mut tx, self.db.backend(), &object, actor, id, "delete", false).await?;
        self.delete_locked(&mut tx, &object, actor, &row, expected_version)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn delete_locked(
        &self,
        tx: &mut AnyTx,
        object: &ObjectDef,
        actor: &Actor,
        row: &AnyRow,
        expected_version: Option<i64>,
    ) -> StoreResult<()> {
        let backend = self.db.backend();
        let old = decode_row(object, row, false)?;
        let id = old.get("id").and_then(Json::as_str).unwrap_or_default().to_owned();
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
        let hooks = self.hooks.for_object(&object.key);
        for h in &hooks {
            let mut ctx = HookCtx {
                tx: &mut *tx,
                actor,
                object,
                backend,
            };
            h.before_delete(&mut ctx, &old).await?;
        }
        let now = now_utc();
        let mut sql = Sql::of(backend, "UPDATE ");
        sql.ident(&object.table)
            .push(" SET \"deleted_at\" = ")
            .bind(now.as_str())
            .push(", \"deleted_by\" = ")
            .bind(actor.id.as_str())
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
            &object.key,
            &id,
            "delete",
            title_of(object, &old),
            json!([]),
        )
        .await?;
        for h in &hooks {
            let mut ctx = HookCtx {
                tx: &mut *tx,
                actor,
                object,
                backend,
            };
            h.after_delete(&mut ctx, &old).await?;
        }
        search::after_lifecycle(&mut *tx, backend, &self.catalog.snapshot(), object, &old, false).await?;
        Ok(())
    }

    /// Brings a record back from the recycle bin, unless a live record took one of its unique
    /// values meanwhile. Needs the delete permission on the record.
    pub async fn restore(&self, actor: &Actor, object_key: &str, id: &str) -> StoreResult<Record> {
        let full = self.object(object_key)?;
        let view = view_of(&full, actor);
        let backend = self.db.backend();
        let mut tx: AnyTx = self.db.writer().begin().await?;
        let (row, _) = locate(&mut tx, backend, &full, actor, id, "delete", true).await?;
        let old = decode_row(&full, &row, false)?;
        for field in full
            .fields
            .iter()
            .filter(|f| f.unique && !f.custom && f.numbering.is_none())
        {
            let Some(value) = old.get(&field.key).and_then(Json::as_str) else {
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
                return Err(DomainError::Conflict(e.message).into());
            }
        }
        let now = now_utc();
        let mut sql = Sql::of(backend, "UPDATE ");
        sql.ident(&full.table)
            .push(" SET \"deleted_at\" = NULL, \"deleted_by\" = NULL, \"version\" = \"version\" + 1, \"updated_at\" = ")
            .bind(now.as_str())
            .push(", \"updated_by\" = ")
            .bind(actor.id.as_str());
        if full.field("merged_into_id").is_some() {
            // A merged record restored by hand is no longer "merged into" anything.
            sql.push(", \"merged_into_id\" = NULL");
        }
        sql.push(" WHERE \"id\" = ").bind(id);
        sql.query().execute(&mut *tx).await?;
        let row = fetch_row(&mut tx, backend, &full, id, false, None)
            .await?
            .ok_or_else(|| not_found(&full, id))?;
        let record = decode_row(&full, &row, false)?;
        audit::write(
            &mut tx,
            backend,
            actor,
            &full.key,
            id,
            "restore",
            title_of(&full, &record),
            json!([]),
        )
        .await?;
        search::after_lifecycle(&mut tx, backend, &self.catalog.snapshot(), &full, &record, true).await?;
        tx.commit().await?;
        Ok(visible(&view, record))
    }

    /// Deletes a record in the recycle bin for good. Refused while other records refer to it.
    pub async fn purge(&self, actor: &Actor, object_key: &str, id: &str) -> StoreResult<()> {
        let object = self.object(object_key)?;
        let backend = self.db.backend();
        let mut tx: AnyTx = self.db.writer().begin().await?;
        let row = match locate(&mut tx, backend, &object, actor, id, "delete", true).await {
            Ok((row, _)) => row,
            Err(StoreError::Domain(DomainError::NotFound { .. })) => {
                if locate(&mut tx, backend, &object, actor, id, "delete", false)
                    .await
                    .is_ok()
                {
                    return Err(DomainError::conflict(
                        "只能彻底删除回收站中的记录，请先删除",
                        "only records in the recycle bin can be purged; delete it first",
                    )
                    .into());
                }
                return Err(not_found(&object, id));
            }
            Err(e) => return Err(e),
        };
        let old = decode_row(&object, &row, true)?;
        let mut sql = Sql::of(backend, "DELETE FROM ");
        sql.ident(&object.table).push(" WHERE \"id\" = ").bind(id);
        sql.query().execute(&mut *tx).await?;
        audit::write(
            &mut tx,
            backend,
            actor,
            &object.key,
            id,
            "purge",
            title_of(&object, &old),
            json!([]),
        )
        .await?;
        search::after_lifecycle(&mut tx, backend, &self.catalog.snapshot(), &object, &old, false).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Applies the same changes to many records in one transaction: all or nothing. Errors are
    /// reported per record id; records the actor may not change count as not found.
    pub async fn bulk_update(
        &self,
        actor: &Actor,
        object_key: &str,
        ids: &[String],
        input: &Map<String, Json>,
    ) -> StoreResult<usize> {
        check_bulk_size(ids)?;
        let snapshot = self.catalog.snapshot();
        let full = snapshot.object(object_key)?;
        require(actor, &full, "update")?;
        let view = view_of(&full, actor);
        let changes = validate_input(&view, input, Mode::Update, &*snapshot).map_err(DomainError::Validation)?;
        if changes.is_empty() {
            return Err(DomainError::invalid_query("没有要修改的字段", "no fields to change").into());
        }
        let mut tx: AnyTx = self.db.writer().begin().await?;
        let mut errors = FieldErrors::default();
        for id in ids {
            let located = match locate(&mut tx, self.db.backend(), &full, actor, id, "update", false).await {
                Ok(found) => found,
                Err(StoreError::Domain(DomainError::NotFound { .. } | DomainError::Forbidden(_))) => {
                    errors.add(id, missing_record());
                    continue;
                }
                Err(e) => return Err(e),
            };
            let old = decode_row(&full, &located.0, false)?;
            let extra = self.check_input(actor, &full.key, input, Some(&old)).await?;
            if !extra.is_empty() {
                errors.merge_prefixed(id, extra);
                continue;
            }
            let result = self
                .update_locked(
                    &mut tx,
                    &snapshot,
                    &full,
                    &view,
                    actor,
                    (&located.0, located.1),
                    None,
                    changes.clone(),
                )
                .await;
            match result {
                Ok(_) => {}
                Err(StoreError::Domain(DomainError::Validation(e))) => errors.merge_prefixed(id, e),
                Err(e) => return Err(e),
            }
        }
        errors.into_result()?;
        tx.commit().await?;
        Ok(ids.len())
    }

    /// Moves many records to the recycle bin in one transaction: all or nothing.
    pub async fn bulk_delete(&self, actor: &Actor, object_key: &str, ids: &[String]) -> StoreResult<usize> {
        check_bulk_size(ids)?;
        let object = self.object(object_key)?;
        require(actor, &object, "delete")?;
        let mut tx: AnyTx = self.db.writer().begin().await?;
        let mut errors = FieldErrors::default();
        for id in ids {
            match locate(&mut tx, self.db.backend(), &object, actor, id, "delete", false).await {
                Ok((row, _)) => self.delete_locked(&mut tx, &object, actor, &row, None).await?,
                Err(StoreError::Domain(DomainError::NotFound { .. } | DomainError::Forbidden(_))) => {
                    errors.add(id, missing_record());
                }
                Err(e) => return Err(e),
            }
        }
        errors.into_result()?;
        tx.commit().await?;
        Ok(ids.len())
    }

    /// Runs a declared state-machine action on a record. The actor needs a grant for the action
    /// itself (e.g. `customer.mark_lost`), or, for actions that declare no permission, the
    /// update permission; the record must lie in that grant's scope.
    pub async fn transition(
        &self,
        actor: &Actor,
        object_key: &str,
        id: &str,
        action: &str,
        remark: Option<&str>,
        expected_version: Option<i64>,
    ) -> StoreResult<Record> {
        let full = self.object(object_key)?;
        let view = view_of(&full, actor);
        let Some(machine) = &full.state_machine else {
            return Err(DomainError::InvalidTransition(Label {
                zh: format!("“{}”没有状态流程", full.label.zh),
                en: format!("{} has no workflow", full.label.en),
            })
            .into());
        };
        let declared = machine.transitions.iter().find(|t| t.action == action);
        let grant_action = match declared {
            Some(t) if t.permission.is_none() && actor.scope(&full.key, action).is_none() => "update",
            _ => action,
        };
        let backend = self.db.backend();
        let mut tx: AnyTx = self.db.writer().begin().await?;
        let (row, _) = match declared {
            Some(_) => locate(&mut tx, backend, &full, actor, id, grant_action, false).await?,
            // An unknown action: reveal nothing about the record beyond what reading shows.
            None => locate(&mut tx, backend, &full, actor, id, "read", false).await?,
        };
        let old = decode_row(&full, &row, false)?;
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
        let current = old
            .get(&machine.field)
            .and_then(Json::as_str)
            .unwrap_or(&machine.initial)
            .to_owned();
        let step = machine.transition(&current, action)?;
        let remark = remark.map(str::trim).filter(|r| !r.is_empty());
        if step.remark_required && remark.is_none() {
            return Err(DomainError::Validation(FieldErrors::single(
                "remark",
                FieldError::new(
                    "required",
                    format!("“{}”需要填写原因", step.label.zh),
                    format!("'{}' needs a remark", step.label.en),
                ),
            ))
            .into());
        }
        let now = now_utc();
        let mut sql = Sql::of(backend, "UPDATE ");
        sql.ident(&full.table)
            .push(" SET ")
            .ident(&machine.field)
            .push(" = ")
            .bind(step.to.as_str())
            .push(", \"version\" = \"version\" + 1, \"updated_at\" = ")
            .bind(now.as_str())
            .push(", \"updated_by\" = ")
            .bind(actor.id.as_str())
            .push(" WHERE \"id\" = ")
            .bind(id)
            .push(" AND \"version\" = ")
            .bind(version);
        if sql.query().execute(&mut *tx).await?.rows_affected() == 0 {
            return Err(DomainError::VersionConflict {
                expected: version,
                actual: version + 1,
            }
            .into());
        }
        let mut history = Sql::of(
            backend,
            "INSERT INTO state_history (id, object, record_id, action, from_state, to_state, actor_id, actor_name, at, remark) VALUES (",
        );
        history
            .bind(uuid::Uuid::now_v7().to_string())
            .push(", ")
            .bind(full.key.as_str())
            .push(", ")
            .bind(id)
            .push(", ")
            .bind(action)
            .push(", ")
            .bind(current.as_str())
            .push(", ")
            .bind(step.to.as_str())
            .push(", ")
            .bind(actor.id.as_str())
            .push(", ")
            .bind(actor.name.as_str())
            .push(", ")
            .bind(now.as_str())
            .push(", ")
            .bind(remark)
            .push(")");
        history.query().execute(&mut *tx).await?;
        let row = fetch_row(&mut tx, backend, &full, id, false, None)
            .await?
            .ok_or_else(|| not_found(&full, id))?;
        let new = decode_row(&full, &row, false)?;
        let changes =
            json!([{"field": machine.field, "old": current, "new": step.to, "action": action, "remark": remark}]);
        audit::write(
            &mut tx,
            backend,
            actor,
            &full.key,
            id,
            "transition",
            title_of(&full, &new),
            changes,
        )
        .await?;
        for h in &self.hooks.for_object(&full.key) {
            let mut ctx = HookCtx {
                tx: &mut tx,
                actor,
                object: &full,
                backend,
            };
            h.after_update(&mut ctx, &old, &new).await?;
        }
        // After-hooks may have written to the row (a converted lead records its customer):
        // answer with the record as it commits.
        let row = fetch_row(&mut tx, backend, &full, id, false, None)
            .await?
            .ok_or_else(|| not_found(&full, id))?;
        let new = decode_row(&full, &row, false)?;
        tx.commit().await?;
        Ok(visible(&view, new))
    }
}

/// Keeps only the fields of the actor's view.
pub(super) fn visible(view: &ObjectDef, mut record: Record) -> Record {
    record.retain(|k, _| view.field(k).is_some());
    record
}

fn missing_record() -> FieldError {
    FieldError::new(
        "not_found",
        "记录不存在或已删除",
        "record does not exist or was deleted",
    )
}

fn check_bulk_size(ids: &[String]) -> StoreResult<()> {
    if ids.is_empty() || ids.len() > MAX_BULK {
        return Err(DomainError::invalid_query(
            format!("一次可处理1到{MAX_BULK}条记录"),
            format!("a bulk request names 1 to {MAX_BULK} records"),
        )
        .into());
    }
    Ok(())
}
