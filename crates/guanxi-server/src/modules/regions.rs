//! Regions (省市区, issue 5 §2): the cascader API over the imported region table, and the hook
//! that checks the province / city / district names of customers and leads against it on
//! create, update and import (codes `region_unknown`, `region_mismatch`), reported together
//! with the other field errors.

use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use guanxi_core::{Actor, DomainError, FieldErrors, ObjectDef};
use guanxi_store::hooks::RecordHooks;
use guanxi_store::regions::{self, RegionCache, TreeNode};
use guanxi_store::{Record, StoreResult};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::{ApiQuery, CurrentActor};
use crate::routes::data;
use crate::state::AppState;

/// The address fields every checked object has.
const FIELDS: [&str; 3] = ["province", "city", "district"];

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/regions", get(list_regions))
}

/// Checks region names of customers and leads.
pub struct RegionHooks {
    pub regions: Arc<RegionCache>,
}

/// The value a field will have: the input's when given, else the stored one.
fn effective<'a>(key: &str, input: &'a Map<String, Json>, old: Option<&'a Record>) -> Option<&'a str> {
    match input.get(key) {
        Some(v) => v.as_str(),
        None => old.and_then(|o| o.get(key)).and_then(Json::as_str),
    }
}

#[async_trait]
impl RecordHooks for RegionHooks {
    async fn check_input(
        &self,
        _actor: &Actor,
        _object: &ObjectDef,
        input: &Map<String, Json>,
        old: Option<&Record>,
        errors: &mut FieldErrors,
    ) -> StoreResult<()> {
        if !FIELDS.iter().any(|f| input.get(*f).is_some_and(|v| !v.is_null())) {
            return Ok(());
        }
        let index = self.regions.index().await?;
        if index.is_empty() {
            // Nothing imported (an install that removed the data): nothing to check against.
            return Ok(());
        }
        let [p, c, d] = FIELDS.map(|f| effective(f, input, old));
        // Checked only when a region field changes, so a stored value that is no longer valid
        // does not block an unrelated edit; when one does change, the whole address must fit.
        for (field, problem) in index.check(p, c, d) {
            errors.add(field, problem);
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RegionParams {
    /// Code of a province or city: its children only (no grandchildren). Without it the whole
    /// province → city → district tree.
    parent: Option<String>,
}

/// A region of the cascader.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RegionView {
    pub code: String,
    pub name: String,
    /// 1 province, 2 city, 3 district.
    pub level: i64,
    pub parent_code: Option<String>,
    /// Whether it has children (for lazy cascaders).
    pub has_children: bool,
}

/// China's provinces, cities and districts: the whole tree for the cascader
/// (`[{code, name, children}]`), or with `parent` the children of one region. Cacheable for
/// an hour (ETag).
#[utoipa::path(get, path = "/api/v1/regions", tag = "customers", operation_id = "list_regions",
    params(RegionParams),
    responses((status = 200, description = "The region tree, or the children of `parent`"),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 404, body = ErrorEnvelope)))]
pub async fn list_regions(
    State(state): State<AppState>,
    CurrentActor(_actor): CurrentActor,
    headers: HeaderMap,
    ApiQuery(p): ApiQuery<RegionParams>,
) -> ApiResult<Response> {
    let body = match p.parent.as_deref().map(str::trim) {
        None | Some("") => {
            let all = regions::all(&state.db).await?;
            let tree: Vec<TreeNode> = regions::tree(&all);
            serde_json::to_vec(&data(tree).0).map_err(crate::error::ApiError::internal)?
        }
        Some(code) => {
            if regions::get(&state.db, code).await?.is_none() {
                return Err(DomainError::NotFound {
                    object: "region".into(),
                    id: code.to_owned(),
                }
                .into());
            }
            let all = regions::all(&state.db).await?;
            let parents: std::collections::HashSet<&str> =
                all.iter().filter_map(|r| r.parent_code.as_deref()).collect();
            let views: Vec<RegionView> = all
                .iter()
                .filter(|r| r.parent_code.as_deref() == Some(code))
                .map(|r| RegionView {
                    code: r.code.clone(),
                    name: r.name.clone(),
                    level: r.level,
                    parent_code: r.parent_code.clone(),
                    has_children: parents.contains(r.code.as_str()),
                })
                .collect();
            serde_json::to_vec(&data(views).0).map_err(crate::error::ApiError::internal)?
        }
    };
    let etag = format!("\"{}\"", fnv(&body));
    let cache = [
        (header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600")),
        (
            header::ETAG,
            HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\"")),
        ),
    ];
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        return Ok((StatusCode::NOT_MODIFIED, cache).into_response());
    }
    Ok((
        cache,
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response())
}

/// FNV-1a of the body, as the ETag (stable across restarts and servers).
fn fnv(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}
