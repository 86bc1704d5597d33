//! Per-object hooks. A module registers a [`RecordHooks`] implementation for an object key and
//! the engine calls it inside the record's transaction, so whatever a hook writes (a computed
//! total, a job, a check that fails) commits or rolls back with the change itself.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use guanxi_core::{Actor, FieldErrors, ObjectDef, Value};
use serde_json::{Map, Value as Json};

use crate::db::Backend;
use crate::error::StoreResult;
use crate::jobs;
use crate::records::Record;

/// A transaction on either backend.
pub type AnyTx = sqlx::Transaction<'static, sqlx::Any>;

/// Field values about to be written, in input order.
pub type Values = Vec<(String, Value)>;

/// What a hook can see and use: the open transaction, the actor, the object.
pub struct HookCtx<'a> {
    pub tx: &'a mut AnyTx,
    pub actor: &'a Actor,
    pub object: &'a ObjectDef,
    pub backend: Backend,
}

impl HookCtx<'_> {
    /// Queues a background job in the same transaction as the change (the outbox pattern): the
    /// job exists if and only if the change commits.
    pub async fn enqueue_job(&mut self, kind: &str, payload: &Json) -> StoreResult<String> {
        jobs::enqueue(
            self.tx,
            self.backend,
            kind,
            payload,
            Some(&self.actor.id),
            jobs::DEFAULT_MAX_ATTEMPTS,
        )
        .await
    }
}

/// Hooks around record changes. Every method defaults to doing nothing.
#[async_trait]
pub trait RecordHooks: Send + Sync {
    /// Checks input against reference data outside the record (the region table), adding field
    /// errors. Runs after field validation, even when that failed, so a form or an import row
    /// shows every problem at once; it runs outside the write transaction and must only read.
    /// `input` is the body as given; `old` is the stored record on updates.
    async fn check_input(
        &self,
        _actor: &Actor,
        _object: &ObjectDef,
        _input: &Map<String, Json>,
        _old: Option<&Record>,
        _errors: &mut FieldErrors,
    ) -> StoreResult<()> {
        Ok(())
    }
    /// May change or add values, or refuse the create with an error.
    async fn before_create(&self, _ctx: &mut HookCtx<'_>, _values: &mut Values) -> StoreResult<()> {
        Ok(())
    }
    async fn after_create(&self, _ctx: &mut HookCtx<'_>, _record: &Record) -> StoreResult<()> {
        Ok(())
    }
    /// After a multi-row create (imports, demo data), with every record of the chunk. Defaults
    /// to [`RecordHooks::after_create`] per record; hooks that write override it with
    /// multi-row statements, because a statement per row is most of a bulk load's cost.
    async fn after_create_many(&self, ctx: &mut HookCtx<'_>, records: &[Record]) -> StoreResult<()> {
        for record in records {
            self.after_create(ctx, record).await?;
        }
        Ok(())
    }
    /// May change or add values, or refuse the update.
    async fn before_update(&self, _ctx: &mut HookCtx<'_>, _old: &Record, _changes: &mut Values) -> StoreResult<()> {
        Ok(())
    }
    async fn after_update(&self, _ctx: &mut HookCtx<'_>, _old: &Record, _new: &Record) -> StoreResult<()> {
        Ok(())
    }
    /// May refuse the (soft) delete.
    async fn before_delete(&self, _ctx: &mut HookCtx<'_>, _record: &Record) -> StoreResult<()> {
        Ok(())
    }
    async fn after_delete(&self, _ctx: &mut HookCtx<'_>, _record: &Record) -> StoreResult<()> {
        Ok(())
    }
}

/// Hooks by object key, in registration order.
#[derive(Clone, Default)]
pub struct HookRegistry {
    by_object: HashMap<String, Vec<Arc<dyn RecordHooks>>>,
}

impl HookRegistry {
    pub fn register(&mut self, object: &str, hooks: Arc<dyn RecordHooks>) {
        self.by_object.entry(object.to_owned()).or_default().push(hooks);
    }

    /// Adds every hook of `other` after this registry's own.
    pub fn merge(&mut self, other: HookRegistry) {
        for (object, hooks) in other.by_object {
            self.by_object.entry(object).or_default().extend(hooks);
        }
    }

    pub fn for_object(&self, object: &str) -> Vec<Arc<dyn RecordHooks>> {
        self.by_object.get(object).cloned().unwrap_or_default()
    }
}

impl std::fmt::Debug for HookRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.by_object.iter().map(|(k, v)| (k, v.len())))
            .finish()
    }
}
