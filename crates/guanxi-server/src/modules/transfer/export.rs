//! Exports: any filtered list of any object, with chosen fields in a chosen order, to csv, xlsx
//! or pdf. An export runs as a background job that reads the list in keyset pages of 500 and
//! writes each page to the file as it comes, so memory stays flat for any number of rows; the
//! file is then downloaded by its owner. The list goes through the engine with the caller's
//! permissions: their data scope limits the rows and hidden fields cannot be chosen.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use guanxi_core::filter::{parse_filter, parse_sort};
use guanxi_core::meta::FieldType;
use guanxi_core::{Actor, DomainError, FieldDef, Lang, ObjectDef};
use guanxi_store::jobs::{self, JobContext};
use guanxi_store::records::scope::forbidden;
use guanxi_store::{Engine, ListQuery, TotalMode};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use utoipa::ToSchema;

use super::convert::{Titles, export_cell, relation_target};
use super::formats::{Cell, CsvWriter, TableWriter, XlsxWriter};
use super::pdf::PdfWriter;
use super::store::{self, ExportFile};
use super::{EXPORT_FILE, job_actor, not_found, transfer_dir};
use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::extract::{ApiJson, CurrentActor, RequestLang};
use crate::routes::data;
use crate::state::AppState;

/// Rows per page read from the engine.
const PAGE: u32 = 500;

/// Exports of at least this many rows read the table ahead of their walk (decision 0013); a
/// smaller one is over before the read-ahead would pay for its threads.
const READ_AHEAD_ROWS: i64 = 50_000;

/// How often a running export reports its progress.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    Csv,
    Xlsx,
    Pdf,
}

impl ExportFormat {
    fn ext(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Xlsx => "xlsx",
            ExportFormat::Pdf => "pdf",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Xlsx => super::XLSX_TYPE,
            ExportFormat::Pdf => "application/pdf",
        }
    }
}

/// What to export.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportBody {
    pub format: ExportFormat,
    /// Field keys in the order of the columns (default: every visible field).
    #[serde(default)]
    pub fields: Option<Vec<String>>,
    /// The list filter, as in `POST /records/{object}/query`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Json>,
    #[serde(default)]
    pub sort: Option<String>,
    /// Quick search text.
    #[serde(default)]
    pub q: Option<String>,
    /// Header language: `zh-CN` (default: the request's language) or `en`.
    #[serde(default)]
    pub lang: Option<String>,
}

/// An export as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportView {
    pub id: String,
    pub object: String,
    pub format: String,
    /// queued, running, done, failed
    pub status: String,
    pub file_name: String,
    pub row_count: Option<i64>,
    pub size_bytes: Option<i64>,
    pub job_id: Option<String>,
    pub download_url: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

fn export_view(e: &ExportFile) -> ExportView {
    ExportView {
        id: e.id.clone(),
        object: e.object.clone(),
        format: e.format.clone(),
        status: e.status.clone(),
        file_name: e.file_name.clone(),
        row_count: e.row_count,
        size_bytes: e.size_bytes,
        job_id: e.job_id.clone(),
        download_url: (e.status == "done").then(|| format!("/api/v1/exports/{}/download", e.id)),
        created_at: e.created_at.clone(),
        updated_at: e.updated_at.clone(),
    }
}

/// Fields exported when none are chosen: what a person reads (no JSON blobs, no versions).
fn default_fields(object: &ObjectDef) -> Vec<String> {
    object
        .fields
        .iter()
        .filter(|f| !matches!(f.field_type, FieldType::Json) && f.key != "version" && f.key != "updated_by")
        .map(|f| f.key.clone())
        .collect()
}

fn invalid(zh: String, en: String) -> ApiError {
    DomainError::invalid_query(zh, en).into()
}

/// Checks an export request against the caller's view of the object.
fn check(object: &ObjectDef, body: &ExportBody) -> ApiResult<Vec<String>> {
    let fields = match &body.fields {
        Some(f) if f.is_empty() => {
            return Err(invalid("请至少选择一个字段".into(), "choose at least one field".into()));
        }
        Some(f) => f.clone(),
        None => default_fields(object),
    };
    let mut seen = BTreeSet::new();
    for f in &fields {
        if object.field(f).is_none() {
            return Err(invalid(format!("未知字段“{f}”"), format!("unknown field '{f}'")));
        }
        if !seen.insert(f) {
            return Err(invalid(
                format!("字段“{f}”重复"),
                format!("field '{f}' is listed twice"),
            ));
        }
    }
    if let Some(filter) = &body.filter {
        parse_filter(object, filter)?;
    }
    if let Some(sort) = &body.sort {
        parse_sort(object, sort)?;
    }
    if let Some(lang) = &body.lang
        && !matches!(lang.as_str(), "zh-CN" | "zh" | "en")
    {
        return Err(invalid(
            format!("lang 只能是 zh-CN 或 en，而不是“{lang}”"),
            format!("lang must be zh-CN or en, not '{lang}'"),
        ));
    }
    Ok(fields)
}

/// Start an export of a filtered list: a background job; download the file when it is done.
#[utoipa::path(post, path = "/api/v1/records/{object}/export", tag = "export", operation_id = "create_export",
    params(("object" = String, Path)), request_body = ExportBody,
    responses((status = 202, description = "The export and its job", body = ExportView),
        (status = 403, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn create_export(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    RequestLang(lang): RequestLang,
    Path(object): Path<String>,
    ApiJson(mut body): ApiJson<ExportBody>,
) -> ApiResult<Response> {
    let def = state.engine.object_for(&actor, &object)?;
    if actor.scope(&def.key, "export").is_none() {
        return Err(forbidden(&def, "export").into());
    }
    if actor.scope(&def.key, "read").is_none() {
        return Err(forbidden(&def, "read").into());
    }
    let fields = check(&def, &body)?;
    body.fields = Some(fields);
    if body.lang.is_none() {
        body.lang = Some(match lang {
            Lang::Zh => "zh-CN".into(),
            Lang::En => "en".into(),
        });
    }
    let id = uuid::Uuid::now_v7().to_string();
    let stamp =
        time::OffsetDateTime::now_utc().to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC));
    let file_name = format!(
        "{}-{:04}{:02}{:02}-{:02}{:02}{:02}.{}",
        def.label.get(lang),
        stamp.year(),
        u8::from(stamp.month()),
        stamp.day(),
        stamp.hour(),
        stamp.minute(),
        stamp.second(),
        body.format.ext()
    );
    let path = transfer_dir(&state.config, "exports").join(format!("{id}.{}", body.format.ext()));
    let now = guanxi_core::time_fmt::now_utc();
    let request = serde_json::to_value(&body).map_err(ApiError::internal)?;
    // The export row and its job commit together.
    let mut tx = state.db.writer().begin().await.map_err(ApiError::internal)?;
    let job_id = jobs::enqueue(
        &mut tx,
        state.db.backend(),
        EXPORT_FILE,
        &json!({"export_id": id}),
        Some(&actor.id),
        3,
    )
    .await?;
    let export = ExportFile {
        id: id.clone(),
        object: def.key.clone(),
        format: body.format.ext().into(),
        status: "queued".into(),
        file_name,
        file_path: path.to_string_lossy().into_owned(),
        request,
        row_count: None,
        size_bytes: None,
        job_id: Some(job_id),
        created_by: actor.id.clone(),
        created_at: now.clone(),
        updated_at: now,
    };
    store::insert_export(&mut tx, &state.db, &export)
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok((StatusCode::ACCEPTED, data(export_view(&export))).into_response())
}

async fn own_export(state: &AppState, actor: &Actor, id: &str) -> ApiResult<ExportFile> {
    store::get_export(&state.db, id)
        .await
        .map_err(ApiError::internal)?
        .filter(|e| e.created_by == actor.id)
        .ok_or_else(|| not_found("export", id))
}

/// An export's status.
#[utoipa::path(get, path = "/api/v1/exports/{id}", tag = "export", operation_id = "get_export",
    params(("id" = String, Path)), responses((status = 200, body = ExportView), (status = 404, body = ErrorEnvelope)))]
pub async fn get_export(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    Ok(data(export_view(&own_export(&state, &actor, &id).await?)))
}

/// Download a finished export (only its creator may).
#[utoipa::path(get, path = "/api/v1/exports/{id}/download", tag = "export", operation_id = "download_export",
    params(("id" = String, Path)),
    responses((status = 200, description = "The file"), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
pub async fn download_export(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let export = own_export(&state, &actor, &id).await?;
    if export.status != "done" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "export_not_ready",
            format!("导出尚未完成（状态：{}）", export.status),
            format!("the export is not ready (status: {})", export.status),
        ));
    }
    let format = match export.format.as_str() {
        "csv" => ExportFormat::Csv,
        "xlsx" => ExportFormat::Xlsx,
        _ => ExportFormat::Pdf,
    };
    super::send_file(
        &PathBuf::from(&export.file_path),
        &export.file_name,
        format.content_type(),
        false,
    )
    .await
}

/// Titles of the records that relation fields of a page point at, read with the actor's
/// permissions (a title the actor may not read stays an id).
async fn titles_for(engine: &Engine, actor: &Actor, fields: &[FieldDef], records: &[guanxi_store::Record]) -> Titles {
    let mut wanted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in fields {
        let target = relation_target(f).map(|(t, _)| t).or(match f.key.as_str() {
            "created_by" | "updated_by" => Some("user"),
            _ => None,
        });
        let Some(target) = target else { continue };
        for r in records {
            match r.get(&f.key) {
                Some(Json::String(id)) if uuid::Uuid::parse_str(id).is_ok() => {
                    wanted.entry(target.to_owned()).or_default().insert(id.clone());
                }
                Some(Json::Array(ids)) => {
                    for id in ids.iter().filter_map(Json::as_str) {
                        wanted.entry(target.to_owned()).or_default().insert(id.to_owned());
                    }
                }
                _ => {}
            }
        }
    }
    let mut titles = Titles::new();
    for (target, ids) in wanted {
        let Ok(def) = engine.object_for(actor, &target) else {
            continue;
        };
        let ids: Vec<String> = ids.into_iter().collect();
        for part in ids.chunks(500) {
            let Ok(filter) = parse_filter(&def, &json!({"field": "id", "op": "in", "value": part})) else {
                continue;
            };
            let query = ListQuery {
                filter: Some(filter),
                limit: 500,
                fields: Some(vec![def.title_field.clone()]),
                total: TotalMode::None,
                ..ListQuery::default()
            };
            if let Ok(page) = engine.list(actor, &target, &query).await {
                for r in page.records {
                    if let (Some(id), Some(t)) = (
                        r.get("id").and_then(Json::as_str),
                        r.get(&def.title_field).and_then(Json::as_str),
                    ) {
                        titles.insert((target.clone(), id.to_owned()), t.to_owned());
                    }
                }
            }
        }
    }
    titles
}

/// Reads the list page by page and hands the rows to the writer.
struct Pages<'a> {
    engine: &'a Engine,
    actor: &'a Actor,
    object: &'a ObjectDef,
    fields: &'a [FieldDef],
    filter: Option<guanxi_core::filter::Filter>,
    sort: Vec<guanxi_core::filter::SortKey>,
    search: Option<String>,
    lang: Lang,
}

impl Pages<'_> {
    async fn send_all(
        &self,
        ctx: &JobContext,
        tx: &tokio::sync::mpsc::Sender<Vec<Vec<Cell>>>,
        written: &mut i64,
    ) -> anyhow::Result<()> {
        let snapshot = self.engine.catalog().snapshot();
        let mut cursor: Option<String> = None;
        let mut total: Option<i64> = None;
        let mut reported = std::time::Instant::now();
        let mut read_ahead = None;
        loop {
            let query = ListQuery {
                filter: self.filter.clone(),
                search: self.search.clone(),
                sort: self.sort.clone(),
                limit: PAGE,
                // Only the exported columns are read and decoded.
                fields: Some(self.fields.iter().map(|f| f.key.clone()).collect()),
                cursor: cursor.clone(),
                total: if cursor.is_none() {
                    TotalMode::Exact
                } else {
                    TotalMode::None
                },
                ..ListQuery::default()
            };
            let page = self.engine.list(self.actor, &self.object.key, &query).await?;
            if cursor.is_none() {
                total = page.total;
                if total.is_some_and(|n| n >= READ_AHEAD_ROWS) {
                    read_ahead = self.engine.read_ahead(&self.object.key, &query).await?;
                }
            }
            let titles = titles_for(self.engine, self.actor, self.fields, &page.records).await;
            let rows: Vec<Vec<Cell>> = page
                .records
                .iter()
                .map(|r| {
                    self.fields
                        .iter()
                        .map(|f| {
                            export_cell(
                                f,
                                self.object,
                                r.get(&f.key).unwrap_or(&Json::Null),
                                &snapshot,
                                &titles,
                                self.lang,
                            )
                        })
                        .collect()
                })
                .collect();
            *written += rows.len() as i64;
            if let Some(read_ahead) = &read_ahead {
                read_ahead.walked(u64::try_from(*written).unwrap_or(0));
            }
            if tx.send(rows).await.is_err() {
                break;
            }
            // Progress is a write (the job row and its lease): once a second, not per page, or
            // a long export would queue two thousand commits behind every other writer.
            if reported.elapsed() >= PROGRESS_EVERY {
                super::progress(ctx, *written, total).await?;
                reported = std::time::Instant::now();
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        super::progress(ctx, *written, total).await?;
        Ok(())
    }
}

/// The export job: pages of 500 rows from the engine, written on a blocking thread as they
/// arrive; the file appears under its final name only when complete.
pub async fn run_export(
    engine: &Engine,
    config: &crate::config::Config,
    ctx: &JobContext,
) -> anyhow::Result<Option<Json>> {
    let db = ctx.db();
    let id = ctx.payload["export_id"].as_str().unwrap_or_default().to_owned();
    let Some(export) = store::get_export(db, &id).await? else {
        return Ok(Some(json!({"error": "export not found"})));
    };
    let actor = job_actor(db, &export.created_by).await?;
    let body: ExportBody = serde_json::from_value(export.request.clone())?;
    let lang = if body.lang.as_deref() == Some("en") {
        Lang::En
    } else {
        Lang::Zh
    };
    let object = engine.object_for(&actor, &export.object)?;
    let keys = body.fields.clone().unwrap_or_else(|| default_fields(&object));
    // Fields hidden from the actor since the export was asked for are left out.
    let fields: Vec<FieldDef> = keys.iter().filter_map(|k| object.field(k).cloned()).collect();
    let filter = body.filter.as_ref().map(|f| parse_filter(&object, f)).transpose()?;
    let sort = body
        .sort
        .as_deref()
        .map(|s| parse_sort(&object, s))
        .transpose()?
        .unwrap_or_default();
    store::set_export_status(db, &id, "running").await?;

    let final_path = PathBuf::from(&export.file_path);
    let dir = final_path.parent().map(PathBuf::from).unwrap_or_default();
    tokio::fs::create_dir_all(&dir).await?;
    let tmp_dir = transfer_dir(config, "tmp");
    tokio::fs::create_dir_all(&tmp_dir).await?;
    let part_path = final_path.with_extension(format!("{}.part", export.format));
    let header: Vec<String> = fields.iter().map(|f| f.label.get(lang).to_owned()).collect();
    let format = export.format.clone();
    let title = format!(
        "{} {}",
        object.label.get(lang),
        if lang == Lang::Zh { "导出" } else { "export" }
    );
    let subtitle = format!(
        "{} {} · {}",
        if lang == Lang::Zh { "导出人" } else { "Exported by" },
        actor.name,
        super::convert::local_now()
    );
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Vec<Cell>>>(4);
    let writer_path = part_path.clone();
    let writer = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut w: Box<dyn TableWriter> = match format.as_str() {
            "csv" => Box::new(CsvWriter::create(&writer_path)?),
            "xlsx" => Box::new(XlsxWriter::create(&writer_path, &tmp_dir)?),
            _ => Box::new(PdfWriter::create(&writer_path, &title, &subtitle)?),
        };
        w.header(&header)?;
        while let Some(rows) = rx.blocking_recv() {
            for r in rows {
                w.row(&r)?;
            }
        }
        w.finish()
    });

    let pages = Pages {
        engine,
        actor: &actor,
        object: &object,
        fields: &fields,
        filter,
        sort,
        search: body.q.clone(),
        lang,
    };
    let mut written: i64 = 0;
    let read = pages.send_all(ctx, &tx, &mut written).await;
    drop(tx);
    let wrote = writer.await?;
    if let Err(e) = read.and(wrote) {
        let _ = tokio::fs::remove_file(&part_path).await;
        store::set_export_status(db, &id, "failed").await?;
        return Err(e);
    }
    tokio::fs::rename(&part_path, &final_path).await?;
    let size = i64::try_from(tokio::fs::metadata(&final_path).await?.len()).unwrap_or(i64::MAX);
    store::finish_export(db, &id, "done", written, size).await?;
    Ok(Some(json!({
        "export_id": id,
        "rows": written,
        "size_bytes": size,
        "download_url": format!("/api/v1/exports/{id}/download"),
    })))
}
