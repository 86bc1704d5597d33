//! The customer duplicate-key index: `customer_duplicate_keys (customer_id, kind, norm)` holds the
//! normalised name, phone, email and credit code of every customer (rules in
//! `guanxi_core::dedup`). The customer hook rewrites a customer's keys in the transaction that
//! writes the customer; lookups join the live customers through the `(kind, norm)` index, so
//! finding the duplicates of a candidate — or of a 1,000-row import chunk — costs a few index
//! probes whatever the table size. Keys of deleted customers stay (a restore brings its keys
//! back with it); a purge removes them by the foreign key's cascade.

use std::collections::{BTreeMap, HashSet};

use guanxi_core::dedup::{KeyKind, keys_of};
use guanxi_core::filter::parse_filter;
use guanxi_core::{Actor, DomainError};
use serde::Serialize;
use serde_json::{Value as Json, json};
use sqlx::{AnyConnection, Row};

use crate::db::Backend;
use crate::error::StoreResult;
use crate::records::scope::{push_read_scope, view_of};
use crate::records::{Engine, ListQuery, Record, TotalMode};
use crate::sql::{Bind, Sql};

/// The object whose records have duplicate keys.
pub const OBJECT: &str = "customer";
/// Bumped when the normalisation rules change; a server that finds older keys rebuilds them.
pub const KEYS_VERSION: &str = "1";
const VERSION_SETTING: &str = "duplicate_keys_version";

/// The keys of a customer record (as the engine returns it).
pub fn record_keys(record: &Record) -> Vec<(KeyKind, String)> {
    keys_of(|field| record.get(field).and_then(Json::as_str))
}

/// Whether an update changed a value that keys are made of.
pub fn keys_changed(old: &Record, new: &Record) -> bool {
    KeyKind::ALL.iter().any(|k| old.get(k.field()) != new.get(k.field()))
}

/// Writes the keys of one customer on the caller's connection (inside its transaction),
/// replacing its old ones unless `new_record` (a create has none, and an import of a million
/// customers saves a statement per row).
pub async fn write_keys(
    conn: &mut AnyConnection,
    backend: Backend,
    customer_id: &str,
    record: &Record,
    new_record: bool,
) -> StoreResult<()> {
    if !new_record {
        let mut del = Sql::of(backend, "DELETE FROM customer_duplicate_keys WHERE customer_id = ");
        del.bind(customer_id);
        del.query().execute(&mut *conn).await?;
    }
    let keys: Vec<(&str, KeyKind, String)> = record_keys(record)
        .into_iter()
        .map(|(kind, norm)| (customer_id, kind, norm))
        .collect();
    insert_keys(conn, backend, &keys).await
}

/// The keys of many new customers (a multi-row create), a few thousand rows per statement.
pub async fn write_new_keys_many(conn: &mut AnyConnection, backend: Backend, records: &[Record]) -> StoreResult<()> {
    let mut rows: Vec<(&str, KeyKind, String)> = Vec::new();
    for record in records {
        let id = record.get("id").and_then(Json::as_str).unwrap_or_default();
        rows.extend(record_keys(record).into_iter().map(|(kind, norm)| (id, kind, norm)));
    }
    insert_keys(conn, backend, &rows).await
}

/// `(customer, kind, key)` rows into the key table, a few thousand per statement.
async fn insert_keys(conn: &mut AnyConnection, backend: Backend, rows: &[(&str, KeyKind, String)]) -> StoreResult<()> {
    for chunk in rows.chunks(5_000) {
        let mut ins = Sql::of(
            backend,
            "INSERT INTO customer_duplicate_keys (customer_id, kind, norm) VALUES ",
        );
        for (i, (id, kind, norm)) in chunk.iter().enumerate() {
            if i > 0 {
                ins.push(", ");
            }
            ins.push("(")
                .bind(*id)
                .push(", ")
                .bind(kind.as_str())
                .push(", ")
                .bind(norm.as_str())
                .push(")");
        }
        ins.query().execute(&mut *conn).await?;
    }
    Ok(())
}

/// One live customer sharing one key with a candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyHit {
    pub kind: KeyKind,
    pub norm: String,
    pub customer_id: String,
}

/// A customer that looks like a duplicate of the candidate, as the actor may see it.
#[derive(Debug, Clone, Serialize)]
pub struct DuplicateMatch {
    /// The customer, with the fields the actor may see.
    pub record: Record,
    /// The keys it shares with the candidate, most reliable first (`credit_code`, `name`,
    /// `phone`, `email`).
    pub matched_on: Vec<&'static str>,
}

/// The duplicates of one candidate.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Duplicates {
    /// Matches the actor may read, best first, at most the requested limit.
    pub matches: Vec<DuplicateMatch>,
    /// All matches the actor may read (may exceed `matches.len()`).
    pub visible_count: usize,
    /// Matches outside the actor's read scope (or found only through a field hidden from the
    /// actor): counted, never shown.
    pub hidden_count: usize,
}

impl Duplicates {
    pub fn is_empty(&self) -> bool {
        self.visible_count == 0 && self.hidden_count == 0
    }
}

impl Engine {
    /// Live customers sharing any of `keys`, except those in `exclude`. Batched: one statement per
    /// 500 keys of a kind.
    pub async fn duplicate_key_hits(&self, keys: &[(KeyKind, String)], exclude: &[String]) -> StoreResult<Vec<KeyHit>> {
        let mut by_kind: BTreeMap<KeyKind, Vec<&str>> = BTreeMap::new();
        for (kind, norm) in keys {
            by_kind.entry(*kind).or_default().push(norm.as_str());
        }
        let backend = self.db().backend();
        let mut out = Vec::new();
        for (kind, mut norms) in by_kind {
            norms.sort_unstable();
            norms.dedup();
            for part in norms.chunks(500) {
                let mut sql = Sql::of(
                    backend,
                    "SELECT k.customer_id AS customer_id, k.norm AS norm FROM customer_duplicate_keys k \
                     JOIN customers c ON c.id = k.customer_id WHERE k.kind = ",
                );
                sql.bind(kind.as_str())
                    .push(" AND k.norm IN (")
                    .bind_list(part.iter().map(|n| Bind::Text((*n).to_owned())))
                    .push(") AND c.deleted_at IS NULL");
                if !exclude.is_empty() {
                    sql.push(" AND k.customer_id NOT IN (")
                        .bind_list(exclude.iter().map(|e| Bind::Text(e.clone())))
                        .push(")");
                }
                for row in sql.query().fetch_all(self.db().reader()).await? {
                    out.push(KeyHit {
                        kind,
                        norm: row.try_get("norm")?,
                        customer_id: row.try_get("customer_id")?,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Which of `ids` (live records of `object_key`) the actor may read.
    pub async fn readable_ids(&self, actor: &Actor, object_key: &str, ids: &[String]) -> StoreResult<HashSet<String>> {
        let object = self.object(object_key)?;
        let mut out = HashSet::new();
        let Some(scope) = actor.scope(&object.key, "read") else {
            return Ok(out);
        };
        for part in ids.chunks(500) {
            let mut sql = Sql::of(self.db().backend(), "SELECT \"id\" FROM ");
            sql.ident(&object.table)
                .push(" WHERE \"id\" IN (")
                .bind_list(part.iter().map(|i| Bind::Text(i.clone())))
                .push(") AND \"deleted_at\" IS NULL");
            push_read_scope(&mut sql, actor, &object, scope);
            for row in sql.query().fetch_all(self.db().reader()).await? {
                out.insert(row.try_get::<String, _>("id")?);
            }
        }
        Ok(out)
    }

    /// Live records of `object_key` with these ids, as the actor may see them.
    pub async fn records_by_id(&self, actor: &Actor, object_key: &str, ids: &[String]) -> StoreResult<Vec<Record>> {
        let view = self.object_for(actor, object_key)?;
        let mut out = Vec::new();
        for part in ids.chunks(500) {
            let filter = parse_filter(&view, &json!({"field": "id", "op": "in", "value": part}))?;
            let page = self
                .list(
                    actor,
                    object_key,
                    &ListQuery {
                        filter: Some(filter),
                        limit: 500,
                        total: TotalMode::None,
                        ..ListQuery::default()
                    },
                )
                .await?;
            out.extend(page.records);
        }
        Ok(out)
    }

    /// The customers a candidate with these keys would duplicate: the ones the actor may read
    /// (at most `limit`, those sharing the most reliable and the most keys first) and a count of
    /// the others. A key whose field is hidden from the actor finds nothing it may see.
    pub async fn find_duplicates(
        &self,
        actor: &Actor,
        keys: &[(KeyKind, String)],
        exclude: &[String],
        limit: usize,
    ) -> StoreResult<Duplicates> {
        if actor.scope(OBJECT, "read").is_none() && actor.scope(OBJECT, "create").is_none() {
            let object = self.object(OBJECT)?;
            return Err(crate::records::scope::forbidden(&object, "read").into());
        }
        let hits = self.duplicate_key_hits(keys, exclude).await?;
        let view = view_of(&self.object(OBJECT)?, actor);
        let mut kinds: BTreeMap<String, Vec<KeyKind>> = BTreeMap::new();
        for h in &hits {
            let entry = kinds.entry(h.customer_id.clone()).or_default();
            if !entry.contains(&h.kind) {
                entry.push(h.kind);
            }
        }
        let ids: Vec<String> = kinds.keys().cloned().collect();
        let readable = self.readable_ids(actor, OBJECT, &ids).await?;
        let mut visible: Vec<(String, Vec<KeyKind>)> = Vec::new();
        let mut hidden_count = 0;
        for (id, mut ks) in kinds {
            ks.retain(|k| view.field(k.field()).is_some());
            ks.sort();
            if readable.contains(&id) && !ks.is_empty() {
                visible.push((id, ks));
            } else {
                hidden_count += 1;
            }
        }
        // Best first: the most reliable key, then the most keys shared, then the oldest record.
        visible.sort_by(|(a_id, a), (b_id, b)| a[0].cmp(&b[0]).then(b.len().cmp(&a.len())).then(a_id.cmp(b_id)));
        let visible_count = visible.len();
        visible.truncate(limit);
        let shown: Vec<String> = visible.iter().map(|(id, _)| id.clone()).collect();
        let records = self.records_by_id(actor, OBJECT, &shown).await?;
        let matches = visible
            .into_iter()
            .filter_map(|(id, ks)| {
                let record = records
                    .iter()
                    .find(|r| r.get("id").and_then(Json::as_str) == Some(id.as_str()))?;
                Some(DuplicateMatch {
                    record: record.clone(),
                    matched_on: ks.iter().map(|k| k.as_str()).collect(),
                })
            })
            .collect();
        Ok(Duplicates {
            matches,
            visible_count,
            hidden_count,
        })
    }

    /// Rebuilds every customer's keys (after an upgrade that changed the rules, or for customers
    /// written before the index existed), 500 customers per transaction.
    pub async fn rebuild_duplicate_keys(&self) -> StoreResult<usize> {
        let backend = self.db().backend();
        let object = self.object(OBJECT)?;
        let mut after = String::new();
        let mut count = 0;
        loop {
            let mut sql = Sql::of(backend, "SELECT \"id\" FROM ");
            sql.ident(&object.table)
                .push(" WHERE \"id\" > ")
                .bind(after.as_str())
                .push(" ORDER BY \"id\" LIMIT 500");
            let ids: Vec<String> = sql
                .query()
                .fetch_all(self.db().reader())
                .await?
                .iter()
                .map(|row| row.try_get("id"))
                .collect::<Result<_, _>>()?;
            let Some(last) = ids.last().cloned() else { break };
            let mut tx = self.db().writer().begin().await?;
            // The page's values are read inside the transaction that writes their keys: read
            // before it, a rename committed in between would get its new keys replaced by the
            // old name's. On PostgreSQL the rows are also locked, in id order, so that a purge
            // or an update of one of them and this page wait for each other one way only (a
            // purge — customer row, then its keys by cascade — and this page — keys, then the
            // customer through the keys' foreign key — deadlocked). Customers purged since the
            // page's ids were read are left out.
            let mut page = Sql::of(
                backend,
                "SELECT \"id\", \"name\", \"phone\", \"email\", \"credit_code\" FROM ",
            );
            page.ident(&object.table)
                .push(" WHERE \"id\" IN (")
                .bind_list(ids.iter().map(|id| Bind::Text(id.clone())))
                .push(") ORDER BY \"id\"");
            if backend == Backend::Postgres {
                page.push(" FOR SHARE");
            }
            let rows = page.query().fetch_all(&mut *tx).await?;
            let mut records = Vec::with_capacity(rows.len());
            for row in &rows {
                let mut r = Record::new();
                for f in ["id", "name", "phone", "email", "credit_code"] {
                    let v: Option<String> = row.try_get(f)?;
                    r.insert(f.to_owned(), v.map_or(Json::Null, Json::String));
                }
                records.push(r);
            }
            // The page's old keys go in one statement, the new ones in another.
            let mut del = Sql::of(backend, "DELETE FROM customer_duplicate_keys WHERE customer_id IN (");
            del.bind_list(records.iter().map(|r| Bind::Text(id_of(r).to_owned())))
                .push(")");
            if !records.is_empty() {
                del.query().execute(&mut *tx).await?;
                write_new_keys_many(&mut tx, backend, &records).await?;
            }
            tx.commit().await?;
            count += ids.len();
            after = last;
        }
        crate::identity::set_setting(self.db(), VERSION_SETTING, &Json::String(KEYS_VERSION.into())).await?;
        Ok(count)
    }

    /// Whether the stored keys were made by this version of the rules.
    pub async fn duplicate_keys_current(&self) -> StoreResult<bool> {
        let stored = crate::identity::get_setting(self.db(), VERSION_SETTING).await?;
        Ok(stored == Some(Json::String(KEYS_VERSION.into())))
    }
}

/// A record's id, empty when it has none.
fn id_of(record: &Record) -> &str {
    record.get("id").and_then(Json::as_str).unwrap_or_default()
}

/// Refuses a candidate with no usable key (nothing to compare).
pub fn require_keys(keys: &[(KeyKind, String)]) -> Result<(), DomainError> {
    if keys.is_empty() {
        return Err(DomainError::invalid_query(
            "请至少提供客户名称、电话、邮箱或统一社会信用代码之一",
            "give at least one of name, phone, email or credit_code",
        ));
    }
    Ok(())
}
