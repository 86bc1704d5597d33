//! Creating many records at once (imports, demo data): the same checks, numbering, audit
//! entries, hooks and search terms as a single create, but written with multi-row statements —
//! one INSERT for a chunk's rows, one for their audit entries, one for their search terms, one
//! lookup per relation field and unique field — instead of a dozen statements per row. A chunk
//! that fails anywhere (a duplicate, a dangling reference, a hook's refusal) — or carries
//! attachments, which are linked one record at a time — is rolled back and replayed row by row,
//! so each failing row is reported with its own error and the good rows still commit. Hooks see
//! the whole chunk at once (`after_create_many`), so duplicate keys and last-contact dates are
//! written with a statement per chunk too. The rows are not read back: each record is made
//! from the values bound for it (decision 0017), while the database runs the chunk's statement
//! (decision 0018).

use std::collections::{HashMap, HashSet};

use guanxi_core::meta::FieldType;
use guanxi_core::{Actor, ObjectDef, Value};
use serde_json::{Map, Value as Json};
use sqlx::Row;

use super::codec::{Record, inserted_record};
use super::scope::push_read_scope;
use super::search::SearchEntries;
use super::write::{assignments, set_default, title_of};
use super::{Engine, audit, search};
use crate::catalog::Snapshot;
use crate::error::{StoreError, StoreResult};
use crate::hooks::{AnyTx, HookCtx, Values};
use crate::numbering;
use crate::sql::{Batch, Bind, Sql};
use guanxi_core::time_fmt::{now_utc, today_shanghai};

/// Bound parameters per statement, under SQLite's and PostgreSQL's limits.
const MAX_BINDS: usize = 30_000;

/// Why a chunk cannot take the multi-row path; the caller replays it row by row, which finds
/// and reports the row at fault.
#[derive(Debug)]
pub(super) struct NeedsRowByRow;

/// One row of a multi-row INSERT: its index in the batch, its column values and its custom JSON.
type InsertRow = (usize, Vec<Bind>, String);

/// A made record: the row's index in the batch, the record, and the actor's view of it when
/// that differs.
type MadeRow = (usize, Record, Option<Record>);

/// The multi-row INSERTs of a chunked create: rows grouped by the columns they set, each group
/// cut into statements under [`MAX_BINDS`].
struct InsertPlan<'a> {
    backend: crate::db::Backend,
    object: &'a ObjectDef,
    /// Every row's new id, by its index in the batch.
    ids: &'a [String],
    /// The columns every row sets besides its id, its custom JSON and its own values.
    system: &'a [(&'static str, Bind)],
    /// The statements' rows: the columns they set and the rows.
    chunks: Vec<(&'a Vec<String>, &'a [InsertRow])>,
}

impl InsertPlan<'_> {
    /// The `k`-th INSERT, if there is one.
    fn statement(&self, k: usize) -> Option<Sql> {
        let (cols, chunk) = self.chunks.get(k)?;
        let mut sql = Sql::of(self.backend, "INSERT INTO ");
        sql.ident(&self.object.table).push(" (\"id\"");
        for (col, _) in self.system {
            sql.push(", ").ident(col);
        }
        sql.push(", \"custom\"");
        for col in cols.iter() {
            sql.push(", ").ident(col);
        }
        sql.push(") VALUES ");
        for (n, (i, binds, custom)) in chunk.iter().enumerate() {
            if n > 0 {
                sql.push(", ");
            }
            sql.push("(").bind(self.ids[*i].as_str());
            for (_, b) in self.system {
                sql.push(", ").bind(b.clone());
            }
            sql.push(", ").bind(custom.as_str());
            for b in binds {
                sql.push(", ").bind(b.clone());
            }
            sql.push(")");
        }
        Some(sql)
    }
}

/// Whether a row names uploaded files: those are resolved and linked one record at a time
/// (`create_in`), so such a row cannot take the multi-row path.
pub(super) fn carries_files(object: &ObjectDef, values: &Values) -> bool {
    values.iter().any(|(key, value)| {
        !value.is_null()
            && object
                .field(key)
                .is_some_and(|f| matches!(f.field_type, FieldType::Attachments { .. }))
    })
}

impl Engine {
    /// Creates prepared rows (each with its new id) with multi-row statements inside the
    /// caller's transaction. Returns `Ok(Err(NeedsRowByRow))` when a check fails for some row;
    /// the transaction may then hold partial work and must be rolled back.
    #[expect(
        clippy::too_many_arguments,
        reason = "the create path's context (transaction, actor, catalog snapshot, object and view) plus the rows and how to index them"
    )]
    pub(super) async fn create_many(
        &self,
        tx: &mut AnyTx,
        actor: &Actor,
        snapshot: &Snapshot,
        full: &ObjectDef,
        view: &ObjectDef,
        rows: Vec<(String, Values)>,
        entries: SearchEntries,
    ) -> StoreResult<Result<Vec<Record>, NeedsRowByRow>> {
        let (ids, mut rows): (Vec<String>, Vec<Values>) = rows.into_iter().unzip();
        let backend = self.db.backend();
        // Attachments are resolved against uploaded files and linked one record at a time
        // (`create_in`); rows that carry any take that path.
        if rows.iter().any(|values| carries_files(full, values)) {
            return Ok(Err(NeedsRowByRow));
        }
        let hooks = self.hooks.for_object(&full.key);
        for values in &mut rows {
            for h in &hooks {
                let mut ctx = HookCtx {
                    tx: &mut *tx,
                    actor,
                    object: full,
                    backend,
                };
                if h.before_create(&mut ctx, values).await.is_err() {
                    return Ok(Err(NeedsRowByRow));
                }
            }
        }
        if !self.references_ok(tx, snapshot, full, actor, &rows).await? {
            return Ok(Err(NeedsRowByRow));
        }
        let today = today_shanghai();
        for field in full.fields.iter().filter(|f| f.numbering.is_some()) {
            if let Some(rule) = &field.numbering {
                let key = format!("{}.{}", full.key, field.key);
                let numbers = numbering::next_numbers(&mut *tx, backend, &key, rule, today, rows.len()).await?;
                for (values, number) in rows.iter_mut().zip(numbers) {
                    values.push((field.key.clone(), Value::Text(number)));
                }
            }
        }
        if let Some(machine) = &full.state_machine {
            for values in &mut rows {
                set_default(values, &machine.field, Value::Text(machine.initial.clone()));
            }
        }

        let now = now_utc();
        // Rows with the same columns share a statement (a missing column keeps its default).
        let mut groups: HashMap<Vec<String>, Vec<InsertRow>> = HashMap::new();
        for (i, values) in rows.iter().enumerate() {
            let (cols, custom) = assignments(full, values, Map::new());
            let names = cols.iter().map(|(c, _)| c.clone()).collect();
            let binds = cols.into_iter().map(|(_, b)| b).collect();
            groups
                .entry(names)
                .or_default()
                .push((i, binds, Json::Object(custom).to_string()));
        }
        // The columns every create sets besides its id, its custom JSON and its values' own
        // columns: written by the INSERT and read by the records made from it.
        let system = [
            ("version", Bind::Int(1)),
            ("created_at", Bind::Text(now.clone())),
            ("created_by", Bind::Text(actor.id.clone())),
            ("updated_at", Bind::Text(now.clone())),
            ("updated_by", Bind::Text(actor.id.clone())),
        ];
        let inserts = InsertPlan {
            backend,
            object: full,
            ids: &ids,
            system: &system,
            chunks: groups
                .iter()
                .flat_map(|(cols, members)| {
                    // A chunk's audit entries (nine binds each) go in one statement too.
                    let per_row = (cols.len() + system.len() + 2).max(audit::ENTRY_BINDS);
                    members
                        .chunks((MAX_BINDS / per_row).max(1))
                        .map(move |chunk| (cols, chunk))
                })
                .collect(),
        };
        // The rows are not read back (no RETURNING, decision 0017): each record is made from
        // the values bound for it, as the database stores them. The actor's view of it is made
        // separately only when it differs from the object: when the actor has field rules on it
        // (the test `view_of` makes).
        let own_view = actor.restricts_fields(&full.key);
        let made_chunk = |cols: &[String], chunk: &[InsertRow]| -> StoreResult<(Vec<MadeRow>, Sql)> {
            let position: HashMap<&str, usize> = cols.iter().enumerate().map(|(at, c)| (c.as_str(), at)).collect();
            let mut made = Vec::with_capacity(chunk.len());
            for (i, binds, custom) in chunk {
                let id = Bind::Text(ids[*i].clone());
                let column = |name: &str| match name {
                    "id" => Some(&id),
                    _ => system
                        .iter()
                        .find(|(c, _)| *c == name)
                        .map(|(_, b)| b)
                        .or_else(|| position.get(name).and_then(|at| binds.get(*at))),
                };
                let record = inserted_record(full, column, custom)?;
                let visible = if own_view {
                    Some(inserted_record(view, column, custom)?)
                } else {
                    None
                };
                made.push((*i, record, visible));
            }
            let audit = audit::created_entries_sql(
                backend,
                actor,
                &full.key,
                &now,
                made.iter().map(|(i, record, _)| {
                    (
                        ids[*i].as_str(),
                        title_of(full, record),
                        audit::created_changes(&rows[*i]),
                    )
                }),
            );
            Ok((made, audit))
        };
        // Pipelined: while the database runs one chunk's INSERT (with the audit entries of the
        // chunk before it), this task makes that chunk's records and audit entries and builds
        // the next chunk's INSERT. The database work and the engine's are about equal, so
        // taking turns left each side idle half the time (docs/BENCHMARKS.md, "seventh session").
        let mut stored: Vec<Option<(Record, Option<Record>)>> = vec![None; ids.len()];
        let mut next = inserts.statement(0);
        let mut audit_before: Option<Sql> = None;
        for k in 0..inserts.chunks.len() {
            let Some(insert) = next.take() else { break };
            let mut statements = Batch::new(backend);
            statements.extend(audit_before.take());
            statements.push(insert);
            let work = async {
                let (cols, chunk) = inserts.chunks[k];
                let made = made_chunk(cols, chunk)?;
                StoreResult::Ok((made, inserts.statement(k + 1)))
            };
            let (executed, work) = tokio::join!(statements.execute(tx), work);
            // A constraint the checks above did not foresee (a race on a unique value).
            if executed.is_err() {
                return Ok(Err(NeedsRowByRow));
            }
            let ((made, audit), following) = work?;
            for (i, record, visible) in made {
                stored[i] = Some((record, visible));
            }
            audit_before = Some(audit);
            next = following;
        }

        let mut visibles = Vec::with_capacity(ids.len());
        let mut records = Vec::with_capacity(ids.len());
        for made in stored {
            let Some((record, visible)) = made else {
                return Ok(Err(NeedsRowByRow));
            };
            records.push(record);
            visibles.push(visible);
        }
        // The last chunk's audit entries, sent with the search entries below.
        let mut pending = Batch::new(backend);
        pending.extend(audit_before);
        for h in &hooks {
            let mut ctx = HookCtx {
                tx: &mut *tx,
                actor,
                object: full,
                backend,
            };
            match h.after_create_many(&mut ctx, &records).await {
                Ok(()) => {}
                // A hook may refuse a row; the row-by-row replay finds which one.
                Err(StoreError::Domain(_)) => return Ok(Err(NeedsRowByRow)),
                // Anything else is a fault of the chunk-wide hook itself: say so, don't hide it
                // behind a slower replay.
                Err(e) => return Err(e),
            }
        }
        if self.search_index_deferred() {
            pending.execute(tx).await?;
        } else {
            search::index_created(&mut *tx, backend, snapshot, full, &records, pending, entries).await?;
        }
        let out = records
            .into_iter()
            .zip(visibles)
            .map(|(record, visible)| visible.unwrap_or(record))
            .collect();
        Ok(Ok(out))
    }

    /// The batch form of the reference and uniqueness checks: one lookup per relation field and
    /// per unique field for all rows. False when any row would fail them.
    async fn references_ok(
        &self,
        tx: &mut AnyTx,
        snapshot: &Snapshot,
        object: &ObjectDef,
        actor: &Actor,
        rows: &[Values],
    ) -> StoreResult<bool> {
        let backend = self.db.backend();
        for field in &object.fields {
            let mut wanted: HashSet<&str> = HashSet::new();
            for values in rows {
                match values.iter().find(|(k, _)| *k == field.key).map(|(_, v)| v) {
                    Some(Value::Text(t)) => {
                        let is_new = wanted.insert(t.as_str());
                        // Two rows of one batch with the same unique value: one must fail.
                        if !is_new && field.unique && !matches!(field.field_type, FieldType::Relation { .. }) {
                            return Ok(false);
                        }
                    }
                    Some(Value::Json(ids)) if matches!(field.field_type, FieldType::MultiRelation { .. }) => {
                        wanted.extend(ids.as_array().into_iter().flatten().filter_map(Json::as_str));
                    }
                    _ => {}
                }
            }
            if wanted.is_empty() {
                continue;
            }
            let wanted: Vec<&str> = wanted.into_iter().collect();
            match &field.field_type {
                FieldType::Relation { object: target } | FieldType::MultiRelation { object: target } => {
                    let target = snapshot.object(target)?;
                    let Some(scope) = actor.scope(&target.key, "read") else {
                        return Ok(false);
                    };
                    for chunk in wanted.chunks(MAX_BINDS) {
                        let mut sql = Sql::of(backend, "SELECT count(*) AS n FROM ");
                        sql.ident(&target.table)
                            .push(" WHERE \"id\" IN (")
                            .bind_list(chunk.iter().map(|id| Bind::Text((*id).to_owned())))
                            .push(") AND \"deleted_at\" IS NULL");
                        push_read_scope(&mut sql, actor, &target, scope);
                        let n: i64 = sql.query().fetch_one(&mut **tx).await?.try_get("n")?;
                        if usize::try_from(n).ok() != Some(chunk.len()) {
                            return Ok(false);
                        }
                    }
                }
                _ if field.unique && !field.custom && field.numbering.is_none() => {
                    for chunk in wanted.chunks(MAX_BINDS) {
                        let mut sql = Sql::of(backend, "SELECT 1 AS one FROM ");
                        sql.ident(&object.table)
                            .push(" WHERE ")
                            .ident(&field.key)
                            .push(" IN (")
                            .bind_list(chunk.iter().map(|v| Bind::Text((*v).to_owned())))
                            .push(") AND \"deleted_at\" IS NULL LIMIT 1");
                        if sql.query().fetch_optional(&mut **tx).await?.is_some() {
                            return Ok(false);
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(true)
    }
}
