//! Generic record routes for every object: `/api/v1/records/{object}[/{id}]` with list, query,
//! create, get, update, delete, restore, purge, history, bulk operations and workflow
//! transitions. The handlers only translate HTTP to engine calls; the engine does the work.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use guanxi_core::filter::{parse_filter, parse_filter_text, parse_sort};
use guanxi_core::{DomainError, ObjectDef};
use guanxi_store::records::{AuditEntry, StateHistoryEntry};
use guanxi_store::{ListQuery, Page, Record, TotalMode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use utoipa::{IntoParams, ToSchema};

use super::{Envelope, data};
use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::extract::{ApiJson, ApiQuery, CurrentActor};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/records/{object}", get(list_records).post(create_record))
        .route("/api/v1/records/{object}/query", post(query_records))
        .route("/api/v1/records/{object}/bulk-update", post(bulk_update_records))
        .route("/api/v1/records/{object}/bulk-delete", post(bulk_delete_records))
        .route("/api/v1/records/{object}/recycle-bin", get(list_recycle_bin))
        .route("/api/v1/records/{object}/recycle-bin/{id}", delete(purge_record))
        .route(
            "/api/v1/records/{object}/{id}",
            get(get_record).patch(update_record).delete(delete_record),
        )
        .route("/api/v1/records/{object}/{id}/restore", post(restore_record))
        .route("/api/v1/records/{object}/{id}/history", get(record_history))
        .route("/api/v1/records/{object}/{id}/transitions", get(record_transitions))
        .route(
            "/api/v1/records/{object}/{id}/transitions/{action}",
            post(run_transition),
        )
}

/// List parameters in the query string.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Quick search over the object's search fields.
    q: Option<String>,
    /// Filter as JSON, e.g. `{"and":[{"field":"city","op":"eq","value":"北京"}]}`.
    filter: Option<String>,
    /// Sort keys, `-` for descending: `-created_at,name`.
    sort: Option<String>,
    /// Page size, 1–500 (default 20).
    limit: Option<u32>,
    /// Cursor from the previous page's `meta.next_cursor`.
    cursor: Option<String>,
    /// 1-based page number (offset pagination) instead of a cursor.
    page: Option<u32>,
    /// Comma-separated field keys to return.
    fields: Option<String>,
    /// `capped` (default: exact up to 10,000), `exact`, or `none`.
    total: Option<String>,
}

/// The same parameters as a JSON body, for filters too long for a URL.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryBody {
    q: Option<String>,
    #[schema(value_type = Object)]
    filter: Option<Json>,
    sort: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
    page: Option<u32>,
    fields: Option<Vec<String>>,
    total: Option<String>,
}

/// Paging information of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListMeta {
    pub limit: u32,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// Matching records, exact when `total_exact`, otherwise a lower bound (the cap).
    pub total: Option<i64>,
    pub total_exact: bool,
}

fn total_mode(s: Option<&str>) -> ApiResult<TotalMode> {
    match s {
        None | Some("capped") => Ok(TotalMode::Capped),
        Some("exact") => Ok(TotalMode::Exact),
        Some("none") => Ok(TotalMode::None),
        Some(other) => Err(DomainError::invalid_query(
            format!("total 只能是 capped、exact 或 none，而不是“{other}”"),
            format!("total must be capped, exact or none, not '{other}'"),
        )
        .into()),
    }
}

fn check_fields(object: &ObjectDef, fields: Vec<String>) -> ApiResult<Vec<String>> {
    for f in &fields {
        if object.field(f).is_none() {
            return Err(DomainError::invalid_query(format!("未知字段“{f}”"), format!("unknown field '{f}'")).into());
        }
    }
    Ok(fields)
}

pub(crate) fn page_response(page: Page) -> axum::Json<Envelope<Vec<Record>, ListMeta>> {
    axum::Json(Envelope {
        data: page.records,
        meta: ListMeta {
            limit: page.limit,
            next_cursor: page.next_cursor,
            total: page.total,
            total_exact: page.total_exact,
        },
    })
}

pub(crate) fn list_query(object: &ObjectDef, p: ListParams) -> ApiResult<ListQuery> {
    Ok(ListQuery {
        filter: p.filter.as_deref().map(|f| parse_filter_text(object, f)).transpose()?,
        search: p.q,
        sort: p
            .sort
            .as_deref()
            .map(|s| parse_sort(object, s))
            .transpose()?
            .unwrap_or_default(),
        limit: p.limit.unwrap_or(20),
        cursor: p.cursor,
        page: p.page,
        fields: p
            .fields
            .map(|f| {
                check_fields(
                    object,
                    f.split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect(),
                )
            })
            .transpose()?,
        total: total_mode(p.total.as_deref())?,
        deleted: false,
    })
}

/// List records of an object.
#[utoipa::path(get, path = "/api/v1/records/{object}", tag = "records", operation_id = "list_records",
    params(("object" = String, Path, description = "Object key, e.g. customer"), ListParams),
    responses((status = 200, description = "A page of records"), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn list_records(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    Path(object): Path<String>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<impl IntoResponse> {
    let def = state.engine.object_for(&actor, &object)?;
    let query = list_query(&def, params)?;
    Ok(page_response(state.engine.list(&actor, &object, &query).await?))
}

/// List records with the parameters in a JSON body.
#[utoipa::path(post, path = "/api/v1/records/{object}/query", tag = "records", operation_id = "query_records",
    params(("object" = String, Path)), request_body = QueryBody,
    responses((status = 200, description = "A page of records"), (status = 422, body = ErrorEnvelope)))]
pub async fn query_records(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    Path(object): Path<String>,
    ApiJson(body): ApiJson<QueryBody>,
) -> ApiResult<impl IntoResponse> {
    let def = state.engine.object_for(&actor, &object)?;
    let query = ListQuery {
        filter: body.filter.as_ref().map(|f| parse_filter(&def, f)).transpose()?,
        search: body.q,
        sort: body
            .sort
            .as_deref()
            .map(|s| parse_sort(&def, s))
            .transpose()?
            .unwrap_or_default(),
        limit: body.limit.unwrap_or(20),
        cursor: body.cursor,
        page: body.page,
        fields: body.fields.map(|f| check_fields(&def, f)).transpose()?,
        total: total_mode(body.total.as_deref())?,
        deleted: false,
    };
    Ok(page_response(state.engine.list(&actor, &object, &query).await?))
}

/// Records in the recycle bin.
#[utoipa::path(get, path = "/api/v1/records/{object}/recycle-bin", tag = "records", operation_id = "list_recycle_bin",
    params(("object" = String, Path), ListParams),
    responses((status = 200, description = "Deleted records, with deleted_at and deleted_by")))]
pub async fn list_recycle_bin(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    Path(object): Path<String>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<impl IntoResponse> {
    let def = state.engine.object_for(&actor, &object)?;
    let mut query = list_query(&def, params)?;
    query.deleted = true;
    Ok(page_response(state.engine.list(&actor, &object, &query).await?))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CreateParams {
    /// Customers only: save even though the name, phone or email matches an existing customer
    /// (without it such a create gets 409 `duplicate_suspected` listing the matches).
    confirm_duplicates: Option<bool>,
}

/// Create a record.
#[utoipa::path(post, path = "/api/v1/records/{object}", tag = "records", operation_id = "create_record",
    params(("object" = String, Path), CreateParams), request_body(content = Object, description = "Field values by key"),
    responses((status = 201, description = "The created record"), (status = 400, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope, description = "duplicate_suspected (customers)"),
        (status = 413, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn create_record(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    Path(object): Path<String>,
    ApiQuery(params): ApiQuery<CreateParams>,
    ApiJson(body): ApiJson<Map<String, Json>>,
) -> ApiResult<impl IntoResponse> {
    if object == guanxi_store::duplicates::OBJECT && params.confirm_duplicates != Some(true) {
        crate::modules::customer_duplicates::refuse_suspected(&state, &actor, &body).await?;
    }
    let record = state.engine.create(&actor, &object, &body).await?;
    Ok((StatusCode::CREATED, data(record)))
}

/// Read a record.
#[utoipa::path(get, path = "/api/v1/records/{object}/{id}", tag = "records", operation_id = "get_record",
    params(("object" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "The record"), (status = 404, body = ErrorEnvelope)))]
pub async fn get_record(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    Path((object, id)): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    Ok(data(state.engine.get(&actor, &object, &id, false).await?))
}

/// Takes the expected version from the body's `version` or an `If-Match` header.
fn expected_version(headers: &HeaderMap, body: &mut Map<String, Json>) -> ApiResult<i64> {
    let from_body = body.remove("version");
    let from_header = headers.get("if-match").and_then(|v| v.to_str().ok()).map(|s| {
        s.trim_matches('"')
            .trim_start_matches("W/")
            .trim_matches('"')
            .to_owned()
    });
    match (from_body, from_header) {
        (Some(v), _) => v.as_i64().ok_or_else(|| {
            DomainError::Validation(guanxi_core::FieldErrors::single(
                "version",
                guanxi_core::FieldError::new("invalid_type", "version 应为整数", "version must be an integer"),
            ))
            .into()
        }),
        (None, Some(h)) => h.parse().map_err(|_| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_query",
                "If-Match 应为版本号",
                "If-Match must be a version number",
            )
        }),
        (None, None) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "version_required",
            "修改记录需要提供 version（记录的当前版本号）",
            "an update must give the record's version (in the body or If-Match)",
        )),
    }
}

/// Update some fields of a record. Send the `version` you read; a stale version gets 409.
#[utoipa::path(patch, path = "/api/v1/records/{object}/{id}", tag = "records", operation_id = "update_record",
    params(("object" = String, Path), ("id" = String, Path)),
    request_body(content = Object, description = "`version` plus the fields to change"),
    responses((status = 200, description = "The updated record"), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn update_record(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    Path((object, id)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(mut body): ApiJson<Map<String, Json>>,
) -> ApiResult<impl IntoResponse> {
    state.engine.object(&object)?;
    let version = expected_version(&headers, &mut body)?;
    Ok(data(state.engine.update(&actor, &object, &id, version, &body).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteParams {
    /// When given, the delete fails with 409 if the record changed since.
    version: Option<i64>,
}

/// Move a record to the recycle bin.
#[utoipa::path(delete, path = "/api/v1/records/{object}/{id}", tag = "records", operation_id = "delete_record",
    params(("object" = String, Path), ("id" = String, Path), DeleteParams),
    responses((status = 204, description = "Moved to the recycle bin"), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
pub async fn delete_record(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    Path((object, id)): Path<(String, String)>,
    ApiQuery(params): ApiQuery<DeleteParams>,
) -> ApiResult<StatusCode> {
    state.engine.delete(&actor, &object, &id, params.version).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Restore a record from the recycle bin.
#[utoipa::path(post, path = "/api/v1/records/{object}/{id}/restore", tag = "records", operation_id = "restore_record",
    params(("object" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "The restored record"), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
pub async fn restore_record(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    Path((object, id)): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    Ok(data(state.engine.restore(&actor, &object, &id).await?))
}

/// Delete a record in the recycle bin for good.
#[utoipa::path(delete, path = "/api/v1/records/{object}/recycle-bin/{id}", tag = "records", operation_id = "purge_record",
    params(("object" = String, Path), ("id" = String, Path)),
    responses((status = 204, description = "Purged"), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
pub async fn purge_record(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    Path((object, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state.engine.purge(&actor, &object, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Field history of a record: every change with who, when, old → new.
#[utoipa::path(get, path = "/api/v1/records/{object}/{id}/history", tag = "records", operation_id = "get_record_history",
    params(("object" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "Audit entries, oldest first"), (status = 404, body = ErrorEnvelope)))]
pub async fn record_history(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    Path((object, id)): Path<(String, String)>,
) -> ApiResult<axum::Json<Envelope<Vec<AuditEntry>>>> {
    Ok(data(state.engine.history(&actor, &object, &id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkUpdateBody {
    ids: Vec<String>,
    #[schema(value_type = Object)]
    changes: Map<String, Json>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkDeleteBody {
    ids: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkResult {
    pub affected: usize,
}

/// Apply the same changes to up to 1,000 records, all or nothing.
#[utoipa::path(post, path = "/api/v1/records/{object}/bulk-update", tag = "records", operation_id = "bulk_update_records",
    params(("object" = String, Path)), request_body = BulkUpdateBody,
    responses((status = 200, body = BulkResult), (status = 422, body = ErrorEnvelope)))]
pub async fn bulk_update_records(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    Path(object): Path<String>,
    ApiJson(body): ApiJson<BulkUpdateBody>,
) -> ApiResult<impl IntoResponse> {
    let affected = state
        .engine
        .bulk_update(&actor, &object, &body.ids, &body.changes)
        .await?;
    Ok(data(BulkResult { affected }))
}

/// Move up to 1,000 records to the recycle bin, all or nothing.
#[utoipa::path(post, path = "/api/v1/records/{object}/bulk-delete", tag = "records", operation_id = "bulk_delete_records",
    params(("object" = String, Path)), request_body = BulkDeleteBody,
    responses((status = 200, body = BulkResult), (status = 422, body = ErrorEnvelope)))]
pub async fn bulk_delete_records(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    Path(object): Path<String>,
    ApiJson(body): ApiJson<BulkDeleteBody>,
) -> ApiResult<impl IntoResponse> {
    let affected = state.engine.bulk_delete(&actor, &object, &body.ids).await?;
    Ok(data(BulkResult { affected }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionBody {
    remark: Option<String>,
    version: Option<i64>,
}

/// Run a workflow action (e.g. `sign`, `mark_lost`) declared by the object's state machine.
#[utoipa::path(post, path = "/api/v1/records/{object}/{id}/transitions/{action}", tag = "records", operation_id = "run_transition",
    params(("object" = String, Path), ("id" = String, Path), ("action" = String, Path)), request_body = TransitionBody,
    responses((status = 200, description = "The record in its new state"), (status = 403, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn run_transition(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    Path((object, id, action)): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<impl IntoResponse> {
    // The body is optional: an action without a remark may be posted empty.
    let body: TransitionBody = if body.iter().all(u8::is_ascii_whitespace) {
        TransitionBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                format!("请求内容的结构或类型不正确：{e}"),
                format!("the request body has the wrong shape or types: {e}"),
            )
        })?
    };
    let record = state
        .engine
        .transition(&actor, &object, &id, &action, body.remark.as_deref(), body.version)
        .await?;
    Ok(data(record))
}

/// The transitions a record went through: operator, time, remark.
#[utoipa::path(get, path = "/api/v1/records/{object}/{id}/transitions", tag = "records", operation_id = "list_record_transitions",
    params(("object" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "State history, oldest first")))]
pub async fn record_transitions(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    Path((object, id)): Path<(String, String)>,
) -> ApiResult<axum::Json<Envelope<Vec<StateHistoryEntry>>>> {
    state.engine.get(&actor, &object, &id, false).await?;
    Ok(data(state.engine.state_history(&actor, &object, &id).await?))
}
