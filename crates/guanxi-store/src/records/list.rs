//! Reading records: get by id and lists with filters, quick search, multi-key sort, cursor
//! (keyset) or page/offset pagination, field selection and a total that stays cheap on large
//! tables.
//!
//! Cursor pagination is keyset pagination over the sort keys plus `id` as the final tie-break,
//! so a page costs the same on page 1 and page 50,000 and rows inserted meanwhile never shift
//! a page. Nullable keys sort `NULLS LAST` on both backends, and the cursor condition is written
//! to match.

use std::sync::Arc;

use base64::Engine as _;
use guanxi_core::access::Scope;
use guanxi_core::filter::{Filter, Op, Operand, SortKey};
use guanxi_core::meta::FieldType;
use guanxi_core::{Actor, DomainError, FieldDef, ObjectDef, Value};
use serde_json::Value as Json;
use sqlx::Row;

use super::Engine;
use super::codec::{
    Record, aggregate_rows, decode_json_row, decode_json_rows, json_bind, never_null, push_field_expr, push_json_row,
    push_select_list, sort_value,
};
use super::scope::{check_query_fields, push_read_scope, push_scope, require, sees_pool, view_of};
use super::search::candidates;
use crate::error::StoreResult;
use crate::read_ahead::ReadAhead;
use crate::sql::{Bind, Sql, escape_like};

/// Totals are counted exactly up to this many rows unless the caller asks for an exact count.
pub const DEFAULT_TOTAL_CAP: i64 = 10_000;
const MAX_LIMIT: u32 = 500;

/// How the total of a list is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TotalMode {
    /// No total (fastest; infinite scroll).
    None,
    /// Exact up to the cap, then "more than cap".
    #[default]
    Capped,
    /// Always exact (a full count; slow on very large filtered tables).
    Exact,
}

/// A list request, already checked against metadata.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub filter: Option<Filter>,
    /// Quick search text over the object's search fields.
    pub search: Option<String>,
    /// Empty means the object's default sort.
    pub sort: Vec<SortKey>,
    pub limit: u32,
    pub cursor: Option<String>,
    /// 1-based page for offset pagination (instead of a cursor).
    pub page: Option<u32>,
    /// Keys to return; `None` returns every field. `id` and `version` are always returned.
    pub fields: Option<Vec<String>>,
    pub total: TotalMode,
    /// List the recycle bin instead of live records.
    pub deleted: bool,
}

/// One page of records.
#[derive(Debug, Clone)]
pub struct Page {
    pub records: Vec<Record>,
    pub next_cursor: Option<String>,
    pub total: Option<i64>,
    /// False when `total` is a lower bound (the cap was reached).
    pub total_exact: bool,
    pub limit: u32,
}

fn bad(zh: &str, en: &str) -> DomainError {
    DomainError::invalid_query(zh, en)
}

impl Engine {
    /// Reads one live record (or, with `deleted`, one in the recycle bin) that the actor may
    /// read; a record outside the actor's scope is "not found", never "forbidden".
    pub async fn get(&self, actor: &Actor, object_key: &str, id: &str, deleted: bool) -> StoreResult<Record> {
        let full = self.object(object_key)?;
        let scope = require(actor, &full, "read")?;
        let object = view_of(&full, actor);
        let not_found = || DomainError::NotFound {
            object: object.key.clone(),
            id: id.to_owned(),
        };
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(not_found().into());
        }
        let mut sql = Sql::of(self.db.backend(), "SELECT ");
        push_json_row(&mut sql, &object);
        sql.push(" FROM ")
            .ident(&object.table)
            .push(" WHERE \"id\" = ")
            .bind(id);
        sql.push(if deleted {
            " AND \"deleted_at\" IS NOT NULL"
        } else {
            " AND \"deleted_at\" IS NULL"
        });
        push_read_scope(&mut sql, actor, &full, scope);
        let row = self.db.read_value(&sql).await?.ok_or_else(not_found)?;
        decode_json_row(&object, &row, deleted)
    }

    /// Lists the records the actor may read, showing only the fields it may see.
    pub async fn list(&self, actor: &Actor, object_key: &str, query: &ListQuery) -> StoreResult<Page> {
        let full = self.object(object_key)?;
        let scope = require(actor, &full, "read")?;
        let object = view_of(&full, actor);
        check_query_fields(&object, query.filter.as_ref(), &query.sort)?;
        let scope = ListScope {
            scope,
            pool_open: scope != Scope::All
                && sees_pool(actor, &full)
                && (query.deleted || self.pool_has_records(&full).await?),
            pool_only: false,
        };
        // The index may answer only when every search field is visible to the actor; otherwise a
        // hidden value could be probed through the search box.
        let indexed = object.search_fields.len() == full.search_fields.len();
        let search_text = query.search.as_deref().map(str::trim).filter(|t| !t.is_empty());
        // Without an explicit sort, search results are ranked: exact title, then title prefix.
        let ranked = search_text.is_some() && query.sort.is_empty();
        // Records in the recycle bin have no index entries (decision 0009): a search there reads
        // the bin's records instead.
        let searching = search_text.is_some() && indexed && !query.deleted && !object.search_fields.is_empty();
        let backend = self.db.backend();
        let limit = match query.limit {
            0 => 20,
            n => n.min(MAX_LIMIT),
        };
        if query.cursor.is_some() && query.page.is_some() {
            return Err(bad("不能同时使用 cursor 和 page", "use either cursor or page, not both").into());
        }
        let sort = effective_sort(&object, &query.sort)?;
        let sort_sig = sort_signature(&sort);
        // What the page reads and decodes: only the fields asked for, when the caller names them.
        let shown = projected(&object, query.fields.as_deref(), &sort);

        // A quick search first finds its bounded candidate set; the page and the total are then
        // taken from those ids alone.
        let found = match (searching, search_text) {
            (true, Some(text)) => Some(
                candidates(self.db.reader(), backend, &object, text, &self.term_rarity, |sub| {
                    push_bin(sub, query.deleted);
                    push_conditions(sub, &object, query, actor, scope);
                })
                .await?,
            ),
            _ => None,
        };
        let found_ids = found.as_ref().map(|f| f.ids.as_slice());

        // A list widened by the public pool and sorted by id alone is read as two index walks —
        // the actor's own scope, then the pool — whose ids are merged; one walk with `scope OR
        // owner_id IS NULL` would make the database collect and sort every matching row for
        // each page.
        // Numbered pages keep the single query: a split read fetches every row up to the page.
        let split = scope.pool_open && search_text.is_none() && sort.len() == 1 && query.page.is_none();
        let offset = query
            .page
            .map_or(0, |page| i64::from(page.max(1) - 1) * i64::from(limit));
        let mut ranked_page: Option<Vec<Record>> = None;
        // A ranked search in the default order (newest first) is paged here from the walk's
        // titles — exact title, then title prefix, then the rest, newest first within each, as
        // the SQL below would order it — and only the page's rows are read.
        let rank_here = ranked
            && query.cursor.is_none()
            && matches!(sort.as_slice(), [key] if key.field.key == "id" && key.descending);
        if let (true, Some(found), Some(text)) = (rank_here, &found, search_text) {
            let folded = text.to_lowercase();
            let rank = |title: &Option<String>| match title {
                Some(t) if t == text => 0,
                Some(t) if t.to_lowercase().starts_with(&folded) => 1,
                _ => 2,
            };
            let mut order: Vec<(u8, &String)> = found
                .ids
                .iter()
                .zip(&found.titles)
                .map(|(id, title)| (rank(title), id))
                .collect();
            order.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)));
            let page: Vec<String> = order
                .into_iter()
                .skip(usize::try_from(offset).unwrap_or(0))
                .take(limit as usize + 1)
                .map(|(_, id)| id.clone())
                .collect();
            ranked_page = Some(self.rows_by_id(&shown, &page, query.deleted).await?);
        }
        let mut records = Vec::new();
        // A ranked page read above needs no page query.
        if ranked_page.is_none() {
            let page = PageQuery {
                object: &object,
                shown: &shown,
                query,
                actor,
                sort: &sort,
                sort_sig: &sort_sig,
                found_ids,
                ranked: ranked.then_some(search_text).flatten(),
            };
            let mut sql = Sql::of(backend, "");
            let order = if split {
                // One statement: the page's rows by id from the union of the walks, which take
                // ids only (index-only scans of (owner_id, id) and (department_id, id)) and stop
                // at the page's size. It was three (two walks, then the rows by id), which kept
                // the salesperson's list at 1.2-1.6x the administrator's one-statement list.
                sql.push("SELECT ");
                push_select_list(&mut sql, &shown);
                let mut order = OrderKeys::default();
                page.push_sort_keys(&mut sql, &mut order);
                sql.push(" FROM ").ident(&object.table).push(" WHERE \"id\" IN (");
                let walks = [
                    ListScope {
                        pool_open: false,
                        ..scope
                    },
                    ListScope {
                        pool_only: true,
                        ..scope
                    },
                ];
                for (i, part) in walks.iter().enumerate() {
                    if i > 0 {
                        sql.push(" UNION ALL ");
                    }
                    sql.push("SELECT \"id\" FROM (");
                    page.push_walk(&mut sql, *part, true)?;
                    sql.push(" LIMIT ")
                        .bind(i64::from(limit) + 1)
                        .push(&format!(") AS gx_walk{i}"));
                }
                // A record of the actor's department without an owner is in both walks; `IN`
                // reads it once.
                sql.push(") ORDER BY ").push(&order.clause);
                sql.push(" LIMIT ").bind(i64::from(limit) + 1);
                order.clause
            } else {
                let order = page.push_walk(&mut sql, scope, false)?;
                sql.push(" LIMIT ").bind(i64::from(limit) + 1);
                if offset > 0 {
                    sql.push(" OFFSET ").bind(offset);
                }
                order
            };
            aggregate_rows(&mut sql, &shown, &order);
            records = decode_json_rows(&shown, self.db.read_value(&sql).await?, query.deleted)?;
        }
        if let Some(page) = ranked_page {
            records = page;
        }
        let has_more = records.len() > limit as usize;
        records.truncate(limit as usize);
        // Ranked search pages by `page` (a cursor cannot carry the rank).
        let next_cursor = match (has_more && !ranked, records.last(), query.page) {
            (true, Some(last), None) => Some(encode_cursor(&sort_sig, &sort, last)),
            _ => None,
        };

        let (total, total_exact) = match (query.total, &found) {
            (TotalMode::None, _) => (None, false),
            // The candidates already satisfy every condition: their number is the total, exact
            // unless the bound cut the walk short.
            (_, Some(found)) => (
                Some(i64::try_from(found.ids.len()).unwrap_or(i64::MAX)),
                !found.truncated,
            ),
            (TotalMode::Capped | TotalMode::Exact, None) => {
                let cap = (query.total == TotalMode::Capped).then_some(DEFAULT_TOTAL_CAP);
                let mut count = Sql::of(backend, "SELECT count(*) AS n FROM (SELECT 1 FROM ");
                count.ident(&object.table).push(" WHERE ");
                push_where(&mut count, &object, query, actor, scope, None);
                if let Some(cap) = cap {
                    count.push(" LIMIT ").bind(cap + 1);
                }
                count.push(") AS matching");
                if cap.is_some() && self.remembered.is_fresh(&count) {
                    (cap, false)
                } else {
                    let n: i64 = count.query().fetch_one(self.db.reader()).await?.try_get("n")?;
                    match cap {
                        Some(cap) if n > cap => {
                            self.remembered.remember(&count);
                            (Some(cap), false)
                        }
                        _ => (Some(n), true),
                    }
                }
            }
        };

        if let Some(fields) = &query.fields {
            for r in &mut records {
                r.retain(|k, _| k == "id" || k == "version" || fields.iter().any(|f| f == k));
            }
        }
        Ok(Page {
            records,
            next_cursor,
            total,
            total_exact,
            limit,
        })
    }

    /// A read-ahead for a walk through every page of `query` (an export), when the walk
    /// follows the table's rowid order: no quick search, and sorted first by `id` or
    /// `created_at` (records get time-ordered ids, so both are creation order, which is rowid
    /// order). `None` otherwise, and on PostgreSQL, which prefetches for itself (decision 0013).
    pub async fn read_ahead(&self, object_key: &str, query: &ListQuery) -> StoreResult<Option<ReadAhead>> {
        let object = self.object(object_key)?;
        let Some(path) = crate::db::sqlite_path(self.db.url()) else {
            return Ok(None);
        };
        if query.search.as_deref().is_some_and(|q| !q.trim().is_empty()) {
            return Ok(None);
        }
        let sort = effective_sort(&object, &query.sort)?;
        let Some(first) = sort
            .first()
            .filter(|k| matches!(k.field.key.as_str(), "id" | "created_at"))
        else {
            return Ok(None);
        };
        let newest_first = first.descending;
        let table = object.table.clone();
        // Opening its connections and reading the table's rowid bounds touches the disk.
        let started = tokio::task::spawn_blocking(move || ReadAhead::start(&path, &table, newest_first)).await;
        Ok(started.ok().flatten())
    }
}

impl Engine {
    /// The rows with these ids, in the order given (ids deleted or restored meanwhile are
    /// skipped).
    async fn rows_by_id(&self, object: &ObjectDef, ids: &[String], deleted: bool) -> StoreResult<Vec<Record>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::of(self.db.backend(), "SELECT ");
        push_select_list(&mut sql, object);
        sql.push(" FROM ")
            .ident(&object.table)
            .push(" WHERE \"id\" IN (")
            .bind_list(ids.iter().map(|id| Bind::Text(id.clone())))
            .push(")");
        push_bin(&mut sql, deleted);
        aggregate_rows(&mut sql, object, "");
        let mut by_id = std::collections::HashMap::with_capacity(ids.len());
        for record in decode_json_rows(object, self.db.read_value(&sql).await?, deleted)? {
            let id = record.get("id").and_then(Json::as_str).unwrap_or_default().to_owned();
            by_id.insert(id, record);
        }
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }

    /// Whether any live record of the object is in its public pool (has no owner): one probe of
    /// the (owner_id, id) index.
    async fn pool_has_records(&self, object: &ObjectDef) -> StoreResult<bool> {
        let mut sql = Sql::of(self.db.backend(), "SELECT 1 AS one FROM ");
        sql.ident(&object.table)
            .push(" WHERE \"owner_id\" IS NULL AND \"deleted_at\" IS NULL LIMIT 1");
        // A pool that had records a few seconds ago is taken to have them still (kept like a
        // total over the cap): at worst a list walks an empty pool. An empty pool is probed
        // again on every request, so a customer just released shows up at once.
        if self.remembered.is_fresh(&sql) {
            return Ok(true);
        }
        let found = sql.query().fetch_optional(self.db.reader()).await?.is_some();
        if found {
            self.remembered.remember(&sql);
        }
        Ok(found)
    }
}

/// The object narrowed to the fields a caller asked for, plus `id`, `version` and the sort keys
/// (the next page's cursor is made from them). Every column read costs a conversion and a map
/// entry per row: an export of five fields decoded all forty, which was most of its time.
fn projected(object: &Arc<ObjectDef>, fields: Option<&[String]>, sort: &[SortKey]) -> Arc<ObjectDef> {
    let Some(fields) = fields else {
        return Arc::clone(object);
    };
    let mut narrowed = ObjectDef::clone(object);
    narrowed.fields.retain(|f| {
        f.key == "id" || f.key == "version" || fields.contains(&f.key) || sort.iter().any(|k| k.field.key == f.key)
    });
    Arc::new(narrowed)
}

/// The sort actually used: the request's keys (or the object's default) plus `id`.
fn effective_sort(object: &ObjectDef, requested: &[SortKey]) -> StoreResult<Vec<SortKey>> {
    let mut sort = if requested.is_empty() {
        guanxi_core::filter::parse_sort(object, &object.default_sort.join(","))?
    } else {
        requested.to_vec()
    };
    if !sort.iter().any(|k| k.field.key == "id") {
        let id = object
            .field("id")
            .cloned()
            .ok_or_else(|| bad("对象缺少 id 字段", "object has no id field"))?;
        let descending = sort.last().is_some_and(|k| k.descending);
        sort.push(SortKey { field: id, descending });
    }
    Ok(sort)
}

fn sort_signature(sort: &[SortKey]) -> String {
    sort.iter()
        .map(|k| {
            if k.descending {
                format!("-{}", k.field.key)
            } else {
                k.field.key.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn encode_cursor(sig: &str, sort: &[SortKey], last: &Record) -> String {
    let mut values = vec![Json::String(sig.to_owned())];
    values.extend(sort.iter().map(|k| sort_value(&k.field, last)));
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Json::Array(values).to_string())
}

fn decode_cursor(cursor: &str, sig: &str, sort: &[SortKey]) -> StoreResult<Vec<Bind>> {
    let invalid = || {
        bad(
            "分页游标无效或已过期，请从第一页重新开始",
            "invalid cursor; start again from the first page",
        )
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor.as_bytes())
        .map_err(|_| invalid())?;
    let Ok(Json::Array(values)) = serde_json::from_slice::<Json>(&bytes) else {
        return Err(invalid().into());
    };
    if values.len() != sort.len() + 1 || values[0].as_str() != Some(sig) {
        return Err(bad(
            "分页游标与当前排序不一致",
            "the cursor belongs to a different sort order",
        )
        .into());
    }
    sort.iter()
        .zip(values.iter().skip(1))
        .map(|(k, v)| json_bind(&k.field, v).ok_or_else(|| invalid().into()))
        .collect()
}

/// What a page query is made of: the list request, checked and resolved.
struct PageQuery<'a> {
    object: &'a ObjectDef,
    /// The fields read (the whole view, or those the caller named).
    shown: &'a ObjectDef,
    query: &'a ListQuery,
    actor: &'a Actor,
    sort: &'a [SortKey],
    sort_sig: &'a str,
    /// The candidates of a quick search.
    found_ids: Option<&'a [String]>,
    /// The search text of a ranked search (exact title first, then title prefix).
    ranked: Option<&'a str>,
}

impl PageQuery<'_> {
    /// `SELECT <columns or id>, <sort keys> FROM … WHERE … ORDER BY …` (no LIMIT): the database
    /// walks an index in page order and stops at the limit the caller appends. The keys are
    /// selected as `gx_k<n>`; the returned clause orders by those names, so the aggregate
    /// around the query can repeat it.
    fn push_walk(&self, sql: &mut Sql, part: ListScope, ids_only: bool) -> StoreResult<String> {
        let object = self.object;
        sql.push("SELECT ");
        if ids_only {
            sql.push("\"id\"");
        } else {
            push_select_list(sql, self.shown);
        }
        let mut order = OrderKeys::default();
        if let (Some(text), Some(title)) = (self.ranked, object.field(&object.title_field)) {
            order.key(sql, false, false, |sql| {
                sql.push("CASE WHEN ");
                push_field_expr(sql, title);
                sql.push(" = ").bind(text).push(" THEN 0 WHEN ");
                push_field_expr(sql, title);
                let like = sql.like_keyword();
                sql.push(like)
                    .bind(format!("{}%", escape_like(text)))
                    .push(" ESCAPE '\\' THEN 1 ELSE 2 END");
            });
        }
        // The pool's walk names `owner_id` (NULL on every row it reads) first, so that only
        // the (owner_id, id) index gives the order without a sort. Ordered by id alone,
        // PostgreSQL walked the primary key and filtered: right after an import of a
        // million owned customers it passed 978,000 of them for each page (304 ms against
        // 0.4 ms), as it assumes the pool's rows are spread evenly over the ids.
        if part.pool_only
            && let [key] = self.sort
        {
            order.key(sql, key.descending, false, |sql| {
                sql.push("\"owner_id\"");
            });
        }
        self.push_sort_keys(sql, &mut order);
        sql.push(" FROM ").ident(&object.table).push(" WHERE ");
        push_where(sql, object, self.query, self.actor, part, self.found_ids);
        if let Some(cursor) = &self.query.cursor {
            let values = decode_cursor(cursor, self.sort_sig, self.sort)?;
            sql.push(" AND ");
            push_keyset(sql, self.sort, &values);
        }
        sql.push(" ORDER BY ").push(&order.clause);
        Ok(order.clause)
    }

    /// Selects the list's sort keys (`, <expr> AS gx_k<n>`, NULLs last where a field may be
    /// empty) and adds them to `order`.
    fn push_sort_keys(&self, sql: &mut Sql, order: &mut OrderKeys) {
        for k in self.sort {
            order.key(sql, k.descending, !never_null(&k.field), |sql| {
                push_field_expr(sql, &k.field);
            });
        }
    }
}

/// The sort keys of a page query, selected as `gx_k0`, `gx_k1`, … and its ORDER BY clause over
/// those names, which the aggregate around the query repeats.
#[derive(Default)]
struct OrderKeys {
    clause: String,
    count: usize,
}

impl OrderKeys {
    /// Selects one more key (`, <expr> AS gx_k<n>`) and appends it to the clause.
    fn key(&mut self, sql: &mut Sql, descending: bool, nulls_last: bool, expr: impl FnOnce(&mut Sql)) {
        let alias = format!("gx_k{}", self.count);
        self.count += 1;
        sql.push(", ");
        expr(sql);
        sql.push(" AS ").push(&alias);
        if !self.clause.is_empty() {
            self.clause.push_str(", ");
        }
        self.clause.push_str(&alias);
        self.clause.push_str(if descending { " DESC" } else { " ASC" });
        if nulls_last {
            self.clause.push_str(" NULLS LAST");
        }
    }
}

/// `(k1 after v1) OR (k1 = v1 AND k2 after v2) OR …`, with NULLs sorting last.
fn push_keyset(sql: &mut Sql, sort: &[SortKey], values: &[Bind]) {
    let is_null = |b: &Bind| matches!(b, Bind::NullText | Bind::NullInt | Bind::NullFloat | Bind::NullBool);
    sql.push("(");
    for i in 0..sort.len() {
        if i > 0 {
            sql.push(" OR ");
        }
        sql.push("(");
        for j in 0..i {
            push_field_expr(sql, &sort[j].field);
            if is_null(&values[j]) {
                sql.push(" IS NULL");
            } else {
                sql.push(" = ").bind(values[j].clone());
            }
            sql.push(" AND ");
        }
        let k = &sort[i];
        if is_null(&values[i]) {
            // Nothing sorts after NULL on this key except other NULLs, handled by later keys.
            sql.push("1 = 0");
        } else {
            sql.push("(");
            push_field_expr(sql, &k.field);
            sql.push(if k.descending { " < " } else { " > " })
                .bind(values[i].clone());
            if !never_null(&k.field) {
                sql.push(" OR ");
                push_field_expr(sql, &k.field);
                sql.push(" IS NULL");
            }
            sql.push(")");
        }
        sql.push(")");
    }
    sql.push(")");
}

/// The WHERE clause shared by the page query and the count. `found` holds a quick search's
/// candidates (see `search::candidates`), which already satisfy the list's conditions.
fn push_where(
    sql: &mut Sql,
    object: &ObjectDef,
    query: &ListQuery,
    actor: &Actor,
    scope: ListScope,
    found: Option<&[String]>,
) {
    let bin = if query.deleted {
        "\"deleted_at\" IS NOT NULL"
    } else {
        "\"deleted_at\" IS NULL"
    };
    sql.push(bin);
    if let Some(ids) = found {
        if ids.is_empty() {
            sql.push(" AND 1 = 0");
        } else {
            sql.push(" AND \"id\" IN (")
                .bind_list(ids.iter().map(|id| Bind::Text(id.clone())))
                .push(")");
        }
        return;
    }
    push_conditions(sql, object, query, actor, scope);
    if let Some(text) = query.search.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        // Without indexed candidates (an actor who may not see every search field): a LIKE over
        // the visible search fields — slower, but it cannot reveal hidden values.
        let fields: Vec<&FieldDef> = object.search_fields.iter().filter_map(|k| object.field(k)).collect();
        if !fields.is_empty() {
            let pattern = format!("%{}%", escape_like(text));
            sql.push(" AND (");
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    sql.push(" OR ");
                }
                push_field_expr(sql, f);
                let like = sql.like_keyword();
                sql.push(like).bind(pattern.as_str()).push(" ESCAPE '\\'");
            }
            sql.push(")");
        }
    }
}

/// ` AND "deleted_at" IS [NOT] NULL`: live records or the recycle bin.
fn push_bin(sql: &mut Sql, deleted: bool) {
    sql.push(if deleted {
        " AND \"deleted_at\" IS NOT NULL"
    } else {
        " AND \"deleted_at\" IS NULL"
    });
}

/// The read scope of a list, and whether the public pool widens it.
#[derive(Debug, Clone, Copy)]
struct ListScope {
    scope: Scope,
    /// The actor sees the object's public pool and the pool holds records. When the pool is
    /// empty the plain scope condition is used: an `OR "owner_id" IS NULL` would keep the
    /// database from walking the (department_id, id) index in page order.
    pool_open: bool,
    /// Only the pool (`owner_id IS NULL`): one of the two walks of a split list.
    pool_only: bool,
}

/// ` AND <scope> AND <filter>`: the conditions of a list besides the recycle bin and search.
fn push_conditions(sql: &mut Sql, object: &ObjectDef, query: &ListQuery, actor: &Actor, scope: ListScope) {
    if scope.pool_only {
        sql.push(" AND \"owner_id\" IS NULL");
    } else if scope.pool_open {
        push_read_scope(sql, actor, object, scope.scope);
    } else {
        push_scope(sql, actor, scope.scope);
    }
    if let Some(filter) = &query.filter {
        sql.push(" AND ");
        push_filter(sql, filter);
    }
}

fn filter_bind(field: &FieldDef, v: &Value) -> Bind {
    super::codec::value_bind(field, v)
}

/// Renders a checked filter. Every value is bound.
pub(super) fn push_filter(sql: &mut Sql, filter: &Filter) {
    match filter {
        Filter::And(items) | Filter::Or(items) if items.is_empty() => {
            sql.push(if matches!(filter, Filter::And(_)) {
                "1 = 1"
            } else {
                "1 = 0"
            });
        }
        Filter::And(items) | Filter::Or(items) => {
            let joiner = if matches!(filter, Filter::And(_)) {
                " AND "
            } else {
                " OR "
            };
            sql.push("(");
            for (i, f) in items.iter().enumerate() {
                if i > 0 {
                    sql.push(joiner);
                }
                push_filter(sql, f);
            }
            sql.push(")");
        }
        Filter::Cond { field, op, operand } => push_condition(sql, field, *op, operand),
    }
}

fn push_condition(sql: &mut Sql, field: &FieldDef, op: Op, operand: &Operand) {
    let cmp = |sql: &mut Sql, symbol: &str, v: &Value| {
        push_field_expr(sql, field);
        sql.push(symbol).bind(filter_bind(field, v));
    };
    match (op, operand) {
        (Op::IsEmpty, Operand::Flag(empty)) => {
            push_field_expr(sql, field);
            sql.push(if *empty { " IS NULL" } else { " IS NOT NULL" });
        }
        (Op::Eq, Operand::One(v)) => cmp(sql, " = ", v),
        (Op::Ne, Operand::One(v)) => {
            sql.push("(");
            cmp(sql, " <> ", v);
            sql.push(" OR ");
            push_field_expr(sql, field);
            sql.push(" IS NULL)");
        }
        (Op::Lt, Operand::One(v)) => cmp(sql, " < ", v),
        (Op::Lte, Operand::One(v)) => cmp(sql, " <= ", v),
        (Op::Gt, Operand::One(v)) => cmp(sql, " > ", v),
        (Op::Gte, Operand::One(v)) => cmp(sql, " >= ", v),
        (Op::Between, Operand::Two(a, b)) => {
            sql.push("(");
            cmp(sql, " >= ", a);
            sql.push(" AND ");
            cmp(sql, " <= ", b);
            sql.push(")");
        }
        (Op::In, Operand::Many(values)) => {
            push_field_expr(sql, field);
            sql.push(" IN (")
                .bind_list(values.iter().map(|v| filter_bind(field, v)))
                .push(")");
        }
        (Op::Contains | Op::StartsWith, Operand::One(Value::Text(text))) => {
            let pattern = if matches!(field.field_type, FieldType::MultiSelect { .. }) {
                // Multi-select values are stored as a JSON array: match the quoted element.
                format!("%{}%", escape_like(&Json::String(text.clone()).to_string()))
            } else if op == Op::Contains {
                format!("%{}%", escape_like(text))
            } else {
                format!("{}%", escape_like(text))
            };
            push_field_expr(sql, field);
            let like = sql.like_keyword();
            sql.push(like).bind(pattern).push(" ESCAPE '\\'");
        }
        // Parsing never builds other combinations; match nothing rather than everything.
        _ => {
            sql.push("1 = 0");
        }
    }
}
