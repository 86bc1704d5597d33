//! Group commit for single creates. Every create needs the one writer (SQLite has a single
//! writer connection; on PostgreSQL creates of one object meet at its numbering row), and a
//! create holds it for a dozen statements — checks, numbering, the insert, the read-back, the
//! audit entry, duplicate keys, ~30 search terms — each a round trip to the database. Under
//! concurrent load the writer, not the CPU, was the limit (539 creates/s at L against 2,301
//! updates/s; docs/BENCHMARKS.md).
//!
//! So creates queue for one writer task. It takes every create waiting when it is free and
//! writes them in one transaction with the multi-row path imports use (`create_many`: one
//! INSERT, one read-back, one audit statement, one statement per hook and for the search terms),
//! and answers each request when that transaction has committed — durability is unchanged, and
//! an acknowledged create is on disk exactly as before. A lone create takes the ordinary
//! single-row path. When the shared transaction fails for any row (a unique value, a dangling
//! reference, a hook's refusal), it is rolled back and every create of the group runs again in
//! a transaction of its own, so each request gets exactly the answer it would have had alone.
//!
//! Validation and the `check_input` hooks stay in the request's task, before queueing: a bad
//! body never reaches the writer.
//!
//! The writer task runs on a thread of its own ([`WriterThread`]). It holds the one SQLite writer
//! and makes a round trip to the connection's worker thread per statement; on the shared runtime
//! each return waited behind the HTTP work of every other request, and the writer sat idle
//! meanwhile. (Single updates stay on the shared runtime: moved to that thread, their
//! validation and decoding competed with each other on one core, and fewer were done.)

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use guanxi_core::{Actor, ObjectDef};
use tokio::sync::{mpsc, oneshot};

use super::Engine;
use super::batch::carries_files;
use super::codec::Record;
use crate::catalog::Snapshot;
use crate::error::{StoreError, StoreResult};
use crate::hooks::{AnyTx, Values};

/// Creates written in one transaction at most. Enough to soak up any realistic burst; small
/// enough that one group's statements stay well under the bind limits and the transaction short.
const MAX_GROUP: usize = 256;

/// Creates that may wait for the writer task before senders wait for room.
const QUEUE_DEPTH: usize = 1024;

/// One create waiting for the writer: everything `create_in` needs, and where its answer goes.
pub(super) struct PendingCreate {
    pub actor: Actor,
    pub snapshot: Arc<Snapshot>,
    pub full: Arc<ObjectDef>,
    pub view: Arc<ObjectDef>,
    pub values: Values,
    pub answer: oneshot::Sender<StoreResult<Record>>,
}

/// A thread with a runtime of its own for the create writer task, started on first use; it
/// ends when the last engine handle goes.
#[derive(Debug, Default)]
pub(super) struct WriterThread {
    started: OnceLock<Option<(tokio::runtime::Handle, oneshot::Sender<()>)>>,
}

impl WriterThread {
    /// Runs `work` on the writer thread (or, if that thread could not start, on the caller's
    /// runtime) and returns its handle.
    fn spawn<F>(&self, work: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self.started.get_or_init(start_writer_thread) {
            Some((handle, _)) => handle.spawn(work),
            None => tokio::spawn(work),
        }
    }
}

/// Starts the writer thread; it runs until its stop sender (kept by [`WriterThread`]) drops.
fn start_writer_thread() -> Option<(tokio::runtime::Handle, oneshot::Sender<()>)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| tracing::error!(error = %e, "no writer thread; writes run on the shared runtime"))
        .ok()?;
    let handle = runtime.handle().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("guanxi-writer".into())
        .spawn(move || {
            // Drives the runtime's tasks until the sender drops.
            let _ = runtime.block_on(stopped);
        })
        .map_err(|e| tracing::error!(error = %e, "no writer thread; writes run on the shared runtime"))
        .ok()?;
    Some((handle, stop))
}

/// The queue in front of the writer task, started by the first create.
#[derive(Debug, Default)]
pub(super) struct CreateQueue {
    sender: OnceLock<mpsc::Sender<PendingCreate>>,
}

impl Engine {
    /// Hands a validated create to the writer task and waits until it has committed.
    pub(super) async fn create_grouped(&self, pending: PendingCreate) -> StoreResult<()> {
        let sender = self.creates.sender.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
            // The task's engine has a queue of its own (never used), so it does not keep this
            // sender alive: when the last engine handle goes, the channel closes and the task
            // ends.
            let writer = Engine {
                creates: Arc::default(),
                writer_thread: Arc::default(),
                ..self.clone()
            };
            self.writer_thread.spawn(writer.write_creates(receiver));
            sender
        });
        sender
            .send(pending)
            .await
            .map_err(|_| StoreError::from(anyhow::anyhow!("the create writer has stopped")))
    }

    /// The writer task: waits for creates, then writes all that are waiting as one group.
    async fn write_creates(self, mut receiver: mpsc::Receiver<PendingCreate>) {
        let mut waiting = Vec::with_capacity(MAX_GROUP);
        while receiver.recv_many(&mut waiting, MAX_GROUP).await > 0 {
            self.write_group(std::mem::take(&mut waiting)).await;
        }
    }

    async fn write_group(&self, group: Vec<PendingCreate>) {
        // Rows naming uploaded files are linked one record at a time (`create_in`).
        let (alone, mut group): (Vec<_>, Vec<_>) = group.into_iter().partition(|p| carries_files(&p.full, &p.values));
        for one in alone {
            let outcome = self.create_alone(&one).await;
            let _ = one.answer.send(outcome);
        }
        if group.is_empty() {
            return;
        }
        if group.len() == 1 {
            if let Some(one) = group.pop() {
                let outcome = self.create_alone(&one).await;
                // The request may have gone away (client disconnected); the create stands.
                let _ = one.answer.send(outcome);
            }
            return;
        }
        let started = std::time::Instant::now();
        match self.create_together(&group).await {
            Ok(records) => {
                tracing::debug!(
                    size = group.len(),
                    elapsed_us = started.elapsed().as_micros(),
                    "creates committed as a group"
                );
                for (pending, record) in group.into_iter().zip(records) {
                    let _ = pending.answer.send(Ok(record));
                }
            }
            Err(reason) => {
                tracing::debug!(size = group.len(), %reason, "grouped create failed; each create runs alone");
                for pending in group {
                    let outcome = self.create_alone(&pending).await;
                    let _ = pending.answer.send(outcome);
                }
            }
        }
    }

    /// The ordinary single-create transaction.
    async fn create_alone(&self, p: &PendingCreate) -> StoreResult<Record> {
        let mut tx: AnyTx = self.db.writer().begin().await?;
        let record = self
            .create_in(&mut tx, &p.actor, &p.snapshot, &p.full, &p.view, p.values.clone())
            .await?;
        tx.commit().await?;
        Ok(record)
    }

    /// Writes the whole group in one transaction, one multi-row create per object and actor,
    /// and returns the records in the group's order. Any failure rolls everything back.
    async fn create_together(&self, group: &[PendingCreate]) -> Result<Vec<Record>, String> {
        // Requests of one actor for one object, under one catalog version, share statements.
        let mut parts: Vec<Vec<usize>> = Vec::new();
        let mut part_of: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
        for (i, p) in group.iter().enumerate() {
            let key = (p.full.key.as_str(), p.actor.id.as_str());
            let members = part_of.entry(key).or_default();
            let fits = members.first().is_none_or(|&first| {
                let f = &group[first];
                f.actor == p.actor && Arc::ptr_eq(&f.snapshot, &p.snapshot)
            });
            if fits {
                members.push(i);
            } else {
                parts.push(vec![i]);
            }
        }
        parts.extend(part_of.into_values());

        let mut tx: AnyTx = self.db.writer().begin().await.map_err(|e| e.to_string())?;
        let mut records: Vec<Option<Record>> = vec![None; group.len()];
        for members in parts {
            let first = &group[members[0]];
            let rows = members
                .iter()
                .map(|&i| (uuid::Uuid::now_v7().to_string(), group[i].values.clone()))
                .collect();
            let written = self
                .create_many(
                    &mut tx,
                    &first.actor,
                    &first.snapshot,
                    &first.full,
                    &first.view,
                    rows,
                    super::SearchEntries::Immediate,
                )
                .await
                .map_err(|e| e.to_string())?
                .map_err(|_| "a row needs its own transaction".to_owned())?;
            for (i, record) in members.into_iter().zip(written) {
                records[i] = Some(record);
            }
        }
        tx.commit().await.map_err(|e| e.to_string())?;
        records
            .into_iter()
            .map(|r| r.ok_or_else(|| "a create without a record".to_owned()))
            .collect()
    }
}
