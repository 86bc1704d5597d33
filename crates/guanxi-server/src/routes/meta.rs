//! Metadata routes: what the UI needs to draw lists and forms for every object (fields, types,
//! labels, operators, workflow), custom field administration and data dictionaries.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get};
use guanxi_core::filter::operators_for;
use guanxi_core::{DomainError, FieldDef, ObjectDef};
use guanxi_store::catalog::DictItem;
use serde::Serialize;
use serde_json::Value as Json;

use super::data;
use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::extract::{ApiJson, CurrentActor};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/meta/objects", get(list_objects))
        .route("/api/v1/meta/objects/{object}", get(get_object))
        .route(
            "/api/v1/meta/objects/{object}/fields",
            axum::routing::post(create_custom_field),
        )
        .route(
            "/api/v1/meta/objects/{object}/fields/{key}",
            delete(delete_custom_field),
        )
        .route("/api/v1/meta/dictionaries", get(list_dictionaries))
        .route("/api/v1/meta/dictionaries/{dict}", get(get_dictionary))
}

/// An object definition plus the filter operators each field accepts.
#[derive(Serialize)]
pub struct ObjectView {
    #[serde(flatten)]
    pub object: ObjectDef,
    pub operators: BTreeMap<String, Vec<&'static str>>,
}

fn view(object: &ObjectDef) -> ObjectView {
    ObjectView {
        operators: object
            .fields
            .iter()
            .filter(|f| f.filterable)
            .map(|f| {
                (
                    f.key.clone(),
                    operators_for(&f.field_type).iter().map(|o| o.name()).collect(),
                )
            })
            .collect(),
        object: object.clone(),
    }
}

/// Every object with its fields.
#[utoipa::path(get, path = "/api/v1/meta/objects", tag = "metadata", operation_id = "list_objects",
    responses((status = 200, description = "Object definitions")))]
pub async fn list_objects(State(state): State<AppState>, CurrentActor(actor): CurrentActor) -> impl IntoResponse {
    let snapshot = state.engine.catalog().snapshot();
    // Only objects the caller may read, each as the caller sees it.
    let visible: Vec<_> = snapshot
        .objects()
        .filter(|o| actor.scope(&o.key, "read").is_some())
        .map(|o| guanxi_store::records::scope::view_of(o, &actor))
        .collect();
    data(visible.iter().map(|o| view(o)).collect::<Vec<_>>())
}

/// One object with its fields.
#[utoipa::path(get, path = "/api/v1/meta/objects/{object}", tag = "metadata", operation_id = "get_object",
    params(("object" = String, Path)),
    responses((status = 200, description = "Object definition"), (status = 404, body = ErrorEnvelope)))]
pub async fn get_object(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    Path(object): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let def = state.engine.object(&object)?;
    guanxi_store::records::scope::require(&actor, &def, "read")?;
    Ok(data(view(&*state.engine.object_for(&actor, &object)?)))
}

/// Add a custom field. Body: `{"key": "cf_wechat", "label": {"zh": "微信号", "en": "WeChat"},
/// "type": "text", "max_len": 50}`. No migration is needed; the field can be filtered and sorted
/// at once.
#[utoipa::path(post, path = "/api/v1/meta/objects/{object}/fields", tag = "metadata", operation_id = "create_custom_field",
    params(("object" = String, Path)), request_body(content = Object, description = "A field definition"),
    responses((status = 201, description = "The stored definition"), (status = 422, body = ErrorEnvelope)))]
pub async fn create_custom_field(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    Path(object): Path<String>,
    ApiJson(body): ApiJson<Json>,
) -> ApiResult<impl IntoResponse> {
    state.engine.object(&object)?;
    crate::modules::identity::session::require_permission(&actor, "meta.manage")?;
    let def: FieldDef = serde_json::from_value(body).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("字段定义不正确：{e}"),
            format!("invalid field definition: {e}"),
        )
    })?;
    let stored = state
        .engine
        .catalog()
        .add_custom_field(state.engine.db(), &actor, &object, def)
        .await?;
    Ok((StatusCode::CREATED, data(stored)))
}

/// Remove a custom field definition (stored values are kept).
#[utoipa::path(delete, path = "/api/v1/meta/objects/{object}/fields/{key}", tag = "metadata", operation_id = "delete_custom_field",
    params(("object" = String, Path), ("key" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 404, body = ErrorEnvelope)))]
pub async fn delete_custom_field(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    Path((object, key)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let def = state.engine.object(&object)?;
    crate::modules::identity::session::require_permission(&actor, "meta.manage")?;
    if def.field(&key).is_some_and(|f| !f.custom) {
        return Err(DomainError::conflict("标准字段不能删除", "standard fields cannot be removed").into());
    }
    state
        .engine
        .catalog()
        .remove_custom_field(state.engine.db(), &object, &key)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every data dictionary with its options.
#[utoipa::path(get, path = "/api/v1/meta/dictionaries", tag = "metadata", operation_id = "list_dictionaries",
    responses((status = 200, description = "Dictionaries by name")))]
pub async fn list_dictionaries(State(state): State<AppState>, CurrentActor(_a): CurrentActor) -> impl IntoResponse {
    let snapshot = state.engine.catalog().snapshot();
    let all: BTreeMap<String, Vec<DictItem>> = snapshot
        .dictionaries()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    data(all)
}

/// One data dictionary.
#[utoipa::path(get, path = "/api/v1/meta/dictionaries/{dict}", tag = "metadata", operation_id = "get_dictionary",
    params(("dict" = String, Path)),
    responses((status = 200, description = "Options in order"), (status = 404, body = ErrorEnvelope)))]
pub async fn get_dictionary(
    State(state): State<AppState>,
    CurrentActor(_a): CurrentActor,
    Path(dict): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let snapshot = state.engine.catalog().snapshot();
    let items = snapshot.dictionary(&dict).ok_or_else(|| {
        ApiError::from(DomainError::NotFound {
            object: "dictionary".into(),
            id: dict.clone(),
        })
    })?;
    Ok(data(items.to_vec()))
}
