//! Customer merge and its undo (issue 5 §5): `POST /api/v1/customers/merge`,
//! `GET /api/v1/customers/merges` and `POST /api/v1/customers/merges/{id}/undo`. The handlers
//! translate HTTP; the engine (`guanxi_store::records::merge`) does the work in one transaction
//! with the usual access checks, audit entries and optimistic concurrency.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use guanxi_store::records::{MergeRequest, UndoRefusal};
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::extract::{ApiJson, ApiQuery, CurrentActor, RequestLang};
use crate::routes::data;
use crate::state::AppState;

const OBJECT: &str = "customer";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/customers/merge", post(merge_customers))
        .route("/api/v1/customers/merges", get(list_merges))
        .route("/api/v1/customers/merges/{id}/undo", post(undo_merge))
}

/// Which customers to merge.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeBody {
    /// The customer that stays.
    pub target_id: String,
    /// The customers merged into it (1–20); they go to the recycle bin.
    pub source_ids: Vec<String>,
    /// Field → source id whose value the target takes, even over its own value. Fields not named
    /// here keep the target's value, or take the first source's value when the target's is empty.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// The target's version as read; a later change makes the merge fail with 409.
    pub target_version: Option<i64>,
    /// Each source's version as read.
    #[serde(default)]
    pub source_versions: BTreeMap<String, i64>,
}

/// Merge two or more customers: contacts, follow-ups, care actions and converted leads move to
/// the target; the target takes chosen values and fills its empty fields from the sources; the
/// sources go to the recycle bin marked `merged_into_id`; audit entries on every record. Needs
/// `update` on the target and `delete` on each source.
#[utoipa::path(post, path = "/api/v1/customers/merge", tag = "customers", operation_id = "merge_customers",
    request_body = MergeBody,
    responses((status = 200, description = "`{merge, target, moved}`: the merge record, the target afterwards, moved records per object"),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope)))]
pub async fn merge_customers(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    ApiJson(body): ApiJson<MergeBody>,
) -> ApiResult<impl IntoResponse> {
    let request = MergeRequest {
        target_id: body.target_id,
        source_ids: body.source_ids,
        fields: body.fields,
        target_version: body.target_version,
        source_versions: body.source_versions,
    };
    let outcome = state.engine.merge(&actor, OBJECT, &request).await?;
    Ok(data(outcome))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MergeListParams {
    /// Only merges into this customer.
    target_id: Option<String>,
    /// The previous page's `meta.next_before`.
    before: Option<String>,
    /// Page size, 1–200 (default 50).
    limit: Option<u32>,
}

/// Merges into customers the caller may read, newest first.
#[utoipa::path(get, path = "/api/v1/customers/merges", tag = "customers", operation_id = "list_customer_merges",
    params(MergeListParams),
    responses((status = 200, description = "Merges with target, sources, changed fields, moved count, status"),
        (status = 403, body = ErrorEnvelope)))]
pub async fn list_merges(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    ApiQuery(p): ApiQuery<MergeListParams>,
) -> ApiResult<impl IntoResponse> {
    let limit = p.limit.unwrap_or(50).clamp(1, 200);
    let entries = state
        .engine
        .list_merges(&actor, OBJECT, p.target_id.as_deref(), p.before.as_deref(), limit)
        .await?;
    let next = (entries.len() == limit as usize)
        .then(|| entries.last().map(|e| e.id.clone()))
        .flatten();
    Ok(axum::Json(
        json!({"data": entries, "meta": {"limit": limit, "next_before": next}}),
    ))
}

/// Undo a merge: the sources come back from the recycle bin, the records moved by the merge go
/// back (unless moved elsewhere since) and the target's overwritten values are restored.
/// Refused with 409 `merge_undo_conflict` (each reason in `details.conflicts`) when that would
/// lose later work, and 409 `merge_already_undone` the second time.
#[utoipa::path(post, path = "/api/v1/customers/merges/{id}/undo", tag = "customers", operation_id = "undo_customer_merge",
    params(("id" = String, Path)),
    responses((status = 200, description = "`{merge, target, moved, kept}`"),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
pub async fn undo_merge(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    RequestLang(lang): RequestLang,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    match state.engine.undo_merge(&actor, OBJECT, &id).await? {
        Ok(outcome) => Ok(data(outcome)),
        Err(UndoRefusal::AlreadyUndone) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "merge_already_undone",
            "该合并已撤销",
            "this merge was already undone",
        )),
        Err(UndoRefusal::Conflicts(conflicts)) => {
            let zh: Vec<&str> = conflicts.iter().map(|c| c.message.zh.as_str()).collect();
            let en: Vec<&str> = conflicts.iter().map(|c| c.message.en.as_str()).collect();
            let details: Vec<_> = conflicts
                .iter()
                .map(|c| json!({"code": c.code, "record_id": c.record_id, "field": c.field, "message": c.message.get(lang)}))
                .collect();
            Err(ApiError::new(
                StatusCode::CONFLICT,
                "merge_undo_conflict",
                format!("无法撤销合并：{}", zh.join("；")),
                format!("the merge cannot be undone: {}", en.join("; ")),
            )
            .with_details(json!({"conflicts": details})))
        }
    }
}
