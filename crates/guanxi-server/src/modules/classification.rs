//! Customer value classification (seed 000 §3.1.5 C-19/C-20, BR-20 "updated periodically";
//! seed 001 M1 §2.4.3; issue 5 §6): the rules (`guanxi_core::classification`) stored as the
//! `customer.classification_rules` setting and edited by administrators, and the
//! `customer.classify` job that recomputes every customer's `value_tier` in chunks, writing
//! each change with an audit entry (action `classify`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use guanxi_core::classification::{ClassificationRules, CustomerFacts};
use guanxi_core::time_fmt::{format_utc, now_utc};
use guanxi_core::{Actor, DomainError, Value};
use guanxi_store::jobs::{JobContext, JobHandler, Worker};
use guanxi_store::sql::{Bind, Sql};
use guanxi_store::{Db, Engine, StoreResult};
use serde_json::{Value as Json, json};
use sqlx::Row;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::{ApiJson, CurrentActor};
use crate::modules::identity::session::require_permission;
use crate::routes::data;
use crate::state::AppState;

pub const CLASSIFY_JOB: &str = "customer.classify";
pub const RULES_SETTING: &str = "customer.classification_rules";
/// Who may read and change the rules and run the job.
const PERMISSION: &str = "customer.classify";
const TIER_DICT: &str = "customer_value_tier";
/// Customers per chunk (one read of facts, one write transaction).
const CHUNK: i64 = 500;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/customers/classification-rules", get(get_rules).put(put_rules))
        .route("/api/v1/customers/classify", post(classify))
}

pub fn register_jobs(worker: &mut Worker, engine: &Engine) {
    worker.register(CLASSIFY_JOB, Arc::new(ClassifyJob { engine: engine.clone() }));
}

/// The stored rules, or the defaults when none were saved (or the stored ones no longer parse).
pub async fn load_rules(db: &Db) -> StoreResult<(ClassificationRules, bool)> {
    let stored = guanxi_store::identity::get_setting(db, RULES_SETTING).await?;
    Ok(match stored.and_then(|v| serde_json::from_value(v).ok()) {
        Some(rules) => (rules, false),
        None => (ClassificationRules::default(), true),
    })
}

fn rules_view(rules: &ClassificationRules, is_default: bool) -> Json {
    json!({"rules": rules, "is_default": is_default})
}

/// The value classification rules (`is_default` until an administrator saves some). Needs
/// `customer.classify`.
#[utoipa::path(get, path = "/api/v1/customers/classification-rules", tag = "customers",
    operation_id = "get_classification_rules",
    responses((status = 200, description = "`{rules, is_default}`: window_days, amount / frequency bands `{min, points}`, recency bands `{max_days, points}`, tiers `{tier, min_points}`"),
        (status = 403, body = ErrorEnvelope)))]
pub async fn get_rules(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
) -> ApiResult<impl IntoResponse> {
    require_permission(&actor, PERMISSION)?;
    let (rules, is_default) = load_rules(&state.db).await?;
    Ok(data(rules_view(&rules, is_default)))
}

/// Replace the rules (validated: ranges, no repeated bands, tiers from the `customer_value_tier`
/// dictionary, one tier from 0 points). Saving rules also turns on the daily classification.
/// Needs `customer.classify`.
#[utoipa::path(put, path = "/api/v1/customers/classification-rules", tag = "customers",
    operation_id = "put_classification_rules",
    request_body(content = Object, description = "`{window_days, amount: [{min, points}], frequency: [{min, points}], recency: [{max_days, points}], tiers: [{tier, min_points}]}`; amounts in yuan"),
    responses((status = 200, description = "The saved rules"), (status = 403, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope)))]
pub async fn put_rules(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    ApiJson(rules): ApiJson<ClassificationRules>,
) -> ApiResult<impl IntoResponse> {
    require_permission(&actor, PERMISSION)?;
    let snapshot = state.engine.catalog().snapshot();
    let allowed: Vec<String> = snapshot
        .dictionary(TIER_DICT)
        .unwrap_or_default()
        .iter()
        .filter(|i| i.enabled)
        .map(|i| i.value.clone())
        .collect();
    rules.validate(&allowed).map_err(DomainError::Validation)?;
    let value = serde_json::to_value(&rules).map_err(crate::error::ApiError::internal)?;
    guanxi_store::identity::set_setting(&state.db, RULES_SETTING, &value).await?;
    Ok(data(rules_view(&rules, false)))
}

/// Recompute every customer's value tier now (a job; also daily once rules are saved). Needs
/// `customer.classify`; returns the job to follow.
#[utoipa::path(post, path = "/api/v1/customers/classify", tag = "customers", operation_id = "classify_customers",
    responses((status = 202, description = "The queued job: `{job_id}`"), (status = 403, body = ErrorEnvelope)))]
pub async fn classify(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
) -> ApiResult<impl IntoResponse> {
    require_permission(&actor, PERMISSION)?;
    let id = super::pool::enqueue(&state.db, CLASSIFY_JOB, Some(&actor.id)).await?;
    Ok((StatusCode::ACCEPTED, data(json!({"job_id": id}))))
}

struct ClassifyJob {
    engine: Engine,
}

/// One customer as the job reads it.
struct Row0 {
    id: String,
    tier: Option<String>,
    amount: i64,
    last_contacted: Option<String>,
}

fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

#[async_trait]
impl JobHandler for ClassifyJob {
    async fn run(&self, ctx: &JobContext) -> anyhow::Result<Option<Json>> {
        let db = self.engine.db();
        let backend = db.backend();
        let (rules, _) = load_rules(db).await?;
        let now = OffsetDateTime::now_utc();
        let now_s = now_utc();
        let window_start = format_utc(now - time::Duration::days(rules.window_days));
        let total: i64 = sqlx::query("SELECT count(*) AS n FROM customers WHERE deleted_at IS NULL")
            .fetch_one(db.reader())
            .await?
            .try_get("n")?;
        ctx.progress(0, Some(total)).await?;
        let actor = Actor::system();
        let (mut seen, mut changed) = (0i64, 0i64);
        let mut by_tier: BTreeMap<String, i64> = BTreeMap::new();
        let mut after = String::new();
        loop {
            let mut sql = Sql::of(
                backend,
                "SELECT id, value_tier, total_amount, last_contacted_at FROM customers WHERE deleted_at IS NULL AND id > ",
            );
            sql.bind(after.as_str()).push(" ORDER BY id LIMIT ").bind(CHUNK);
            let rows = sql.query().fetch_all(db.reader()).await?;
            if rows.is_empty() {
                break;
            }
            let mut customers = Vec::with_capacity(rows.len());
            for r in &rows {
                customers.push(Row0 {
                    id: r.try_get("id")?,
                    tier: r.try_get("value_tier")?,
                    amount: r.try_get::<Option<i64>, _>("total_amount")?.unwrap_or(0),
                    last_contacted: r.try_get("last_contacted_at")?,
                });
            }
            after = customers.last().map(|c| c.id.clone()).unwrap_or_default();
            let activity = follow_up_facts(db, &customers, &window_start, &now_s).await?;
            let mut tx = db.writer().begin().await?;
            for c in &customers {
                let (recent, last_follow_up) = activity.get(&c.id).cloned().unwrap_or((0, None));
                // The later of the last follow-up and the recorded last contact.
                let last = [last_follow_up, c.last_contacted.clone()]
                    .into_iter()
                    .flatten()
                    .filter(|t| *t <= now_s)
                    .max();
                let facts = CustomerFacts {
                    amount_minor: c.amount,
                    recent_follow_ups: recent,
                    days_since_last: last.as_deref().and_then(parse_time).map(|t| (now - t).whole_days()),
                };
                let tier = rules.tier(&facts).map(str::to_owned);
                if let Some(t) = &tier {
                    *by_tier.entry(t.clone()).or_default() += 1;
                }
                if tier != c.tier {
                    let value = tier.clone().map_or(Value::Null, Value::Text);
                    let written = self
                        .engine
                        .apply_system_change(
                            &mut tx,
                            &actor,
                            "customer",
                            &c.id,
                            &[("value_tier".to_owned(), value)],
                            "classify",
                            None,
                            None,
                        )
                        .await?;
                    if written.is_some() {
                        changed += 1;
                    }
                }
            }
            tx.commit().await?;
            seen += i64::try_from(customers.len()).unwrap_or(0);
            ctx.progress(seen, Some(total.max(seen))).await?;
        }
        Ok(Some(json!({"customers": seen, "changed": changed, "tiers": by_tier})))
    }
}

/// Per customer: follow-ups since `window_start` (and not in the future), and the latest one
/// that has happened.
async fn follow_up_facts(
    db: &Db,
    customers: &[Row0],
    window_start: &str,
    now: &str,
) -> StoreResult<HashMap<String, (i64, Option<String>)>> {
    let mut sql = Sql::of(db.backend(), "SELECT customer_id, COUNT(CASE WHEN occurred_at >= ");
    sql.bind(window_start)
        .push(" AND occurred_at <= ")
        .bind(now)
        .push(" THEN 1 END) AS recent, MAX(CASE WHEN occurred_at <= ")
        .bind(now)
        .push(" THEN occurred_at END) AS last_at FROM follow_ups WHERE deleted_at IS NULL AND customer_id IN (")
        .bind_list(customers.iter().map(|c| Bind::Text(c.id.clone())))
        .push(") GROUP BY customer_id");
    let rows = sql.query().fetch_all(db.reader()).await?;
    let mut out = HashMap::with_capacity(rows.len());
    for r in rows {
        out.insert(
            r.try_get::<String, _>("customer_id")?,
            (
                r.try_get::<i64, _>("recent")?,
                r.try_get::<Option<String>, _>("last_at")?,
            ),
        );
    }
    Ok(out)
}
