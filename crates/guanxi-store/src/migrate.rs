//! Schema migrations, embedded in the binary. Each backend has its own folder with the same file
//! names (`migrations/sqlite/0001_platform.sql` ↔ `migrations/postgres/0001_platform.sql`); a
//! test fails when the folders differ. Applied migrations are recorded with a checksum so an
//! edited, already-applied migration is refused rather than silently skipped.

use sqlx::Row;

use crate::db::{Backend, Db};
use crate::sql::Sql;

/// One migration: its name and the SQL for each backend.
pub struct Migration {
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

macro_rules! migration {
    ($name:literal) => {
        Migration {
            name: $name,
            sqlite: include_str!(concat!("../migrations/sqlite/", $name, ".sql")),
            postgres: include_str!(concat!("../migrations/postgres/", $name, ".sql")),
        }
    };
}

/// Every migration, in order. Add new ones at the end; never edit an applied one.
pub const MIGRATIONS: &[Migration] = &[
    migration!("0001_platform"),
    migration!("0002_organisation_and_customers"),
    migration!("0003_identity"),
    migration!("0004_search"),
    migration!("0005_transfer"),
    migration!("0006_leads_and_activities"),
    migration!("0007_regions_value_and_pool"),
    migration!("0008_customer_duplicates_and_merges"),
    migration!("0009_saved_views_and_files"),
    migration!("0011_scoped_list_indexes"),
    migration!("0012_search_terms_without_rowid"),
    migration!("0014_customer_filter_index"),
    migration!("0015_customer_groups"),
    migration!("0016_customer_filter_index_value_desc"),
    migration!("0017_customer_search_walk_index"),
    migration!("0018_search_docs"),
    migration!("0019_search_pending"),
];

/// A stable checksum of a migration text (FNV-1a, so it never changes between Rust versions).
fn checksum(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Applies every pending migration, each in its own transaction. Returns the names applied.
pub async fn run(db: &Db) -> anyhow::Result<Vec<&'static str>> {
    // One connection throughout: PostgreSQL's advisory lock belongs to the session that took it.
    let mut conn = db.writer().acquire().await?;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)",
    )
    .execute(&mut *conn)
    .await?;
    if db.backend() == Backend::Postgres {
        // Several app servers may start together: one migrates, the others wait here.
        sqlx::raw_sql("SELECT pg_advisory_lock(7120501)")
            .execute(&mut *conn)
            .await?;
    }
    let result = apply_pending(db.backend(), &mut conn).await;
    if db.backend() == Backend::Postgres {
        sqlx::raw_sql("SELECT pg_advisory_unlock(7120501)")
            .execute(&mut *conn)
            .await?;
    }
    result
}

async fn apply_pending(backend: Backend, conn: &mut sqlx::AnyConnection) -> anyhow::Result<Vec<&'static str>> {
    use sqlx::Connection;
    let rows = sqlx::query("SELECT name, checksum FROM schema_migrations")
        .fetch_all(&mut *conn)
        .await?;
    let mut applied = std::collections::HashMap::new();
    for row in rows {
        applied.insert(row.try_get::<String, _>("name")?, row.try_get::<String, _>("checksum")?);
    }
    let mut done = Vec::new();
    for m in MIGRATIONS {
        let text = match backend {
            Backend::Sqlite => m.sqlite,
            Backend::Postgres => m.postgres,
        };
        let sum = checksum(text);
        if let Some(existing) = applied.get(m.name) {
            anyhow::ensure!(
                *existing == sum,
                "migration {} was changed after it was applied (checksum {existing} → {sum})",
                m.name
            );
            continue;
        }
        let mut tx = conn.begin().await?;
        sqlx::raw_sql(text).execute(&mut *tx).await?;
        let mut insert = Sql::of(
            backend,
            "INSERT INTO schema_migrations (name, checksum, applied_at) VALUES (",
        );
        insert
            .bind(m.name)
            .push(", ")
            .bind(sum)
            .push(", ")
            .bind(guanxi_core::time_fmt::now_utc())
            .push(")");
        insert.query().execute(&mut *tx).await?;
        tx.commit().await?;
        tracing::info!(migration = m.name, "applied migration");
        done.push(m.name);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &str) -> Vec<String> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dir);
        let mut names: Vec<String> = std::fs::read_dir(path)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    #[test]
    fn both_backends_have_the_same_migrations_and_all_are_embedded() {
        let sqlite = names("sqlite");
        let postgres = names("postgres");
        assert!(!sqlite.is_empty());
        assert_eq!(sqlite, postgres, "migration folders differ");
        let embedded: Vec<String> = MIGRATIONS.iter().map(|m| format!("{}.sql", m.name)).collect();
        assert_eq!(sqlite, embedded, "a migration file is not listed in MIGRATIONS");
    }

    #[test]
    fn checksums_are_stable() {
        assert_eq!(checksum(""), "cbf29ce484222325");
        assert_ne!(checksum("a"), checksum("b"));
    }
}
