//! Import and export of records for every object, driven by metadata (docs/IMPORT-EXPORT.md).
//!
//! - `POST /api/v1/imports/{object}` uploads an xlsx or csv file (UTF-8, UTF-8 with BOM, GBK,
//!   UTF-16 with BOM) and suggests a header mapping; `PUT …/mapping` adjusts and saves it;
//!   `POST …/dry-run` and `POST …/commit` run as jobs with progress; `GET …/errors[.xlsx]` lists
//!   bad rows with row, column and reason; `POST …/undo` reverts a whole batch.
//! - `POST /api/v1/exports/{object}` writes any filtered list with chosen fields to csv, xlsx or
//!   pdf in a job; `GET /api/v1/exports/{id}/download` serves it to its creator.
//!
//! Files live under `data_dir/files/` with random names; nothing is served without the owner
//! check.

pub mod convert;
pub mod export;
pub mod formats;
pub mod import;
pub mod pdf;
pub mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use guanxi_core::{Actor, DomainError};
use guanxi_store::Engine;
use guanxi_store::jobs::{JobContext, JobHandler, Worker};
use serde_json::Value as Json;

use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use formats::FileError;

pub const IMPORT_DRY_RUN: &str = "import.dry_run";
pub const IMPORT_COMMIT: &str = "import.commit";
pub const IMPORT_UNDO: &str = "import.undo";
pub const EXPORT_FILE: &str = "export.file";

pub const XLSX_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

pub fn router() -> Router<AppState> {
    let upload = post(import::create_import).layer(DefaultBodyLimit::max(import::MAX_UPLOAD_BYTES));
    Router::new()
        .route("/api/v1/records/{object}/import", upload.clone())
        .route("/api/v1/records/{object}/export", post(export::create_export))
        .route("/api/v1/imports", get(import::list_imports))
        // `POST /imports/{object}` and `POST /exports/{object}` are aliases of the two routes
        // above (the object key and the batch or export id share the path segment).
        .route("/api/v1/imports/{id}", upload.get(import::get_import))
        .route("/api/v1/imports/{id}/mapping", put(import::update_mapping))
        .route("/api/v1/imports/{id}/dry-run", post(import::dry_run))
        .route("/api/v1/imports/{id}/commit", post(import::commit))
        .route("/api/v1/imports/{id}/undo", post(import::undo))
        .route("/api/v1/imports/{id}/errors", get(import::list_errors))
        .route("/api/v1/imports/{id}/errors.xlsx", get(import::error_report))
        .route(
            "/api/v1/exports/{id}",
            post(export::create_export).get(export::get_export),
        )
        .route("/api/v1/exports/{id}/download", get(export::download_export))
}

/// Registers the import and export job handlers with the worker.
pub fn register_jobs(worker: &mut Worker, engine: &Engine, config: &Config) {
    let handler = Arc::new(TransferJobs {
        engine: engine.clone(),
        config: config.clone(),
    });
    for kind in [IMPORT_DRY_RUN, IMPORT_COMMIT, IMPORT_UNDO, EXPORT_FILE] {
        worker.register(kind, handler.clone());
    }
}

struct TransferJobs {
    engine: Engine,
    config: Config,
}

#[async_trait]
impl JobHandler for TransferJobs {
    async fn run(&self, ctx: &JobContext) -> anyhow::Result<Option<Json>> {
        if ctx.payload.get("export_id").is_some() {
            return export::run_export(&self.engine, &self.config, ctx).await;
        }
        let batch_id = ctx.payload["batch_id"].as_str().unwrap_or_default();
        let Some(batch) = store::get_batch(ctx.db(), batch_id).await? else {
            return Ok(Some(serde_json::json!({"error": "import batch not found"})));
        };
        if batch.job_id.as_deref() != Some(ctx.id.as_str()) {
            // A newer job owns the batch; this one has nothing left to do.
            return Ok(Some(serde_json::json!({"skipped": "superseded by another job"})));
        }
        let outcome = match batch.status.as_str() {
            "validating" => import::run_dry_run(&self.engine, ctx, batch.clone()).await,
            "importing" => import::run_commit(&self.engine, ctx, batch.clone()).await,
            "undoing" => import::run_undo(&self.engine, ctx, batch.clone()).await,
            other => return Ok(Some(serde_json::json!({"skipped": format!("batch is {other}")}))),
        };
        if let Err(e) = &outcome
            && ctx.attempt >= 3
        {
            // The last attempt: the batch must not stay "running" for ever.
            let summary = serde_json::json!({"error": format!("{e:#}"), "previous": batch.summary});
            let status = if batch.next_row > 0 || batch.status == "undoing" {
                "imported"
            } else {
                "failed"
            };
            let _ = store::update_batch(
                ctx.db(),
                &batch.id,
                store::BatchUpdate {
                    status: Some(status.into()),
                    summary: Some(summary),
                    ..store::BatchUpdate::default()
                },
            )
            .await;
        }
        outcome
    }
}

/// Reports a job's progress and keeps its lease: a long import or export must not look abandoned
/// to the workers of other servers (the worker's lease is five minutes).
pub async fn progress(ctx: &JobContext, done: i64, total: Option<i64>) -> anyhow::Result<()> {
    ctx.progress(done, total).await?;
    let until = guanxi_core::time_fmt::format_utc(time::OffsetDateTime::now_utc() + time::Duration::minutes(5));
    let mut sql = guanxi_store::sql::Sql::of(ctx.db().backend(), "UPDATE jobs SET locked_until = ");
    sql.bind(until)
        .push(" WHERE id = ")
        .bind(ctx.id.as_str())
        .push(" AND status = 'running'");
    sql.query().execute(ctx.db().writer()).await?;
    Ok(())
}

/// The actor a job runs as: the user who started it, with their current permissions.
pub async fn job_actor(db: &guanxi_store::Db, user_id: &str) -> anyhow::Result<Actor> {
    let user = guanxi_store::identity::find_user(db, user_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("user {user_id} no longer exists"))?;
    anyhow::ensure!(
        crate::modules::identity::session::account_usable(&user),
        "user {user_id} can no longer sign in"
    );
    let (access, _) = guanxi_store::identity::access_for(db, &user).await?;
    Ok(Actor {
        id: user.id.clone(),
        name: user.display_name.clone(),
        department_id: user.department_id.clone(),
        access: Some(Arc::new(access)),
    })
}

pub fn not_found(object: &str, id: &str) -> ApiError {
    DomainError::NotFound {
        object: object.to_owned(),
        id: id.to_owned(),
    }
    .into()
}

/// `data_dir/files/<kind>`.
pub fn transfer_dir(config: &Config, kind: &str) -> PathBuf {
    config.data_dir.join("files").join(kind)
}

/// A file problem as an API error: 415 for a type Guanxi does not read, 422 otherwise.
pub fn file_error(e: FileError) -> ApiError {
    let status = if e.code == "unsupported_file_type" {
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let details = serde_json::json!({"row": e.row, "column": e.column});
    let code: &'static str = e.code;
    ApiError::new(status, code, e.message.zh, e.message.en).with_details(details)
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Streams a file as an attachment (64 KiB at a time); `remove_after` deletes it once sent.
pub async fn send_file(path: &Path, name: &str, content_type: &str, remove_after: bool) -> ApiResult<Response> {
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(path).await.map_err(|e| {
        ApiError::new(
            StatusCode::GONE,
            "file_gone",
            format!("文件已不存在（{e}）"),
            format!("the file no longer exists ({e})"),
        )
    })?;
    let len = file.metadata().await.map_err(ApiError::internal)?.len();
    let path = path.to_path_buf();
    let stream = futures_util::stream::unfold(Some(file), move |state| {
        let path = path.clone();
        async move {
            let mut file = state?;
            let mut buf = vec![0u8; 64 * 1024];
            match file.read(&mut buf).await {
                Ok(0) => {
                    if remove_after {
                        let _ = tokio::fs::remove_file(&path).await;
                    }
                    None
                }
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(buf)), Some(file)))
                }
                Err(e) => Some((Err(e), None)),
            }
        }
    });
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        percent_encode(name)
    );
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
