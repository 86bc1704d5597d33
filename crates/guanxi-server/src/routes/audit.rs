//! The audit trail across records: who changed what, filterable by object, record, actor,
//! action and time, newest first.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use guanxi_store::records::{AuditEntry, AuditQuery};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{Envelope, data};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, CurrentActor};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/audit", get(list_audit))
        .route("/api/v1/audit/export", get(export_audit))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    object: Option<String>,
    record_id: Option<String>,
    actor_id: Option<String>,
    /// create, update, delete, restore, purge, transition
    action: Option<String>,
    /// RFC 3339 lower bound of the time
    from: Option<String>,
    /// RFC 3339 upper bound of the time
    to: Option<String>,
    /// Continue after this entry id (the last id of the previous page)
    before: Option<String>,
    limit: Option<u32>,
}

fn query(p: AuditParams, max: u32) -> AuditQuery {
    let normalise = |t: Option<String>| t.map(|s| guanxi_core::time_fmt::parse_datetime(&s).unwrap_or(s));
    AuditQuery {
        object: p.object,
        record_id: p.record_id,
        actor_id: p.actor_id,
        action: p.action,
        from: normalise(p.from),
        to: normalise(p.to),
        before: p.before,
        limit: p.limit.unwrap_or(50).min(max),
    }
}

/// Audit entries across records.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", operation_id = "list_audit", params(AuditParams),
    responses((status = 200, description = "Audit entries, newest first")))]
pub async fn list_audit(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    ApiQuery(p): ApiQuery<AuditParams>,
) -> ApiResult<Json<Envelope<Vec<AuditEntry>>>> {
    Ok(data(state.engine.audit(&actor, &query(p, 500)).await?))
}

/// The operation log as CSV (UTF-8 with a byte-order mark for Excel): up to 50,000 entries.
#[utoipa::path(get, path = "/api/v1/audit/export", tag = "audit", operation_id = "export_audit", params(AuditParams),
    responses((status = 200, description = "CSV file", content_type = "text/csv")))]
pub async fn export_audit(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    ApiQuery(mut p): ApiQuery<AuditParams>,
) -> ApiResult<impl axum::response::IntoResponse> {
    p.limit = Some(p.limit.unwrap_or(50_000));
    let rows = state.engine.audit(&actor, &query(p, 50_000)).await?;
    let mut out = csv::Writer::from_writer(vec![0xEF, 0xBB, 0xBF]);
    let write = |out: &mut csv::Writer<Vec<u8>>| -> Result<(), csv::Error> {
        out.write_record([
            "时间 Time (UTC)",
            "操作人 Actor",
            "对象 Object",
            "记录 Record",
            "标题 Title",
            "操作 Action",
            "变更 Changes",
        ])?;
        for e in &rows {
            out.write_record([
                e.at.as_str(),
                e.actor_name.as_str(),
                e.object.as_str(),
                e.record_id.as_str(),
                e.title.as_deref().unwrap_or(""),
                e.action.as_str(),
                &e.changes.to_string(),
            ])?;
        }
        Ok(())
    };
    write(&mut out).map_err(ApiError::internal)?;
    let bytes = out.into_inner().map_err(|e| ApiError::internal(e.to_string()))?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                axum::http::header::CONTENT_DISPOSITION,
                "attachment; filename=\"operation-log.csv\"",
            ),
        ],
        bytes,
    ))
}
