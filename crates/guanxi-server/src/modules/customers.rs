//! Customers, contacts, leads, follow-ups and care actions (PRODUCT.md module 2). The objects
//! are declared in `guanxi-core::objects`; this module adds what plain records cannot say:
//! lead conversion (seed 001 M9 §3.1.2) into a customer and a contact in one transaction,
//! with the lead's owner and name carried over unchanged, and the rule that a converted lead
//! is read-only (it remains for the lead report).

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::post;
use guanxi_core::DomainError;
use guanxi_core::time_fmt::now_utc;
use guanxi_store::hooks::{HookCtx, RecordHooks, Values};
use guanxi_store::sql::Sql;
use guanxi_store::{Engine, Record, StoreResult};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::CurrentActor;
use crate::routes::data;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/leads/{id}/convert", post(convert_lead))
}

/// The engine, set once it exists (hooks are built before the engine they run in).
pub type EngineCell = Arc<OnceLock<Engine>>;

pub struct LeadHooks {
    pub engine: EngineCell,
}

fn text<'a>(r: &'a Record, key: &str) -> Option<&'a str> {
    r.get(key).and_then(Json::as_str).filter(|s| !s.is_empty())
}

#[async_trait]
impl RecordHooks for LeadHooks {
    async fn before_update(&self, _ctx: &mut HookCtx<'_>, old: &Record, _changes: &mut Values) -> StoreResult<()> {
        if text(old, "status") == Some("converted") {
            return Err(DomainError::conflict("已转化的线索不能修改", "a converted lead cannot be changed").into());
        }
        Ok(())
    }

    async fn before_delete(&self, _ctx: &mut HookCtx<'_>, record: &Record) -> StoreResult<()> {
        if text(record, "status") == Some("converted") {
            return Err(DomainError::conflict(
                "已转化的线索保留在线索报表中，不能删除",
                "a converted lead stays for the lead report and cannot be deleted",
            )
            .into());
        }
        Ok(())
    }

    /// The `convert` transition creates the customer and the contact in the transition's own
    /// transaction: either all three changes commit or none.
    async fn after_update(&self, ctx: &mut HookCtx<'_>, old: &Record, new: &Record) -> StoreResult<()> {
        if text(new, "status") != Some("converted") || text(old, "status") == Some("converted") {
            return Ok(());
        }
        let engine = self
            .engine
            .get()
            .ok_or_else(|| anyhow::anyhow!("lead conversion before the engine was ready"))?;
        let name = text(new, "name").unwrap_or_default();
        let company = text(new, "company");
        let mut customer = Map::new();
        customer.insert("name".into(), json!(company.unwrap_or(name)));
        customer.insert(
            "customer_type".into(),
            json!(if company.is_some() { "enterprise" } else { "individual" }),
        );
        for key in [
            "source",
            "industry",
            "province",
            "city",
            "district",
            "address",
            "email",
            "owner_id",
            "department_id",
        ] {
            if let Some(v) = text(new, key) {
                customer.insert(key.into(), json!(v));
            }
        }
        if let Some(phone) = text(new, "phone").or(text(new, "mobile")) {
            customer.insert("phone".into(), json!(phone));
        }
        let created = engine.create_in_tx(ctx.tx, ctx.actor, "customer", &customer).await?;
        let customer_id = text(&created, "id").unwrap_or_default().to_owned();
        let mut contact = Map::new();
        contact.insert("customer_id".into(), json!(customer_id));
        contact.insert("name".into(), json!(name));
        for key in ["title", "mobile", "phone", "email", "owner_id", "department_id"] {
            if let Some(v) = text(new, key) {
                contact.insert(key.into(), json!(v));
            }
        }
        let contact = engine.create_in_tx(ctx.tx, ctx.actor, "contact", &contact).await?;
        let contact_id = text(&contact, "id").unwrap_or_default();
        let mut sql = Sql::of(ctx.backend, "UPDATE leads SET converted_customer_id = ");
        sql.bind(customer_id.as_str())
            .push(", converted_contact_id = ")
            .bind(contact_id)
            .push(", converted_at = ")
            .bind(now_utc())
            .push(" WHERE id = ")
            .bind(text(new, "id").unwrap_or_default());
        sql.query().execute(&mut **ctx.tx).await?;
        Ok(())
    }
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConvertBody {
    remark: Option<String>,
    version: Option<i64>,
}

/// Convert a lead into a customer and a contact (seed 001 M9 §3.1.2). Needs `lead.convert` and
/// the right to create customers and contacts for the lead's owner.
#[utoipa::path(post, path = "/api/v1/leads/{id}/convert", tag = "customers", operation_id = "convert_lead",
    params(("id" = String, Path)), request_body = ConvertBody,
    responses((status = 200, description = "The converted lead with its new customer and contact"),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope)))]
pub async fn convert_lead(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<impl IntoResponse> {
    // The body is optional.
    let body: ConvertBody = if body.iter().all(u8::is_ascii_whitespace) {
        ConvertBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            crate::error::ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                format!("请求内容的结构或类型不正确：{e}"),
                format!("the request body has the wrong shape or types: {e}"),
            )
        })?
    };
    state
        .engine
        .transition(&actor, "lead", &id, "convert", body.remark.as_deref(), body.version)
        .await?;
    let lead = state.engine.get(&actor, "lead", &id, false).await?;
    Ok(data(json!({
        "lead": lead,
        "customer_id": lead.get("converted_customer_id"),
        "contact_id": lead.get("converted_contact_id"),
    })))
}
