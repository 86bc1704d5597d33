//! Secondary indexes set aside during a bulk load (decision 0015). A dataset generation writes
//! millions of rows into a few tables; every non-unique index on them is a B-tree that each row
//! updates at a random place (a name, a phone, an owner), which is most of SQLite's work per
//! row. Dropping those indexes before the load and creating them after — one sort per index —
//! writes the same indexes for a fraction of the cost. Unique indexes (and primary keys) stay:
//! they enforce rules during the load, and the load's own lookups use them.
//!
//! What was set aside is recorded in the `settings` table in the same transaction as the drops,
//! so an interrupted load does not lose indexes: [`restore_deferred_indexes`] puts them back,
//! and the server calls it when it opens the database.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sqlx::Row;

use crate::db::{Backend, Db};
use crate::error::StoreResult;
use crate::identity::get_setting;
use crate::sql::Sql;
use guanxi_core::time_fmt::now_utc;

/// The setting that lists the indexes a bulk load has set aside.
const DEFERRED_SETTING: &str = "bulk_load.deferred_indexes";

/// One index set aside: its name and the statement that creates it again.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct DeferredIndex {
    name: String,
    sql: String,
}

/// The non-unique indexes of `tables`, as their names and creating statements.
async fn secondary_indexes(db: &Db, tables: &[&str]) -> StoreResult<Vec<DeferredIndex>> {
    let mut sql = match db.backend() {
        // `sql` is NULL for the indexes SQLite makes itself (primary keys, UNIQUE columns).
        Backend::Sqlite => Sql::of(
            db.backend(),
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL \
             AND upper(sql) NOT LIKE 'CREATE UNIQUE%' AND tbl_name IN (",
        ),
        Backend::Postgres => Sql::of(
            db.backend(),
            "SELECT indexname::text AS name, indexdef AS sql FROM pg_indexes \
             WHERE schemaname = current_schema() AND indexdef NOT LIKE 'CREATE UNIQUE%' AND tablename IN (",
        ),
    };
    sql.bind_list(tables.iter().map(|t| crate::sql::Bind::Text((*t).to_owned())))
        .push(") ORDER BY name");
    let rows = sql.query().fetch_all(db.writer()).await?;
    rows.iter()
        .map(|r| {
            Ok(DeferredIndex {
                name: r.try_get("name")?,
                sql: r.try_get("sql")?,
            })
        })
        .collect()
}

/// What an earlier bulk load set aside and has not put back.
async fn deferred(db: &Db) -> StoreResult<Vec<DeferredIndex>> {
    Ok(get_setting(db, DEFERRED_SETTING)
        .await?
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default())
}

/// Drops the non-unique indexes of `tables` for a bulk load, recording them first (in the same
/// transaction) so that [`restore_deferred_indexes`] can create them again even after a crash.
/// Returns how many were dropped.
pub async fn defer_indexes(db: &Db, tables: &[&str]) -> StoreResult<usize> {
    let mut set_aside = deferred(db).await?;
    let dropping = secondary_indexes(db, tables).await?;
    if dropping.is_empty() {
        return Ok(0);
    }
    set_aside.extend(dropping.iter().cloned());
    let mut tx = db.writer().begin().await?;
    let mut del = Sql::of(db.backend(), "DELETE FROM settings WHERE key = ");
    del.bind(DEFERRED_SETTING);
    del.query().execute(&mut *tx).await?;
    let mut ins = Sql::of(db.backend(), "INSERT INTO settings (key, value, updated_at) VALUES (");
    ins.bind(DEFERRED_SETTING)
        .push(", ")
        .bind(serde_json::to_value(&set_aside).unwrap_or(Json::Null).to_string())
        .push(", ")
        .bind(now_utc())
        .push(")");
    ins.query().execute(&mut *tx).await?;
    for index in &dropping {
        let mut drop = Sql::of(db.backend(), "DROP INDEX ");
        drop.ident(&index.name);
        drop.query().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(dropping.len())
}

/// Creates again every index a bulk load set aside (each one sort of its table; SQLite with two
/// sorter threads and temporary files), then forgets the list. Safe to repeat: an index that
/// already exists is skipped. Returns how many were created.
pub async fn restore_deferred_indexes(db: &Db) -> StoreResult<usize> {
    let set_aside = deferred(db).await?;
    if set_aside.is_empty() {
        return Ok(0);
    }
    let mut conn = db.writer().acquire().await?;
    if db.backend() == Backend::Sqlite {
        // A sort of millions of keys: on disk, not in the heap, with a second thread.
        sqlx::query("PRAGMA temp_store=FILE").execute(&mut *conn).await?;
        sqlx::query("PRAGMA threads=2").execute(&mut *conn).await?;
    }
    let mut created = 0;
    let mut result: StoreResult<()> = Ok(());
    for index in &set_aside {
        let mut exists = match db.backend() {
            Backend::Sqlite => Sql::of(
                db.backend(),
                "SELECT 1 AS one FROM sqlite_master WHERE type = 'index' AND name = ",
            ),
            Backend::Postgres => Sql::of(
                db.backend(),
                "SELECT 1 AS one FROM pg_indexes WHERE schemaname = current_schema() AND indexname = ",
            ),
        };
        exists.bind(index.name.as_str());
        match exists.query().fetch_optional(&mut *conn).await {
            Ok(Some(_)) => continue,
            Ok(None) => {}
            Err(e) => {
                result = Err(e.into());
                break;
            }
        }
        tracing::info!(index = %index.name, "creating an index set aside by a bulk load");
        if let Err(e) = sqlx::query(&index.sql).execute(&mut *conn).await {
            result = Err(e.into());
            break;
        }
        created += 1;
    }
    if db.backend() == Backend::Sqlite {
        // The writer's normal settings (db.rs), whatever happened above.
        for statement in ["PRAGMA threads=0", "PRAGMA temp_store=MEMORY"] {
            if let Err(e) = sqlx::query(statement).execute(&mut *conn).await
                && result.is_ok()
            {
                result = Err(e.into());
            }
        }
    }
    drop(conn);
    result?;
    let mut del = Sql::of(db.backend(), "DELETE FROM settings WHERE key = ");
    del.bind(DEFERRED_SETTING);
    del.query().execute(db.writer()).await?;
    Ok(created)
}
