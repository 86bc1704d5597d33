//! Guanxi's storage layer: the record engine on SQL. One code path serves SQLite (embedded
//! default) and PostgreSQL (scale-out) through a small query builder; migrations live in
//! parallel per-backend folders; the audit trail, numbering, state history and the job outbox
//! are written in the same transaction as the change that causes them.

pub mod backup;
pub mod catalog;
pub mod db;
mod direct_read;
pub mod duplicates;
pub mod error;
pub mod files;
pub mod hooks;
pub mod identity;
pub mod jobs;
pub mod migrate;
pub mod numbering;
pub mod read_ahead;
pub mod records;
pub mod regions;
pub mod sql;

pub use catalog::Catalog;
pub use db::{Backend, Db, DbOptions, Durability};
pub use error::{StoreError, StoreResult};
pub use records::{Engine, ListQuery, Page, PreparedBatch, Record, TotalMode};
