//! Saved list views (issue 4 §5 list; seed 001 M9 §2.2): a named list setup — filter (the list
//! API's grammar), quick search, sort, columns and page size — kept on the server so it
//! follows the user to any browser and can be shared.
//!
//! - `GET /api/v1/views?object=` the caller's own views of the object plus the views others
//!   share with everyone or with the caller's department; the object must be readable.
//! - `POST /api/v1/views`, `PATCH /api/v1/views/{id}`, `DELETE /api/v1/views/{id}`: only the
//!   owner or an administrator changes or removes a view; a view the caller cannot see is 404,
//!   one it sees but does not own is 403.
//!
//! Filters, sorts and columns are checked against the object as the saving user sees it. For
//! another user a shared view's columns keep only the fields that user sees, and a view whose
//! filter or sort names a field hidden from them comes with `applicable: false`.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use guanxi_core::filter::{parse_filter, parse_sort};
use guanxi_core::{Actor, DomainError, FieldError, FieldErrors, ObjectDef};
use guanxi_store::Db;
use guanxi_store::records::scope::forbidden;
use guanxi_store::sql::{Bind, Sql};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value as Json;
use sqlx::Row;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::extract::{ApiJson, ApiQuery, CurrentActor};
use crate::modules::identity::session::is_admin;
use crate::routes::data;
use crate::state::AppState;

/// Longest view name, in characters.
pub const MAX_NAME: usize = 50;
/// Most columns a view may list.
pub const MAX_COLUMNS: usize = 100;
/// The page sizes a view may remember (the list API's limit).
pub const MAX_PAGE_SIZE: i64 = 500;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/views", get(list_views).post(create_view))
        .route(
            "/api/v1/views/{id}",
            axum::routing::patch(update_view).delete(delete_view),
        )
}

/// Which object's views to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ViewParams {
    /// Object key, e.g. `customer`.
    pub object: String,
}

/// Accepts `null` as a value (to clear a setting) while telling it apart from an absent key.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Json>, D::Error> {
    Json::deserialize(d).map(Some)
}

/// A view to create, or the changes to one (absent keys stay as they are; `null` clears).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ViewBody {
    /// Object key; required on create, not changeable.
    pub object: Option<String>,
    pub name: Option<String>,
    /// `personal` (default), `everyone` or `department`.
    pub visibility: Option<String>,
    /// With `department`: the department shared with (default: the caller's).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub department_id: Option<Json>,
    /// Quick search text.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub q: Option<Json>,
    /// A list filter, as in `POST /records/{object}/query`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Json>,
    /// Sort keys, e.g. `-created_at,name`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub sort: Option<Json>,
    /// Field keys of the columns, in order (empty: the object's default columns).
    pub columns: Option<Vec<String>>,
    /// Rows per page, 1–500.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub page_size: Option<Json>,
    /// The version the change is based on (optimistic concurrency); optional.
    pub version: Option<i64>,
}

/// A saved view as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SavedView {
    pub id: String,
    pub object: String,
    pub name: String,
    /// `personal`, `everyone` or `department`.
    pub visibility: String,
    pub department_id: Option<String>,
    pub owner_id: String,
    pub owner_name: Option<String>,
    pub q: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Json>,
    pub sort: Option<String>,
    pub columns: Vec<String>,
    pub page_size: Option<i64>,
    /// Whether the caller may change or delete it.
    pub editable: bool,
    /// False when the filter or sort names a field the caller cannot see.
    pub applicable: bool,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

const SELECT: &str = "SELECT v.id, v.object, v.name, v.owner_id, v.visibility, v.department_id, v.q, v.filter, \
     v.sort, v.columns, v.page_size, v.version, v.created_at, v.updated_at, u.display_name AS owner_name \
     FROM saved_views v LEFT JOIN users u ON u.id = v.owner_id";

fn decode(row: &sqlx::any::AnyRow) -> Result<SavedView, sqlx::Error> {
    let filter: Option<String> = row.try_get("filter")?;
    let columns: String = row.try_get("columns")?;
    Ok(SavedView {
        id: row.try_get("id")?,
        object: row.try_get("object")?,
        name: row.try_get("name")?,
        visibility: row.try_get("visibility")?,
        department_id: row.try_get("department_id")?,
        owner_id: row.try_get("owner_id")?,
        owner_name: row.try_get("owner_name")?,
        q: row.try_get("q")?,
        filter: filter.and_then(|f| serde_json::from_str(&f).ok()),
        sort: row.try_get("sort")?,
        columns: serde_json::from_str(&columns).unwrap_or_default(),
        page_size: row.try_get("page_size")?,
        editable: false,
        applicable: true,
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Whether the view is meant for the actor: its own, or shared with everyone or its department.
fn shared_with(view: &SavedView, actor: &Actor) -> bool {
    view.owner_id == actor.id
        || view.visibility == "everyone"
        || (view.visibility == "department"
            && view.department_id.is_some()
            && view.department_id == actor.department_id)
}

/// Fills the caller-specific parts: may it edit, does the filter apply, which columns it sees.
fn for_caller(mut view: SavedView, actor: &Actor, def: &ObjectDef) -> SavedView {
    view.editable = view.owner_id == actor.id || is_admin(actor);
    let filter_ok = view.filter.as_ref().is_none_or(|f| parse_filter(def, f).is_ok());
    let sort_ok = view.sort.as_deref().is_none_or(|s| parse_sort(def, s).is_ok());
    view.applicable = filter_ok && sort_ok;
    // A filter or sort naming a field hidden from the caller would show what the author typed
    // for that field: an unusable view is listed without them.
    if !filter_ok {
        view.filter = None;
    }
    if !sort_ok {
        view.sort = None;
    }
    view.columns.retain(|c| def.field(c).is_some());
    view
}

async fn fetch(db: &Db, id: &str) -> ApiResult<Option<SavedView>> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Ok(None);
    }
    let mut sql = Sql::of(db.backend(), SELECT);
    sql.push(" WHERE v.id = ").bind(id);
    let row = sql
        .query()
        .fetch_optional(db.reader())
        .await
        .map_err(ApiError::internal)?;
    row.as_ref().map(decode).transpose().map_err(ApiError::internal)
}

fn not_found(id: &str) -> ApiError {
    DomainError::NotFound {
        object: "view".into(),
        id: id.to_owned(),
    }
    .into()
}

/// The object's definition as the actor sees it, which it must be allowed to read.
fn readable_object(state: &AppState, actor: &Actor, object: &str) -> ApiResult<std::sync::Arc<ObjectDef>> {
    let full = state.engine.object(object)?;
    if actor.scope(&full.key, "read").is_none() {
        return Err(forbidden(&full, "read").into());
    }
    Ok(state.engine.object_for(actor, object)?)
}

/// Loads a view for a change: 404 unless the actor sees it (or is an administrator), 403
/// unless it owns it (or is an administrator).
async fn editable_view(state: &AppState, actor: &Actor, id: &str) -> ApiResult<SavedView> {
    let view = fetch(&state.db, id).await?.ok_or_else(|| not_found(id))?;
    let admin = is_admin(actor);
    let can_read_object = actor.scope(&view.object, "read").is_some();
    let sees = admin || (shared_with(&view, actor) && can_read_object);
    if !sees {
        return Err(not_found(id));
    }
    if !admin && view.owner_id != actor.id {
        return Err(DomainError::Forbidden(guanxi_core::Label {
            zh: "只有视图的创建人或管理员可以修改或删除它".into(),
            en: "only the view's owner or an administrator may change or delete it".into(),
        })
        .into());
    }
    Ok(view)
}

fn text_value(errors: &mut FieldErrors, key: &str, v: &Json, max: usize) -> Option<String> {
    match v {
        Json::Null => None,
        Json::String(s) => {
            let t = s.trim();
            if t.chars().count() > max {
                errors.add(
                    key,
                    FieldError::new(
                        "too_long",
                        format!("最多{max}个字符"),
                        format!("at most {max} characters"),
                    ),
                );
            }
            (!t.is_empty()).then(|| t.to_owned())
        }
        _ => {
            errors.add(key, FieldError::new("invalid_type", "应为文本", "must be a string"));
            None
        }
    }
}

/// Applies a body to a view (a new one or a stored one) and checks everything, reporting every
/// problem at once per field.
async fn apply(
    state: &AppState,
    actor: &Actor,
    def: &ObjectDef,
    view: &mut SavedView,
    body: ViewBody,
) -> ApiResult<()> {
    let mut errors = FieldErrors::default();
    if let Some(name) = body.name {
        view.name = name.trim().to_owned();
    }
    if view.name.is_empty() {
        errors.add(
            "name",
            FieldError::new("required", "请填写视图名称", "the view needs a name"),
        );
    } else if view.name.chars().count() > MAX_NAME {
        errors.add(
            "name",
            FieldError::new(
                "too_long",
                format!("视图名称最多{MAX_NAME}个字符"),
                format!("a view name has at most {MAX_NAME} characters"),
            ),
        );
    }
    if let Some(v) = body.visibility {
        view.visibility = v;
    }
    if let Some(d) = &body.department_id {
        view.department_id = text_value(&mut errors, "department_id", d, 64);
    }
    match view.visibility.as_str() {
        "personal" | "everyone" => view.department_id = None,
        "department" => {
            if view.department_id.is_none() {
                view.department_id = actor.department_id.clone();
            }
            match &view.department_id {
                None => errors.add(
                    "department_id",
                    FieldError::new(
                        "required",
                        "请选择共享给哪个部门",
                        "choose the department to share with",
                    ),
                ),
                Some(d) if !department_exists(&state.db, d).await? => errors.add(
                    "department_id",
                    FieldError::new("not_found", "所选部门不存在或已删除", "the department does not exist"),
                ),
                Some(_) => {}
            }
        }
        other => errors.add(
            "visibility",
            FieldError::new(
                "invalid_option",
                format!("“{other}”不是可选值（personal、everyone、department）"),
                format!("'{other}' is not one of personal, everyone, department"),
            ),
        ),
    }
    if let Some(q) = &body.q {
        view.q = text_value(&mut errors, "q", q, 200);
    }
    if let Some(filter) = body.filter {
        view.filter = match filter {
            Json::Null => None,
            f => {
                if let Err(e) = parse_filter(def, &f) {
                    errors.add("filter", invalid("invalid_filter", e));
                }
                Some(f)
            }
        };
    }
    if let Some(sort) = &body.sort {
        view.sort = text_value(&mut errors, "sort", sort, 200);
        if let Some(s) = &view.sort
            && let Err(e) = parse_sort(def, s)
        {
            errors.add("sort", invalid("invalid_sort", e));
        }
    }
    if let Some(columns) = body.columns {
        if columns.len() > MAX_COLUMNS {
            errors.add(
                "columns",
                FieldError::new(
                    "too_many",
                    format!("最多{MAX_COLUMNS}列"),
                    format!("at most {MAX_COLUMNS} columns"),
                ),
            );
        }
        for (i, c) in columns.iter().enumerate() {
            if def.field(c).is_none() {
                errors.add(
                    "columns",
                    FieldError::new(
                        "unknown_field",
                        format!("未知字段“{c}”"),
                        format!("unknown field '{c}'"),
                    ),
                );
            } else if columns[..i].contains(c) {
                errors.add(
                    "columns",
                    FieldError::new(
                        "duplicate",
                        format!("字段“{c}”重复"),
                        format!("field '{c}' is listed twice"),
                    ),
                );
            }
        }
        view.columns = columns;
    }
    if let Some(size) = &body.page_size {
        view.page_size = match size {
            Json::Null => None,
            n => match n.as_i64() {
                Some(n) if (1..=MAX_PAGE_SIZE).contains(&n) => Some(n),
                _ => {
                    errors.add(
                        "page_size",
                        FieldError::new(
                            "out_of_range",
                            format!("每页条数应为1到{MAX_PAGE_SIZE}的整数"),
                            format!("page size must be a whole number from 1 to {MAX_PAGE_SIZE}"),
                        ),
                    );
                    None
                }
            },
        };
    }
    if errors.is_empty() && name_taken(&state.db, view).await? {
        errors.add(
            "name",
            FieldError::new(
                "duplicate",
                format!("您已有名为“{}”的视图", view.name),
                format!("you already have a view called '{}'", view.name),
            ),
        );
    }
    errors.into_result()?;
    Ok(())
}

fn invalid(code: &'static str, e: DomainError) -> FieldError {
    match e {
        DomainError::InvalidQuery(label) => FieldError::new(code, label.zh, label.en),
        other => FieldError::new(code, other.to_string(), other.to_string()),
    }
}

async fn department_exists(db: &Db, id: &str) -> ApiResult<bool> {
    let mut sql = Sql::of(db.backend(), "SELECT 1 AS one FROM departments WHERE id = ");
    sql.bind(id).push(" AND deleted_at IS NULL");
    Ok(sql
        .query()
        .fetch_optional(db.reader())
        .await
        .map_err(ApiError::internal)?
        .is_some())
}

async fn name_taken(db: &Db, view: &SavedView) -> ApiResult<bool> {
    let mut sql = Sql::of(db.backend(), "SELECT 1 AS one FROM saved_views WHERE owner_id = ");
    sql.bind(view.owner_id.as_str())
        .push(" AND object = ")
        .bind(view.object.as_str())
        .push(" AND name = ")
        .bind(view.name.as_str())
        .push(" AND id <> ")
        .bind(view.id.as_str());
    Ok(sql
        .query()
        .fetch_optional(db.reader())
        .await
        .map_err(ApiError::internal)?
        .is_some())
}

fn binds(view: &SavedView) -> Vec<Bind> {
    vec![
        Bind::from(view.name.as_str()),
        Bind::from(view.visibility.as_str()),
        Bind::from(view.department_id.clone()),
        Bind::from(view.q.clone()),
        Bind::from(view.filter.as_ref().map(Json::to_string)),
        Bind::from(view.sort.clone()),
        Bind::from(Json::from(view.columns.clone()).to_string()),
        view.page_size.map_or(Bind::NullInt, Bind::Int),
    ]
}

/// The caller's views of an object and those shared with it.
#[utoipa::path(get, path = "/api/v1/views", tag = "views", operation_id = "list_views", params(ViewParams),
    responses((status = 200, description = "Views, by name", body = [SavedView]),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn list_views(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    ApiQuery(params): ApiQuery<ViewParams>,
) -> ApiResult<impl IntoResponse> {
    let def = readable_object(&state, &actor, &params.object)?;
    let mut sql = Sql::of(state.db.backend(), SELECT);
    sql.push(" WHERE v.object = ")
        .bind(def.key.as_str())
        .push(" AND (v.owner_id = ")
        .bind(actor.id.as_str())
        .push(" OR v.visibility = 'everyone'");
    if let Some(d) = &actor.department_id {
        sql.push(" OR (v.visibility = 'department' AND v.department_id = ")
            .bind(d.as_str())
            .push(")");
    }
    sql.push(") ORDER BY v.name, v.id");
    let rows = sql
        .query()
        .fetch_all(state.db.reader())
        .await
        .map_err(ApiError::internal)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        out.push(for_caller(decode(row).map_err(ApiError::internal)?, &actor, &def));
    }
    Ok(data(out))
}

/// Save a view.
#[utoipa::path(post, path = "/api/v1/views", tag = "views", operation_id = "create_view", request_body = ViewBody,
    responses((status = 201, description = "The view", body = SavedView),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn create_view(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    ApiJson(body): ApiJson<ViewBody>,
) -> ApiResult<impl IntoResponse> {
    let Some(object) = body.object.clone() else {
        return Err(DomainError::Validation(FieldErrors::single(
            "object",
            FieldError::new("required", "请给出对象", "object is required"),
        ))
        .into());
    };
    let def = readable_object(&state, &actor, &object)?;
    let now = guanxi_core::time_fmt::now_utc();
    let mut view = SavedView {
        id: uuid::Uuid::now_v7().to_string(),
        object: def.key.clone(),
        name: String::new(),
        visibility: "personal".into(),
        department_id: None,
        owner_id: actor.id.clone(),
        owner_name: Some(actor.name.clone()),
        q: None,
        filter: None,
        sort: None,
        columns: Vec::new(),
        page_size: None,
        editable: true,
        applicable: true,
        version: 1,
        created_at: now.clone(),
        updated_at: now,
    };
    apply(&state, &actor, &def, &mut view, body).await?;
    let mut sql = Sql::of(
        state.db.backend(),
        "INSERT INTO saved_views (name, visibility, department_id, q, filter, sort, columns, page_size, \
         id, object, owner_id, version, created_at, updated_at) VALUES (",
    );
    let mut all = binds(&view);
    all.extend([
        Bind::from(view.id.as_str()),
        Bind::from(view.object.as_str()),
        Bind::from(view.owner_id.as_str()),
        Bind::Int(1),
        Bind::from(view.created_at.as_str()),
        Bind::from(view.updated_at.as_str()),
    ]);
    sql.bind_list(all).push(")");
    sql.query()
        .execute(state.db.writer())
        .await
        .map_err(|e| ApiError::from(guanxi_store::StoreError::from(e)))?;
    Ok((StatusCode::CREATED, data(for_caller(view, &actor, &def))))
}

/// Change a view (owner or administrator).
#[utoipa::path(patch, path = "/api/v1/views/{id}", tag = "views", operation_id = "update_view",
    params(("id" = String, Path)), request_body = ViewBody,
    responses((status = 200, description = "The view", body = SavedView), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn update_view(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ViewBody>,
) -> ApiResult<impl IntoResponse> {
    let mut view = editable_view(&state, &actor, &id).await?;
    if body.object.as_ref().is_some_and(|o| *o != view.object) {
        return Err(DomainError::Validation(FieldErrors::single(
            "object",
            FieldError::new("read_only", "视图的对象不能修改", "a view's object cannot be changed"),
        ))
        .into());
    }
    if let Some(expected) = body.version
        && expected != view.version
    {
        return Err(DomainError::VersionConflict {
            expected,
            actual: view.version,
        }
        .into());
    }
    // Checked against the object as the editor sees it (an administrator sees every field).
    let def = state.engine.object_for(&actor, &view.object)?;
    apply(&state, &actor, &def, &mut view, body).await?;
    let version = view.version;
    view.version += 1;
    view.updated_at = guanxi_core::time_fmt::now_utc();
    let mut sql = Sql::of(state.db.backend(), "UPDATE saved_views SET ");
    let columns = [
        "name",
        "visibility",
        "department_id",
        "q",
        "filter",
        "sort",
        "columns",
        "page_size",
    ];
    for (col, bind) in columns.iter().zip(binds(&view)) {
        sql.ident(col).push(" = ").bind(bind).push(", ");
    }
    sql.push("version = version + 1, updated_at = ")
        .bind(view.updated_at.as_str())
        .push(" WHERE id = ")
        .bind(view.id.as_str())
        .push(" AND version = ")
        .bind(version);
    let done = sql
        .query()
        .execute(state.db.writer())
        .await
        .map_err(|e| ApiError::from(guanxi_store::StoreError::from(e)))?;
    if done.rows_affected() == 0 {
        return Err(DomainError::VersionConflict {
            expected: version,
            actual: version + 1,
        }
        .into());
    }
    Ok(data(for_caller(view, &actor, &def)))
}

/// Delete a view (owner or administrator).
#[utoipa::path(delete, path = "/api/v1/views/{id}", tag = "views", operation_id = "delete_view",
    params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub async fn delete_view(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let view = editable_view(&state, &actor, &id).await?;
    let mut sql = Sql::of(state.db.backend(), "DELETE FROM saved_views WHERE id = ");
    sql.bind(view.id.as_str());
    sql.query()
        .execute(state.db.writer())
        .await
        .map_err(ApiError::internal)?;
    Ok(StatusCode::NO_CONTENT)
}
