//! The quick-search index in the database: `search_terms (object, term, record_id)`, written in
//! the same transaction as every change of a searchable field, and read by lists with `q=`.
//! `search_docs` keeps each indexed record's current terms, so a reindex deletes and inserts
//! only the entries that changed (decision 0009); only live records have entries.
//! Lookups are exact-term intersections (Chinese bigrams) or prefix ranges (pinyin, tokens) on
//! the primary key, so a search touches index entries, never the whole table.

use guanxi_core::ObjectDef;
use guanxi_core::search::{Plan, plan, prefix_end, terms};
use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::Value as Json;
use sqlx::{AnyConnection, Row};

use super::Engine;
use super::codec::{Record, aggregate, aggregated, push_field_expr};
use crate::catalog::Snapshot;
use crate::db::Backend;
use crate::error::{StoreError, StoreResult};
use crate::sql::{Batch, Bind, Sql};

/// Bumped when term generation changes; a server that finds an older index rebuilds it.
pub const INDEX_VERSION: &str = "2";
const INDEX_SETTING: &str = "search_index_version";

/// The index terms of a record's search fields, for the record itself or (`as_child`) for its
/// search parent.
fn field_terms(object: &ObjectDef, record: &Record, as_child: bool, out: &mut Vec<String>) {
    for key in &object.search_fields {
        let Some(field) = object.field(key) else { continue };
        if let Some(text) = record.get(key).and_then(Json::as_str) {
            out.extend(terms(text, object.term_kind(field, as_child)));
        }
    }
}

/// Brings the index entries of one record in step with its own search fields and those of its
/// live children (e.g. a customer's contacts).
pub(super) async fn reindex(
    conn: &mut AnyConnection,
    backend: Backend,
    snapshot: &Snapshot,
    object: &ObjectDef,
    id: &str,
) -> StoreResult<()> {
    reindex_many(conn, backend, snapshot, object, &[id]).await
}

/// Inserts `(record id, term)` index entries of one object, a few thousand per statement, in
/// key order (neighbouring entries share B-tree pages).
async fn insert_terms(
    conn: &mut AnyConnection,
    backend: Backend,
    object: &ObjectDef,
    entries: &mut [(&str, &str)],
) -> StoreResult<()> {
    for sql in insert_terms_sql(backend, object, entries) {
        sql.query().execute(&mut *conn).await?;
    }
    Ok(())
}

/// The statements of [`insert_terms`].
fn insert_terms_sql(backend: Backend, object: &ObjectDef, entries: &mut [(&str, &str)]) -> Vec<Sql> {
    entries.sort_unstable_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)));
    let mut statements = Vec::new();
    for chunk in entries.chunks(5_000) {
        let mut ins = Sql::of(backend, "INSERT INTO search_terms (object, term, record_id) VALUES ");
        for (i, (id, term)) in chunk.iter().enumerate() {
            if i > 0 {
                ins.push(", ");
            }
            ins.push("(")
                .bind(object.key.as_str())
                .push(", ")
                .bind(*term)
                .push(", ")
                .bind(*id)
                .push(")");
        }
        // An entry already there (written by a reindex whose term list was lost) is adopted
        // rather than failing every later edit of the record.
        ins.push(" ON CONFLICT (object, term, record_id) DO NOTHING");
        statements.push(ins);
    }
    statements
}

/// Deletes index entries of one object by their primary key: one statement per record, its
/// terms as an IN list (removals are few: a renamed customer, a deleted contact, a purge).
async fn delete_terms(
    conn: &mut AnyConnection,
    backend: Backend,
    object: &ObjectDef,
    entries: &[(&str, Vec<&str>)],
) -> StoreResult<()> {
    for (id, terms) in entries {
        for chunk in terms.chunks(5_000) {
            let mut del = Sql::of(backend, "DELETE FROM search_terms WHERE object = ");
            del.bind(object.key.as_str())
                .push(" AND record_id = ")
                .bind(*id)
                .push(" AND term IN (")
                .bind_list(chunk.iter().map(|t| Bind::Text((*t).to_owned())))
                .push(")");
            del.query().execute(&mut *conn).await?;
        }
    }
    Ok(())
}

/// A record's stored term list, and whether its entries are still staged (`search_pending`):
/// written to `search_docs` by a staged create but not yet merged into `search_terms`.
struct StoredDoc {
    terms: BTreeSet<String>,
    pending: bool,
}

/// The term sets stored in `search_docs` for some records of one object (records without a
/// row have no entries).
async fn read_docs(
    conn: &mut AnyConnection,
    backend: Backend,
    object: &ObjectDef,
    ids: &[&str],
) -> StoreResult<HashMap<String, StoredDoc>> {
    let mut docs = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(5_000) {
        // The staged flag comes with the row, so the common case (nothing staged) costs no
        // extra statement.
        let mut sql = Sql::of(
            backend,
            "SELECT d.record_id, d.terms, CASE WHEN EXISTS (SELECT 1 FROM search_pending p \
             WHERE p.object = d.object AND p.record_id = d.record_id) THEN 1 ELSE 0 END AS pending \
             FROM search_docs d WHERE d.object = ",
        );
        sql.bind(object.key.as_str())
            .push(" AND d.record_id IN (")
            .bind_list(chunk.iter().map(|id| Bind::Text((*id).to_owned())))
            .push(")");
        for row in sql.query().fetch_all(&mut *conn).await? {
            let id: String = row.try_get("record_id")?;
            let terms: String = row.try_get("terms")?;
            let pending: i32 = row.try_get("pending")?;
            // A row this code did not write would be a fault worth stopping for: the entries it
            // describes could not be removed.
            let set: BTreeSet<String> = serde_json::from_str(&terms).map_err(|e| {
                StoreError::Internal(anyhow::anyhow!("search_docs row of {id} is not a term list: {e}"))
            })?;
            docs.insert(
                id,
                StoredDoc {
                    terms: set,
                    pending: pending != 0,
                },
            );
        }
    }
    Ok(docs)
}

/// Takes records off the staged list: their caller writes (or drops) their entries itself, so
/// a later merge must not.
async fn unstage(conn: &mut AnyConnection, backend: Backend, object: &ObjectDef, ids: &[&str]) -> StoreResult<()> {
    for chunk in ids.chunks(5_000) {
        let mut sql = Sql::of(backend, "DELETE FROM search_pending WHERE object = ");
        sql.bind(object.key.as_str())
            .push(" AND record_id IN (")
            .bind_list(chunk.iter().map(|id| Bind::Text((*id).to_owned())))
            .push(")");
        sql.query().execute(&mut *conn).await?;
    }
    Ok(())
}

/// The statements that put freshly created records on the staged list.
fn stage_sql(backend: Backend, object: &ObjectDef, ids: &[&str]) -> Vec<Sql> {
    ids.chunks(5_000)
        .map(|chunk| {
            let mut ins = Sql::of(backend, "INSERT INTO search_pending (object, record_id) VALUES ");
            for (i, id) in chunk.iter().enumerate() {
                if i > 0 {
                    ins.push(", ");
                }
                ins.push("(").bind(object.key.as_str()).push(", ").bind(*id).push(")");
            }
            ins.push(" ON CONFLICT (object, record_id) DO NOTHING");
            ins
        })
        .collect()
}

/// Writes the term sets of some records of one object: a row per record with terms (`upsert`
/// replaces an existing row), none for a record without.
async fn write_docs(
    conn: &mut AnyConnection,
    backend: Backend,
    object: &ObjectDef,
    docs: &[(&str, &BTreeSet<String>)],
    upsert: bool,
) -> StoreResult<()> {
    for sql in write_docs_sql(backend, object, docs, upsert) {
        sql.query().execute(&mut *conn).await?;
    }
    Ok(())
}

/// The statements of [`write_docs`].
fn write_docs_sql(backend: Backend, object: &ObjectDef, docs: &[(&str, &BTreeSet<String>)], upsert: bool) -> Vec<Sql> {
    let mut statements = Vec::new();
    let (kept, emptied): (Vec<_>, Vec<_>) = docs.iter().partition(|(_, terms)| !terms.is_empty());
    for chunk in kept.chunks(5_000) {
        let mut ins = Sql::of(backend, "INSERT INTO search_docs (object, record_id, terms) VALUES ");
        for (i, (id, terms)) in chunk.iter().enumerate() {
            if i > 0 {
                ins.push(", ");
            }
            let list = Json::from(terms.iter().map(String::as_str).collect::<Vec<_>>()).to_string();
            ins.push("(")
                .bind(object.key.as_str())
                .push(", ")
                .bind(*id)
                .push(", ")
                .bind(list)
                .push(")");
        }
        if upsert {
            ins.push(" ON CONFLICT (object, record_id) DO UPDATE SET terms = excluded.terms");
        }
        statements.push(ins);
    }
    for chunk in emptied.chunks(5_000) {
        let mut del = Sql::of(backend, "DELETE FROM search_docs WHERE object = ");
        del.bind(object.key.as_str())
            .push(" AND record_id IN (")
            .bind_list(chunk.iter().map(|(id, _)| Bind::Text((*id).to_owned())))
            .push(")");
        statements.push(del);
    }
    statements
}

/// Removes every index entry of a record that is leaving the live set (deleted or purged),
/// as its stored term list names them (a staged record has none yet: it only leaves the list).
async fn drop_entries(conn: &mut AnyConnection, backend: Backend, object: &ObjectDef, id: &str) -> StoreResult<()> {
    if object.search_fields.is_empty() {
        return Ok(());
    }
    lock_records(conn, backend, &object.key, &[id]).await?;
    let docs = read_docs(conn, backend, object, &[id]).await?;
    let Some(doc) = docs.get(id) else {
        return Ok(());
    };
    if doc.pending {
        unstage(conn, backend, object, &[id]).await?;
    } else {
        let gone = vec![(id, doc.terms.iter().map(String::as_str).collect::<Vec<_>>())];
        delete_terms(conn, backend, object, &gone).await?;
    }
    let empty = BTreeSet::new();
    write_docs(conn, backend, object, &[(id, &empty)], true).await
}

/// PostgreSQL runs writes side by side: two transactions reindexing one record (a contact
/// edited while another is added, an import beside a user) would both start from the same
/// stored term list and the later one would overwrite what the earlier added. A transaction
/// lock per record, taken in id order (no deadlock between two reindexes), serialises them.
/// SQLite has one writer and needs none.
async fn lock_records(conn: &mut AnyConnection, backend: Backend, object_key: &str, ids: &[&str]) -> StoreResult<()> {
    if backend != Backend::Postgres || ids.is_empty() {
        return Ok(());
    }
    let mut sorted: Vec<&str> = ids.to_vec();
    sorted.sort_unstable();
    for chunk in sorted.chunks(5_000) {
        // The subquery's ORDER BY (kept by OFFSET 0) makes the locks come in id order.
        let mut sql = Sql::of(
            backend,
            "SELECT count(*) AS n FROM (SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) \
             FROM (SELECT k FROM (VALUES ",
        );
        for (i, id) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(").bind(format!("search:{object_key}:{id}")).push(")");
        }
        sql.push(") AS v(k) ORDER BY k OFFSET 0) AS s) AS l");
        sql.query().fetch_one(&mut *conn).await?;
    }
    Ok(())
}

/// How a multi-row create writes the search entries of its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchEntries {
    /// In the create's own transaction: the records are searchable when it commits.
    Immediate,
    /// Only the term lists, with the records put on the staged list (`search_pending`); their
    /// entries arrive with the next [`Engine::merge_staged_search`], written by the database
    /// from the term lists in a few large transactions. For large imports (decision 0014).
    Staged,
}

/// Index entries for freshly created records (which have no children and no entries yet), one
/// multi-row INSERT per chunk — or, `Staged`, their term lists and a place on the staged list —
/// and a reindex of each distinct search parent they belong to (a new contact's phone finds
/// its customer). `pending` holds the creator's own statements that return nothing (its audit
/// entries): they are sent in one call with the entries.
pub(super) async fn index_created(
    conn: &mut AnyConnection,
    backend: Backend,
    snapshot: &Snapshot,
    object: &ObjectDef,
    records: &[Record],
    mut pending: Batch,
    entries: SearchEntries,
) -> StoreResult<()> {
    if !object.search_fields.is_empty() {
        let mut docs: Vec<(&str, BTreeSet<String>)> = Vec::with_capacity(records.len());
        for r in records {
            let id = r.get("id").and_then(Json::as_str).unwrap_or_default();
            let mut terms = Vec::new();
            field_terms(object, r, false, &mut terms);
            docs.push((id, terms.into_iter().collect()));
        }
        match entries {
            SearchEntries::Immediate => {
                let mut entries: Vec<(&str, &str)> = docs
                    .iter()
                    .flat_map(|(id, terms)| terms.iter().map(|t| (*id, t.as_str())))
                    .collect();
                pending.extend(insert_terms_sql(backend, object, &mut entries));
            }
            SearchEntries::Staged => {
                let staged: Vec<&str> = docs.iter().filter(|(_, t)| !t.is_empty()).map(|(id, _)| *id).collect();
                pending.extend(stage_sql(backend, object, &staged));
            }
        }
        let docs: Vec<(&str, &BTreeSet<String>)> = docs.iter().map(|(id, t)| (*id, t)).collect();
        pending.extend(write_docs_sql(backend, object, &docs, false));
    }
    pending.execute(&mut *conn).await?;
    if let Some(parent) = &object.search_parent {
        let parent_def = snapshot.object(&parent.object)?;
        let mut seen = HashSet::new();
        let parents: Vec<&str> = records
            .iter()
            .filter_map(|r| r.get(&parent.field).and_then(Json::as_str))
            .filter(|p| seen.insert(*p))
            .collect();
        for chunk in parents.chunks(500) {
            reindex_many(conn, backend, snapshot, &parent_def, chunk).await?;
        }
    }
    Ok(())
}

/// [`reindex`] for many records of one object with a fixed number of statements: read their
/// stored term sets and their own and their children's search values, then delete the entries
/// that went away and insert the new ones. Records that are gone or in the recycle bin end up
/// with no entries.
async fn reindex_many(
    conn: &mut AnyConnection,
    backend: Backend,
    snapshot: &Snapshot,
    object: &ObjectDef,
    ids: &[&str],
) -> StoreResult<()> {
    if object.search_fields.is_empty() || ids.is_empty() {
        return Ok(());
    }
    // Each record once: a repeated id would have its new entries inserted twice.
    let mut seen = HashSet::with_capacity(ids.len());
    let ids: Vec<&str> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
    let ids = ids.as_slice();
    lock_records(conn, backend, &object.key, ids).await?;
    let old = read_docs(conn, backend, object, ids).await?;
    // Only live records get entries.
    let own = select_search_values_in(conn, backend, object, "id", ids).await?;
    let mut new: HashMap<String, BTreeSet<String>> = own.iter().map(|(id, _)| (id.clone(), BTreeSet::new())).collect();
    let mut add = |owner: &str, def: &ObjectDef, as_child: bool, r: &Record| {
        let mut out = Vec::new();
        field_terms(def, r, as_child, &mut out);
        if let Some(set) = new.get_mut(owner) {
            set.extend(out);
        }
    };
    for (id, r) in &own {
        add(id, object, false, r);
    }
    for child in snapshot.objects() {
        let Some(parent) = &child.search_parent else { continue };
        if parent.object != object.key {
            continue;
        }
        for (owner, r) in select_search_values_in(conn, backend, child, &parent.field, ids).await? {
            add(&owner, child, true, &r);
        }
    }
    // A staged record has a term list but no entries yet: it leaves the staged list and gets
    // all of its entries here (a later merge must not write the old list's).
    let staged: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|id| old.get(*id).is_some_and(|d| d.pending))
        .collect();
    unstage(conn, backend, object, &staged).await?;
    let empty = BTreeSet::new();
    let mut gone: Vec<(&str, Vec<&str>)> = Vec::new();
    let mut added: Vec<(&str, &str)> = Vec::new();
    let mut changed: Vec<(&str, &BTreeSet<String>)> = Vec::new();
    for id in ids {
        let stored = old.get(*id);
        let before = stored.filter(|d| !d.pending).map_or(&empty, |d| &d.terms);
        let after = new.get(*id).unwrap_or(&empty);
        if before == after && stored.is_none_or(|d| !d.pending) {
            continue;
        }
        let removed: Vec<&str> = before.difference(after).map(String::as_str).collect();
        if !removed.is_empty() {
            gone.push((id, removed));
        }
        added.extend(after.difference(before).map(|t| (*id, t.as_str())));
        changed.push((id, after));
    }
    delete_terms(conn, backend, object, &gone).await?;
    insert_terms(conn, backend, object, &mut added).await?;
    write_docs(conn, backend, object, &changed, true).await
}

/// The non-custom search fields of an object (custom ones live in the JSON column and are not
/// indexed).
fn stored_search_fields(object: &ObjectDef) -> Vec<&str> {
    object
        .search_fields
        .iter()
        .filter(|k| object.field(k).is_some_and(|f| !f.custom))
        .map(String::as_str)
        .collect()
}

/// `SELECT <column> AS gx_owner, <search fields> FROM <table> WHERE deleted_at IS NULL`.
fn select_owner_and_fields(backend: Backend, object: &ObjectDef, column: &str, fields: &[&str]) -> Sql {
    let mut sql = Sql::of(backend, "SELECT ");
    sql.ident(column).push(" AS gx_owner");
    for f in fields {
        sql.push(", ").ident(f);
    }
    sql.push(" FROM ")
        .ident(&object.table)
        .push(" WHERE \"deleted_at\" IS NULL");
    sql
}

/// Decodes the rows of [`select_owner_and_fields`].
fn decode_owner_and_fields(rows: &[sqlx::any::AnyRow], fields: &[&str]) -> StoreResult<Vec<(String, Record)>> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let owner: String = row.try_get("gx_owner")?;
        let mut r = Record::new();
        for f in fields {
            let v: Option<String> = row.try_get(*f)?;
            r.insert((*f).to_owned(), v.map_or(Json::Null, Json::String));
        }
        out.push((owner, r));
    }
    Ok(out)
}

/// The search-field values of live rows whose `column` is one of `values`, each with that
/// column's value (the record itself for `id`, the parent for a child's reference).
async fn select_search_values_in(
    conn: &mut AnyConnection,
    backend: Backend,
    object: &ObjectDef,
    column: &str,
    values: &[&str],
) -> StoreResult<Vec<(String, Record)>> {
    let fields = stored_search_fields(object);
    if fields.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = select_owner_and_fields(backend, object, column, &fields);
    sql.push(" AND ")
        .ident(column)
        .push(" IN (")
        .bind_list(values.iter().map(|v| Bind::Text((*v).to_owned())))
        .push(")");
    let rows = sql.query().fetch_all(&mut *conn).await?;
    decode_owner_and_fields(&rows, &fields)
}

/// The search-field values of the next `limit` live records after id `after`, in id order.
async fn select_search_page(
    conn: &mut AnyConnection,
    backend: Backend,
    object: &ObjectDef,
    after: &str,
    limit: i64,
) -> StoreResult<Vec<(String, Record)>> {
    let fields = stored_search_fields(object);
    let mut sql = select_owner_and_fields(backend, object, "id", &fields);
    sql.push(" AND \"id\" > ")
        .bind(after)
        .push(" ORDER BY \"id\" LIMIT ")
        .bind(limit);
    let rows = sql.query().fetch_all(&mut *conn).await?;
    decode_owner_and_fields(&rows, &fields)
}

/// Keeps the index in step after a change of `record` (and, for an update, its `old` version):
/// the record's own entry when a search field changed, and its search parent's entries.
pub(super) async fn after_change(
    conn: &mut AnyConnection,
    backend: Backend,
    snapshot: &Snapshot,
    object: &ObjectDef,
    record: &Record,
    old: Option<&Record>,
) -> StoreResult<()> {
    let changed = |key: &str| old.is_none_or(|o| o.get(key) != record.get(key));
    let id = record.get("id").and_then(Json::as_str).unwrap_or_default();
    if !object.search_fields.is_empty() && object.search_fields.iter().any(|k| changed(k)) {
        reindex(conn, backend, snapshot, object, id).await?;
    }
    if let Some(parent) = &object.search_parent {
        let touched = old.is_none() || changed(&parent.field) || object.search_fields.iter().any(|k| changed(k));
        if touched {
            let parent_def = snapshot.object(&parent.object)?;
            let mut parents: Vec<&str> = Vec::new();
            if let Some(p) = record.get(&parent.field).and_then(Json::as_str) {
                parents.push(p);
            }
            if let Some(p) = old.and_then(|o| o.get(&parent.field)).and_then(Json::as_str)
                && !parents.contains(&p)
            {
                parents.push(p);
            }
            for p in parents {
                reindex(conn, backend, snapshot, &parent_def, p).await?;
            }
        }
    }
    Ok(())
}

/// After a delete, restore or purge. Only live records have entries, so the record's own go
/// (delete, purge: straight from its stored term list) or come back (restore, `live`), and its
/// search parent's follow (a contact's phone no longer finds a customer, or does again).
pub(super) async fn after_lifecycle(
    conn: &mut AnyConnection,
    backend: Backend,
    snapshot: &Snapshot,
    object: &ObjectDef,
    record: &Record,
    live: bool,
) -> StoreResult<()> {
    let id = record.get("id").and_then(Json::as_str).unwrap_or_default();
    if live {
        reindex(conn, backend, snapshot, object, id).await?;
    } else {
        drop_entries(conn, backend, object, id).await?;
    }
    if let Some(parent) = &object.search_parent
        && let Some(p) = record.get(&parent.field).and_then(Json::as_str)
    {
        let parent_def = snapshot.object(&parent.object)?;
        reindex(conn, backend, snapshot, &parent_def, p).await?;
    }
    Ok(())
}

/// How many matching records a quick search ranks. The candidates are found by walking the
/// index (newest first for Chinese and word queries, closest term first for pinyin prefixes)
/// with every other condition of the list applied inside the walk, so a search costs the same
/// on 10,000 or 1,000,000 records and filters or data scope never lose a match to the bound.
/// Ranking, the page and the total then work on at most this many rows; a total that reaches
/// it is reported as a lower bound ("200+"): quick search is for finding a record, filters are
/// for counting.
pub const SEARCH_CANDIDATES: usize = 200;

/// The records a quick search ranks (at most [`SEARCH_CANDIDATES`], best first, no duplicates)
/// with their titles, and whether the bound cut the walk short. `push_conditions` appends the list's
/// other conditions (recycle bin, scope, filter) for the object's table, starting with `AND`.
pub(super) async fn candidates(
    conn: impl sqlx::Acquire<'_, Database = sqlx::Any>,
    backend: Backend,
    object: &ObjectDef,
    query: &str,
    rarity: &TermRarity,
    push_conditions: impl Fn(&mut Sql),
) -> StoreResult<Candidates> {
    let mut conn = conn.acquire().await?;
    // Each walk with the order its rows come in, which the aggregate below keeps.
    let statements: Vec<(Sql, &str)> = match plan(query) {
        Plan::Nothing => Vec::new(),
        Plan::AllOf(terms) => {
            // Every term must be present: walk the rarest term's entries newest first (ids are
            // time-ordered UUIDs) and probe the others by primary key.
            let terms = rarest_first(&mut conn, backend, object, terms, rarity).await?;
            if terms.is_empty() {
                return Ok(Candidates::default());
            }
            let mut sql = walk_start(backend, object);
            let mut iter = terms.into_iter();
            sql.push(" AND t0.term = ").bind(iter.next().unwrap_or_default());
            for (i, term) in iter.enumerate() {
                let t = format!("t{}", i + 1);
                sql.push(&format!(
                    " AND EXISTS (SELECT 1 FROM search_terms {t} WHERE {t}.object = t0.object AND {t}.term = "
                ))
                .bind(term)
                .push(&format!(" AND {t}.record_id = t0.record_id)"));
            }
            push_conditions(&mut sql);
            sql.push(" ORDER BY t0.record_id DESC");
            vec![(sql, "record_id DESC")]
        }
        // One range walk per prefix (an OR of ranges defeats SQLite's index use), in index
        // order: the shortest, i.e. closest, completion of a prefix comes first.
        Plan::AnyPrefix(prefixes) => prefixes
            .iter()
            .map(|p| {
                let mut sql = walk_start(backend, object);
                sql.push(" AND t0.term >= ")
                    .bind(p.as_str())
                    .push(" AND t0.term < ")
                    .bind(prefix_end(p));
                push_conditions(&mut sql);
                (sql, "gx_term, record_id")
            })
            .collect(),
    };
    let mut found = Candidates::default();
    let mut seen = std::collections::HashSet::new();
    for (mut sql, order) in statements {
        let room = SEARCH_CANDIDATES - found.ids.len();
        if room == 0 {
            found.truncated = true;
            break;
        }
        // One more than there is room for tells whether the walk was cut short.
        sql.push(" LIMIT ").bind(i64::try_from(room + 1).unwrap_or(i64::MAX));
        // The walk's rows come back as one JSON array in one row: each row of a result costs
        // a message from SQLite's thread and a conversion to a database-neutral row, several
        // times the work of the walk itself for a couple of hundred short rows.
        let pair = match backend {
            Backend::Sqlite => "json_array(record_id, gx_title)",
            Backend::Postgres => "json_build_array(record_id, gx_title)",
        };
        aggregate(&mut sql, pair, order);
        let row = sql.query().fetch_one(&mut *conn).await?;
        let walked: Vec<(String, Option<String>)> = aggregated(row.try_get::<Option<String>, _>("gx_rows")?)?;
        for (id, title) in walked {
            if seen.contains(&id) {
                continue;
            }
            if found.ids.len() == SEARCH_CANDIDATES {
                found.truncated = true;
                break;
            }
            seen.insert(id.clone());
            found.titles.push(title);
            found.ids.push(id);
        }
    }
    Ok(found)
}

/// What a quick search's index walk found.
#[derive(Debug, Default)]
pub(super) struct Candidates {
    /// Ids of matching records (at most [`SEARCH_CANDIDATES`], best first, no duplicates).
    pub ids: Vec<String>,
    /// Their titles, for ranking (`None` where the title is empty or hidden).
    pub titles: Vec<Option<String>>,
    /// Whether the bound cut the walk short.
    pub truncated: bool,
}

/// Entry counts that tell a rare term from a common one. Counting stops at the bound, so a probe
/// costs at most that many index entries per term (a few milliseconds, once per term and
/// [`RARITY_FRESH_FOR`]). Terms past the bound look alike, so the bound must sit above the
/// counts that matter at a million records: there a city-and-brand bigram such as 山宏 has a
/// few thousand entries, a brand (宏远) or a trade (能源) tens of thousands, and a bound of 2,000
/// made all three look alike, so the walk went through the brand's entries (the first in code
/// point order) probing for the other two (docs/BENCHMARKS.md, "term rarity at L").
const RARITY_BOUND: i64 = 50_000;

/// How long a term's counted rarity is reused. Counts of thousands hardly move in minutes, and a
/// stale one costs speed, never a match.
const RARITY_FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(600);

/// Distinct terms whose rarity is remembered at most; the memory is emptied when full.
const RARITY_MAX_TERMS: usize = 20_000;

/// Remembered entry counts of search terms (up to [`RARITY_BOUND`]). Counting three common
/// bigrams visits up to 150,000 index entries, more work than the walk it orders; a term's count
/// hardly moves in minutes, and a stale count only makes a walk slower, never its answer
/// different (any order of the terms finds the same records). A count of zero is never kept:
/// it ends the search at once, and a record created a second later must be found.
#[derive(Debug, Clone, Default)]
pub(super) struct TermRarity {
    counts: std::sync::Arc<std::sync::Mutex<CountsByTerm>>,
}

/// Counted entries and when they were counted, by (object, term).
type CountsByTerm = std::collections::HashMap<(String, String), (i64, std::time::Instant)>;

impl TermRarity {
    fn recall(&self, object: &str, term: &str) -> Option<i64> {
        let counts = self.counts.lock().ok()?;
        counts
            .get(&(object.to_owned(), term.to_owned()))
            .filter(|(_, at)| at.elapsed() < RARITY_FRESH_FOR)
            .map(|(n, _)| *n)
    }

    fn remember(&self, object: &str, term: &str, count: i64) {
        if count == 0 {
            return;
        }
        if let Ok(mut counts) = self.counts.lock() {
            if counts.len() >= RARITY_MAX_TERMS {
                counts.clear();
            }
            counts.insert((object.to_owned(), term.to_owned()), (count, std::time::Instant::now()));
        }
    }
}

/// The terms of an all-of search, rarest first, or none when one of them has no entry at all
/// (nothing can match). The walk goes through the first term's entries until it has found
/// enough records having all the others, so a common first term with a rare combination
/// (平顶山, 宏远 and 能源 together: 62,000 entries of 宏远 for 744 matches at a million
/// customers) would walk them all; walking the rarest bounds the walk by its count.
async fn rarest_first(
    conn: &mut AnyConnection,
    backend: Backend,
    object: &ObjectDef,
    terms: Vec<String>,
    rarity: &TermRarity,
) -> StoreResult<Vec<String>> {
    if terms.len() < 2 {
        return Ok(terms);
    }
    let mut counts: Vec<Option<i64>> = terms.iter().map(|t| rarity.recall(&object.key, t)).collect();
    let unknown: Vec<usize> = (0..terms.len()).filter(|&i| counts[i].is_none()).collect();
    if !unknown.is_empty() {
        let mut sql = Sql::of(backend, "SELECT ");
        for (n, &i) in unknown.iter().enumerate() {
            if n > 0 {
                sql.push(", ");
            }
            sql.push("(SELECT count(*) FROM (SELECT 1 FROM search_terms WHERE object = ")
                .bind(object.key.as_str())
                .push(" AND term = ")
                .bind(terms[i].as_str())
                .push(" LIMIT ")
                .bind(RARITY_BOUND)
                .push(&format!(") AS s{n}) AS c{n}"));
        }
        let row = sql.query().fetch_one(&mut *conn).await?;
        for (n, &i) in unknown.iter().enumerate() {
            let count: i64 = row.try_get(format!("c{n}").as_str())?;
            rarity.remember(&object.key, &terms[i], count);
            counts[i] = Some(count);
        }
    }
    if counts.contains(&Some(0)) {
        return Ok(Vec::new());
    }
    let mut ranked: Vec<(i64, String)> = counts.into_iter().map(|n| n.unwrap_or(0)).zip(terms).collect();
    ranked.sort_by_key(|(n, _)| *n);
    Ok(ranked.into_iter().map(|(_, t)| t).collect())
}

/// `SELECT t0.record_id FROM search_terms t0 JOIN <table> … WHERE t0.object = ?`. The table is
/// joined so that the list's other conditions apply inside the walk; they name its columns
/// unqualified, which is unambiguous because `search_terms` has none of them.
fn walk_start(backend: Backend, object: &ObjectDef) -> Sql {
    let mut sql = Sql::of(backend, "SELECT t0.record_id, t0.term AS gx_term, ");
    // The title comes along for ranking, so the page can be chosen without reading the
    // candidates' rows again (absent when the actor may not see it).
    match object.field(&object.title_field) {
        Some(title) => {
            sql.push("CAST(");
            push_field_expr(&mut sql, title);
            sql.push(" AS TEXT)");
        }
        None => {
            sql.push("CAST(NULL AS TEXT)");
        }
    }
    sql.push(" AS gx_title FROM search_terms t0 JOIN ");
    sql.ident(&object.table)
        .push(" ON ")
        .ident(&object.table)
        .push(".\"id\" = t0.record_id WHERE t0.object = ")
        .bind(object.key.as_str());
    sql
}

/// Records per page read by the bulk rebuild.
const BULK_PAGE: i64 = 2_000;

impl Engine {
    /// Bulk loads (benchmark datasets): multi-row creates stop writing search terms until
    /// [`Engine::rebuild_search_index_bulk`] builds the whole index in sorted order, which is an
    /// order of magnitude cheaper than inserting ~100 terms per customer at random places of a
    /// B-tree larger than memory. The stored index is marked out of date first, so a load that
    /// dies half-way leaves a database whose server rebuilds the index when it starts.
    pub async fn defer_search_index(&self) -> StoreResult<()> {
        crate::identity::set_setting(&self.db, INDEX_SETTING, &Json::String("deferred".into())).await?;
        self.search_deferred.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    pub(super) fn search_index_deferred(&self) -> bool {
        self.search_deferred.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Rebuilds the whole search index in one pass per object and one sorted insert, for
    /// `guanxi reindex` and the end of a bulk load. It holds the (SQLite) writer throughout and
    /// replaces the index with what it read, so nothing else may write meanwhile: the commands
    /// that call it refuse to run beside a server, and the server's own start-up rebuild uses
    /// [`Engine::rebuild_search_index`] instead. On SQLite the staged terms and the sort spill to
    /// temporary files (`SQLITE_TMPDIR`, else `/var/tmp` or `/tmp`): allow for about the index's
    /// size there, and as much again in the WAL until the checkpoint. Records
    /// are read in id order with their search children, their terms staged one row per record
    /// in a temporary table, then copied to `search_docs` and expanded into entries inserted in
    /// primary-key order — appends to the B-trees instead of random inserts.
    /// Ends the deferral of [`Engine::defer_search_index`]. Returns the records indexed.
    pub async fn rebuild_search_index_bulk(&self) -> StoreResult<usize> {
        let snapshot = self.catalog.snapshot();
        let backend = self.db.backend();
        let mut conn = self.db.writer().acquire().await?;
        if backend == Backend::Sqlite {
            // The staged terms and the sort can be larger than memory: temporary files, and
            // two sorter threads.
            sqlx::query("PRAGMA temp_store=FILE").execute(&mut *conn).await?;
            sqlx::query("PRAGMA threads=2").execute(&mut *conn).await?;
        }
        sqlx::query("DROP TABLE IF EXISTS gx_search_stage")
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "CREATE TEMP TABLE gx_search_stage (object TEXT NOT NULL, record_id TEXT NOT NULL, terms TEXT NOT NULL)",
        )
        .execute(&mut *conn)
        .await?;
        let result = bulk_rebuild_on(&mut conn, backend, &snapshot).await;
        // Whatever happened, the deferral ends (a failed rebuild leaves the setting out of
        // date, so the next server start rebuilds) and the connection goes back to the pool as
        // it was; the rebuild's own error wins over a clean-up error.
        self.search_deferred.store(false, std::sync::atomic::Ordering::SeqCst);
        let mut cleanup = vec!["DROP TABLE IF EXISTS gx_search_stage"];
        if backend == Backend::Sqlite {
            cleanup.extend(["PRAGMA threads=0", "PRAGMA temp_store=MEMORY"]);
        }
        let mut cleaned: StoreResult<()> = Ok(());
        for statement in cleanup {
            if let Err(e) = sqlx::query(statement).execute(&mut *conn).await {
                cleaned = Err(e.into());
            }
        }
        drop(conn);
        let count = result?;
        cleaned?;
        crate::identity::set_setting(&self.db, INDEX_SETTING, &Json::String(INDEX_VERSION.into())).await?;
        // PostgreSQL last analysed the index while it was empty; with those statistics it
        // planned a search over 108 million entries as a scan (seconds per query).
        self.db.refresh_statistics().await?;
        Ok(count)
    }

    /// Rebuilds the whole search index (after an upgrade that changed how terms are made, or
    /// for data loaded before the index existed), in batches so the writer is never held long.
    pub async fn rebuild_search_index(&self) -> StoreResult<usize> {
        let snapshot = self.catalog.snapshot();
        let backend = self.db.backend();
        let mut count = 0;
        for object in snapshot.objects() {
            if object.search_fields.is_empty() {
                continue;
            }
            let mut after = String::new();
            loop {
                let mut sql = Sql::of(backend, "SELECT id FROM ");
                sql.ident(&object.table)
                    .push(" WHERE deleted_at IS NULL AND id > ")
                    .bind(after.as_str())
                    .push(" ORDER BY id LIMIT 500");
                let ids: Vec<String> = sql
                    .query()
                    .fetch_all(self.db.reader())
                    .await?
                    .iter()
                    .map(|r| r.try_get::<String, _>("id"))
                    .collect::<Result<_, _>>()?;
                let Some(last) = ids.last().cloned() else { break };
                let mut tx = self.db.writer().begin().await?;
                for id in &ids {
                    reindex(&mut tx, backend, &snapshot, object, id).await?;
                }
                tx.commit().await?;
                count += ids.len();
                after = last;
            }
        }
        crate::identity::set_setting(&self.db, INDEX_SETTING, &Json::String(INDEX_VERSION.into())).await?;
        Ok(count)
    }

    /// Merges the entries of staged records (`SearchEntries::Staged` creates) into the index:
    /// per transaction up to [`MERGE_WINDOW`] records of one object ([`MERGE_WINDOW_POSTGRES`]
    /// on PostgreSQL), their entries expanded from their term lists by the database itself (no
    /// entry is built, bound or parsed in Rust), and every index page they touch written once
    /// per window rather than once per import chunk that touched it. Records reindexed or
    /// deleted since they were staged have left the list and are not touched. Returns the
    /// records merged.
    pub async fn merge_staged_search(&self) -> StoreResult<usize> {
        let backend = self.db.backend();
        let mut merged = 0;
        loop {
            let mut tx = self.db.writer().begin().await?;
            let mut sql = Sql::of(
                backend,
                "SELECT object, record_id FROM search_pending ORDER BY object, record_id LIMIT ",
            );
            sql.bind(match backend {
                Backend::Sqlite => MERGE_WINDOW,
                Backend::Postgres => MERGE_WINDOW_POSTGRES,
            });
            let window = sql.query().fetch_all(&mut *tx).await?;
            let Some(first) = window.first() else {
                tx.commit().await?;
                return Ok(merged);
            };
            let object: String = first.try_get("object")?;
            let mut ids = Vec::with_capacity(window.len());
            for row in &window {
                if row.try_get::<String, _>("object")? != object {
                    break;
                }
                ids.push(row.try_get::<String, _>("record_id")?);
            }
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            lock_records(&mut tx, backend, &object, &ids).await?;
            merged += merge_window(&mut tx, backend, &object, &ids).await?;
            tx.commit().await?;
        }
    }

    /// Whether the stored index was built by this version of the term rules.
    pub async fn search_index_current(&self) -> StoreResult<bool> {
        let stored = crate::identity::get_setting(&self.db, INDEX_SETTING).await?;
        Ok(stored == Some(Json::String(INDEX_VERSION.into())))
    }
}

/// Staged records merged per transaction by [`Engine::merge_staged_search`]: a hundred import
/// chunks' worth, whose entries share the hot pages of common terms, while other writers wait
/// about a second at most (0.6–1.0 s per window importing into M, from the import's merge log).
/// Entries go in term-list order: sorting a window first cost more than its locality saved
/// (decision 0014).
const MERGE_WINDOW: i64 = 25_000;

/// [`MERGE_WINDOW`] on PostgreSQL, where a merge takes a transaction lock per record (see
/// [`lock_records`]) and the server's shared lock table holds 6,400 by default
/// (`max_locks_per_transaction` 64 × 100 connections, plus some slack: 15,000 in one
/// transaction failed here with "out of shared memory").
const MERGE_WINDOW_POSTGRES: i64 = 1_000;

/// Inserts the entries of some staged records of one object (ids in order) and takes them off
/// the staged list, in the caller's transaction (which holds their record locks).
async fn merge_window(conn: &mut AnyConnection, backend: Backend, object: &str, ids: &[&str]) -> StoreResult<usize> {
    let (Some(first), Some(last)) = (ids.first(), ids.last()) else {
        return Ok(0);
    };
    match backend {
        // One writer: the staged rows in the id range are exactly the ones read above.
        // `OR IGNORE` rather than `ON CONFLICT DO NOTHING`: a statement that cannot abort part
        // way needs no statement journal, which SQLite would otherwise keep in memory
        // (`temp_store=MEMORY`) with a copy of every page the window changes — 80 MiB more at
        // the peak of a million-row import into L.
        Backend::Sqlite => {
            let mut ins = Sql::of(
                backend,
                "INSERT OR IGNORE INTO search_terms (object, term, record_id) \
                 SELECT d.object, j.value, d.record_id FROM search_pending p \
                 JOIN search_docs d ON d.object = p.object AND d.record_id = p.record_id, json_each(d.terms) j \
                 WHERE p.object = ",
            );
            ins.bind(object)
                .push(" AND p.record_id BETWEEN ")
                .bind(*first)
                .push(" AND ")
                .bind(*last);
            ins.query().execute(&mut *conn).await?;
            let mut del = Sql::of(backend, "DELETE FROM search_pending WHERE object = ");
            del.bind(object)
                .push(" AND record_id BETWEEN ")
                .bind(*first)
                .push(" AND ")
                .bind(*last);
            let done = del.query().execute(&mut *conn).await?.rows_affected();
            Ok(usize::try_from(done).unwrap_or(usize::MAX))
        }
        // Other servers may stage or unstage records meanwhile: the rows deleted are the rows
        // whose entries are written, in one statement.
        Backend::Postgres => {
            let mut done = 0;
            for chunk in ids.chunks(5_000) {
                let mut sql = Sql::of(backend, "WITH gone AS (DELETE FROM search_pending WHERE object = ");
                sql.bind(object)
                    .push(" AND record_id IN (")
                    .bind_list(chunk.iter().map(|id| Bind::Text((*id).to_owned())))
                    .push(
                        ") RETURNING object, record_id), \
                         added AS (INSERT INTO search_terms (object, term, record_id) \
                         SELECT d.object, j.value, d.record_id FROM gone \
                         JOIN search_docs d ON d.object = gone.object AND d.record_id = gone.record_id \
                         CROSS JOIN LATERAL jsonb_array_elements_text(d.terms::jsonb) AS j(value) \
                         ON CONFLICT (object, term, record_id) DO NOTHING) \
                         SELECT count(*) AS n FROM gone",
                    );
                let n: i64 = sql.query().fetch_one(&mut *conn).await?.try_get("n")?;
                done += usize::try_from(n).unwrap_or(0);
            }
            Ok(done)
        }
    }
}

/// The work of [`Engine::rebuild_search_index_bulk`] on its connection, which holds the empty
/// `gx_search_stage` table.
async fn bulk_rebuild_on(conn: &mut AnyConnection, backend: Backend, snapshot: &Snapshot) -> StoreResult<usize> {
    let mut count = 0;
    // Each step's time since the start, in the log: where a bulk load's index phase goes.
    let started = std::time::Instant::now();
    let step_done = |step: &str| tracing::info!(step, secs = started.elapsed().as_secs_f64(), "search index rebuild");
    // Stage: one row per record with its terms and those of its search children, as JSON.
    for object in snapshot.objects().filter(|o| !o.search_fields.is_empty()) {
        let children: Vec<(&ObjectDef, &str)> = snapshot
            .objects()
            .filter_map(|c| {
                c.search_parent
                    .as_ref()
                    .filter(|p| p.object == object.key)
                    .map(|p| (c.as_ref(), p.field.as_str()))
            })
            .collect();
        let mut after = String::new();
        loop {
            let page = select_search_page(conn, backend, object, &after, BULK_PAGE).await?;
            let Some((last, _)) = page.last() else { break };
            after = last.clone();
            let mut terms: std::collections::BTreeMap<&str, std::collections::BTreeSet<String>> =
                std::collections::BTreeMap::new();
            for (id, r) in &page {
                let mut out = Vec::new();
                field_terms(object, r, false, &mut out);
                terms.entry(id.as_str()).or_default().extend(out);
            }
            let ids: Vec<&str> = page.iter().map(|(id, _)| id.as_str()).collect();
            for (child, field) in &children {
                for (owner, r) in select_search_values_in(conn, backend, child, field, &ids).await? {
                    let mut out = Vec::new();
                    field_terms(child, &r, true, &mut out);
                    if let Some(set) = terms.get_mut(owner.as_str()) {
                        set.extend(out);
                    }
                }
            }
            let staged: Vec<(&str, String)> = terms
                .into_iter()
                .filter(|(_, t)| !t.is_empty())
                .map(|(id, t)| (id, Json::from(t.into_iter().collect::<Vec<_>>()).to_string()))
                .collect();
            for chunk in staged.chunks(5_000) {
                let mut ins = Sql::of(
                    backend,
                    "INSERT INTO gx_search_stage (object, record_id, terms) VALUES ",
                );
                for (i, (id, t)) in chunk.iter().enumerate() {
                    if i > 0 {
                        ins.push(", ");
                    }
                    ins.push("(")
                        .bind(object.key.as_str())
                        .push(", ")
                        .bind(*id)
                        .push(", ")
                        .bind(t.as_str())
                        .push(")");
                }
                ins.query().execute(&mut *conn).await?;
            }
            count += page.len();
        }
    }
    step_done("terms staged");
    // Swap in one transaction. SQLite readers see the old index until the commit; on
    // PostgreSQL searches wait for it (TRUNCATE locks the tables). TRUNCATE rather than DELETE
    // there: deleted rows would stay in the table and its key until vacuum.
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let clear: &[&str] = match backend {
        Backend::Sqlite => &[
            "DELETE FROM search_terms",
            "DELETE FROM search_docs",
            "DELETE FROM search_pending",
        ],
        Backend::Postgres => &["TRUNCATE search_terms, search_docs, search_pending"],
    };
    for statement in clear {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    sqlx::query(
        "INSERT INTO search_docs (object, record_id, terms) \
         SELECT object, record_id, terms FROM gx_search_stage ORDER BY object, record_id",
    )
    .execute(&mut *tx)
    .await?;
    step_done("term lists written");
    let insert = match backend {
        Backend::Sqlite => {
            "INSERT INTO search_terms (object, term, record_id) \
             SELECT s.object, j.value, s.record_id FROM gx_search_stage s, json_each(s.terms) j \
             ORDER BY s.object, j.value, s.record_id"
        }
        Backend::Postgres => {
            "INSERT INTO search_terms (object, term, record_id) \
             SELECT s.object, j.value, s.record_id FROM gx_search_stage s \
             CROSS JOIN LATERAL jsonb_array_elements_text(s.terms::jsonb) AS j(value) \
             ORDER BY s.object, j.value COLLATE \"C\", s.record_id"
        }
    };
    sqlx::query(insert).execute(&mut *tx).await?;
    step_done("entries written");
    tx.commit().await?;
    step_done("committed");
    Ok(count)
}
