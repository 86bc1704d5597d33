//! The customer public pool (公海, issue 5 §6; PRODUCT.md module 2): customers without an
//! owner. Salespeople claim them (up to `pool.max_owned_per_user` owned customers), owners and
//! managers release them with a reason, and the `customer.reclaim` job returns customers
//! nobody followed up for `pool.reclaim_after_days` days (0 = off). A small scheduler queues
//! the daily jobs (reclaim, and classification once rules are saved). The follow-up hook keeps
//! `last_contacted_at` current, which the reclaim rule reads.
//!
//! Visibility of the pool to people whose read scope is narrower is the access layer's job
//! (`guanxi_store::records::scope::push_read_scope`); claiming and releasing are engine
//! operations (`guanxi_store::records::pool`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use guanxi_core::filter::{Filter, parse_filter};
use guanxi_core::time_fmt::{format_utc, now_utc};
use guanxi_core::{Actor, DomainError};
use guanxi_store::hooks::{HookCtx, RecordHooks};
use guanxi_store::jobs::{self, JobContext, JobHandler, Worker};
use guanxi_store::sql::Sql;
use guanxi_store::{Db, Engine, Record, StoreResult};
use serde::Deserialize;
use serde_json::{Value as Json, json};
use sqlx::Row;
use time::OffsetDateTime;

use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::{ApiJson, ApiQuery, CurrentActor};
use crate::modules::identity::session::require_permission;
use crate::routes::data;
use crate::routes::records::{ListParams, list_query, page_response};
use crate::state::AppState;

pub const RECLAIM_JOB: &str = "customer.reclaim";
/// Most customers one person may own before claiming is refused (absent or 0: no limit).
pub const MAX_OWNED_SETTING: &str = "pool.max_owned_per_user";
/// Days without a follow-up after which a customer returns to the pool (absent or 0: never).
pub const RECLAIM_DAYS_SETTING: &str = "pool.reclaim_after_days";
/// Customers returned per transaction by the reclaim job.
const RECLAIM_CHUNK: i64 = 200;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/customers/pool", get(list_pool))
        .route("/api/v1/customers/reclaim", post(run_reclaim))
        .route("/api/v1/customers/{id}/claim", post(claim))
        .route("/api/v1/customers/{id}/release", post(release))
}

/// Registers the reclaim job.
pub fn register_jobs(worker: &mut Worker, engine: &Engine) {
    worker.register(RECLAIM_JOB, Arc::new(ReclaimJob { engine: engine.clone() }));
}

/// An integer setting, when set.
pub async fn setting_i64(db: &Db, key: &str) -> StoreResult<Option<i64>> {
    Ok(guanxi_store::identity::get_setting(db, key)
        .await?
        .as_ref()
        .and_then(Json::as_i64))
}

/// Customers in the pool that the caller may see (paged like any list; same parameters).
#[utoipa::path(get, path = "/api/v1/customers/pool", tag = "customers", operation_id = "list_pool",
    params(ListParams),
    responses((status = 200, description = "A page of customers without an owner"), (status = 403, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope)))]
pub async fn list_pool(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<impl IntoResponse> {
    let def = state.engine.object_for(&actor, "customer")?;
    let mut query = list_query(&def, params)?;
    let unowned = parse_filter(&def, &json!({"field": "owner_id", "op": "is_empty", "value": true}))?;
    query.filter = Some(match query.filter.take() {
        None => unowned,
        Some(f) => Filter::And(vec![unowned, f]),
    });
    Ok(page_response(state.engine.list(&actor, "customer", &query).await?))
}

/// Claim a customer from the pool: the caller becomes its owner. Needs `customer.claim`;
/// refused with `not_in_pool` when it has an owner and `pool_limit_reached` at the limit.
#[utoipa::path(post, path = "/api/v1/customers/{id}/claim", tag = "customers", operation_id = "claim_customer",
    params(("id" = String, Path)),
    responses((status = 200, description = "The claimed customer"), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
pub async fn claim(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let max = setting_i64(&state.db, MAX_OWNED_SETTING).await?;
    Ok(data(state.engine.claim(&actor, "customer", &id, max).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseBody {
    /// Why the customer goes back to the pool (kept on the customer and in its history).
    reason: String,
    /// The version the caller saw (optional; a stale one is a version conflict).
    version: Option<i64>,
}

/// Give a customer back to the pool, with a reason. Needs the update permission on it (its
/// owner, or a manager whose scope covers it); `not_owned` when it is in the pool already.
#[utoipa::path(post, path = "/api/v1/customers/{id}/release", tag = "customers", operation_id = "release_customer",
    params(("id" = String, Path)), request_body = ReleaseBody,
    responses((status = 200, description = "The released customer"), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn release(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReleaseBody>,
) -> ApiResult<impl IntoResponse> {
    Ok(data(
        state
            .engine
            .release(&actor, "customer", &id, &body.reason, body.version)
            .await?,
    ))
}

/// Run the automatic reclaim now (it also runs daily while `pool.reclaim_after_days` is set).
/// Needs `customer.reclaim`; returns the job to follow.
#[utoipa::path(post, path = "/api/v1/customers/reclaim", tag = "customers", operation_id = "reclaim_customers",
    responses((status = 202, description = "The queued job: `{job_id}`"), (status = 403, body = ErrorEnvelope)))]
pub async fn run_reclaim(
    State(state): State<AppState>,
    CurrentActor(actor): CurrentActor,
) -> ApiResult<impl IntoResponse> {
    require_permission(&actor, "customer.reclaim")?;
    let id = enqueue(&state.db, RECLAIM_JOB, Some(&actor.id)).await?;
    Ok((StatusCode::ACCEPTED, data(json!({"job_id": id}))))
}

/// Queues a job outside any other change.
pub async fn enqueue(db: &Db, kind: &str, created_by: Option<&str>) -> StoreResult<String> {
    let mut conn = db.writer().acquire().await?;
    jobs::enqueue(
        &mut conn,
        db.backend(),
        kind,
        &json!({}),
        created_by,
        jobs::DEFAULT_MAX_ATTEMPTS,
    )
    .await
}

/// Returns neglected customers to the pool. Idempotent: a retry finds only what is left.
struct ReclaimJob {
    engine: Engine,
}

#[async_trait]
impl JobHandler for ReclaimJob {
    async fn run(&self, ctx: &JobContext) -> anyhow::Result<Option<Json>> {
        let days = setting_i64(ctx.db(), RECLAIM_DAYS_SETTING).await?.unwrap_or(0);
        if days <= 0 {
            return Ok(Some(json!({"reclaimed": 0, "reclaim_after_days": 0, "skipped": "off"})));
        }
        let n = reclaim(&self.engine, ctx, days).await?;
        Ok(Some(json!({"reclaimed": n, "reclaim_after_days": days})))
    }
}

/// Appends the reclaim rule: owned, and neither followed up (or, never followed up, created)
/// nor claimed within the period.
fn push_stale(sql: &mut Sql, cutoff: &str) {
    sql.push(" WHERE deleted_at IS NULL AND owner_id IS NOT NULL AND COALESCE(last_contacted_at, created_at) < ")
        .bind(cutoff)
        .push(" AND (claimed_at IS NULL OR claimed_at < ")
        .bind(cutoff)
        .push(")");
}

async fn reclaim(engine: &Engine, ctx: &JobContext, days: i64) -> anyhow::Result<i64> {
    let db = engine.db();
    let backend = db.backend();
    let object = engine.object("customer")?;
    let cutoff = format_utc(OffsetDateTime::now_utc() - time::Duration::days(days.clamp(0, MAX_RECLAIM_DAYS)));
    let mut count = Sql::of(backend, "SELECT count(*) AS n FROM customers");
    push_stale(&mut count, &cutoff);
    let total: i64 = count.query().fetch_one(db.reader()).await?.try_get("n")?;
    ctx.progress(0, Some(total)).await?;
    let reason = format!("超过{days}天未跟进，自动收回公海");
    let actor = Actor::system();
    let mut done = 0;
    loop {
        let mut tx = db.writer().begin().await?;
        // The rule is evaluated again inside the transaction, so a follow-up logged meanwhile
        // keeps its customer.
        let mut sql = Sql::of(backend, "SELECT id FROM customers");
        push_stale(&mut sql, &cutoff);
        sql.push(" ORDER BY id LIMIT ").bind(RECLAIM_CHUNK);
        let ids: Vec<String> = sql
            .query()
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?;
        if ids.is_empty() {
            break;
        }
        for id in &ids {
            engine
                .release_in(&mut tx, &actor, &object, id, &reason, "reclaim", None)
                .await?;
        }
        tx.commit().await?;
        done += i64::try_from(ids.len()).unwrap_or(0);
        ctx.progress(done, Some(total.max(done))).await?;
    }
    Ok(done)
}

/// The start of today in China (the business day) as a stored timestamp.
fn start_of_today() -> String {
    let offset = time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC);
    let today = OffsetDateTime::now_utc().to_offset(offset).date();
    format_utc(today.midnight().assume_offset(offset))
}

/// Whether a job of this kind was queued today (by the scheduler or by hand).
async fn queued_today(db: &Db, kind: &str) -> StoreResult<bool> {
    let mut sql = Sql::of(db.backend(), "SELECT 1 AS one FROM jobs WHERE kind = ");
    sql.bind(kind)
        .push(" AND created_at >= ")
        .bind(start_of_today())
        .push(" LIMIT 1");
    Ok(sql.query().fetch_optional(db.reader()).await?.is_some())
}

/// Queues today's daily jobs that are switched on and not queued yet: the reclaim while
/// `pool.reclaim_after_days` > 0, the classification once an administrator saved rules.
/// Returns the kinds queued. Several servers may race here; both jobs are idempotent.
pub async fn schedule_daily(state: &AppState) -> StoreResult<Vec<&'static str>> {
    let db = &state.db;
    let settings = guanxi_store::identity::settings(db).await?;
    let mut due = Vec::new();
    if settings.get(RECLAIM_DAYS_SETTING).and_then(Json::as_i64).unwrap_or(0) > 0 {
        due.push(RECLAIM_JOB);
    }
    if settings.contains_key(super::classification::RULES_SETTING) {
        due.push(super::classification::CLASSIFY_JOB);
    }
    let mut queued = Vec::new();
    for kind in due {
        if !queued_today(db, kind).await? {
            enqueue(db, kind, None).await?;
            tracing::info!(kind, "daily job queued");
            queued.push(kind);
        }
    }
    Ok(queued)
}

/// Checks every ten minutes whether today's daily jobs are queued. The first check also waits
/// ten minutes: a daily job may run a little late, and a server that only runs briefly (a test,
/// a one-off maintenance start) does not change data behind anyone's back.
pub async fn run_scheduler(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(600)) => {}
            _ = stop.changed() => return,
        }
        if let Err(e) = schedule_daily(&state).await {
            tracing::warn!(error = ?e, "daily job scheduling failed");
        }
    }
}

/// Keeps a customer's `last_contacted_at` at its latest follow-up that has happened (a
/// follow-up planned for later is not a contact). It is a derived value: the customer's
/// version and audit trail stay as they are (the follow-up has its own entry).
pub struct FollowUpHooks;

impl FollowUpHooks {
    /// Moves the customers' last contact to the latest of these follow-ups that has happened
    /// (per customer), never back: one UPDATE per few hundred customers (`CASE id WHEN … THEN
    /// …`, the same on both backends). Serves single writes and whole import chunks alike.
    async fn touch(ctx: &mut HookCtx<'_>, records: &[Record]) -> StoreResult<()> {
        let now = now_utc();
        let mut latest: std::collections::BTreeMap<&str, &str> = std::collections::BTreeMap::new();
        for record in records {
            let text = |k: &str| record.get(k).and_then(Json::as_str);
            let (Some(customer), Some(at)) = (text("customer_id"), text("occurred_at")) else {
                continue;
            };
            if at > now.as_str() {
                continue;
            }
            let entry = latest.entry(customer).or_insert(at);
            if at > *entry {
                *entry = at;
            }
        }
        let latest: Vec<(&str, &str)> = latest.into_iter().collect();
        for chunk in latest.chunks(500) {
            let case = |sql: &mut Sql| {
                sql.push("CASE id");
                for (customer, at) in chunk {
                    sql.push(" WHEN ").bind(*customer).push(" THEN ").bind(*at);
                }
                sql.push(" END");
            };
            let mut sql = Sql::of(ctx.backend, "UPDATE customers SET last_contacted_at = ");
            case(&mut sql);
            sql.push(" WHERE id IN (")
                .bind_list(
                    chunk
                        .iter()
                        .map(|(customer, _)| guanxi_store::sql::Bind::Text((*customer).to_owned())),
                )
                .push(") AND (last_contacted_at IS NULL OR last_contacted_at < ");
            case(&mut sql);
            sql.push(")");
            sql.query().execute(&mut **ctx.tx).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl RecordHooks for FollowUpHooks {
    async fn after_create(&self, ctx: &mut HookCtx<'_>, record: &Record) -> StoreResult<()> {
        Self::touch(ctx, std::slice::from_ref(record)).await
    }

    async fn after_create_many(&self, ctx: &mut HookCtx<'_>, records: &[Record]) -> StoreResult<()> {
        Self::touch(ctx, records).await
    }

    async fn after_update(&self, ctx: &mut HookCtx<'_>, _old: &Record, new: &Record) -> StoreResult<()> {
        Self::touch(ctx, std::slice::from_ref(new)).await
    }
}

/// The longest reclaim period a setting may name (ten years); longer ones are refused rather
/// than overflowing the date arithmetic of the reclaim job.
const MAX_RECLAIM_DAYS: i64 = 3650;

/// A pool setting must be a whole number from 0 (the reclaim period at most ten years).
pub fn check_setting(key: &str, value: &Json) -> Result<(), DomainError> {
    let max = if key == RECLAIM_DAYS_SETTING {
        MAX_RECLAIM_DAYS
    } else {
        i64::MAX
    };
    if (key == MAX_OWNED_SETTING || key == RECLAIM_DAYS_SETTING)
        && !(value.is_null() || value.as_i64().is_some_and(|n| (0..=max).contains(&n)))
    {
        return Err(DomainError::Validation(guanxi_core::FieldErrors::single(
            key,
            guanxi_core::FieldError::new(
                "out_of_range",
                format!("应为0至{max}之间的整数"),
                format!("must be a whole number from 0 to {max}"),
            ),
        )));
    }
    Ok(())
}
