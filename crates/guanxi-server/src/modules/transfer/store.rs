//! The tables of import and export (migration `0005_transfer`): import batches, their row errors
//! and the records they created or changed, saved header mappings, and export files.

use std::collections::BTreeMap;

use guanxi_core::time_fmt::now_utc;
use guanxi_store::Db;
use guanxi_store::sql::{Bind, Sql};
use serde::Serialize;
use serde_json::Value as Json;
use sqlx::Row;
use sqlx::any::AnyRow;

/// One import batch as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Batch {
    pub id: String,
    pub object: String,
    pub status: String,
    pub file_name: String,
    #[serde(skip)]
    pub file_path: String,
    pub file_type: String,
    pub encoding: Option<String>,
    pub sheet: Option<String>,
    pub columns: Vec<String>,
    /// Column header → field key, or `null` for a column that is ignored.
    pub mapping: BTreeMap<String, Option<String>>,
    pub options: Json,
    pub total_rows: Option<i64>,
    pub next_row: i64,
    #[serde(skip)]
    pub inflight_since: Option<String>,
    pub summary: Option<Json>,
    pub job_id: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
}

const BATCH_COLUMNS: &str = "id, object, status, file_name, file_path, file_type, encoding, sheet, columns, mapping, options, total_rows, next_row, inflight_since, summary, job_id, created_by, created_at, updated_at";

fn batch_from(row: &AnyRow) -> Result<Batch, sqlx::Error> {
    let json = |col: &str| -> Result<Json, sqlx::Error> {
        let text: Option<String> = row.try_get(col)?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Json::Null))
    };
    Ok(Batch {
        id: row.try_get("id")?,
        object: row.try_get("object")?,
        status: row.try_get("status")?,
        file_name: row.try_get("file_name")?,
        file_path: row.try_get("file_path")?,
        file_type: row.try_get("file_type")?,
        encoding: row.try_get("encoding")?,
        sheet: row.try_get("sheet")?,
        columns: serde_json::from_value(json("columns")?).unwrap_or_default(),
        mapping: serde_json::from_value(json("mapping")?).unwrap_or_default(),
        options: json("options")?,
        total_rows: row.try_get("total_rows")?,
        next_row: row.try_get("next_row")?,
        inflight_since: row.try_get("inflight_since")?,
        summary: Some(json("summary")?).filter(|j| !j.is_null()),
        job_id: row.try_get("job_id")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub async fn insert_batch(db: &Db, b: &Batch) -> anyhow::Result<()> {
    let mut sql = Sql::of(db.backend(), "INSERT INTO import_batches (");
    sql.push(BATCH_COLUMNS).push(") VALUES (");
    sql.bind(b.id.as_str())
        .push(", ")
        .bind(b.object.as_str())
        .push(", ")
        .bind(b.status.as_str())
        .push(", ")
        .bind(b.file_name.as_str())
        .push(", ")
        .bind(b.file_path.as_str())
        .push(", ")
        .bind(b.file_type.as_str())
        .push(", ")
        .bind(b.encoding.clone())
        .push(", ")
        .bind(b.sheet.clone())
        .push(", ")
        .bind(serde_json::to_string(&b.columns)?)
        .push(", ")
        .bind(serde_json::to_string(&b.mapping)?)
        .push(", ")
        .bind(b.options.to_string())
        .push(", ")
        .bind(b.total_rows.map_or(Bind::NullInt, Bind::Int))
        .push(", ")
        .bind(b.next_row)
        .push(", ")
        .bind(b.inflight_since.clone())
        .push(", ")
        .bind(b.summary.as_ref().map(Json::to_string))
        .push(", ")
        .bind(b.job_id.clone())
        .push(", ")
        .bind(b.created_by.as_str())
        .push(", ")
        .bind(b.created_at.as_str())
        .push(", ")
        .bind(b.updated_at.as_str())
        .push(")");
    sql.query().execute(db.writer()).await?;
    Ok(())
}

pub async fn get_batch(db: &Db, id: &str) -> anyhow::Result<Option<Batch>> {
    let mut sql = Sql::of(db.backend(), "SELECT ");
    sql.push(BATCH_COLUMNS)
        .push(" FROM import_batches WHERE id = ")
        .bind(id);
    let row = sql.query().fetch_optional(db.writer()).await?;
    Ok(row.as_ref().map(batch_from).transpose()?)
}

pub async fn list_batches(db: &Db, user_id: &str, object: Option<&str>, limit: i64) -> anyhow::Result<Vec<Batch>> {
    let mut sql = Sql::of(db.backend(), "SELECT ");
    sql.push(BATCH_COLUMNS)
        .push(" FROM import_batches WHERE created_by = ")
        .bind(user_id);
    if let Some(o) = object {
        sql.push(" AND object = ").bind(o);
    }
    sql.push(" ORDER BY id DESC LIMIT ").bind(limit);
    let rows = sql.query().fetch_all(db.reader()).await?;
    Ok(rows.iter().map(batch_from).collect::<Result<_, _>>()?)
}

/// Changes of a batch row; `None` leaves a column as it is.
#[derive(Debug, Default)]
pub struct BatchUpdate {
    pub status: Option<String>,
    pub mapping: Option<BTreeMap<String, Option<String>>>,
    pub options: Option<Json>,
    pub total_rows: Option<i64>,
    pub next_row: Option<i64>,
    /// `Some(None)` clears the marker.
    pub inflight_since: Option<Option<String>>,
    pub summary: Option<Json>,
    pub job_id: Option<String>,
}

pub async fn update_batch(db: &Db, id: &str, u: BatchUpdate) -> anyhow::Result<()> {
    update_batch_on(db.writer(), db, id, u).await
}

/// Updates a batch on a connection (inside the caller's transaction) only while its status is
/// one of `only_if_status`: a compare-and-set that returns whether it applied.
pub async fn update_batch_if_on(
    conn: &mut sqlx::AnyConnection,
    db: &Db,
    id: &str,
    only_if_status: &[&str],
    u: BatchUpdate,
) -> anyhow::Result<bool> {
    let mut sql = batch_update_sql(db, id, u)?;
    sql.push(" AND status IN (")
        .bind_list(only_if_status.iter().map(|s| Bind::Text((*s).to_owned())))
        .push(")");
    Ok(sql.query().execute(conn).await?.rows_affected() > 0)
}

fn batch_update_sql(db: &Db, id: &str, u: BatchUpdate) -> anyhow::Result<Sql> {
    let mut sql = Sql::of(db.backend(), "UPDATE import_batches SET updated_at = ");
    sql.bind(now_utc());
    if let Some(s) = u.status {
        sql.push(", status = ").bind(s);
    }
    if let Some(m) = u.mapping {
        sql.push(", mapping = ").bind(serde_json::to_string(&m)?);
    }
    if let Some(o) = u.options {
        sql.push(", options = ").bind(o.to_string());
    }
    if let Some(t) = u.total_rows {
        sql.push(", total_rows = ").bind(t);
    }
    if let Some(n) = u.next_row {
        sql.push(", next_row = ").bind(n);
    }
    if let Some(f) = u.inflight_since {
        sql.push(", inflight_since = ").bind(f);
    }
    if let Some(s) = u.summary {
        sql.push(", summary = ").bind(s.to_string());
    }
    if let Some(j) = u.job_id {
        sql.push(", job_id = ").bind(j);
    }
    sql.push(" WHERE id = ").bind(id);
    Ok(sql)
}

async fn update_batch_on<'e, E>(executor: E, db: &Db, id: &str, u: BatchUpdate) -> anyhow::Result<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let sql = batch_update_sql(db, id, u)?;
    sql.query().execute(executor).await?;
    Ok(())
}

/// A problem with one row (or one cell) of an import.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RowError {
    /// The row number as the spreadsheet shows it (the header is usually row 1).
    pub row: i64,
    /// The column header, when the problem belongs to one column.
    pub column: Option<String>,
    /// The field the column is mapped to.
    pub field: Option<String>,
    pub code: String,
    #[serde(skip)]
    pub message_zh: String,
    #[serde(skip)]
    pub message_en: String,
    /// The cell's text, when there is one.
    pub value: Option<String>,
}

impl RowError {
    pub fn message(&self, lang: guanxi_core::Lang) -> &str {
        match lang {
            guanxi_core::Lang::Zh => &self.message_zh,
            guanxi_core::Lang::En => &self.message_en,
        }
    }
}

pub async fn delete_errors(db: &Db, batch_id: &str, phase: &str) -> anyhow::Result<()> {
    let mut sql = Sql::of(db.backend(), "DELETE FROM import_errors WHERE batch_id = ");
    sql.bind(batch_id).push(" AND phase = ").bind(phase);
    sql.query().execute(db.writer()).await?;
    Ok(())
}

/// Stores row errors, numbering several errors of one row.
pub async fn insert_errors(
    conn: &mut sqlx::AnyConnection,
    db: &Db,
    batch_id: &str,
    phase: &str,
    errors: &[RowError],
) -> anyhow::Result<()> {
    let mut seq: BTreeMap<i64, i64> = BTreeMap::new();
    for part in errors.chunks(400) {
        let mut sql = Sql::of(
            db.backend(),
            "INSERT INTO import_errors (batch_id, phase, row_no, seq, column_name, field, code, message_zh, message_en, value) VALUES ",
        );
        for (i, e) in part.iter().enumerate() {
            let n = seq.entry(e.row).or_insert(0);
            *n += 1;
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(")
                .bind(batch_id)
                .push(", ")
                .bind(phase)
                .push(", ")
                .bind(e.row)
                .push(", ")
                .bind(*n)
                .push(", ")
                .bind(e.column.clone())
                .push(", ")
                .bind(e.field.clone())
                .push(", ")
                .bind(e.code.as_str())
                .push(", ")
                .bind(e.message_zh.as_str())
                .push(", ")
                .bind(e.message_en.as_str())
                .push(", ")
                .bind(e.value.as_ref().map(|v| v.chars().take(500).collect::<String>()))
                .push(")");
        }
        sql.query().execute(&mut *conn).await?;
    }
    Ok(())
}

fn error_from(row: &AnyRow) -> Result<RowError, sqlx::Error> {
    Ok(RowError {
        row: row.try_get("row_no")?,
        column: row.try_get("column_name")?,
        field: row.try_get("field")?,
        code: row.try_get("code")?,
        message_zh: row.try_get("message_zh")?,
        message_en: row.try_get("message_en")?,
        value: row.try_get("value")?,
    })
}

/// Errors of a phase in row order, starting after `after_row`.
pub async fn list_errors(
    db: &Db,
    batch_id: &str,
    phase: &str,
    after_row: i64,
    limit: i64,
) -> anyhow::Result<Vec<RowError>> {
    let mut sql = Sql::of(
        db.backend(),
        "SELECT row_no, column_name, field, code, message_zh, message_en, value FROM import_errors WHERE batch_id = ",
    );
    sql.bind(batch_id)
        .push(" AND phase = ")
        .bind(phase)
        .push(" AND row_no > ")
        .bind(after_row)
        .push(" ORDER BY row_no, seq LIMIT ")
        .bind(limit);
    let rows = sql.query().fetch_all(db.reader()).await?;
    Ok(rows.iter().map(error_from).collect::<Result<_, _>>()?)
}

pub async fn count_errors(db: &Db, batch_id: &str, phase: &str) -> anyhow::Result<(i64, i64)> {
    let mut sql = Sql::of(
        db.backend(),
        "SELECT count(*) AS n, count(DISTINCT row_no) AS r FROM import_errors WHERE batch_id = ",
    );
    sql.bind(batch_id).push(" AND phase = ").bind(phase);
    let row = sql.query().fetch_one(db.reader()).await?;
    Ok((row.try_get("n")?, row.try_get("r")?))
}

/// A record an import created or changed.
#[derive(Debug, Clone)]
pub struct Link {
    pub record_id: String,
    pub row: i64,
    /// `created` or `updated`; after an undo `undone`, or `kept` when it was left alone.
    pub action: String,
    /// The record's version right after the import.
    pub version: i64,
    /// For updates: the values the import replaced.
    pub before: Option<Json>,
}

pub async fn insert_links(
    conn: &mut sqlx::AnyConnection,
    db: &Db,
    batch_id: &str,
    links: &[Link],
) -> anyhow::Result<()> {
    for part in links.chunks(500) {
        let mut sql = Sql::of(
            db.backend(),
            "INSERT INTO import_batch_records (batch_id, record_id, row_no, action, version, before_values) VALUES ",
        );
        for (i, l) in part.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(")
                .bind(batch_id)
                .push(", ")
                .bind(l.record_id.as_str())
                .push(", ")
                .bind(l.row)
                .push(", ")
                .bind(l.action.as_str())
                .push(", ")
                .bind(l.version)
                .push(", ")
                .bind(l.before.as_ref().map(Json::to_string))
                .push(")");
        }
        // A re-run after a crash may meet links it already wrote.
        sql.push(" ON CONFLICT DO NOTHING");
        sql.query().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Links of a batch with the given action, in record id order after `after_id`.
pub async fn list_links(
    db: &Db,
    batch_id: &str,
    action: &str,
    after_id: &str,
    limit: i64,
) -> anyhow::Result<Vec<Link>> {
    let mut sql = Sql::of(
        db.backend(),
        "SELECT record_id, row_no, action, version, before_values FROM import_batch_records WHERE batch_id = ",
    );
    sql.bind(batch_id)
        .push(" AND action = ")
        .bind(action)
        .push(" AND record_id > ")
        .bind(after_id)
        .push(" ORDER BY record_id LIMIT ")
        .bind(limit);
    let rows = sql.query().fetch_all(db.writer()).await?;
    rows.iter()
        .map(|r| {
            let before: Option<String> = r.try_get("before_values")?;
            Ok(Link {
                record_id: r.try_get("record_id")?,
                row: r.try_get("row_no")?,
                action: r.try_get("action")?,
                version: r.try_get("version")?,
                before: before.and_then(|b| serde_json::from_str(&b).ok()),
            })
        })
        .collect()
}

pub async fn set_link_actions(db: &Db, batch_id: &str, ids: &[String], action: &str) -> anyhow::Result<()> {
    for part in ids.chunks(500) {
        let mut sql = Sql::of(db.backend(), "UPDATE import_batch_records SET action = ");
        sql.bind(action)
            .push(" WHERE batch_id = ")
            .bind(batch_id)
            .push(" AND record_id IN (")
            .bind_list(part.iter().map(|s| Bind::Text(s.clone())))
            .push(")");
        sql.query().execute(db.writer()).await?;
    }
    Ok(())
}

pub async fn count_links(db: &Db, batch_id: &str) -> anyhow::Result<BTreeMap<String, i64>> {
    let mut sql = Sql::of(
        db.backend(),
        "SELECT action, count(*) AS n FROM import_batch_records WHERE batch_id = ",
    );
    sql.bind(batch_id).push(" GROUP BY action");
    let rows = sql.query().fetch_all(db.reader()).await?;
    let mut out = BTreeMap::new();
    for r in rows {
        out.insert(r.try_get::<String, _>("action")?, r.try_get::<i64, _>("n")?);
    }
    Ok(out)
}

/// Ids linked to any batch, among `ids`.
pub async fn linked_ids(db: &Db, ids: &[String]) -> anyhow::Result<std::collections::HashSet<String>> {
    let mut out = std::collections::HashSet::new();
    for part in ids.chunks(500) {
        let mut sql = Sql::of(
            db.backend(),
            "SELECT record_id FROM import_batch_records WHERE record_id IN (",
        );
        sql.bind_list(part.iter().map(|s| Bind::Text(s.clone()))).push(")");
        for r in sql.query().fetch_all(db.writer()).await? {
            out.insert(r.try_get::<String, _>("record_id")?);
        }
    }
    Ok(out)
}

/// The header mapping a user saved for an object: column header → field (or ignored).
pub async fn saved_mapping(db: &Db, user_id: &str, object: &str) -> anyhow::Result<BTreeMap<String, Option<String>>> {
    let mut sql = Sql::of(
        db.backend(),
        "SELECT column_name, field FROM import_mappings WHERE user_id = ",
    );
    sql.bind(user_id).push(" AND object = ").bind(object);
    let rows = sql.query().fetch_all(db.reader()).await?;
    let mut out = BTreeMap::new();
    for r in rows {
        out.insert(
            r.try_get::<String, _>("column_name")?,
            r.try_get::<Option<String>, _>("field")?,
        );
    }
    Ok(out)
}

pub async fn save_mapping(
    db: &Db,
    user_id: &str,
    object: &str,
    mapping: &BTreeMap<String, Option<String>>,
) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut conn = db.writer().acquire().await?;
    let mut tx = conn.begin().await?;
    let now = now_utc();
    for (column, field) in mapping {
        let mut del = Sql::of(db.backend(), "DELETE FROM import_mappings WHERE user_id = ");
        del.bind(user_id)
            .push(" AND object = ")
            .bind(object)
            .push(" AND column_name = ")
            .bind(column.as_str());
        del.query().execute(&mut *tx).await?;
        let mut ins = Sql::of(
            db.backend(),
            "INSERT INTO import_mappings (user_id, object, column_name, field, updated_at) VALUES (",
        );
        ins.bind(user_id)
            .push(", ")
            .bind(object)
            .push(", ")
            .bind(column.as_str())
            .push(", ")
            .bind(field.clone())
            .push(", ")
            .bind(now.as_str())
            .push(")");
        ins.query().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// One export file.
#[derive(Debug, Clone, Serialize)]
pub struct ExportFile {
    pub id: String,
    pub object: String,
    pub format: String,
    pub status: String,
    pub file_name: String,
    #[serde(skip)]
    pub file_path: String,
    pub request: Json,
    pub row_count: Option<i64>,
    pub size_bytes: Option<i64>,
    pub job_id: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
}

const EXPORT_COLUMNS: &str = "id, object, format, status, file_name, file_path, request, row_count, size_bytes, job_id, created_by, created_at, updated_at";

pub async fn insert_export(conn: &mut sqlx::AnyConnection, db: &Db, e: &ExportFile) -> anyhow::Result<()> {
    let mut sql = Sql::of(db.backend(), "INSERT INTO export_files (");
    sql.push(EXPORT_COLUMNS).push(") VALUES (");
    sql.bind(e.id.as_str())
        .push(", ")
        .bind(e.object.as_str())
        .push(", ")
        .bind(e.format.as_str())
        .push(", ")
        .bind(e.status.as_str())
        .push(", ")
        .bind(e.file_name.as_str())
        .push(", ")
        .bind(e.file_path.as_str())
        .push(", ")
        .bind(e.request.to_string())
        .push(", ")
        .bind(e.row_count.map_or(Bind::NullInt, Bind::Int))
        .push(", ")
        .bind(e.size_bytes.map_or(Bind::NullInt, Bind::Int))
        .push(", ")
        .bind(e.job_id.clone())
        .push(", ")
        .bind(e.created_by.as_str())
        .push(", ")
        .bind(e.created_at.as_str())
        .push(", ")
        .bind(e.updated_at.as_str())
        .push(")");
    sql.query().execute(conn).await?;
    Ok(())
}

pub async fn get_export(db: &Db, id: &str) -> anyhow::Result<Option<ExportFile>> {
    let mut sql = Sql::of(db.backend(), "SELECT ");
    sql.push(EXPORT_COLUMNS).push(" FROM export_files WHERE id = ").bind(id);
    let Some(row) = sql.query().fetch_optional(db.writer()).await? else {
        return Ok(None);
    };
    let request: String = row.try_get("request")?;
    Ok(Some(ExportFile {
        id: row.try_get("id")?,
        object: row.try_get("object")?,
        format: row.try_get("format")?,
        status: row.try_get("status")?,
        file_name: row.try_get("file_name")?,
        file_path: row.try_get("file_path")?,
        request: serde_json::from_str(&request).unwrap_or(Json::Null),
        row_count: row.try_get("row_count")?,
        size_bytes: row.try_get("size_bytes")?,
        job_id: row.try_get("job_id")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    }))
}

pub async fn finish_export(db: &Db, id: &str, status: &str, rows: i64, size: i64) -> anyhow::Result<()> {
    let mut sql = Sql::of(db.backend(), "UPDATE export_files SET status = ");
    sql.bind(status)
        .push(", row_count = ")
        .bind(rows)
        .push(", size_bytes = ")
        .bind(size)
        .push(", updated_at = ")
        .bind(now_utc())
        .push(" WHERE id = ")
        .bind(id);
    sql.query().execute(db.writer()).await?;
    Ok(())
}

pub async fn set_export_status(db: &Db, id: &str, status: &str) -> anyhow::Result<()> {
    let mut sql = Sql::of(db.backend(), "UPDATE export_files SET status = ");
    sql.bind(status)
        .push(", updated_at = ")
        .bind(now_utc())
        .push(" WHERE id = ")
        .bind(id);
    sql.query().execute(db.writer()).await?;
    Ok(())
}
