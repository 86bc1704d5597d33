//! Imports: upload a file, map its columns to fields, check it (dry run), commit it with a
//! duplicate policy, download the rows that failed as xlsx, and undo the whole batch.
//!
//! The dry run, the commit and the undo run as background jobs that stream the file in chunks
//! (1,000 rows for a dry run, 250 for a commit). A commit creates each chunk with
//! `Engine::create_batch_with` (one transaction; a failing chunk is replayed a savepoint per
//! row), so every row is written whole or not at all and is reported with its row number,
//! column and reason when it fails; the records a batch created or changed are linked to it
//! for undo. Their search entries are staged and merged into the index every 100,000 created
//! rows and at the end (decision 0014). A commit resumes where it stopped if its job is retried.
//!
//! Customers (issue 5 §5) are also checked for duplicates by their normalised keys
//! (`guanxi_core::dedup`): the dry run reports every row that shares the credit code, name,
//! phone or email of an existing customer or of an earlier row of the file (phase
//! `duplicates`: row, column, reason), and the skip and update policies match existing
//! customers by those keys (`match_on: "duplicate_keys"`, the default for customers), credit
//! code first, then name, phone, email. The lookups are batched per chunk against the indexed
//! key table.

use std::collections::btree_map;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Multipart, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use guanxi_core::dedup::{KeyKind, keys_of};
use guanxi_core::filter::parse_filter;
use guanxi_core::value::{Mode, coerce, validate_input};
use guanxi_core::{Actor, DomainError, FieldDef, FieldError, Label, Lang, ObjectDef};
use guanxi_store::jobs::{self, JobContext};
use guanxi_store::records::SearchEntries;
use guanxi_store::records::scope::forbidden;
use guanxi_store::{Engine, ListQuery, Record, StoreError, TotalMode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};
use tokio::io::AsyncWriteExt;
use utoipa::ToSchema;

use super::convert::{self, Converted, importable, match_only, matchable, suggest_mapping};
use super::formats::{self, Cell, FileError, FileType, Next, SourceSpec, TextEncoding};
use super::store::{self, Batch, BatchUpdate, Link, RowError};
use super::{IMPORT_COMMIT, IMPORT_DRY_RUN, IMPORT_UNDO, file_error, job_actor, not_found, transfer_dir};
use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::extract::{ApiJson, ApiQuery, CurrentActor, RequestLang};
use crate::routes::data;
use crate::state::AppState;

/// Rows per chunk of a dry run (reads only).
pub const CHUNK: usize = 1000;
/// Rows per chunk of a commit: one `create_batch` transaction each. SQLite has one writer, so
/// any other write waits for the chunk being written: 14–16 ms per 250-row chunk importing into L
/// (docs/IMPORT-EXPORT.md). Larger chunks were a tenth faster at 1,000 rows but held 40 MiB
/// more at the peak.
pub const COMMIT_CHUNK: usize = 250;
/// Largest accepted import file.
pub const MAX_UPLOAD_BYTES: usize = 1024 * 1024 * 1024;
/// `match_on` value that matches existing customers by their duplicate keys.
pub const DUPLICATE_KEYS: &str = "duplicate_keys";
/// The object whose imports are checked for duplicates.
const DEDUP_OBJECT: &str = guanxi_store::duplicates::OBJECT;

/// What happens to a row whose match key finds an existing record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum DuplicatePolicy {
    /// Leave the existing record alone and count the row as skipped.
    #[default]
    Skip,
    /// Update the existing record with the row's values.
    Update,
    /// Always create a new record (no matching).
    Create,
}

/// Options of a dry run or commit.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportOptions {
    #[serde(default)]
    pub duplicate_policy: Option<DuplicatePolicy>,
    /// Field that identifies an existing record (default: `id` if mapped, else a mapped unique
    /// field, else the object's title field). For customers, `duplicate_keys` (the default when
    /// `id` is not mapped) matches by normalised credit code, then name, phone, email.
    #[serde(default)]
    pub match_on: Option<String>,
}

/// A column of the file and the field it is mapped to.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ColumnView {
    pub index: usize,
    pub letter: String,
    pub header: String,
    pub field: Option<String>,
    /// True when the column is neither mapped nor ignored yet.
    pub unknown: bool,
}

/// A field a column can be mapped to.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportField {
    pub key: String,
    pub label: String,
    #[serde(rename = "type")]
    pub field_type: String,
    pub required: bool,
    /// Only used to find existing records (e.g. `id`, numbers), never written.
    pub match_only: bool,
}

/// An import batch as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BatchView {
    pub id: String,
    pub object: String,
    /// uploaded, validating, validated, importing, imported, undoing, undone, failed
    pub status: String,
    pub file_name: String,
    pub file_type: String,
    pub encoding: Option<String>,
    pub sheet: Option<String>,
    pub columns: Vec<ColumnView>,
    #[schema(value_type = Object)]
    pub mapping: BTreeMap<String, Option<String>>,
    pub unknown_columns: Vec<String>,
    pub fields: Vec<ImportField>,
    #[schema(value_type = Object)]
    pub options: Json,
    pub total_rows: Option<i64>,
    #[schema(value_type = Option<Object>)]
    pub summary: Option<Json>,
    pub job_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Vec<String>>>)]
    pub preview: Option<Vec<Vec<String>>>,
    pub created_at: String,
    pub updated_at: String,
}

fn view(batch: &Batch, object: &ObjectDef, lang: Lang, preview: Option<Vec<Vec<String>>>) -> BatchView {
    let columns = batch
        .columns
        .iter()
        .enumerate()
        .map(|(i, h)| ColumnView {
            index: i,
            letter: formats::column_letter(i),
            header: h.clone(),
            field: batch.mapping.get(h).cloned().flatten(),
            unknown: !batch.mapping.contains_key(h),
        })
        .collect();
    BatchView {
        id: batch.id.clone(),
        object: batch.object.clone(),
        status: batch.status.clone(),
        file_name: batch.file_name.clone(),
        file_type: batch.file_type.clone(),
        encoding: batch.encoding.clone(),
        sheet: batch.sheet.clone(),
        columns,
        mapping: batch.mapping.clone(),
        unknown_columns: unknown_columns(batch),
        fields: object
            .fields
            .iter()
            .filter(|f| importable(f))
            .map(|f| ImportField {
                key: f.key.clone(),
                label: f.label.get(lang).to_owned(),
                field_type: f.field_type.name().to_owned(),
                required: f.required,
                match_only: match_only(f),
            })
            .collect(),
        options: batch.options.clone(),
        total_rows: batch.total_rows,
        summary: batch.summary.clone(),
        job_id: batch.job_id.clone(),
        preview,
        created_at: batch.created_at.clone(),
        updated_at: batch.updated_at.clone(),
    }
}

fn unknown_columns(batch: &Batch) -> Vec<String> {
    batch
        .columns
        .iter()
        .filter(|c| !batch.mapping.contains_key(*c))
        .cloned()
        .collect()
}

fn require_import(actor: &Actor, object: &ObjectDef) -> ApiResult<()> {
    if actor.scope(&object.key, "import").is_none() {
        return Err(forbidden(object, "import").into());
    }
    Ok(())
}

/// Loads a batch the caller started (others' batches do not exist for it).
async fn own_batch(state: &AppState, actor: &Actor, id: &str) -> ApiResult<Batch> {
    store::get_batch(&state.db, id)
        .await
        .map_err(ApiError::internal)?
        .filter(|b| b.created_by == actor.id)
        .ok_or_else(|| not_found("import", id))
}

/// Query of an upload sent as a raw body.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadParams {
    /// File name (for raw uploads; multipart uploads carry their own).
    pub filename: Option<String>,
    /// CSV encoding: `utf-8`, `gbk` (also GB2312/GB18030) or `utf-16`; detected when absent.
    pub encoding: Option<String>,
    /// xlsx sheet name (default: the first sheet).
    pub sheet: Option<String>,
}

fn bad_param(zh: String, en: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_query", zh, en)
}

/// Streams the request body (multipart `file` field or the raw body) to `path`.
async fn receive_file(
    headers: &HeaderMap,
    request: Request,
    state: &AppState,
    path: &std::path::Path,
    params: &mut UploadParams,
) -> ApiResult<String> {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut file = tokio::fs::File::create(path).await.map_err(ApiError::internal)?;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("文件过大（上限 {} MB）", MAX_UPLOAD_BYTES / 1024 / 1024),
            format!("the file is too large (limit {} MB)", MAX_UPLOAD_BYTES / 1024 / 1024),
        )
    };
    let unreadable = |e: &dyn std::fmt::Display| {
        ApiError::bad_request(
            "unreadable_body",
            format!("无法读取上传的文件：{e}"),
            format!("the upload could not be read: {e}"),
        )
    };
    let mut size = 0usize;
    let mut name = params.filename.clone();
    if content_type.starts_with("multipart/form-data") {
        let mut multipart = <Multipart as axum::extract::FromRequest<AppState>>::from_request(request, state)
            .await
            .map_err(|e| unreadable(&e))?;
        let mut got_file = false;
        while let Some(mut field) = multipart.next_field().await.map_err(|e| unreadable(&e))? {
            match field.name().unwrap_or("") {
                "file" => {
                    if name.is_none() {
                        name = field.file_name().map(str::to_owned);
                    }
                    while let Some(chunk) = field.chunk().await.map_err(|e| unreadable(&e))? {
                        size += chunk.len();
                        if size > MAX_UPLOAD_BYTES {
                            return Err(too_large());
                        }
                        file.write_all(&chunk).await.map_err(ApiError::internal)?;
                    }
                    got_file = true;
                }
                "encoding" => params.encoding = Some(field.text().await.map_err(|e| unreadable(&e))?),
                "sheet" => params.sheet = Some(field.text().await.map_err(|e| unreadable(&e))?),
                _ => {}
            }
        }
        if !got_file {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                "请在表单字段 file 中上传文件",
                "send the file in the multipart field 'file'",
            ));
        }
    } else {
        use futures_util::StreamExt;
        let mut stream = request.into_body().into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| unreadable(&e))?;
            size += chunk.len();
            if size > MAX_UPLOAD_BYTES {
                return Err(too_large());
            }
            file.write_all(&chunk).await.map_err(ApiError::internal)?;
        }
    }
    file.sync_all().await.map_err(ApiError::internal)?;
    Ok(name.unwrap_or_else(|| "upload".into()))
}

/// Header names as columns: trimmed, unnamed ones called by their letter, repeated ones
/// numbered.
fn column_names(header: &[Cell]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(header.len());
    for (i, cell) in header.iter().enumerate() {
        let text = cell.to_text().trim().to_owned();
        let base = if text.is_empty() {
            format!("列{} Column {}", formats::column_letter(i), formats::column_letter(i))
        } else {
            text
        };
        let mut name = base.clone();
        let mut n = 2;
        while out.contains(&name) {
            name = format!("{base} ({n})");
            n += 1;
        }
        out.push(name);
    }
    out
}

/// What the upload learned by reading the start of the file.
struct Probe {
    file_type: FileType,
    encoding: Option<TextEncoding>,
    sheet: Option<String>,
    columns: Vec<String>,
    preview: Vec<Vec<String>>,
}

fn probe(
    path: PathBuf,
    file_name: &str,
    encoding: Option<TextEncoding>,
    sheet: Option<String>,
) -> Result<Probe, FileError> {
    let mut head = [0u8; 4096];
    let n = {
        use std::io::Read;
        let mut f = std::fs::File::open(&path).map_err(FileError::unreadable)?;
        let mut filled = 0;
        loop {
            let k = f.read(&mut head[filled..]).map_err(FileError::unreadable)?;
            if k == 0 {
                break;
            }
            filled += k;
            if filled == head.len() {
                break;
            }
        }
        filled
    };
    let file_type = formats::detect_type(file_name, &head[..n])?;
    let spec = SourceSpec {
        file_type,
        encoding,
        sheet,
    };
    let mut info = formats::SourceInfo::default();
    let mut columns = Vec::new();
    let mut preview = Vec::new();
    formats::read_rows(
        &path,
        &spec,
        &mut |i| info = i.clone(),
        &mut |_, cells| {
            columns = column_names(&cells);
            Ok(Next::Continue)
        },
        &mut |_, cells| {
            preview.push(cells.iter().map(Cell::to_text).collect());
            Ok(if preview.len() >= 5 { Next::Stop } else { Next::Continue })
        },
    )?;
    Ok(Probe {
        file_type,
        encoding: info.encoding,
        sheet: info.sheet,
        columns,
        preview,
    })
}

/// Upload a file to import (multipart field `file`, or the raw body with `?filename=`).
#[utoipa::path(post, path = "/api/v1/records/{object}/import", tag = "import", operation_id = "create_import",
    params(("object" = String, Path), UploadParams),
    request_body(content_type = "multipart/form-data", description = "The xlsx or csv file in the field `file`"),
    responses((status = 201, description = "The batch with the columns found and a suggested mapping", body = BatchView),
        (status = 403, body = ErrorEnvelope), (status = 415, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn create_import(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    RequestLang(lang): RequestLang,
    Path(object): Path<String>,
    ApiQuery(mut params): ApiQuery<UploadParams>,
    headers: HeaderMap,
    request: Request,
) -> ApiResult<Response> {
    let def = state.engine.object_for(&actor, &object)?;
    require_import(&actor, &def)?;
    let encoding = match params.encoding.as_deref() {
        None | Some("" | "auto") => None,
        Some(e) => Some(TextEncoding::parse(e).ok_or_else(|| {
            bad_param(
                format!("不支持的编码“{e}”，可选 utf-8、gbk、utf-16"),
                format!("unsupported encoding '{e}'; use utf-8, gbk or utf-16"),
            )
        })?),
    };
    let dir = transfer_dir(&state.config, "imports");
    tokio::fs::create_dir_all(&dir).await.map_err(ApiError::internal)?;
    let id = uuid::Uuid::now_v7().to_string();
    let path = dir.join(format!("{id}.upload"));
    let received = receive_file(&headers, request, &state, &path, &mut params).await;
    let file_name = match received {
        Ok(n) => n,
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(e);
        }
    };
    // A sheet or encoding sent as multipart fields counts as well.
    let encoding = match (encoding, params.encoding.as_deref()) {
        (Some(e), _) => Some(e),
        (None, Some(e)) if !e.is_empty() && e != "auto" => Some(TextEncoding::parse(e).ok_or_else(|| {
            bad_param(
                format!("不支持的编码“{e}”，可选 utf-8、gbk、utf-16"),
                format!("unsupported encoding '{e}'; use utf-8, gbk or utf-16"),
            )
        })?),
        _ => None,
    };
    let probe_path = path.clone();
    let probe_name = file_name.clone();
    let sheet = params.sheet.clone().filter(|s| !s.is_empty());
    let probed = tokio::task::spawn_blocking(move || probe(probe_path, &probe_name, encoding, sheet))
        .await
        .map_err(ApiError::internal)?;
    let probed = match probed {
        Ok(p) => p,
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(file_error(e));
        }
    };
    let saved = store::saved_mapping(&state.db, &actor.id, &def.key)
        .await
        .map_err(ApiError::internal)?;
    let now = guanxi_core::time_fmt::now_utc();
    let batch = Batch {
        id: id.clone(),
        object: def.key.clone(),
        status: "uploaded".into(),
        file_name,
        file_path: path.to_string_lossy().into_owned(),
        file_type: probed.file_type.name().into(),
        encoding: probed.encoding.map(|e| e.name().to_owned()),
        sheet: probed.sheet.clone(),
        mapping: suggest_mapping(&def, &probed.columns, &saved),
        columns: probed.columns,
        options: json!({}),
        total_rows: None,
        next_row: 0,
        inflight_since: None,
        summary: None,
        job_id: None,
        created_by: actor.id.clone(),
        created_at: now.clone(),
        updated_at: now,
    };
    store::insert_batch(&state.db, &batch)
        .await
        .map_err(ApiError::internal)?;
    Ok((
        StatusCode::CREATED,
        data(view(&batch, &def, lang, Some(probed.preview))),
    )
        .into_response())
}

/// One import batch.
#[utoipa::path(get, path = "/api/v1/imports/{id}", tag = "import", operation_id = "get_import",
    params(("id" = String, Path)), responses((status = 200, body = BatchView), (status = 404, body = ErrorEnvelope)))]
pub async fn get_import(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    RequestLang(lang): RequestLang,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let batch = own_batch(&state, &actor, &id).await?;
    let def = state.engine.object_for(&actor, &batch.object)?;
    Ok(data(view(&batch, &def, lang, None)))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListImportsParams {
    object: Option<String>,
    limit: Option<i64>,
}

/// The caller's import batches, newest first.
#[utoipa::path(get, path = "/api/v1/imports", tag = "import", operation_id = "list_imports",
    params(ListImportsParams), responses((status = 200, body = Vec<BatchView>)))]
pub async fn list_imports(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    RequestLang(lang): RequestLang,
    ApiQuery(p): ApiQuery<ListImportsParams>,
) -> ApiResult<impl IntoResponse> {
    let batches = store::list_batches(
        &state.db,
        &actor.id,
        p.object.as_deref(),
        p.limit.unwrap_or(50).clamp(1, 200),
    )
    .await
    .map_err(ApiError::internal)?;
    let mut out = Vec::with_capacity(batches.len());
    for b in &batches {
        if let Ok(def) = state.engine.object_for(&actor, &b.object) {
            out.push(view(b, &def, lang, None));
        }
    }
    Ok(data(out))
}

/// A new mapping for some or all columns.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingBody {
    /// Column header → field key, or `null` to ignore the column.
    #[schema(value_type = Object)]
    pub mapping: BTreeMap<String, Option<String>>,
    /// Remember these choices for the next import of this object (default true).
    #[serde(default)]
    pub save: Option<bool>,
}

fn invalid_body(zh: String, en: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", zh, en)
}

fn busy(batch: &Batch) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "conflict",
        format!("导入批次当前状态为“{}”，不能进行此操作", batch.status),
        format!(
            "the import batch is '{}'; this action is not possible now",
            batch.status
        ),
    )
}

/// Change the column mapping.
#[utoipa::path(put, path = "/api/v1/imports/{id}/mapping", tag = "import", operation_id = "update_import_mapping",
    params(("id" = String, Path)), request_body = MappingBody,
    responses((status = 200, body = BatchView), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn update_mapping(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    RequestLang(lang): RequestLang,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<MappingBody>,
) -> ApiResult<impl IntoResponse> {
    let batch = own_batch(&state, &actor, &id).await?;
    let def = state.engine.object_for(&actor, &batch.object)?;
    require_import(&actor, &def)?;
    if !matches!(batch.status.as_str(), "uploaded" | "validated" | "failed") {
        return Err(busy(&batch));
    }
    let mut mapping = batch.mapping.clone();
    for (column, field) in &body.mapping {
        if !batch.columns.contains(column) {
            return Err(invalid_body(
                format!("文件中没有列“{column}”"),
                format!("the file has no column '{column}'"),
            ));
        }
        if let Some(f) = field {
            match def.field(f) {
                Some(fd) if importable(fd) => {}
                _ => {
                    return Err(invalid_body(
                        format!("列“{column}”不能对应字段“{f}”（字段不存在或不能导入）"),
                        format!("column '{column}' cannot map to '{f}' (no such field, or it cannot be imported)"),
                    ));
                }
            }
        }
        mapping.insert(column.clone(), field.clone());
    }
    let mut seen = HashSet::new();
    for f in mapping.values().flatten() {
        if !seen.insert(f) {
            return Err(invalid_body(
                format!("字段“{f}”对应了多个列"),
                format!("field '{f}' is mapped from more than one column"),
            ));
        }
    }
    if body.save.unwrap_or(true) {
        store::save_mapping(&state.db, &actor.id, &def.key, &body.mapping)
            .await
            .map_err(ApiError::internal)?;
    }
    store::update_batch(
        &state.db,
        &id,
        BatchUpdate {
            mapping: Some(mapping),
            status: Some("uploaded".into()),
            ..BatchUpdate::default()
        },
    )
    .await
    .map_err(ApiError::internal)?;
    let batch = own_batch(&state, &actor, &id).await?;
    Ok(data(view(&batch, &def, lang, None)))
}

/// Checks that a batch can run with these options and returns the options to store.
fn check_ready(batch: &Batch, def: &ObjectDef, opts: &ImportOptions) -> ApiResult<Json> {
    let unknown = unknown_columns(batch);
    if !unknown.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_columns",
            format!(
                "以下列无法对应到“{}”的字段：{}。请在映射中指定字段或设为忽略",
                def.label.zh,
                unknown.join("、")
            ),
            format!(
                "these columns match no field of {}: {}. Map them to a field or ignore them",
                def.label.en,
                unknown.join(", ")
            ),
        )
        .with_details(json!({"columns": unknown})));
    }
    let mapped: HashSet<&str> = batch.mapping.values().flatten().map(String::as_str).collect();
    let policy = opts.duplicate_policy.unwrap_or_default();
    // Updating by id never creates, so it needs no column for required fields.
    let updates_only = policy == DuplicatePolicy::Update && opts.match_on.as_deref() == Some("id");
    let missing: Vec<&FieldDef> = def
        .fields
        .iter()
        .filter(|f| f.required && !f.read_only && f.numbering.is_none() && !mapped.contains(f.key.as_str()))
        .filter(|_| !updates_only)
        .collect();
    if !missing.is_empty() {
        let zh: Vec<&str> = missing.iter().map(|f| f.label.zh.as_str()).collect();
        let en: Vec<&str> = missing.iter().map(|f| f.label.en.as_str()).collect();
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_required_columns",
            format!("缺少必填字段对应的列：{}", zh.join("、")),
            format!("no column is mapped to these required fields: {}", en.join(", ")),
        )
        .with_details(json!({"fields": missing.iter().map(|f| &f.key).collect::<Vec<_>>()})));
    }
    let match_on = match (&opts.match_on, policy) {
        (_, DuplicatePolicy::Create) => None,
        (Some(m), _) if m == DUPLICATE_KEYS && def.key == DEDUP_OBJECT => Some(m.clone()),
        (Some(m), _) => {
            let Some(f) = def.field(m).filter(|f| matchable(f)) else {
                return Err(invalid_body(
                    format!("不能按“{m}”匹配已有记录"),
                    format!("records cannot be matched on '{m}'"),
                ));
            };
            if !mapped.contains(f.key.as_str()) {
                return Err(invalid_body(
                    format!("匹配字段“{}”没有对应的列", f.label.zh),
                    format!("no column is mapped to the match field {}", f.label.en),
                ));
            }
            Some(f.key.clone())
        }
        (None, _) => default_match(def, &mapped),
    };
    Ok(json!({"duplicate_policy": policy, "match_on": match_on}))
}

/// Options from an optional JSON body (an empty body means the defaults).
fn options_from(body: &[u8]) -> ApiResult<ImportOptions> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(ImportOptions::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        invalid_body(
            format!("请求内容的结构或类型不正确：{e}"),
            format!("the request body has the wrong shape or types: {e}"),
        )
    })
}

fn default_match(def: &ObjectDef, mapped: &HashSet<&str>) -> Option<String> {
    if mapped.contains("id") {
        return Some("id".into());
    }
    if def.key == DEDUP_OBJECT && KeyKind::ALL.iter().any(|k| mapped.contains(k.field())) {
        return Some(DUPLICATE_KEYS.into());
    }
    if let Some(f) = def
        .fields
        .iter()
        .find(|f| f.unique && matchable(f) && mapped.contains(f.key.as_str()))
    {
        return Some(f.key.clone());
    }
    mapped
        .contains(def.title_field.as_str())
        .then(|| def.title_field.clone())
}

async fn start_job(
    state: &AppState,
    actor: &Actor,
    batch: &Batch,
    kind: &str,
    from: &[&str],
    status: &str,
    options: Option<Json>,
) -> ApiResult<Response> {
    // The job and the batch's new status commit together: a job exists only for a batch that
    // moved into the state the job expects, and two concurrent starts cannot both win.
    let mut tx = state.db.writer().begin().await.map_err(ApiError::internal)?;
    let job_id = jobs::enqueue(
        &mut tx,
        state.db.backend(),
        kind,
        &json!({"batch_id": batch.id}),
        Some(&actor.id),
        3,
    )
    .await?;
    let update = BatchUpdate {
        status: Some(status.into()),
        job_id: Some(job_id.clone()),
        options,
        ..BatchUpdate::default()
    };
    let applied = store::update_batch_if_on(&mut tx, &state.db, &batch.id, from, update)
        .await
        .map_err(ApiError::internal)?;
    if !applied {
        tx.rollback().await.map_err(ApiError::internal)?;
        return Err(busy(batch));
    }
    tx.commit().await.map_err(ApiError::internal)?;
    Ok((
        StatusCode::ACCEPTED,
        data(json!({"job_id": job_id, "import_id": batch.id, "status": status})),
    )
        .into_response())
}

/// Check every row without writing anything: a background job whose result lists the bad rows.
#[utoipa::path(post, path = "/api/v1/imports/{id}/dry-run", tag = "import", operation_id = "dry_run_import",
    params(("id" = String, Path)), request_body = ImportOptions,
    responses((status = 202, description = "The job that checks the file"), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn dry_run(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let opts = options_from(&body)?;
    let batch = own_batch(&state, &actor, &id).await?;
    let def = state.engine.object_for(&actor, &batch.object)?;
    require_import(&actor, &def)?;
    let options = check_ready(&batch, &def, &opts)?;
    start_job(
        &state,
        &actor,
        &batch,
        IMPORT_DRY_RUN,
        &["uploaded", "validated", "failed"],
        "validating",
        Some(options),
    )
    .await
}

/// Import the rows: a background job with progress; good rows are written per the duplicate
/// policy, bad rows reported.
#[utoipa::path(post, path = "/api/v1/imports/{id}/commit", tag = "import", operation_id = "commit_import",
    params(("id" = String, Path)), request_body = ImportOptions,
    responses((status = 202, description = "The job that imports the file"), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn commit(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let opts = options_from(&body)?;
    let batch = own_batch(&state, &actor, &id).await?;
    let def = state.engine.object_for(&actor, &batch.object)?;
    require_import(&actor, &def)?;
    let options = check_ready(&batch, &def, &opts)?;
    if batch.next_row > 0 {
        return Err(busy(&batch));
    }
    start_job(
        &state,
        &actor,
        &batch,
        IMPORT_COMMIT,
        &["uploaded", "validated", "failed"],
        "importing",
        Some(options),
    )
    .await
}

/// Undo a whole import: records it created go to the recycle bin, records it updated get their
/// old values back — unless someone changed them since, in which case they are kept and listed.
#[utoipa::path(post, path = "/api/v1/imports/{id}/undo", tag = "import", operation_id = "undo_import",
    params(("id" = String, Path)),
    responses((status = 202, description = "The job that undoes the import"), (status = 409, body = ErrorEnvelope)))]
pub async fn undo(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let batch = own_batch(&state, &actor, &id).await?;
    let def = state.engine.object_for(&actor, &batch.object)?;
    require_import(&actor, &def)?;
    start_job(
        &state,
        &actor,
        &batch,
        IMPORT_UNDO,
        &["imported", "failed"],
        "undoing",
        None,
    )
    .await
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ErrorParams {
    /// `dry_run` or `commit` (default: the latest phase that ran), or `duplicates`: the rows
    /// of a customer dry run that duplicate an existing customer or an earlier row.
    phase: Option<String>,
    /// Continue after this row number.
    after_row: Option<i64>,
    /// 1–1000, default 100.
    limit: Option<i64>,
}

/// One reported problem, in the caller's language.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorView {
    pub row: i64,
    pub column: Option<String>,
    pub field: Option<String>,
    pub code: String,
    pub message: String,
    pub value: Option<String>,
}

fn phase_of(batch: &Batch, asked: Option<&str>) -> ApiResult<&'static str> {
    match asked {
        Some("dry_run") => Ok("dry_run"),
        Some("commit") => Ok("commit"),
        Some("duplicates") => Ok("duplicates"),
        Some(other) => Err(bad_param(
            format!("phase 只能是 dry_run、commit 或 duplicates，而不是“{other}”"),
            format!("phase must be dry_run, commit or duplicates, not '{other}'"),
        )),
        None if batch.next_row > 0
            || matches!(batch.status.as_str(), "importing" | "imported" | "undoing" | "undone") =>
        {
            Ok("commit")
        }
        None => Ok("dry_run"),
    }
}

/// Row errors of a dry run or commit, in row order.
#[utoipa::path(get, path = "/api/v1/imports/{id}/errors", tag = "import", operation_id = "list_import_errors",
    params(("id" = String, Path), ErrorParams), responses((status = 200, body = Vec<ErrorView>)))]
pub async fn list_errors(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    RequestLang(lang): RequestLang,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<ErrorParams>,
) -> ApiResult<impl IntoResponse> {
    let batch = own_batch(&state, &actor, &id).await?;
    let phase = phase_of(&batch, p.phase.as_deref())?;
    let limit = p.limit.unwrap_or(100).clamp(1, 1000);
    let errors = store::list_errors(&state.db, &id, phase, p.after_row.unwrap_or(0), limit)
        .await
        .map_err(ApiError::internal)?;
    let (total, rows) = store::count_errors(&state.db, &id, phase)
        .await
        .map_err(ApiError::internal)?;
    let next = (errors.len() as i64 == limit)
        .then(|| errors.last().map(|e| e.row))
        .flatten();
    let views: Vec<ErrorView> = errors
        .iter()
        .map(|e| ErrorView {
            row: e.row,
            column: e.column.clone(),
            field: e.field.clone(),
            code: e.code.clone(),
            message: e.message(lang).to_owned(),
            value: e.value.clone(),
        })
        .collect();
    Ok(axum::Json(json!({
        "data": views,
        "meta": {"phase": phase, "total_errors": total, "rows_with_errors": rows, "next_after_row": next}
    })))
}

/// The rows that failed, as xlsx: their row number, the original cells and the reasons. Fix
/// the rows in it and import the file again (the extra columns are recognised and ignored).
#[utoipa::path(get, path = "/api/v1/imports/{id}/errors.xlsx", tag = "import", operation_id = "download_import_errors",
    params(("id" = String, Path), ErrorParams),
    responses((status = 200, description = "xlsx file", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))]
pub async fn error_report(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    RequestLang(lang): RequestLang,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<ErrorParams>,
) -> ApiResult<Response> {
    let batch = own_batch(&state, &actor, &id).await?;
    let phase = phase_of(&batch, p.phase.as_deref())?;
    // Every error, grouped by row (a few percent of a large file; each row holds a short text).
    let mut by_row: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = store::list_errors(&state.db, &id, phase, after, 5000)
            .await
            .map_err(ApiError::internal)?;
        let Some(last) = page.last().map(|e| e.row) else { break };
        for e in &page {
            let column = e.column.as_deref().map(|c| format!("[{c}] ")).unwrap_or_default();
            by_row
                .entry(e.row)
                .or_default()
                .push(format!("{column}{}", e.message(lang)));
        }
        if page.len() < 5000 {
            break;
        }
        after = last;
    }
    let dir = transfer_dir(&state.config, "reports");
    tokio::fs::create_dir_all(&dir).await.map_err(ApiError::internal)?;
    let out = dir.join(format!("{}-{phase}-{}.xlsx", id, uuid::Uuid::now_v7()));
    let tmp = transfer_dir(&state.config, "tmp");
    tokio::fs::create_dir_all(&tmp).await.map_err(ApiError::internal)?;
    let spec = spec_of(&batch)?;
    let source = PathBuf::from(&batch.file_path);
    let columns = batch.columns.clone();
    let out_path = out.clone();
    let built = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut writer = formats::XlsxWriter::create(&out_path, &tmp)?;
        let mut header = vec![convert::REPORT_ROW_COLUMN.to_owned()];
        header.extend(columns.iter().cloned());
        header.push(convert::REPORT_ERROR_COLUMN.to_owned());
        formats::TableWriter::header(&mut writer, &header)?;
        let width = columns.len();
        let mut failure: Option<anyhow::Error> = None;
        let mut write_row = |row: u64, cells: Vec<Cell>, writer: &mut formats::XlsxWriter| -> anyhow::Result<()> {
            let Ok(key) = i64::try_from(row) else { return Ok(()) };
            let Some(reasons) = by_row.remove(&key) else {
                return Ok(());
            };
            let mut out = Vec::with_capacity(width + 2);
            out.push(Cell::Int(key));
            let mut cells = cells;
            cells.resize(width, Cell::Empty);
            out.extend(cells);
            out.push(Cell::Text(reasons.join("；")));
            formats::TableWriter::row(writer, &out)
        };
        let read = formats::read_rows(
            &source,
            &spec,
            &mut |_| {},
            &mut |_, _| Ok(Next::Continue),
            &mut |row, cells| {
                if let Err(e) = write_row(row, cells, &mut writer) {
                    failure = Some(e);
                    return Ok(Next::Stop);
                }
                Ok(Next::Continue)
            },
        );
        if let Some(e) = failure {
            return Err(e);
        }
        // Problems that belong to no data row (a damaged file) are listed at the end.
        for (row, reasons) in std::mem::take(&mut by_row) {
            let mut out = vec![Cell::Int(row)];
            out.extend(std::iter::repeat_n(Cell::Empty, width));
            out.push(Cell::Text(reasons.join("；")));
            formats::TableWriter::row(&mut writer, &out)?;
        }
        if let Err(e) = read {
            tracing::warn!(error = %e, "error report: source file could not be read to the end");
        }
        formats::TableWriter::finish(Box::new(writer))
    })
    .await
    .map_err(ApiError::internal)?;
    built.map_err(ApiError::internal)?;
    let name = format!(
        "{}-错误报告.xlsx",
        batch.file_name.trim_end_matches(".csv").trim_end_matches(".xlsx")
    );
    super::send_file(&out, &name, super::XLSX_TYPE, true).await
}

pub(super) fn spec_of(batch: &Batch) -> ApiResult<SourceSpec> {
    Ok(SourceSpec {
        file_type: FileType::parse(&batch.file_type).ok_or_else(|| ApiError::internal("unknown file type"))?,
        encoding: batch.encoding.as_deref().and_then(TextEncoding::parse),
        sheet: batch.sheet.clone(),
    })
}

// ---------------------------------------------------------------------------------------------
// The jobs.

/// Everything a job needs to turn rows into records.
struct Plan {
    engine: Engine,
    actor: Actor,
    object: Arc<ObjectDef>,
    /// Per column: the field it feeds, if any.
    columns: Arc<Vec<(String, Option<FieldDef>)>>,
    policy: DuplicatePolicy,
    match_on: Option<FieldDef>,
    /// Match keys seen so far in this file (for duplicates within the file).
    seen: HashSet<String>,
    /// Customers: check rows against the duplicate keys.
    dup_check: bool,
    /// Customers: the skip/update policy matches existing records by duplicate keys.
    dup_match: bool,
    /// Customers: report duplicates (the dry run; a commit only needs them to match).
    dup_report: bool,
    /// Hashes of the duplicate keys seen so far in this file → the first row that had each (a
    /// hash, not the key, keeps a million-row file's memory small). A B-tree, not a hash map:
    /// a few million entries take ~20 bytes each in one, and a hash map of 16-byte entries is
    /// half empty after it doubles, and briefly twice the size while it does: a 1,000,000-row
    /// dry run peaked 67 MiB higher with one (docs/IMPORT-EXPORT.md).
    seen_keys: BTreeMap<u64, u32>,
    /// Resolved relation texts: (object, text) → ids.
    lookups: HashMap<(String, String), Vec<String>>,
}

/// One row on its way in.
struct Work {
    row: i64,
    input: Map<String, Json>,
    errors: Vec<RowError>,
    key: Option<String>,
    existing: Option<Record>,
    skip: bool,
    /// Customers: why the row looks like a duplicate (reported by the dry run, not errors).
    duplicates: Vec<RowError>,
}

fn row_error(row: i64, column: Option<&str>, field: Option<&str>, e: &FieldError, value: Option<String>) -> RowError {
    RowError {
        row,
        column: column.map(str::to_owned),
        field: field.map(str::to_owned),
        code: e.code.to_owned(),
        message_zh: e.message.zh.clone(),
        message_en: e.message.en.clone(),
        value,
    }
}

fn plain_error(row: i64, code: &str, label: &Label) -> RowError {
    RowError {
        row,
        column: None,
        field: None,
        code: code.to_owned(),
        message_zh: label.zh.clone(),
        message_en: label.en.clone(),
        value: None,
    }
}

impl Plan {
    fn column_of(&self, field: &str) -> Option<&str> {
        column_in(&self.columns, field)
    }

    /// Errors of the engine or of validation, mapped to the row's columns.
    fn store_errors(&self, row: i64, input: &Map<String, Json>, e: StoreError) -> Vec<RowError> {
        errors_of(&self.columns, row, input, e)
    }

    /// Converts, resolves, matches and validates a chunk of rows. Reads only.
    async fn prepare(&mut self, rows: Vec<(u64, Vec<Cell>)>) -> anyhow::Result<Vec<Work>> {
        let snapshot = self.engine.catalog().snapshot();
        // Converting and validating a thousand rows is CPU work: it runs on a blocking thread so
        // the async workers stay free for requests.
        let (columns, snap) = (self.columns.clone(), snapshot.clone());
        let (mut works, pending) = tokio::task::spawn_blocking(move || convert_rows(&columns, rows, &snap)).await?;
        self.resolve(&mut works, pending).await?;
        if let Some(match_on) = self.match_on.clone() {
            self.find_existing(&mut works, &match_on, &snapshot).await?;
        }
        if self.dup_check && (self.dup_report || self.dup_match) {
            self.check_duplicates(&mut works).await?;
        }
        let (columns, object) = (self.columns.clone(), self.object.clone());
        let mut works = tokio::task::spawn_blocking(move || {
            validate_rows(&columns, &object, &snapshot, &mut works);
            works
        })
        .await?;
        self.check_rows(&mut works).await?;
        Ok(works)
    }

    /// The engine's `check_input` hooks (reference data such as regions) on every row, so the
    /// dry run reports what the commit would refuse, next to the row's other errors.
    async fn check_rows(&self, works: &mut [Work]) -> anyhow::Result<()> {
        for w in works.iter_mut().filter(|w| !w.skip) {
            let extra = self
                .engine
                .check_input(&self.actor, &self.object.key, &w.input, w.existing.as_ref())
                .await?;
            if extra.is_empty() {
                continue;
            }
            let already: HashSet<Option<String>> = w.errors.iter().map(|e| e.field.clone()).collect();
            let errs = errors_of(
                &self.columns,
                w.row,
                &w.input,
                StoreError::Domain(DomainError::Validation(extra)),
            );
            w.errors
                .extend(errs.into_iter().filter(|e| !already.contains(&e.field)));
        }
        Ok(())
    }

    /// Looks up relations given by name or number against the target's title and unique
    /// fields, in the actor's scope.
    async fn resolve(
        &mut self,
        works: &mut [Work],
        pending: Vec<(usize, String, String, Vec<String>, bool)>,
    ) -> anyhow::Result<()> {
        let mut wanted: BTreeMap<String, HashSet<String>> = BTreeMap::new();
        for (_, _, target, texts, _) in &pending {
            for t in texts {
                if uuid::Uuid::parse_str(t).is_err() && !self.lookups.contains_key(&(target.clone(), t.clone())) {
                    wanted.entry(target.clone()).or_default().insert(t.clone());
                }
            }
        }
        for (target, texts) in wanted {
            let Ok(def) = self.engine.object_for(&self.actor, &target) else {
                continue;
            };
            let mut keys: Vec<String> = vec![def.title_field.clone()];
            keys.extend(
                def.fields
                    .iter()
                    .filter(|f| {
                        f.unique
                            && !f.custom
                            && matches!(
                                f.field_type,
                                guanxi_core::meta::FieldType::Text { .. } | guanxi_core::meta::FieldType::Email
                            )
                    })
                    .map(|f| f.key.clone()),
            );
            keys.dedup();
            let texts: Vec<String> = texts.into_iter().collect();
            let mut found: HashMap<String, Vec<String>> = HashMap::new();
            for key in &keys {
                let records = match list_in(&self.engine, &self.actor, &def, key, &texts).await {
                    Ok(r) => r,
                    Err(StoreError::Domain(_)) => continue,
                    Err(e) => return Err(e.into()),
                };
                for r in records {
                    let (Some(v), Some(id)) = (r.get(key).and_then(Json::as_str), r.get("id").and_then(Json::as_str))
                    else {
                        continue;
                    };
                    let ids = found.entry(v.to_owned()).or_default();
                    if !ids.iter().any(|i| i == id) {
                        ids.push(id.to_owned());
                    }
                }
            }
            for t in texts {
                let ids = found.remove(&t).unwrap_or_default();
                self.lookups.insert((target.clone(), t), ids);
            }
        }
        for (index, key, target, texts, many) in pending {
            let work = &mut works[index];
            let column = self.column_of(&key).map(str::to_owned);
            let field_label = self
                .object
                .field(&key)
                .map_or_else(|| Label::new(&key, &key), |f| f.label.clone());
            let mut ids = Vec::new();
            for t in &texts {
                if uuid::Uuid::parse_str(t).is_ok() {
                    ids.push(t.clone());
                    continue;
                }
                match self.lookups.get(&(target.clone(), t.clone())).map(Vec::as_slice) {
                    Some([one]) => ids.push(one.clone()),
                    Some([]) | None => work.errors.push(row_error(
                        work.row,
                        column.as_deref(),
                        Some(&key),
                        &FieldError::new(
                            "not_found",
                            format!("“{}”找不到“{t}”", field_label.zh),
                            format!("{}: '{t}' was not found", field_label.en),
                        ),
                        Some(t.clone()),
                    )),
                    Some(_) => work.errors.push(row_error(
                        work.row,
                        column.as_deref(),
                        Some(&key),
                        &FieldError::new(
                            "ambiguous_reference",
                            format!("“{}”有多条记录名为“{t}”，请改用编号或 ID", field_label.zh),
                            format!(
                                "{}: several records are called '{t}'; use the number or id",
                                field_label.en
                            ),
                        ),
                        Some(t.clone()),
                    )),
                }
            }
            let value = if many {
                Json::from(ids)
            } else {
                ids.into_iter().next().map_or(Json::Null, Json::from)
            };
            work.input.insert(key, value);
        }
        Ok(())
    }

    /// Finds records that already exist for each row's match key; marks duplicates within the
    /// file.
    async fn find_existing(
        &mut self,
        works: &mut [Work],
        match_on: &FieldDef,
        snapshot: &guanxi_store::catalog::Snapshot,
    ) -> anyhow::Result<()> {
        let mut keys = Vec::new();
        for w in works.iter_mut() {
            if !w.errors.is_empty() {
                continue;
            }
            let raw = w.input.get(&match_on.key).cloned().unwrap_or(Json::Null);
            let key = if match_on.key == "id" {
                raw.as_str().map(str::to_owned)
            } else {
                coerce(match_on, &raw, snapshot)
                    .ok()
                    .and_then(|v| v.to_json().as_str().map(str::to_owned))
            };
            w.key = key.clone();
            if let Some(k) = key {
                keys.push(k);
            }
        }
        keys.sort();
        keys.dedup();
        let mut existing: HashMap<String, Vec<Record>> = HashMap::new();
        if !keys.is_empty() {
            for r in list_in(&self.engine, &self.actor, &self.object, &match_on.key, &keys).await? {
                if let Some(k) = r.get(&match_on.key).and_then(Json::as_str) {
                    existing.entry(k.to_owned()).or_default().push(r);
                }
            }
        }
        let column = self.column_of(&match_on.key).map(str::to_owned);
        for w in works.iter_mut() {
            let Some(k) = w.key.clone() else {
                if match_on.key == "id" && self.policy == DuplicatePolicy::Update {
                    // An empty id column means "new record".
                }
                continue;
            };
            if !self.seen.insert(k.clone()) {
                match self.policy {
                    DuplicatePolicy::Skip => w.skip = true,
                    _ => w.errors.push(row_error(
                        w.row,
                        column.as_deref(),
                        Some(&match_on.key),
                        &FieldError::new(
                            "duplicate_in_file",
                            format!("“{}”为“{k}”的行在文件中出现多次，本行未处理", match_on.label.zh),
                            format!(
                                "{} '{k}' appears more than once in the file; this row was not applied",
                                match_on.label.en
                            ),
                        ),
                        Some(k.clone()),
                    )),
                }
                continue;
            }
            match existing.get(&k).map(Vec::as_slice) {
                None | Some([]) => {
                    if match_on.key == "id" {
                        w.errors.push(row_error(
                            w.row,
                            column.as_deref(),
                            Some("id"),
                            &FieldError::new(
                                "not_found",
                                format!("ID 为“{k}”的记录不存在或您无权访问"),
                                format!("no record with id '{k}' exists or you may not see it"),
                            ),
                            Some(k.clone()),
                        ));
                    }
                }
                Some([one]) => match self.policy {
                    DuplicatePolicy::Skip => w.skip = true,
                    DuplicatePolicy::Update => w.existing = Some(one.clone()),
                    DuplicatePolicy::Create => {}
                },
                Some(_) => w.errors.push(row_error(
                    w.row,
                    column.as_deref(),
                    Some(&match_on.key),
                    &FieldError::new(
                        "ambiguous_match",
                        format!("有多条记录的“{}”为“{k}”，无法确定要更新哪一条", match_on.label.zh),
                        format!(
                            "several records have {} '{k}'; cannot tell which to update",
                            match_on.label.en
                        ),
                    ),
                    Some(k.clone()),
                )),
            }
        }
        Ok(())
    }
}

impl Plan {
    /// Customers: finds the rows that share a duplicate key with an existing customer or an
    /// earlier row of the file, records why (for the dry run's report) and, when the policy
    /// matches by duplicate keys, decides per row: the most reliable key that matches (credit
    /// code, name, phone, email) skips the row, or picks the one customer to update. One batched
    /// lookup per chunk. Rows already matched (by `id` or a field) or already failed are left
    /// alone.
    async fn check_duplicates(&mut self, works: &mut [Work]) -> anyhow::Result<()> {
        let row_keys: Vec<Vec<(KeyKind, String)>> = works
            .iter()
            .map(|w| {
                if w.errors.is_empty() && w.existing.is_none() && !w.skip {
                    keys_of(|f| w.input.get(f).and_then(Json::as_str))
                } else {
                    Vec::new()
                }
            })
            .collect();
        let mut all: Vec<(KeyKind, String)> = row_keys.iter().flatten().cloned().collect();
        all.sort();
        all.dedup();
        let hits = if all.is_empty() {
            Vec::new()
        } else {
            self.engine.duplicate_key_hits(&all, &[]).await?
        };
        let mut by_key: HashMap<(KeyKind, &str), Vec<&str>> = HashMap::new();
        for h in &hits {
            by_key
                .entry((h.kind, h.norm.as_str()))
                .or_default()
                .push(h.customer_id.as_str());
        }
        let mut ids: Vec<String> = hits.iter().map(|h| h.customer_id.clone()).collect();
        ids.sort();
        ids.dedup();
        let readable = self.engine.readable_ids(&self.actor, DEDUP_OBJECT, &ids).await?;
        let readable: Vec<String> = readable.into_iter().collect();
        let records = self.engine.records_by_id(&self.actor, DEDUP_OBJECT, &readable).await?;
        let by_id: HashMap<&str, &Record> = records
            .iter()
            .filter_map(|r| r.get("id").and_then(Json::as_str).map(|id| (id, r)))
            .collect();
        for (w, keys) in works.iter_mut().zip(row_keys) {
            let mut decided = false;
            for (kind, norm) in &keys {
                let field = kind.field();
                let column = self.column_of(field).map(str::to_owned);
                let value = w.input.get(field).and_then(Json::as_str).map(str::to_owned);
                let label = self
                    .object
                    .field(field)
                    .map_or_else(|| Label::new(field, field), |f| f.label.clone());
                let matched = by_key.get(&(*kind, norm.as_str())).cloned().unwrap_or_default();
                if !matched.is_empty() {
                    let visible: Vec<&Record> = matched.iter().filter_map(|id| by_id.get(id).copied()).collect();
                    let hidden = matched.len() - visible.len();
                    let named: Vec<String> = visible
                        .iter()
                        .take(3)
                        .map(|r| {
                            let text = |k: &str| r.get(k).and_then(Json::as_str).unwrap_or_default().to_owned();
                            format!("{} {}", text("number"), text("name"))
                        })
                        .collect();
                    let (zh, en) = if named.is_empty() {
                        (
                            format!("“{}”与{hidden}个您无权查看的已有客户相同", label.zh),
                            format!("{} matches {hidden} existing customer(s) you may not see", label.en),
                        )
                    } else {
                        let more = visible.len() - named.len();
                        let mut zh = format!("“{}”与已有客户相同：{}", label.zh, named.join("、"));
                        let mut en = format!("{} matches existing customer(s): {}", label.en, named.join(", "));
                        if more > 0 {
                            zh.push_str(&format!(" 等{}个", visible.len()));
                            en.push_str(&format!(" and {more} more"));
                        }
                        if hidden > 0 {
                            zh.push_str(&format!("；另有{hidden}个您无权查看的客户"));
                            en.push_str(&format!("; and {hidden} you may not see"));
                        }
                        (zh, en)
                    };
                    w.duplicates.push(row_error(
                        w.row,
                        column.as_deref(),
                        Some(field),
                        &FieldError::new("duplicate_existing", zh, en),
                        value.clone(),
                    ));
                    if self.dup_match && !decided {
                        decided = true;
                        match (self.policy, visible.as_slice()) {
                            (DuplicatePolicy::Skip, _) => w.skip = true,
                            (DuplicatePolicy::Update, [one]) => w.existing = Some((*one).clone()),
                            (DuplicatePolicy::Update, []) => w.errors.push(row_error(
                                w.row,
                                column.as_deref(),
                                Some(field),
                                &FieldError::new(
                                    "duplicate_not_visible",
                                    format!("“{}”与您无权查看的客户相同，无法更新，也不会重复创建", label.zh),
                                    format!(
                                        "{} matches a customer you may not see; it can neither be updated nor created again",
                                        label.en
                                    ),
                                ),
                                value.clone(),
                            )),
                            (DuplicatePolicy::Update, _) => w.errors.push(row_error(
                                w.row,
                                column.as_deref(),
                                Some(field),
                                &FieldError::new(
                                    "ambiguous_match",
                                    format!("有多个客户的“{}”与本行相同，无法确定要更新哪一个", label.zh),
                                    format!(
                                        "several customers match this row's {}; cannot tell which to update",
                                        label.en
                                    ),
                                ),
                                value.clone(),
                            )),
                            (DuplicatePolicy::Create, _) => {}
                        }
                    }
                }
                let mut hasher = DefaultHasher::new();
                kind.as_str().hash(&mut hasher);
                norm.hash(&mut hasher);
                let row = u32::try_from(w.row).unwrap_or(u32::MAX);
                match self.seen_keys.entry(hasher.finish()) {
                    btree_map::Entry::Vacant(e) => {
                        e.insert(row);
                    }
                    btree_map::Entry::Occupied(e) => {
                        let first = *e.get();
                        let error = FieldError::new(
                            "duplicate_in_file",
                            format!("“{}”与文件第{first}行相同", label.zh),
                            format!("{} is the same as in row {first} of the file", label.en),
                        );
                        w.duplicates
                            .push(row_error(w.row, column.as_deref(), Some(field), &error, value.clone()));
                        if self.dup_match && !decided {
                            decided = true;
                            match self.policy {
                                DuplicatePolicy::Skip => w.skip = true,
                                DuplicatePolicy::Update => {
                                    w.existing = None;
                                    w.errors.push(row_error(
                                        w.row,
                                        column.as_deref(),
                                        Some(field),
                                        &error,
                                        value.clone(),
                                    ));
                                }
                                DuplicatePolicy::Create => {}
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

fn column_in<'a>(columns: &'a [(String, Option<FieldDef>)], field: &str) -> Option<&'a str> {
    columns
        .iter()
        .find(|(_, f)| f.as_ref().is_some_and(|f| f.key == field))
        .map(|(c, _)| c.as_str())
}

/// Errors of the engine or of validation, mapped to the row's columns.
fn errors_of(
    columns: &[(String, Option<FieldDef>)],
    row: i64,
    input: &Map<String, Json>,
    e: StoreError,
) -> Vec<RowError> {
    match e {
        StoreError::Domain(DomainError::Validation(fields)) => fields
            .0
            .iter()
            .flat_map(|(key, errs)| {
                let column = column_in(columns, key);
                let value = input.get(key).filter(|v| !v.is_null()).map(|v| match v {
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                });
                errs.iter()
                    .map(move |fe| row_error(row, column, Some(key), fe, value.clone()))
                    .collect::<Vec<_>>()
            })
            .collect(),
        StoreError::Domain(DomainError::Forbidden(l)) => vec![plain_error(row, "forbidden", &l)],
        StoreError::Domain(DomainError::Conflict(l)) => vec![plain_error(row, "conflict", &l)],
        StoreError::Domain(DomainError::Refused { code, message }) => vec![plain_error(row, code, &message)],
        StoreError::Domain(DomainError::VersionConflict { .. }) => vec![plain_error(
            row,
            "version_conflict",
            &Label::new(
                "记录在导入期间被他人修改，本行未更新",
                "the record was changed by someone else during the import; this row was not applied",
            ),
        )],
        StoreError::Domain(DomainError::NotFound { .. }) => vec![plain_error(
            row,
            "not_found",
            &Label::new(
                "要更新的记录不存在或已删除",
                "the record to update does not exist or was deleted",
            ),
        )],
        StoreError::Domain(DomainError::InvalidTransition(l) | DomainError::InvalidQuery(l)) => {
            vec![plain_error(row, "invalid", &l)]
        }
        StoreError::Domain(DomainError::UnknownObject(o)) => vec![plain_error(
            row,
            "unknown_object",
            &Label {
                zh: format!("对象“{o}”不存在"),
                en: format!("there is no object '{o}'"),
            },
        )],
        other => {
            tracing::error!(error = ?other, row, "import row failed in the database");
            vec![plain_error(
                row,
                "internal",
                &Label::new("保存本行时数据库出错", "the database failed while saving this row"),
            )]
        }
    }
}

/// Relation cells to look up: (work index, field, target object, texts, several).
type Pending = Vec<(usize, String, String, Vec<String>, bool)>;

/// Turns the cells of each row into API values; relations given by name wait in `Pending`.
fn convert_rows(
    columns: &[(String, Option<FieldDef>)],
    rows: Vec<(u64, Vec<Cell>)>,
    snapshot: &guanxi_store::catalog::Snapshot,
) -> (Vec<Work>, Pending) {
    let mut works = Vec::with_capacity(rows.len());
    let mut pending: Pending = Vec::new();
    for (row_no, cells) in rows {
        let row = i64::try_from(row_no).unwrap_or(i64::MAX);
        let mut work = Work {
            row,
            input: Map::new(),
            errors: Vec::new(),
            key: None,
            existing: None,
            skip: false,
            duplicates: Vec::new(),
        };
        for (i, (column, field)) in columns.iter().enumerate() {
            let Some(field) = field else { continue };
            let cell = cells.get(i).cloned().unwrap_or(Cell::Empty);
            match convert::convert_cell(field, &cell, snapshot) {
                Ok(Converted::Value(v)) => {
                    work.input.insert(field.key.clone(), v);
                }
                Ok(Converted::Lookup { target, texts, many }) => {
                    pending.push((works.len(), field.key.clone(), target, texts, many));
                }
                Err(e) => work
                    .errors
                    .push(row_error(row, Some(column), Some(&field.key), &e, Some(cell.to_text()))),
            }
        }
        works.push(work);
    }
    (works, pending)
}

/// Validates each row as the record API would, for a create or (when a record matched) an
/// update; adds every problem of a row at once.
fn validate_rows(
    columns: &[(String, Option<FieldDef>)],
    object: &ObjectDef,
    snapshot: &guanxi_store::catalog::Snapshot,
    works: &mut [Work],
) {
    for w in works {
        if w.skip {
            continue;
        }
        // Match-only columns (id, numbers) find records; they are never written.
        let mut input = w.input.clone();
        input.retain(|k, _| object.field(k).is_some_and(|f| !match_only(f)));
        let mode = if w.existing.is_some() {
            Mode::Update
        } else {
            Mode::Create
        };
        if mode == Mode::Update {
            // Empty cells do not clear existing values on update.
            input.retain(|_, v| !v.is_null());
        }
        match validate_input(object, &input, mode, snapshot) {
            Ok(_) => w.input = input,
            Err(fields) => {
                // A cell that could not be read is reported once, not again as "required".
                let errs = errors_of(
                    columns,
                    w.row,
                    &input,
                    StoreError::Domain(DomainError::Validation(fields)),
                );
                let already: HashSet<Option<String>> = w.errors.iter().map(|e| e.field.clone()).collect();
                w.errors
                    .extend(errs.into_iter().filter(|e| !already.contains(&e.field)));
            }
        }
    }
}

/// `Engine::create_batch_with` (search entries staged) on a blocking thread of the same
/// runtime. Its future is not `Send` (the savepoint statements borrow the transaction in a way
/// the compiler cannot prove `Send` for), so it cannot run inside a job handler directly;
/// `Handle::block_on` runs it where `Send` is not needed, on the same runtime and pools.
async fn create_batch(
    engine: &Engine,
    actor: &Actor,
    object: &str,
    inputs: Vec<Map<String, Json>>,
) -> anyhow::Result<Vec<Result<Record, StoreError>>> {
    let (engine, actor, object) = (engine.clone(), actor.clone(), object.to_owned());
    let handle = tokio::runtime::Handle::current();
    let results = tokio::task::spawn_blocking(move || {
        handle.block_on(engine.create_batch_with(&actor, &object, &inputs, SearchEntries::Staged))
    })
    .await??;
    Ok(results)
}

/// Live records (in the actor's scope) whose `key` is one of `values`.
async fn list_in(
    engine: &Engine,
    actor: &Actor,
    object: &ObjectDef,
    key: &str,
    values: &[String],
) -> Result<Vec<Record>, StoreError> {
    let mut out = Vec::new();
    for part in values.chunks(500) {
        let filter = parse_filter(object, &json!({"field": key, "op": "in", "value": part}))?;
        let mut cursor = None;
        loop {
            let page = engine
                .list(
                    actor,
                    &object.key,
                    &ListQuery {
                        filter: Some(filter.clone()),
                        limit: 500,
                        cursor: cursor.clone(),
                        total: TotalMode::None,
                        ..ListQuery::default()
                    },
                )
                .await?;
            out.extend(page.records);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
    }
    Ok(out)
}

/// Streams the data rows of a batch's file in chunks, skipping the first `skip` data rows. The
/// reading happens on a blocking thread; a file error ends the stream with that error.
/// Chunks of numbered rows, or the file error that ended the reading.
type ChunkReceiver = tokio::sync::mpsc::Receiver<Result<Vec<(u64, Vec<Cell>)>, FileError>>;

fn stream_chunks(batch: &Batch, skip: i64, size: usize) -> ApiResult<ChunkReceiver> {
    let spec = spec_of(batch)?;
    let path = PathBuf::from(&batch.file_path);
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        let mut chunk = Vec::with_capacity(size);
        let mut seen: i64 = 0;
        let result = formats::read_rows(
            &path,
            &spec,
            &mut |_| {},
            &mut |_, _| Ok(Next::Continue),
            &mut |row, cells| {
                seen += 1;
                if seen <= skip {
                    return Ok(Next::Continue);
                }
                chunk.push((row, cells));
                if chunk.len() >= size {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(size));
                    if tx.blocking_send(Ok(full)).is_err() {
                        return Ok(Next::Stop);
                    }
                }
                Ok(Next::Continue)
            },
        );
        if !chunk.is_empty() {
            let _ = tx.blocking_send(Ok(chunk));
        }
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(e));
        }
    });
    Ok(rx)
}

/// Counts the data rows of a file (for progress totals).
async fn count_rows(batch: &Batch) -> anyhow::Result<i64> {
    let spec = spec_of(batch).map_err(|e| anyhow::anyhow!("{}", e.message.en))?;
    let path = PathBuf::from(&batch.file_path);
    tokio::task::spawn_blocking(move || {
        let mut n: i64 = 0;
        let r = formats::read_rows(
            &path,
            &spec,
            &mut |_| {},
            &mut |_, _| Ok(Next::Continue),
            &mut |_, _| {
                n += 1;
                Ok(Next::Continue)
            },
        );
        // A damaged file is reported by the pass that imports it, with its row.
        let _ = r;
        n
    })
    .await
    .map_err(Into::into)
}

async fn plan_for(engine: &Engine, actor: Actor, batch: &Batch) -> anyhow::Result<Plan> {
    let object = engine.object_for(&actor, &batch.object)?;
    let columns: Vec<(String, Option<FieldDef>)> = batch
        .columns
        .iter()
        .map(|c| {
            let field = batch
                .mapping
                .get(c)
                .cloned()
                .flatten()
                .and_then(|k| object.field(&k).cloned());
            (c.clone(), field)
        })
        .collect();
    let policy: DuplicatePolicy = serde_json::from_value(batch.options["duplicate_policy"].clone()).unwrap_or_default();
    let match_on = batch.options["match_on"]
        .as_str()
        .and_then(|k| object.field(k).cloned())
        .filter(|_| policy != DuplicatePolicy::Create);
    let dup_check = object.key == DEDUP_OBJECT;
    let dup_match = dup_check && policy != DuplicatePolicy::Create && batch.options["match_on"] == DUPLICATE_KEYS;
    Ok(Plan {
        engine: engine.clone(),
        actor,
        object,
        columns: Arc::new(columns),
        policy,
        match_on,
        seen: HashSet::new(),
        dup_check,
        dup_match,
        dup_report: false,
        seen_keys: BTreeMap::new(),
        lookups: HashMap::new(),
    })
}

#[derive(Debug, Default, Serialize, Deserialize, Clone)]
#[serde(default)]
struct Counts {
    total: i64,
    processed: i64,
    created: i64,
    updated: i64,
    unchanged: i64,
    skipped: i64,
    failed_rows: i64,
    errors: i64,
    /// Customers: rows that duplicate an existing customer or an earlier row (dry run).
    duplicate_rows: i64,
}

impl Counts {
    fn from_summary(s: Option<&Json>) -> Counts {
        s.and_then(|s| serde_json::from_value(s["counts"].clone()).ok())
            .unwrap_or_default()
    }
}

fn file_failure_summary(counts: &Counts, e: &FileError) -> Json {
    json!({"counts": counts, "file_error": e})
}

async fn fail_batch(db: &guanxi_store::Db, batch_id: &str, summary: Json) -> anyhow::Result<()> {
    store::update_batch(
        db,
        batch_id,
        BatchUpdate {
            status: Some("failed".into()),
            summary: Some(summary),
            inflight_since: Some(None),
            ..BatchUpdate::default()
        },
    )
    .await
}

/// The dry run: every row is converted, resolved, matched and validated; nothing is written
/// except the report.
pub async fn run_dry_run(engine: &Engine, ctx: &JobContext, batch: Batch) -> anyhow::Result<Option<Json>> {
    let db = ctx.db();
    let actor = job_actor(db, &batch.created_by).await?;
    let mut plan = plan_for(engine, actor, &batch).await?;
    plan.dup_report = true;
    store::delete_errors(db, &batch.id, "dry_run").await?;
    store::delete_errors(db, &batch.id, "duplicates").await?;
    let total = count_rows(&batch).await?;
    super::progress(ctx, 0, Some(total)).await?;
    let mut counts = Counts {
        total,
        ..Counts::default()
    };
    let mut rx = stream_chunks(&batch, 0, CHUNK).map_err(|e| anyhow::anyhow!("{}", e.message.en))?;
    while let Some(chunk) = rx.recv().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                let summary = file_failure_summary(&counts, &e);
                fail_batch(db, &batch.id, summary.clone()).await?;
                return Ok(Some(summary));
            }
        };
        let works = plan.prepare(chunk).await?;
        let mut errors = Vec::new();
        let mut duplicates = Vec::new();
        for mut w in works {
            counts.processed += 1;
            if !w.duplicates.is_empty() {
                counts.duplicate_rows += 1;
                duplicates.append(&mut w.duplicates);
            }
            if !w.errors.is_empty() {
                counts.failed_rows += 1;
                counts.errors += w.errors.len() as i64;
                errors.extend(w.errors);
            } else if w.skip {
                counts.skipped += 1;
            } else if w.existing.is_some() {
                counts.updated += 1;
            } else {
                counts.created += 1;
            }
        }
        if !errors.is_empty() || !duplicates.is_empty() {
            let mut conn = db.writer().acquire().await?;
            store::insert_errors(&mut conn, db, &batch.id, "dry_run", &errors).await?;
            store::insert_errors(&mut conn, db, &batch.id, "duplicates", &duplicates).await?;
        }
        super::progress(ctx, counts.processed, Some(total)).await?;
    }
    let summary = json!({"phase": "dry_run", "counts": counts, "would_create": counts.created,
        "would_update": counts.updated, "would_skip": counts.skipped});
    store::update_batch(
        db,
        &batch.id,
        BatchUpdate {
            status: Some("validated".into()),
            total_rows: Some(total),
            summary: Some(summary.clone()),
            ..BatchUpdate::default()
        },
    )
    .await?;
    let first: Vec<Json> = store::list_errors(db, &batch.id, "dry_run", 0, 100)
        .await?
        .iter()
        .map(|e| json!({"row": e.row, "column": e.column, "field": e.field, "code": e.code, "message": e.message_zh, "message_en": e.message_en, "value": e.value}))
        .collect();
    let mut result = summary;
    result["errors"] = Json::from(first);
    if plan.dup_check {
        let duplicates: Vec<Json> = store::list_errors(db, &batch.id, "duplicates", 0, 100)
            .await?
            .iter()
            .map(|e| json!({"row": e.row, "column": e.column, "field": e.field, "code": e.code, "message": e.message_zh, "message_en": e.message_en, "value": e.value}))
            .collect();
        result["duplicates"] = Json::from(duplicates);
    }
    result["import_id"] = Json::from(batch.id);
    Ok(Some(result))
}

/// The commit: chunk by chunk, rows are created (one transaction per chunk), updated or
/// skipped; bad rows are reported; progress and the resume point are saved after every chunk.
/// Created records' search entries are staged and merged into the index every [`MERGE_EVERY`]
/// created rows and when the commit ends, however it ends (decision 0014): the import is
/// searchable when its job reports done.
pub async fn run_commit(engine: &Engine, ctx: &JobContext, batch: Batch) -> anyhow::Result<Option<Json>> {
    let outcome = commit_rows(engine, ctx, batch).await;
    let merged = engine.merge_staged_search().await;
    let result = outcome?;
    merged?;
    Ok(result)
}

/// Created rows between two merges of their staged search entries (each in windows of 25,000
/// records on SQLite, 1,000 on PostgreSQL): the last rows of an import wait at most this long
/// to be found by quick search.
pub const MERGE_EVERY: i64 = 100_000;

async fn commit_rows(engine: &Engine, ctx: &JobContext, batch: Batch) -> anyhow::Result<Option<Json>> {
    let db = ctx.db();
    let actor = job_actor(db, &batch.created_by).await?;
    let mut plan = plan_for(engine, actor.clone(), &batch).await?;
    let mut counts = Counts::from_summary(batch.summary.as_ref().filter(|s| s["phase"] == "commit"));
    if batch.next_row == 0 {
        store::delete_errors(db, &batch.id, "commit").await?;
        counts = Counts::default();
    }
    let total = match batch.total_rows {
        Some(t) => t,
        None => count_rows(&batch).await?,
    };
    counts.total = total;
    let mut done = batch.next_row;
    if let Some(since) = batch.inflight_since.clone() {
        done += recover_inflight(db, &plan, &batch, &since).await?;
    }
    super::progress(ctx, done, Some(total)).await?;
    let mut rx = stream_chunks(&batch, done, COMMIT_CHUNK).map_err(|e| anyhow::anyhow!("{}", e.message.en))?;
    let mut merged_at = counts.created;
    while let Some(chunk) = rx.recv().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                let summary = file_failure_summary(&counts, &e);
                let mut conn = db.writer().acquire().await?;
                let err = RowError {
                    row: e.row.and_then(|r| i64::try_from(r).ok()).unwrap_or(0),
                    column: e.column.clone(),
                    field: None,
                    code: e.code.to_owned(),
                    message_zh: e.message.zh.clone(),
                    message_en: e.message.en.clone(),
                    value: None,
                };
                let errs = vec![err];
                store::insert_errors(&mut conn, db, &batch.id, "commit", &errs).await?;
                drop(conn);
                let status = if counts.created + counts.updated > 0 {
                    "imported"
                } else {
                    "failed"
                };
                store::update_batch(
                    db,
                    &batch.id,
                    BatchUpdate {
                        status: Some(status.into()),
                        summary: Some(json!({"phase": "commit", "counts": counts, "file_error": e})),
                        ..BatchUpdate::default()
                    },
                )
                .await?;
                return Ok(Some(summary));
            }
        };
        let rows_in_chunk = chunk.len() as i64;
        let works = plan.prepare(chunk).await?;
        let mut errors = Vec::new();
        let mut links = Vec::new();
        let mut creates: Vec<(i64, Map<String, Json>)> = Vec::new();
        let mut updates = Vec::new();
        for w in works {
            if !w.errors.is_empty() {
                counts.failed_rows += 1;
                counts.errors += w.errors.len() as i64;
                errors.extend(w.errors);
            } else if w.skip {
                counts.skipped += 1;
            } else if let Some(existing) = w.existing {
                updates.push((w.row, existing, w.input));
            } else {
                creates.push((w.row, w.input));
            }
        }
        if !creates.is_empty() {
            let since = guanxi_core::time_fmt::now_utc();
            store::update_batch(
                db,
                &batch.id,
                BatchUpdate {
                    inflight_since: Some(Some(since)),
                    ..BatchUpdate::default()
                },
            )
            .await?;
            let inputs: Vec<Map<String, Json>> = creates.iter().map(|(_, i)| i.clone()).collect();
            let results = create_batch(engine, &actor, &batch.object, inputs).await?;
            for ((row, input), result) in creates.iter().zip(results) {
                match result {
                    Ok(record) => {
                        counts.created += 1;
                        links.push(Link {
                            record_id: record.get("id").and_then(Json::as_str).unwrap_or_default().to_owned(),
                            row: *row,
                            action: "created".into(),
                            version: record.get("version").and_then(Json::as_i64).unwrap_or(1),
                            before: None,
                        });
                    }
                    Err(e) => {
                        let errs = plan.store_errors(*row, input, e);
                        counts.failed_rows += 1;
                        counts.errors += errs.len() as i64;
                        errors.extend(errs);
                    }
                }
            }
        }
        for (row, existing, input) in updates {
            let id = existing.get("id").and_then(Json::as_str).unwrap_or_default().to_owned();
            let version = existing.get("version").and_then(Json::as_i64).unwrap_or(0);
            match engine.update(&actor, &batch.object, &id, version, &input).await {
                Ok(record) => {
                    let new_version = record.get("version").and_then(Json::as_i64).unwrap_or(version);
                    if new_version == version {
                        counts.unchanged += 1;
                        continue;
                    }
                    counts.updated += 1;
                    let before: Map<String, Json> = input
                        .keys()
                        .map(|k| (k.clone(), existing.get(k).cloned().unwrap_or(Json::Null)))
                        .collect();
                    links.push(Link {
                        record_id: id,
                        row,
                        action: "updated".into(),
                        version: new_version,
                        before: Some(Json::Object(before)),
                    });
                }
                Err(e) => {
                    let errs = plan.store_errors(row, &input, e);
                    counts.failed_rows += 1;
                    counts.errors += errs.len() as i64;
                    errors.extend(errs);
                }
            }
        }
        done += rows_in_chunk;
        counts.processed = done;
        save_chunk(db, &batch.id, &links, &errors, done, &counts).await?;
        if counts.created - merged_at >= MERGE_EVERY {
            let started = std::time::Instant::now();
            let merged = engine.merge_staged_search().await?;
            tracing::info!(batch = %batch.id, records = merged, ms = started.elapsed().as_millis(), "import's search entries merged");
            merged_at = counts.created;
        }
        super::progress(ctx, done, Some(total)).await?;
        // Let other writers (people using the app) have the database between chunks.
        tokio::task::yield_now().await;
    }
    let summary = json!({"phase": "commit", "counts": counts});
    store::update_batch(
        db,
        &batch.id,
        BatchUpdate {
            status: Some("imported".into()),
            total_rows: Some(total),
            summary: Some(summary.clone()),
            ..BatchUpdate::default()
        },
    )
    .await?;
    let mut result = summary;
    result["import_id"] = Json::from(batch.id);
    Ok(Some(result))
}

async fn save_chunk(
    db: &guanxi_store::Db,
    batch_id: &str,
    links: &[Link],
    errors: &[RowError],
    done: i64,
    counts: &Counts,
) -> anyhow::Result<()> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = save_chunk_once(db, batch_id, links, errors, done, counts).await;
        match result {
            Ok(()) => return Ok(()),
            // The records of this chunk are committed; losing their links would break undo.
            Err(e) if attempt < 5 => {
                tracing::warn!(error = %e, attempt, "saving an import chunk failed; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(200 * attempt)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn save_chunk_once(
    db: &guanxi_store::Db,
    batch_id: &str,
    links: &[Link],
    errors: &[RowError],
    done: i64,
    counts: &Counts,
) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut conn = db.writer().acquire().await?;
    let mut tx = conn.begin().await?;
    store::insert_links(&mut tx, db, batch_id, links).await?;
    store::insert_errors(&mut tx, db, batch_id, "commit", errors).await?;
    let mut sql = guanxi_store::sql::Sql::of(db.backend(), "UPDATE import_batches SET next_row = ");
    sql.bind(done)
        .push(", inflight_since = NULL, summary = ")
        .bind(json!({"phase": "commit", "counts": counts}).to_string())
        .push(", updated_at = ")
        .bind(guanxi_core::time_fmt::now_utc())
        .push(" WHERE id = ")
        .bind(batch_id);
    sql.query().execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// After a crash between a chunk's commit and its bookkeeping: the chunk's transaction either
/// committed entirely or not at all, so records this user created in this object since the
/// chunk started (and that no batch claims) are that chunk's. Returns the rows to skip.
async fn recover_inflight(db: &guanxi_store::Db, plan: &Plan, batch: &Batch, since: &str) -> anyhow::Result<i64> {
    use sqlx::Row;
    // A chunk's transaction takes seconds; ten minutes is a generous bound.
    let until = time::OffsetDateTime::parse(since, &time::format_description::well_known::Rfc3339)
        .map(|t| guanxi_core::time_fmt::format_utc(t + time::Duration::minutes(10)))
        .unwrap_or_else(|_| since.to_owned());
    let mut sql = guanxi_store::sql::Sql::of(db.backend(), "SELECT \"id\", \"version\" FROM ");
    sql.ident(&plan.object.table)
        .push(" WHERE \"created_by\" = ")
        .bind(batch.created_by.as_str())
        .push(" AND \"created_at\" >= ")
        .bind(since)
        .push(" AND \"created_at\" <= ")
        .bind(until)
        .push(" ORDER BY \"id\"");
    let rows = sql.query().fetch_all(db.writer()).await?;
    let ids: Vec<(String, i64)> = rows
        .iter()
        .map(|r| Ok((r.try_get::<String, _>("id")?, r.try_get::<i64, _>("version")?)))
        .collect::<Result<_, sqlx::Error>>()?;
    let claimed = store::linked_ids(db, &ids.iter().map(|(i, _)| i.clone()).collect::<Vec<_>>()).await?;
    let links: Vec<Link> = ids
        .into_iter()
        .filter(|(id, _)| !claimed.contains(id))
        .map(|(id, version)| Link {
            record_id: id,
            row: 0,
            action: "created".into(),
            version,
            before: None,
        })
        .collect();
    if links.is_empty() {
        store::update_batch(
            db,
            &batch.id,
            BatchUpdate {
                inflight_since: Some(None),
                ..BatchUpdate::default()
            },
        )
        .await?;
        return Ok(0);
    }
    tracing::warn!(batch = %batch.id, records = links.len(), "import resumed after an interrupted chunk; adopting its records");
    let mut counts = Counts::from_summary(batch.summary.as_ref());
    counts.created += links.len() as i64;
    let skip = i64::try_from(COMMIT_CHUNK)?.min(batch.total_rows.unwrap_or(i64::MAX) - batch.next_row);
    let done = batch.next_row + skip;
    counts.processed = done;
    let no_errors: Vec<RowError> = Vec::new();
    save_chunk(db, &batch.id, &links, &no_errors, done, &counts).await?;
    Ok(skip)
}

/// Undo: created records go to the recycle bin (1,000 per transaction), updated records get the
/// values they had before — in both cases only when nobody changed the record since the import.
pub async fn run_undo(engine: &Engine, ctx: &JobContext, batch: Batch) -> anyhow::Result<Option<Json>> {
    let db = ctx.db();
    let actor = job_actor(db, &batch.created_by).await?;
    let counts = store::count_links(db, &batch.id).await?;
    let total = counts.get("created").copied().unwrap_or(0) + counts.get("updated").copied().unwrap_or(0);
    let mut done: i64 = 0;
    let mut deleted = 0i64;
    let mut restored = 0i64;
    let mut kept: Vec<Json> = Vec::new();
    let mut kept_count = 0i64;
    super::progress(ctx, 0, Some(total)).await?;
    loop {
        let links = store::list_links(db, &batch.id, "created", "", 1000).await?;
        if links.is_empty() {
            break;
        }
        let ids: Vec<String> = links.iter().map(|l| l.record_id.clone()).collect();
        // Current versions, to leave records that were changed after the import alone.
        let current = versions(db, &*engine.object(&batch.object)?, &ids).await?;
        let mut to_delete = Vec::new();
        let mut keep = Vec::new();
        let mut gone = Vec::new();
        for l in &links {
            match current.get(&l.record_id) {
                Some((v, false)) if *v == l.version => to_delete.push(l.record_id.clone()),
                Some((_, true)) | None => gone.push(l.record_id.clone()),
                Some(_) => keep.push(l.clone()),
            }
        }
        if !to_delete.is_empty() {
            match engine.bulk_delete(&actor, &batch.object, &to_delete).await {
                Ok(n) => deleted += n as i64,
                Err(StoreError::Domain(_)) => {
                    // One record refused (scope, a hook): go one by one and keep the refused ones.
                    let mut refused = Vec::new();
                    for id in &to_delete {
                        match engine.delete(&actor, &batch.object, id, None).await {
                            Ok(()) => deleted += 1,
                            Err(StoreError::Domain(e)) => refused.push((id.clone(), e.to_string())),
                            Err(e) => return Err(e.into()),
                        }
                    }
                    for (id, reason) in refused {
                        kept_count += 1;
                        if kept.len() < 1000 {
                            kept.push(json!({"id": id, "reason": reason}));
                        }
                        to_delete.retain(|x| *x != id);
                        store::set_link_actions(db, &batch.id, &[id], "kept").await?;
                    }
                }
                Err(e) => return Err(e.into()),
            }
            store::set_link_actions(db, &batch.id, &to_delete, "undone").await?;
        }
        store::set_link_actions(db, &batch.id, &gone, "undone").await?;
        for l in keep {
            kept_count += 1;
            if kept.len() < 1000 {
                kept.push(json!({"id": l.record_id, "row": l.row, "reason": "changed after the import"}));
            }
            store::set_link_actions(db, &batch.id, &[l.record_id], "kept").await?;
        }
        done += links.len() as i64;
        super::progress(ctx, done, Some(total)).await?;
    }
    loop {
        let links = store::list_links(db, &batch.id, "updated", "", 500).await?;
        if links.is_empty() {
            break;
        }
        for l in links {
            let before = l.before.as_ref().and_then(Json::as_object).cloned().unwrap_or_default();
            let outcome = engine
                .update(&actor, &batch.object, &l.record_id, l.version, &before)
                .await;
            let action = match outcome {
                Ok(_) => {
                    restored += 1;
                    "undone"
                }
                Err(e) => {
                    kept_count += 1;
                    if kept.len() < 1000 {
                        kept.push(json!({"id": l.record_id, "row": l.row, "reason": e.to_string()}));
                    }
                    "kept"
                }
            };
            store::set_link_actions(db, &batch.id, &[l.record_id], action).await?;
            done += 1;
        }
        super::progress(ctx, done, Some(total)).await?;
    }
    let summary = json!({"phase": "undo", "deleted": deleted, "restored": restored, "kept": kept_count, "kept_records": kept,
        "import_counts": Counts::from_summary(batch.summary.as_ref())});
    store::update_batch(
        db,
        &batch.id,
        BatchUpdate {
            status: Some("undone".into()),
            summary: Some(summary.clone()),
            ..BatchUpdate::default()
        },
    )
    .await?;
    Ok(Some(summary))
}

/// Current version and whether the record is deleted, by id.
async fn versions(
    db: &guanxi_store::Db,
    object: &ObjectDef,
    ids: &[String],
) -> anyhow::Result<HashMap<String, (i64, bool)>> {
    use sqlx::Row;
    let mut out = HashMap::new();
    for part in ids.chunks(500) {
        let mut sql = guanxi_store::sql::Sql::of(db.backend(), "SELECT \"id\", \"version\", \"deleted_at\" FROM ");
        sql.ident(&object.table)
            .push(" WHERE \"id\" IN (")
            .bind_list(part.iter().map(|s| guanxi_store::sql::Bind::Text(s.clone())))
            .push(")");
        for r in sql.query().fetch_all(db.writer()).await? {
            let deleted: Option<String> = r.try_get("deleted_at")?;
            out.insert(
                r.try_get::<String, _>("id")?,
                (r.try_get::<i64, _>("version")?, deleted.is_some()),
            );
        }
    }
    Ok(out)
}
