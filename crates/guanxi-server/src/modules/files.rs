//! Attachments (issue 4 §5 form, issue 5 §1 business licence and tax certificate).
//!
//! - `POST /api/v1/files` (multipart: `object`, `field`, then `file`; or `?object=&field=`)
//!   stores one file for an attachment field, enforcing that field's limits while the bytes
//!   arrive: its size (413 `file_too_large`), its extension (422 `file_type_not_allowed`), and
//!   for pdf/png/jpg that the content really is one (sniffed from the first bytes). The bytes go
//!   to `data_dir/files/attachments/`, a row to the `files` table (name, size, content type,
//!   SHA-256, uploader). The answer's `{id, name, size}` is what the field's value lists.
//! - `GET /api/v1/files/{id}` downloads it, with the original (Chinese) name, to the uploader
//!   and to whoever may read a record whose attachment field lists it; to anyone else it does
//!   not exist (404).
//!
//! Whole upload bodies are capped by `max_upload_bytes` (413 `payload_too_large`); the record
//! engine checks the ids when a record is saved (`guanxi_store::files`).

use std::path::{Path as FsPath, PathBuf};

use axum::Router;
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{DefaultBodyLimit, Multipart, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use guanxi_core::meta::FieldType;
use guanxi_core::value::{check_file, file_extension, file_too_large};
use guanxi_core::{Actor, DomainError, FieldDef, ObjectDef};
use guanxi_store::StoreError;
use guanxi_store::files::{self, FileRow};
use guanxi_store::records::scope::forbidden;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use utoipa::{IntoParams, ToSchema};

use crate::config::Config;
use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::extract::{ApiQuery, CurrentActor};
use crate::routes::data;
use crate::state::AppState;

/// The routes; `max_upload` caps the whole body of an upload.
pub fn router(max_upload: usize) -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/files",
            post(upload_file).layer(DefaultBodyLimit::max(max_upload)),
        )
        .route("/api/v1/files/{id}", get(download_file))
}

/// Where attachment bytes live: `data_dir/files/attachments`.
pub fn attachments_dir(config: &Config) -> PathBuf {
    config.data_dir.join("files").join("attachments")
}

/// The object and field an upload is for, when not sent as multipart fields.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadParams {
    /// Object key, e.g. `customer`.
    pub object: Option<String>,
    /// Attachment field key, e.g. `attachments`.
    pub field: Option<String>,
}

/// A stored file. `{id, name, size}` is what an attachment field's value lists.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileView {
    pub id: String,
    pub name: String,
    pub size: i64,
    pub content_type: String,
    pub sha256: String,
    pub object: String,
    pub field: String,
    pub created_at: String,
    /// Where to download it.
    pub url: String,
}

fn view(f: &FileRow) -> FileView {
    FileView {
        id: f.id.clone(),
        name: f.name.clone(),
        size: f.size_bytes,
        content_type: f.content_type.clone(),
        sha256: f.sha256.clone(),
        object: f.object.clone(),
        field: f.field.clone(),
        created_at: f.created_at.clone(),
        url: format!("/api/v1/files/{}", f.id),
    }
}

fn unprocessable(code: &'static str, zh: impl Into<String>, en: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, zh, en)
}

fn multipart_error(e: &MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "上传内容超过服务器允许的大小",
            "the upload is larger than the server accepts",
        );
    }
    ApiError::bad_request(
        "unreadable_body",
        format!("无法读取上传的文件：{}", e.body_text()),
        format!("the upload could not be read: {}", e.body_text()),
    )
}

/// The attachment field an upload is for, checked against what the actor may do: it must be
/// allowed to create or change records of the object, and see and set the field.
struct Target {
    object: std::sync::Arc<ObjectDef>,
    field: FieldDef,
    max_size: u64,
    allowed: Vec<String>,
}

fn target(state: &AppState, actor: &Actor, object: Option<&str>, field: Option<&str>) -> ApiResult<Target> {
    let (Some(object), Some(field)) = (object.map(str::trim), field.map(str::trim)) else {
        return Err(unprocessable(
            "invalid_query",
            "请先给出 object 与 field（附件所属的对象和字段），再上传 file",
            "send object and field (the attachment's object and field) before file",
        ));
    };
    let full = state.engine.object(object)?;
    if actor.scope(&full.key, "create").is_none() && actor.scope(&full.key, "update").is_none() {
        return Err(forbidden(&full, "update").into());
    }
    let view = state.engine.object_for(actor, object)?;
    let Some(def) = view.field(field).filter(|f| !f.read_only) else {
        return Err(unprocessable(
            "invalid_query",
            format!("“{}”没有可上传附件的字段“{field}”", full.label.zh),
            format!("{} has no attachment field '{field}' you may set", full.label.en),
        ));
    };
    let FieldType::Attachments {
        max_size_bytes,
        allowed_extensions,
        ..
    } = &def.field_type
    else {
        return Err(unprocessable(
            "invalid_query",
            format!("“{}”不是附件字段", def.label.zh),
            format!("{} is not an attachment field", def.label.en),
        ));
    };
    Ok(Target {
        field: def.clone(),
        max_size: *max_size_bytes,
        allowed: allowed_extensions.clone(),
        object: view,
    })
}

/// A file name safe to store and to send back: the last path segment, no control characters,
/// at most 200 characters (the extension kept).
fn clean_name(raw: Option<&str>) -> String {
    let last = raw.unwrap_or("").rsplit(['/', '\\']).next().unwrap_or("");
    let name: String = last.chars().filter(|c| !c.is_control()).collect();
    let name = name.trim().to_owned();
    if name.is_empty() {
        return "file".into();
    }
    if name.chars().count() <= 200 {
        return name;
    }
    let ext = file_extension(&name);
    let stem: String = name.chars().take(190).collect();
    if ext.is_empty() { stem } else { format!("{stem}.{ext}") }
}

/// The content type sent on download, from the extension.
fn content_type(ext: &str) -> &'static str {
    match ext {
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "txt" => "text/plain; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => crate::modules::transfer::XLSX_TYPE,
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

/// Whether the first bytes are those of the type the extension claims (for the types whose
/// signature is certain; others pass).
fn content_matches(ext: &str, head: &[u8]) -> bool {
    match ext {
        "pdf" => head.starts_with(b"%PDF-"),
        "png" => head.starts_with(b"\x89PNG\r\n\x1a\n"),
        "jpg" | "jpeg" => head.starts_with(&[0xFF, 0xD8, 0xFF]),
        _ => true,
    }
}

/// Reads and discards the rest of a part.
async fn drain_part(mut field: Field<'_>) {
    while let Ok(Some(_)) = field.chunk().await {}
}

/// Reads and discards the rest of the body, so the client receives the error instead of a
/// connection reset. The route's body limit bounds the work.
async fn drain(multipart: &mut Multipart) {
    while let Ok(Some(f)) = multipart.next_field().await {
        drain_part(f).await;
    }
}

/// What came of streaming one file part.
enum Received {
    Stored { size: u64, sha256: String, head: Vec<u8> },
    TooLarge,
}

/// Streams a file part to `path`, hashing it, stopping at `max_size`.
async fn receive(field: &mut Field<'_>, path: &FsPath, max_size: u64) -> ApiResult<Received> {
    let mut file = tokio::fs::File::create(path).await.map_err(ApiError::internal)?;
    let mut hasher = Sha256::new();
    let mut head = Vec::with_capacity(16);
    let mut size: u64 = 0;
    while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(&e))? {
        size += chunk.len() as u64;
        if size > max_size {
            return Ok(Received::TooLarge);
        }
        if head.len() < 16 {
            head.extend(chunk.iter().take(16 - head.len()));
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(ApiError::internal)?;
    }
    file.sync_all().await.map_err(ApiError::internal)?;
    let sha256 = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(Received::Stored { size, sha256, head })
}

/// Upload a file for an attachment field: multipart with the text fields `object` and `field`
/// first (or as query parameters), then the file in `file`.
#[utoipa::path(post, path = "/api/v1/files", tag = "files", operation_id = "upload_file",
    params(UploadParams),
    request_body(content_type = "multipart/form-data", description = "Fields `object`, `field`, then the file in `file`"),
    responses((status = 201, description = "The stored file", body = FileView),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 413, description = "file_too_large (the field's limit) or payload_too_large (the server's)", body = ErrorEnvelope),
        (status = 415, body = ErrorEnvelope),
        (status = 422, description = "file_type_not_allowed, empty_file, invalid_query", body = ErrorEnvelope)))]
pub async fn upload_file(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    ApiQuery(params): ApiQuery<UploadParams>,
    request: Request,
) -> ApiResult<Response> {
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !is_multipart {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "请以 multipart/form-data 上传文件（字段 object、field、file）",
            "upload the file as multipart/form-data (fields object, field, file)",
        ));
    }
    let mut multipart = <Multipart as axum::extract::FromRequest<AppState>>::from_request(request, &state)
        .await
        .map_err(|e| ApiError::bad_request("unreadable_body", e.body_text(), e.body_text()))?;
    let mut object = params.object;
    let mut field_key = params.field;
    let dir = attachments_dir(&state.config);
    tokio::fs::create_dir_all(&dir).await.map_err(ApiError::internal)?;
    loop {
        let mut part = match multipart.next_field().await {
            Ok(Some(part)) => part,
            Ok(None) => break,
            Err(e) => return Err(multipart_error(&e)),
        };
        match part.name().unwrap_or("") {
            "object" => object = Some(part.text().await.map_err(|e| multipart_error(&e))?),
            "field" => field_key = Some(part.text().await.map_err(|e| multipart_error(&e))?),
            "file" => {
                let target = match target(&state, &actor, object.as_deref(), field_key.as_deref()) {
                    Ok(t) => t,
                    Err(e) => {
                        drain_part(part).await;
                        drain(&mut multipart).await;
                        return Err(e);
                    }
                };
                let name = clean_name(part.file_name());
                // The extension is known before any byte arrives: refuse early.
                if let Err(e) = check_file(&target.field, &name, 0, target.max_size, &target.allowed) {
                    drain_part(part).await;
                    drain(&mut multipart).await;
                    return Err(unprocessable(e.code, e.message.zh, e.message.en));
                }
                let id = uuid::Uuid::new_v4().to_string();
                let path = dir.join(&id);
                let received = receive(&mut part, &path, target.max_size).await;
                let (size, sha256, head) = match received {
                    Ok(Received::Stored { size, sha256, head }) => (size, sha256, head),
                    Ok(Received::TooLarge) => {
                        let _ = tokio::fs::remove_file(&path).await;
                        drain_part(part).await;
                        drain(&mut multipart).await;
                        let e = file_too_large(&name, target.max_size);
                        return Err(
                            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.code, e.message.zh, e.message.en)
                                .with_details(serde_json::json!({"max_size_bytes": target.max_size})),
                        );
                    }
                    Err(e) => {
                        let _ = tokio::fs::remove_file(&path).await;
                        return Err(e);
                    }
                };
                drop(part);
                drain(&mut multipart).await;
                let ext = file_extension(&name);
                let refuse = if size == 0 {
                    Some(unprocessable(
                        "empty_file",
                        format!("文件“{name}”是空的"),
                        format!("file '{name}' is empty"),
                    ))
                } else if !content_matches(&ext, &head) {
                    Some(unprocessable(
                        "file_type_not_allowed",
                        format!("文件“{name}”的内容不是 {} 格式", ext.to_uppercase()),
                        format!("the content of '{name}' is not {}", ext.to_uppercase()),
                    ))
                } else {
                    None
                };
                if let Some(e) = refuse {
                    let _ = tokio::fs::remove_file(&path).await;
                    return Err(e);
                }
                let row = FileRow {
                    id: id.clone(),
                    object: target.object.key.clone(),
                    field: target.field.key.clone(),
                    name,
                    size_bytes: i64::try_from(size).unwrap_or(i64::MAX),
                    content_type: content_type(&ext).into(),
                    sha256,
                    storage_path: id,
                    record_id: None,
                    uploaded_by: actor.id.clone(),
                    created_at: guanxi_core::time_fmt::now_utc(),
                };
                if let Err(e) = files::insert(&state.db, &row).await {
                    let _ = tokio::fs::remove_file(&path).await;
                    return Err(e.into());
                }
                tracing::info!(file = %row.id, object = %row.object, field = %row.field, size, "file uploaded");
                return Ok((StatusCode::CREATED, data(view(&row))).into_response());
            }
            _ => drain_part(part).await,
        }
    }
    Err(unprocessable(
        "invalid_body",
        "请在表单字段 file 中上传文件",
        "send the file in the multipart field 'file'",
    ))
}

/// Whether the actor may download a file: it uploaded it, or it may read a record whose
/// attachment field (as the actor sees it) lists the file.
async fn may_download(state: &AppState, actor: &Actor, file: &FileRow) -> ApiResult<bool> {
    if file.uploaded_by == actor.id {
        return Ok(true);
    }
    let Some(record_id) = &file.record_id else {
        return Ok(false);
    };
    match state.engine.get(actor, &file.object, record_id, false).await {
        Ok(record) => Ok(files::lists_file(record.get(&file.field), &file.id)),
        Err(StoreError::Domain(
            DomainError::NotFound { .. } | DomainError::Forbidden(_) | DomainError::UnknownObject(_),
        )) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Download a file, under its original name.
#[utoipa::path(get, path = "/api/v1/files/{id}", tag = "files", operation_id = "download_file",
    params(("id" = String, Path)),
    responses((status = 200, description = "The file, as an attachment"), (status = 404, body = ErrorEnvelope),
        (status = 410, body = ErrorEnvelope)))]
pub async fn download_file(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let not_found = || {
        ApiError::from(DomainError::NotFound {
            object: "file".into(),
            id: id.clone(),
        })
    };
    let file = files::get(&state.db, &id).await?.ok_or_else(not_found)?;
    if !may_download(&state, &actor, &file).await? {
        return Err(not_found());
    }
    let path = attachments_dir(&state.config).join(&file.storage_path);
    let mut res = crate::modules::transfer::send_file(&path, &file.name, &file.content_type, false).await?;
    res.headers_mut()
        .insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_paths_and_control_characters() {
        assert_eq!(clean_name(Some("C:\\扫描\\营业执照.pdf")), "营业执照.pdf");
        assert_eq!(clean_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(clean_name(Some("a\u{0}b.png")), "ab.png");
        assert_eq!(clean_name(None), "file");
        let long = format!("{}.pdf", "长".repeat(300));
        let cleaned = clean_name(Some(&long));
        assert!(cleaned.chars().count() <= 200 && cleaned.ends_with(".pdf"));
    }

    #[test]
    fn content_is_sniffed_for_pdf_png_and_jpeg() {
        assert!(content_matches("pdf", b"%PDF-1.7\n"));
        assert!(!content_matches("pdf", b"MZ\x90\x00"));
        assert!(content_matches("png", b"\x89PNG\r\n\x1a\n...."));
        assert!(!content_matches("jpg", b"\x89PNG\r\n\x1a\n"));
        assert!(content_matches("jpeg", &[0xFF, 0xD8, 0xFF, 0xE0]));
        assert!(content_matches("docx", b"anything"));
    }
}
