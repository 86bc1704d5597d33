//! The audit trail across records: who changed what, filterable by object, record, actor,
//! action and time, newest first.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use guanxi_store::records::{AuditEntry, AuditQuery};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{Envelope, data};
use crate::error::ApiResult;
use crate::extract::{ApiQuery, CurrentActor};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/audit", get(list_audit))
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

/// Audit entries across records.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", operation_id = "list_audit", params(AuditParams),
    responses((status = 200, description = "Audit entries, newest first")))]
pub async fn list_audit(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    ApiQuery(p): ApiQuery<AuditParams>,
) -> ApiResult<Json<Envelope<Vec<AuditEntry>>>> {
    let normalise = |t: Option<String>| t.map(|s| guanxi_core::time_fmt::parse_datetime(&s).unwrap_or(s));
    let q = AuditQuery {
        object: p.object,
        record_id: p.record_id,
        actor_id: p.actor_id,
        action: p.action,
        from: normalise(p.from),
        to: normalise(p.to),
        before: p.before,
        limit: p.limit.unwrap_or(50),
    };
    Ok(data(state.engine.audit(&actor, &q).await?))
}
