//! Background job status, for progress bars of long imports and exports.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use guanxi_core::DomainError;
use guanxi_store::jobs::JobView;

use super::{Envelope, data};
use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::CurrentActor;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/jobs/{id}", get(get_job))
}

/// A job's status, attempts, progress and result.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", operation_id = "get_job",
    params(("id" = String, Path)),
    responses((status = 200, description = "The job"), (status = 404, body = ErrorEnvelope)))]
pub async fn get_job(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
) -> ApiResult<Json<Envelope<JobView>>> {
    let job = guanxi_store::jobs::get(&state.db, &id)
        .await?
        .filter(|j| j.created_by.as_deref() == Some(actor.id.as_str()) || actor.can("system.manage"))
        .ok_or(DomainError::NotFound {
            object: "job".into(),
            id,
        })?;
    Ok(data(job))
}
