//! The record engine: create, read, update, soft delete, restore, purge, bulk changes, state
//! transitions, merges (with undo), lists and grouped counts for every object described by
//! metadata. Each change runs in one transaction together with its audit entry, its hooks and
//! any jobs they queue.

mod audit;
mod batch;
mod codec;
mod group_commit;
mod list;
mod merge;
pub mod pool;
pub mod scope;
mod search;
mod stats;
mod system;
mod totals;
mod write;

use std::sync::Arc;

use guanxi_core::{Actor, ObjectDef};

pub use audit::{AuditEntry, AuditQuery, StateHistoryEntry};
pub use codec::Record;
pub use list::{DEFAULT_TOTAL_CAP, ListQuery, Page, TotalMode};
pub use merge::{MAX_MERGE_SOURCES, MergeEntry, MergeOutcome, MergeRequest, MergeSource, UndoConflict, UndoRefusal};
pub use search::SearchEntries;
pub use stats::{GroupCount, Interval, MAX_GROUPS, groupable};
pub use write::PreparedBatch;

use crate::catalog::Catalog;
use crate::db::Db;
use crate::error::StoreResult;
use crate::hooks::HookRegistry;

/// Largest number of ids one bulk request may name.
pub const MAX_BULK: usize = 1000;

/// The engine shared by every request.
#[derive(Debug, Clone)]
pub struct Engine {
    db: Db,
    catalog: Arc<Catalog>,
    hooks: HookRegistry,
    remembered: totals::RememberedAnswers,
    /// How common each quick-search term is, to walk the rarest first.
    term_rarity: search::TermRarity,
    /// Set during a bulk load: multi-row creates leave the search index to one sorted rebuild
    /// at the end (`Engine::defer_search_index`).
    search_deferred: Arc<std::sync::atomic::AtomicBool>,
    /// Single creates wait here for the writer task that commits them in groups.
    creates: Arc<group_commit::CreateQueue>,
    /// The thread the create writer task runs on (`group_commit`).
    writer_thread: Arc<group_commit::WriterThread>,
}

impl Engine {
    pub fn new(db: Db, catalog: Arc<Catalog>, hooks: HookRegistry) -> Self {
        Engine {
            db,
            catalog,
            hooks,
            remembered: totals::RememberedAnswers::default(),
            term_rarity: search::TermRarity::default(),
            search_deferred: Arc::default(),
            creates: Arc::default(),
            writer_thread: Arc::default(),
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The current definition of an object, custom fields included.
    pub fn object(&self, key: &str) -> StoreResult<Arc<ObjectDef>> {
        Ok(self.catalog.snapshot().object(key)?)
    }

    /// The object as `actor` sees it (hidden fields removed, read-only ones locked). Parse
    /// filters and sorts against this view.
    pub fn object_for(&self, actor: &Actor, key: &str) -> StoreResult<Arc<ObjectDef>> {
        Ok(scope::view_of(&self.object(key)?, actor))
    }
}
