//! API tests: the real server on port 0 with a fresh database per test. Run on SQLite by
//! default and on PostgreSQL with `TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres`.
//! One test binary keeps link time down.

#![allow(
    clippy::expect_used,
    reason = "a test helper that cannot do its job should fail the test loudly"
)]

mod access;
mod cli;
mod customer_pool;
mod customers;
mod duplicates;
mod engine;
mod errors;
mod files;
mod helpers;
mod identity;
mod lists;
mod operations;
mod permissions;
mod records;
mod regions;
mod stats;
mod transfer;
mod views;
