//! Changing records. Every operation is one transaction: validation has already happened in the
//! core, then hooks, reference and uniqueness checks, numbering, the row change, the audit entry
//! and the after-hooks run on the same connection and commit together or not at all.
//!
//! Optimistic concurrency: an update names the version it was based on; the row is updated only
//! `WHERE version = expected`, so of two concurrent updates with one version exactly one wins and
//! the other gets a version conflict.

use guanxi_core::meta::FieldType;
use guanxi_core::value::{Mode, validate_input};
use guanxi_core::{Actor, DomainError, FieldDef, FieldError, FieldErrors, Label, ObjectDef, Value};
use serde_json::{Map, Value as Json, json};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::audit;
use super::codec::{Record, column_binds, custom_map, decode_row, push_select_list};
use super::{Engine, MAX_BULK};
use crate::catalog::Snapshot;
use crate::db::Backend;
use crate::error::{StoreError, StoreResult};
use crate::hooks::{AnyTx, HookCtx, Values};
use crate::numbering;
use crate::sql::{Bind, Sql};
use guanxi_core::time_fmt::{now_utc, today_shanghai};

fn not_found(object: &ObjectDef, id: &str) -> StoreError {
    DomainError::NotFound {
        object: object.key.clone(),
        id: id.to_owned(),
    }
    .into()
}

fn title_of(object: &ObjectDef, record: &Record) -> Option<String> {
    record
        .get(&object.title_field)
        .and_then(Json::as_str)
        .map(str::to_owned)
}

fn version_of(record: &Record) -> i64 {
    record.get("version").and_then(Json::as_i64).unwrap_or(0)
}

/// Reads one row inside a transaction, locking it on PostgreSQL.
async fn fetch_row(
    conn: &mut AnyConnection,
    backend: Backend,
    object: &ObjectDef,
    id: &str,
    deleted: bool,
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
    if backend == Backend::Postgres {
        sql.push(" FOR UPDATE");
    }
    Ok(sql.query().fetch_optional(conn).await?)
}

fn set_default(values: &mut Values, key: &str, value: Value) {
    if !values.iter().any(|(k, _)| k == key) {
        values.push((key.to_owned(), value));
    }
}

/// Checks that relations point at live records and unique fields are unique among live records.
async fn check_references(
    conn: &mut AnyConnection,
    backend: Backend,
    snapshot: &Snapshot,
    object: &ObjectDef,
    values: &Values,
    own_id: Option<&str>,
) -> StoreResult<()> {
    let mut errors = FieldErrors::default();
    for (key, value) in values {
        let (Some(field), Value::Text(text)) = (object.field(key), value) else {
            continue;
        };
        if let FieldType::Relation { object: target } = &field.field_type {
            let target = snapshot.object(target)?;
            let mut sql = Sql::of(backend, "SELECT 1 AS one FROM ");
            sql.ident(&target.table)
                .push(" WHERE \"id\" = ")
                .bind(text.as_str())
                .push(" AND \"deleted_at\" IS NULL");
            if sql.query().fetch_optional(&mut *conn).await?.is_none() {
                errors.add(
                    key,
                    FieldError::new(
                        "not_found",
                        format!("所选{}不存在或已删除", target.label.zh),
                        format!(
                            "the selected {} does not exist or was deleted",
                            target.label.en.to_lowercase()
                        ),
                    ),
                );
            }
        }
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

fn duplicate_error(field: &FieldDef, value: &str) -> FieldError {
    FieldError::new(
        "duplicate",
        format!("{}“{value}”已被其他记录使用", field.label.zh),
        format!(
            "{} '{value}' is already used by another record",
            field.label.en
        ),
    )
}

/// Splits values into column assignments and the merged custom JSON.
fn assignments(
    object: &ObjectDef,
    values: &Values,
    mut custom: Map<String, Json>,
) -> (Vec<(String, Bind)>, Map<String, Json>) {
    let mut cols = Vec::new();
    for (key, value) in values {
        let Some(field) = object.field(key) else {
            continue;
        };
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

impl Engine {
    /// Creates a record from an API body.
    pub async fn create(
        &self,
        actor: &Actor,
        object_key: &str,
        input: &Map<String, Json>,
    ) -> StoreResult<Record> {
        let snapshot = self.catalog.snapshot();
        let object = snapshot.object(object_key)?;
        let mut values = validate_input(&object, input, Mode::Create, &*snapshot)
            .map_err(DomainError::Validation)?;
        set_default(&mut values, "owner_id", Value::Text(actor.id.clone()));
        if let Some(dept) = &actor.department_id {
            set_default(&mut values, "department_id", Value::Text(dept.clone()));
        }
        let backend = self.db.backend();
        let mut tx: AnyTx = self.db.writer().begin().await?;
        let hooks = self.hooks.for_object(&object.key);
        for h in &hooks {
            let mut ctx = HookCtx {
                tx: &mut tx,
                actor,
                object: &object,
                backend,
            };
            h.before_create(&mut ctx, &mut values).await?;
        }
        check_references(&mut tx, backend, &snapshot, &object, &values, None).await?;
        for field in object.fields.iter().filter(|f| f.numbering.is_some()) {
            if let Some(rule) = &field.numbering {
                let key = format!("{}.{}", object.key, field.key);
                let number =
                    numbering::next_number(&mut tx, backend, &key, rule, today_shanghai()).await?;
                values.push((field.key.clone(), Value::Text(number)));
            }
        }
        if let Some(machine) = &object.state_machine {
            values.push((machine.field.clone(), Value::Text(machine.initial.clone())));
        }

        let id = uuid::Uuid::now_v7().to_string();
        let now = now_utc();
        let (cols, custom) = assignments(&object, &values, Map::new());
        let mut sql = Sql::of(backend, "INSERT INTO ");
        sql.ident(&object.table)
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
        sql.push(")");
        sql.query().execute(&mut *tx).await?;

        let row = fetch_row(&mut tx, backend, &object, &id, false)
            .await?
            .ok_or_else(|| not_found(&object, &id))?;
        let record = decode_row(&object, &row, false)?;
        let changes: Vec<Json> = values
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| json!({"field": k, "old": null, "new": v.to_json()}))
            .collect();
        audit::write(
            &mut tx,
            backend,
            actor,
            &object.key,
            &id,
            "create",
            title_of(&object, &record),
            Json::Array(changes),
        )
        .await?;
        for h in &hooks {
            let mut ctx = HookCtx {
                tx: &mut tx,
                actor,
                object: &object,
                backend,
            };
            h.after_create(&mut ctx, &record).await?;
        }
        tx.commit().await?;
        Ok(record)
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
        let object = snapshot.object(object_key)?;
        let changes = validate_input(&object, input, Mode::Update, &*snapshot)
            .map_err(DomainError::Validation)?;
        let mut tx: AnyTx = self.db.writer().begin().await?;
        let row = fetch_row(&mut tx, self.db.backend(), &object, id, false)
            .await?
            .ok_or_else(|| not_found(&object, id))?;
        let record = self
            .update_locked(
                &mut tx,
                &snapshot,
                &object,
                actor,
                &row,
                Some(expected_version),
                changes,
            )
            .await?;
        tx.commit().await?;
        Ok(record)
    }

    /// The update of one locked row, shared by single and bulk updates.
    #[expect(
        clippy::too_many_arguments,
        reason = "internal step shared by update and bulk update"
    )]
    async fn update_locked(
        &self,
        tx: &mut AnyTx,
        snapshot: &Snapshot,
        object: &ObjectDef,
        actor: &Actor,
        row: &AnyRow,
        expected_version: Option<i64>,
        mut changes: Values,
    ) -> StoreResult<Record> {
        let backend = self.db.backend();
        let old = decode_row(object, row, false)?;
        let id = old
            .get("id")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_owned();
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
            h.before_update(&mut ctx, &old, &mut changes).await?;
        }
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
            return Ok(old);
        }
        check_references(&mut *tx, backend, snapshot, object, &changes, Some(&id)).await?;
        let (cols, custom) = assignments(object, &changes, custom_map(row)?);
        let mut sql = Sql::of(backend, "UPDATE ");
        sql.ident(&object.table)
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
            .bind(version);
        if sql.query().execute(&mut **tx).await?.rows_affected() == 0 {
            return Err(DomainError::VersionConflict {
                expected: version,
                actual: version + 1,
            }
            .into());
        }
        let new_row = fetch_row(&mut *tx, backend, object, &id, false)
            .await?
            .ok_or_else(|| not_found(object, &id))?;
        let new = decode_row(object, &new_row, false)?;
        audit::write(
            &mut *tx,
            backend,
            actor,
            &object.key,
            &id,
            "update",
            title_of(object, &new),
            Json::Array(diffs),
        )
        .await?;
        for h in &hooks {
            let mut ctx = HookCtx {
                tx: &mut *tx,
                actor,
                object,
                backend,
            };
            h.after_update(&mut ctx, &old, &new).await?;
        }
        Ok(new)
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
        let row = fetch_row(&mut tx, self.db.backend(), &object, id, false)
            .await?
            .ok_or_else(|| not_found(&object, id))?;
        self.delete_locked(&mut tx, &object, actor, &row, expected_version)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_locked(
        &self,
        tx: &mut AnyTx,
        object: &ObjectDef,
        actor: &Actor,
        row: &AnyRow,
        expected_version: Option<i64>,
    ) -> StoreResult<()> {
        let backend = self.db.backend();
        let old = decode_row(object, row, false)?;
        let id = old
            .get("id")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_owned();
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
        Ok(())
    }

    /// Brings a record back from the recycle bin, unless a live record took one of its unique
    /// values meanwhile.
    pub async fn restore(&self, actor: &Actor, object_key: &str, id: &str) -> StoreResult<Record> {
        let object = self.object(object_key)?;
        let backend = self.db.backend();
        let mut tx: AnyTx = self.db.writer().begin().await?;
        let row = fetch_row(&mut tx, backend, &object, id, true)
            .await?
            .ok_or_else(|| not_found(&object, id))?;
        let old = decode_row(&object, &row, false)?;
        for field in object
            .fields
            .iter()
            .filter(|f| f.unique && !f.custom && f.numbering.is_none())
        {
            let Some(value) = old.get(&field.key).and_then(Json::as_str) else {
                continue;
            };
            let mut sql = Sql::of(backend, "SELECT 1 AS one FROM ");
            sql.ident(&object.table)
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
        sql.ident(&object.table)
            .push(" SET \"deleted_at\" = NULL, \"deleted_by\" = NULL, \"version\" = \"version\" + 1, \"updated_at\" = ")
            .bind(now.as_str())
            .push(", \"updated_by\" = ")
            .bind(actor.id.as_str())
            .push(" WHERE \"id\" = ")
            .bind(id);
        sql.query().execute(&mut *tx).await?;
        let row = fetch_row(&mut tx, backend, &object, id, false)
            .await?
            .ok_or_else(|| not_found(&object, id))?;
        let record = decode_row(&object, &row, false)?;
        audit::write(
            &mut tx,
            backend,
            actor,
            &object.key,
            id,
            "restore",
            title_of(&object, &record),
            json!([]),
        )
        .await?;
        tx.commit().await?;
        Ok(record)
    }

    /// Deletes a record in the recycle bin for good. Refused while other records refer to it.
    pub async fn purge(&self, actor: &Actor, object_key: &str, id: &str) -> StoreResult<()> {
        let object = self.object(object_key)?;
        let backend = self.db.backend();
        let mut tx: AnyTx = self.db.writer().begin().await?;
        let Some(row) = fetch_row(&mut tx, backend, &object, id, true).await? else {
            if fetch_row(&mut tx, backend, &object, id, false)
                .await?
                .is_some()
            {
                return Err(DomainError::conflict(
                    "只能彻底删除回收站中的记录，请先删除",
                    "only records in the recycle bin can be purged; delete it first",
                )
                .into());
            }
            return Err(not_found(&object, id));
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
        tx.commit().await?;
        Ok(())
    }

    /// Applies the same changes to many records in one transaction: all or nothing. Errors are
    /// reported per record id.
    pub async fn bulk_update(
        &self,
        actor: &Actor,
        object_key: &str,
        ids: &[String],
        input: &Map<String, Json>,
    ) -> StoreResult<usize> {
        check_bulk_size(ids)?;
        let snapshot = self.catalog.snapshot();
        let object = snapshot.object(object_key)?;
        let changes = validate_input(&object, input, Mode::Update, &*snapshot)
            .map_err(DomainError::Validation)?;
        if changes.is_empty() {
            return Err(
                DomainError::invalid_query("没有要修改的字段", "no fields to change").into(),
            );
        }
        let mut tx: AnyTx = self.db.writer().begin().await?;
        let mut errors = FieldErrors::default();
        for id in ids {
            let Some(row) = fetch_row(&mut tx, self.db.backend(), &object, id, false).await? else {
                errors.add(id, missing_record());
                continue;
            };
            match self
                .update_locked(
                    &mut tx,
                    &snapshot,
                    &object,
                    actor,
                    &row,
                    None,
                    changes.clone(),
                )
                .await
            {
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
    pub async fn bulk_delete(
        &self,
        actor: &Actor,
        object_key: &str,
        ids: &[String],
    ) -> StoreResult<usize> {
        check_bulk_size(ids)?;
        let object = self.object(object_key)?;
        let mut tx: AnyTx = self.db.writer().begin().await?;
        let mut errors = FieldErrors::default();
        for id in ids {
            let Some(row) = fetch_row(&mut tx, self.db.backend(), &object, id, false).await? else {
                errors.add(id, missing_record());
                continue;
            };
            self.delete_locked(&mut tx, &object, actor, &row, None)
                .await?;
        }
        errors.into_result()?;
        tx.commit().await?;
        Ok(ids.len())
    }

    /// Runs a declared state-machine action on a record.
    pub async fn transition(
        &self,
        actor: &Actor,
        object_key: &str,
        id: &str,
        action: &str,
        remark: Option<&str>,
        expected_version: Option<i64>,
    ) -> StoreResult<Record> {
        let object = self.object(object_key)?;
        let Some(machine) = &object.state_machine else {
            return Err(DomainError::InvalidTransition(Label {
                zh: format!("“{}”没有状态流程", object.label.zh),
                en: format!("{} has no workflow", object.label.en),
            })
            .into());
        };
        let backend = self.db.backend();
        let mut tx: AnyTx = self.db.writer().begin().await?;
        let row = fetch_row(&mut tx, backend, &object, id, false)
            .await?
            .ok_or_else(|| not_found(&object, id))?;
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
        let current = old
            .get(&machine.field)
            .and_then(Json::as_str)
            .unwrap_or(&machine.initial)
            .to_owned();
        let step = machine.transition(&current, action)?;
        if let Some(permission) = &step.permission
            && !actor.can(permission)
        {
            return Err(DomainError::Forbidden(Label {
                zh: format!("没有执行“{}”的权限", step.label.zh),
                en: format!("you may not '{}'", step.label.en),
            })
            .into());
        }
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
        sql.ident(&object.table)
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
            .bind(object.key.as_str())
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
            .bind(remark);
        history.push(")");
        history.query().execute(&mut *tx).await?;
        let row = fetch_row(&mut tx, backend, &object, id, false)
            .await?
            .ok_or_else(|| not_found(&object, id))?;
        let new = decode_row(&object, &row, false)?;
        let changes = json!([{"field": machine.field, "old": current, "new": step.to, "action": action, "remark": remark}]);
        audit::write(
            &mut tx,
            backend,
            actor,
            &object.key,
            id,
            "transition",
            title_of(&object, &new),
            changes,
        )
        .await?;
        for h in &self.hooks.for_object(&object.key) {
            let mut ctx = HookCtx {
                tx: &mut tx,
                actor,
                object: &object,
                backend,
            };
            h.after_update(&mut ctx, &old, &new).await?;
        }
        tx.commit().await?;
        Ok(new)
    }
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
