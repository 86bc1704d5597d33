//! The outbox and background jobs. A job row is written in the same transaction as the change
//! that asks for it; a worker claims due jobs (with `FOR UPDATE SKIP LOCKED` on PostgreSQL so
//! several servers share the queue), runs the handler for the job's kind, and on failure retries
//! with exponential backoff until `max_attempts`. A worker that dies mid-job loses its lease and
//! the job runs again, so handlers must be idempotent. Jobs report progress for long imports and
//! exports.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value as Json;
use sqlx::Row;
use time::OffsetDateTime;

use crate::db::{Backend, Db};
use crate::error::{StoreError, StoreResult};
use crate::sql::Sql;
use guanxi_core::time_fmt::{format_utc, now_utc};

pub const DEFAULT_MAX_ATTEMPTS: i64 = 5;

/// Queues a job on the given connection (usually inside a transaction).
pub async fn enqueue(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    kind: &str,
    payload: &Json,
    created_by: Option<&str>,
    max_attempts: i64,
) -> StoreResult<String> {
    let id = uuid::Uuid::now_v7().to_string();
    let now = now_utc();
    let mut sql = Sql::of(
        backend,
        "INSERT INTO jobs (id, kind, payload, status, attempts, max_attempts, run_at, progress_done, created_by, created_at, updated_at) VALUES (",
    );
    sql.bind(id.as_str())
        .push(", ")
        .bind(kind)
        .push(", ")
        .bind(payload.to_string())
        .push(", 'queued', 0, ")
        .bind(max_attempts)
        .push(", ")
        .bind(now.as_str())
        .push(", 0, ")
        .bind(created_by)
        .push(", ")
        .bind(now.as_str())
        .push(", ")
        .bind(now)
        .push(")");
    sql.query().execute(conn).await?;
    Ok(id)
}

/// A job as shown to users (progress bars, results).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JobView {
    pub id: String,
    pub kind: String,
    pub status: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub progress_done: i64,
    pub progress_total: Option<i64>,
    pub last_error: Option<String>,
    pub result: Option<Json>,
    pub created_by: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// Reads one job.
pub async fn get(db: &Db, id: &str) -> StoreResult<Option<JobView>> {
    let mut sql = Sql::of(
        db.backend(),
        "SELECT id, kind, status, attempts, max_attempts, progress_done, progress_total, last_error, result, created_by, created_at, updated_at FROM jobs WHERE id = ",
    );
    sql.bind(id);
    let Some(row) = sql.query().fetch_optional(db.reader()).await? else {
        return Ok(None);
    };
    let result: Option<String> = row.try_get("result")?;
    Ok(Some(JobView {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        status: row.try_get("status")?,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        progress_done: row.try_get("progress_done")?,
        progress_total: row.try_get("progress_total")?,
        last_error: row.try_get("last_error")?,
        result: result.and_then(|r| serde_json::from_str(&r).ok()),
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    }))
}

/// What a running job gets: its payload and a way to report progress.
pub struct JobContext {
    pub id: String,
    pub payload: Json,
    pub attempt: i64,
    db: Db,
}

impl JobContext {
    /// Records progress (`done` of `total`), visible through the jobs API while the job runs.
    pub async fn progress(&self, done: i64, total: Option<i64>) -> StoreResult<()> {
        let mut sql = Sql::of(self.db.backend(), "UPDATE jobs SET progress_done = ");
        sql.bind(done)
            .push(", progress_total = ")
            .bind(total.map_or(crate::sql::Bind::NullInt, crate::sql::Bind::Int))
            .push(", updated_at = ")
            .bind(now_utc())
            .push(" WHERE id = ")
            .bind(self.id.as_str());
        sql.query().execute(self.db.writer()).await?;
        Ok(())
    }

    pub fn db(&self) -> &Db {
        &self.db
    }
}

/// Runs jobs of one kind. Returning an error schedules a retry.
#[async_trait]
pub trait JobHandler: Send + Sync {
    async fn run(&self, ctx: &JobContext) -> anyhow::Result<Option<Json>>;
}

/// Claims and runs due jobs.
#[derive(Clone)]
pub struct Worker {
    db: Db,
    handlers: HashMap<String, Arc<dyn JobHandler>>,
    lease: Duration,
    retry_base: Duration,
}

/// Delay before retry `attempt` (1-based): base × 2, 4, 8 … at most an hour.
pub fn backoff(base: Duration, attempt: i64) -> Duration {
    let exp = u32::try_from(attempt.clamp(1, 16)).unwrap_or(16);
    base.saturating_mul(1u32 << exp).min(Duration::from_secs(3600))
}

impl Worker {
    pub fn new(db: Db) -> Self {
        Worker {
            db,
            handlers: HashMap::new(),
            lease: Duration::from_secs(300),
            retry_base: Duration::from_secs(1),
        }
    }

    /// Sets the base delay of the exponential backoff (default one second).
    pub fn retry_base(mut self, base: Duration) -> Self {
        self.retry_base = base;
        self
    }

    pub fn register(&mut self, kind: &str, handler: Arc<dyn JobHandler>) {
        self.handlers.insert(kind.to_owned(), handler);
    }

    /// Claims one due job, runs it and records the outcome. Returns whether a job ran.
    pub async fn run_once(&self) -> StoreResult<bool> {
        let now = OffsetDateTime::now_utc();
        let now_s = format_utc(now);
        let lease_until = format_utc(now + self.lease);
        let backend = self.db.backend();
        let mut sql = Sql::of(
            backend,
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_until = ",
        );
        sql.bind(lease_until)
            .push(", updated_at = ")
            .bind(now_s.as_str())
            .push(" WHERE id = (SELECT id FROM jobs WHERE (status = 'queued' AND run_at <= ")
            .bind(now_s.as_str())
            .push(") OR (status = 'running' AND locked_until < ")
            .bind(now_s.as_str())
            .push(") ORDER BY run_at, id LIMIT 1");
        if backend == Backend::Postgres {
            sql.push(" FOR UPDATE SKIP LOCKED");
        }
        sql.push(") RETURNING id, kind, payload, attempts, max_attempts");
        let Some(row) = sql.query().fetch_optional(self.db.writer()).await? else {
            return Ok(false);
        };
        let id: String = row.try_get("id")?;
        let kind: String = row.try_get("kind")?;
        let payload: String = row.try_get("payload")?;
        let attempt: i64 = row.try_get("attempts")?;
        let max_attempts: i64 = row.try_get("max_attempts")?;
        let ctx = JobContext {
            id: id.clone(),
            payload: serde_json::from_str(&payload).unwrap_or(Json::Null),
            attempt,
            db: self.db.clone(),
        };
        let outcome = match self.handlers.get(&kind) {
            Some(h) => h.run(&ctx).await,
            None => Err(anyhow::anyhow!("no handler for job kind '{kind}'")),
        };
        let finished = format_utc(OffsetDateTime::now_utc());
        let mut done = Sql::new(backend);
        match outcome {
            Ok(result) => {
                done.push("UPDATE jobs SET status = 'done', locked_until = NULL, last_error = NULL, result = ")
                    .bind(result.map(|r| r.to_string()))
                    .push(", updated_at = ")
                    .bind(finished);
                tracing::info!(job = %id, %kind, attempt, "job done");
            }
            Err(e) => {
                let permanent = attempt >= max_attempts || !self.handlers.contains_key(&kind);
                let status = if permanent { "failed" } else { "queued" };
                let retry_at = format_utc(OffsetDateTime::now_utc() + backoff(self.retry_base, attempt));
                done.push("UPDATE jobs SET status = ")
                    .bind(status)
                    .push(", locked_until = NULL, last_error = ")
                    .bind(format!("{e:#}"))
                    .push(", run_at = ")
                    .bind(retry_at)
                    .push(", updated_at = ")
                    .bind(finished);
                tracing::warn!(job = %id, %kind, attempt, permanent, error = %format!("{e:#}"), "job failed");
            }
        }
        done.push(" WHERE id = ").bind(id.as_str());
        done.query().execute(self.db.writer()).await.map_err(StoreError::from)?;
        Ok(true)
    }

    /// Runs until `shutdown` flips to true, polling every `idle` when there is nothing to do.
    pub async fn run(self, idle: Duration, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.run_once().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => tracing::error!(error = ?e, "job worker could not claim a job"),
            }
            tokio::select! {
                _ = tokio::time::sleep(idle) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Duration::from_secs(1);
        assert_eq!(backoff(base, 1), Duration::from_secs(2));
        assert_eq!(backoff(base, 3), Duration::from_secs(8));
        assert_eq!(backoff(base, 50), Duration::from_secs(3600));
    }
}
