//! Customer duplicate detection (issue 5 §5; seed 004 FR-CUST-01 §3.1.3 "避免重复录入已存在的
//! 客户信息"): the hook that keeps every customer's normalised keys in step with its writes, the
//! `POST /api/v1/customers/duplicates` lookup the form calls before saving, and the check that
//! refuses an unconfirmed create of a likely duplicate with 409 `duplicate_suspected`.
//! Normalisation rules: `guanxi_core::dedup`; the indexed key table: `guanxi_store::duplicates`.

use async_trait::async_trait;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use guanxi_core::dedup::KeyKind;
use guanxi_core::value::{Mode, validate_input};
use guanxi_core::{Actor, DomainError};
use guanxi_store::duplicates::{self, Duplicates, OBJECT, record_keys, write_keys};
use guanxi_store::hooks::{HookCtx, RecordHooks};
use guanxi_store::{Record, StoreResult};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::extract::{ApiJson, CurrentActor};
use crate::routes::data;
use crate::state::AppState;

/// Matches shown in a lookup or a 409 unless the caller asks for fewer.
pub const DEFAULT_LIMIT: usize = 20;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/customers/duplicates", post(find_duplicates))
}

/// Keeps `customer_duplicate_keys` in step with customer writes, in the write's transaction.
pub struct DuplicateKeyHooks;

fn id_of(record: &Record) -> &str {
    record.get("id").and_then(Json::as_str).unwrap_or_default()
}

#[async_trait]
impl RecordHooks for DuplicateKeyHooks {
    async fn after_create(&self, ctx: &mut HookCtx<'_>, record: &Record) -> StoreResult<()> {
        write_keys(ctx.tx, ctx.backend, id_of(record), record, true).await
    }

    async fn after_create_many(&self, ctx: &mut HookCtx<'_>, records: &[Record]) -> StoreResult<()> {
        duplicates::write_new_keys_many(ctx.tx, ctx.backend, records).await
    }

    async fn after_update(&self, ctx: &mut HookCtx<'_>, old: &Record, new: &Record) -> StoreResult<()> {
        if duplicates::keys_changed(old, new) {
            write_keys(ctx.tx, ctx.backend, id_of(new), new, false).await?;
        }
        Ok(())
    }
}

/// The values of a would-be customer to compare with the existing ones.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DuplicateQuery {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub credit_code: Option<String>,
    /// The customer being edited, which is not its own duplicate.
    pub exclude_id: Option<String>,
    /// Most matches to return (1–100, default 20); `visible_count` tells how many there are.
    pub limit: Option<u32>,
}

/// Keys of the values given, by kind.
fn keys_from(value_of: impl Fn(&str) -> Option<String>) -> Vec<(KeyKind, String)> {
    KeyKind::ALL
        .into_iter()
        .filter_map(|k| value_of(k.field()).and_then(|v| k.normalize(&v)).map(|n| (k, n)))
        .collect()
}

/// Customers that look like duplicates of the values given: the ones the caller may read, with
/// the keys they share (`credit_code`, `name`, `phone`, `email`; normalised — full-width, case,
/// spaces, brackets, legal suffixes like 有限公司, `+86`), and a count of those the caller may not
/// see.
#[utoipa::path(post, path = "/api/v1/customers/duplicates", tag = "customers", operation_id = "find_customer_duplicates",
    request_body = DuplicateQuery,
    responses((status = 200, description = "`{matches: [{record, matched_on}], visible_count, hidden_count}`"),
        (status = 403, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn find_duplicates(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    ApiJson(q): ApiJson<DuplicateQuery>,
) -> ApiResult<impl IntoResponse> {
    let keys = keys_from(|f| match f {
        "name" => q.name.clone(),
        "phone" => q.phone.clone(),
        "email" => q.email.clone(),
        "credit_code" => q.credit_code.clone(),
        _ => None,
    });
    duplicates::require_keys(&keys)?;
    let exclude: Vec<String> = q.exclude_id.iter().cloned().collect();
    let limit = q.limit.map_or(DEFAULT_LIMIT, |l| l.clamp(1, 100) as usize);
    let found = state.engine.find_duplicates(&actor, &keys, &exclude, limit).await?;
    Ok(data(found))
}

/// The 409 that an unconfirmed create of a likely duplicate gets; `details` carries the matches
/// so the form can show them and offer to save anyway (`?confirm_duplicates=true`).
pub fn suspected(found: &Duplicates) -> ApiError {
    let n = found.visible_count + found.hidden_count;
    ApiError::new(
        StatusCode::CONFLICT,
        "duplicate_suspected",
        format!("可能与已有的{n}个客户重复（名称、电话或邮箱相同）；确认不是重复客户后可继续保存"),
        format!(
            "this looks like a duplicate of {n} existing customer(s) (same name, phone or email); save again with confirm_duplicates=true if it is not"
        ),
    )
    .with_details(json!({
        "matches": found.matches,
        "visible_count": found.visible_count,
        "hidden_count": found.hidden_count,
        "confirm_with": {"query": {"confirm_duplicates": true}},
    }))
}

/// Refuses the create of a customer whose name, phone or email matches an existing customer,
/// unless confirmed. Runs before the engine's create, and only for a body that would otherwise
/// be accepted (validation errors are reported first, as usual) by a caller who may create
/// customers (others get the engine's 403, which reveals nothing). The unique credit code is
/// refused by the engine itself (422 `duplicate`).
pub async fn refuse_suspected(state: &AppState, actor: &Actor, body: &Map<String, Json>) -> ApiResult<()> {
    if actor.scope(OBJECT, "create").is_none() {
        return Ok(());
    }
    let view = state.engine.object_for(actor, OBJECT)?;
    let snapshot = state.engine.catalog().snapshot();
    if validate_input(&view, body, Mode::Create, &*snapshot).is_err() {
        return Ok(());
    }
    let keys: Vec<(KeyKind, String)> = record_keys(body)
        .into_iter()
        .filter(|(k, _)| *k != KeyKind::CreditCode)
        .collect();
    if keys.is_empty() {
        return Ok(());
    }
    let found = match state.engine.find_duplicates(actor, &keys, &[], DEFAULT_LIMIT).await {
        Ok(found) => found,
        Err(guanxi_store::StoreError::Domain(DomainError::Forbidden(_))) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if found.is_empty() {
        Ok(())
    } else {
        Err(suspected(&found))
    }
}
