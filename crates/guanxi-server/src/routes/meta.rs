//! Metadata routes: what the UI needs to draw lists and forms for every object (fields, types,
//! labels, operators, workflow), custom field administration and data dictionaries.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get};
use guanxi_core::filter::operators_for;
use guanxi_core::{DomainError, FieldDef, Label, ObjectDef};
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
        .route("/api/v1/meta/permissions", get(permission_catalogue))
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

/// The actions every object has, checked by the record engine and the import/export module.
const OBJECT_ACTIONS: [(&str, &str, &str); 6] = [
    ("read", "查看", "Read"),
    ("create", "新建", "Create"),
    ("update", "修改", "Change"),
    ("delete", "删除", "Delete"),
    ("export", "导出", "Export"),
    ("import", "导入", "Import"),
];

/// Further permissions the server checks on an object, beyond its records and workflow.
const OBJECT_EXTRAS: [(&str, &str, &str, &str); 2] = [
    (
        "user",
        "manage",
        "管理账号（审核、停用、重置密码）",
        "Manage accounts (approve, disable, reset passwords)",
    ),
    ("user", "assign_roles", "分配角色", "Assign roles"),
];

/// Permissions of modules that are not objects.
const MODULE_PERMISSIONS: [(&str, &str, &str, &str); 3] = [
    (
        "audit",
        "read",
        "查看登录日志与操作日志",
        "Read the login and operation logs",
    ),
    (
        "meta",
        "manage",
        "管理自定义字段与数据字典",
        "Manage custom fields and dictionaries",
    ),
    (
        "system",
        "manage",
        "管理系统参数与全部后台任务",
        "Manage system settings and every background job",
    ),
];

/// Data scopes, narrowest first (`guanxi_core::access::Scope`).
const SCOPES: [(&str, &str, &str); 5] = [
    ("self", "本人", "Own records"),
    ("subordinates", "本人及下属", "Own and subordinates'"),
    ("department", "本部门", "Own department"),
    ("department_tree", "本部门及下级部门", "Department and below"),
    ("all", "全部", "All"),
];

/// A label in both languages (`guanxi_core::Label`), as the schema shows it.
#[derive(utoipa::ToSchema)]
pub struct I18nLabel {
    pub zh: String,
    pub en: String,
}

/// One grantable action.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ActionDef {
    /// The action key as written in a role's grants (`read`, `mark_lost`, `manage`).
    pub key: String,
    #[schema(value_type = I18nLabel)]
    pub label: Label,
    /// `record` (CRUD and transfer), `workflow` (a state-machine action) or `special`.
    pub kind: &'static str,
}

/// An object and the actions a role may grant on it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ObjectPermissions {
    pub key: String,
    #[schema(value_type = I18nLabel)]
    pub label: Label,
    /// Menu group (`customers`, `system`, …).
    pub module: Option<String>,
    pub actions: Vec<ActionDef>,
    /// Field keys a field rule may name (every field but `id` and `version`).
    pub fields: Vec<String>,
}

/// A permission that belongs to no object (`audit.read`).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ModulePermission {
    /// The grant's object key.
    pub object: String,
    pub action: String,
    #[schema(value_type = I18nLabel)]
    pub label: Label,
}

/// A data scope.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ScopeDef {
    pub key: String,
    #[schema(value_type = I18nLabel)]
    pub label: Label,
}

/// Everything a role can grant, for the permission matrix.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PermissionCatalogue {
    pub objects: Vec<ObjectPermissions>,
    pub modules: Vec<ModulePermission>,
    pub scopes: Vec<ScopeDef>,
}

fn label(zh: &str, en: &str) -> Label {
    Label::new(zh, en)
}

/// What a role can grant: every object with its actions (records, workflow, special), the
/// module permissions and the data scopes. The role editor builds its matrix from this, so a new
/// object or workflow action appears there without front-end work.
#[utoipa::path(get, path = "/api/v1/meta/permissions", tag = "metadata", operation_id = "permission_catalogue",
    responses((status = 200, description = "Grantable permissions", body = PermissionCatalogue),
        (status = 403, body = ErrorEnvelope)))]
pub async fn permission_catalogue(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
) -> ApiResult<impl IntoResponse> {
    let snapshot = state.engine.catalog().snapshot();
    if actor.scope("role", "read").is_none() {
        return Err(DomainError::Forbidden(label("没有查看角色的权限", "you may not read roles")).into());
    }
    let objects = snapshot
        .objects()
        .map(|o| {
            let mut actions: Vec<ActionDef> = OBJECT_ACTIONS
                .iter()
                .map(|(k, zh, en)| ActionDef {
                    key: (*k).to_owned(),
                    label: label(zh, en),
                    kind: "record",
                })
                .collect();
            // The engine grants a workflow action under its own name (`customer.mark_lost`);
            // one that declares no permission may also run under `update`.
            for t in o.state_machine.iter().flat_map(|m| m.transitions.iter()) {
                if !actions.iter().any(|a| a.key == t.action) {
                    actions.push(ActionDef {
                        key: t.action.clone(),
                        label: t.label.clone(),
                        kind: "workflow",
                    });
                }
            }
            for (_, k, zh, en) in OBJECT_EXTRAS.iter().filter(|(obj, ..)| *obj == o.key) {
                actions.push(ActionDef {
                    key: (*k).to_owned(),
                    label: label(zh, en),
                    kind: "special",
                });
            }
            ObjectPermissions {
                key: o.key.clone(),
                label: o.label.clone(),
                module: o.module.clone(),
                actions,
                fields: o
                    .fields
                    .iter()
                    .filter(|f| f.key != "id" && f.key != "version")
                    .map(|f| f.key.clone())
                    .collect(),
            }
        })
        .collect();
    Ok(data(PermissionCatalogue {
        objects,
        modules: MODULE_PERMISSIONS
            .iter()
            .map(|(o, a, zh, en)| ModulePermission {
                object: (*o).to_owned(),
                action: (*a).to_owned(),
                label: label(zh, en),
            })
            .collect(),
        scopes: SCOPES
            .iter()
            .map(|(k, zh, en)| ScopeDef {
                key: (*k).to_owned(),
                label: label(zh, en),
            })
            .collect(),
    }))
}
