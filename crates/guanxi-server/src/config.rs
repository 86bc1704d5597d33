//! Configuration: built-in defaults, then `guanxi.toml` (or the file given with `--config`),
//! then `GUANXI_*` environment variables, and `DATABASE_URL` for the database. Validated once
//! at start-up; handlers never read the environment.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use guanxi_store::Durability;
use serde::{Deserialize, Serialize};

/// Everything the server can be told.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (`GUANXI_LISTEN`). Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Where the embedded database and files live (`GUANXI_DATA_DIR`).
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…` (`DATABASE_URL`); empty means SQLite in `data_dir`.
    #[serde(default)]
    pub database_url: Option<String>,
    /// Connections in the read pool (PostgreSQL: in the one pool).
    pub db_max_connections: u32,
    /// SQLite durability: `full` (survives power loss) or `normal` (survives a crash).
    pub durability: Durability,
    /// Largest accepted request body in bytes; larger bodies get 413.
    pub max_body_bytes: usize,
    /// `text` or `json` log lines.
    pub log_format: String,
    /// How often the job worker looks for due jobs, in milliseconds.
    pub worker_poll_ms: u64,
    /// Base delay of job retries in milliseconds (doubles with each attempt).
    pub job_retry_base_ms: u64,
    /// Whether this server runs the job worker (turn off on API-only nodes).
    pub run_worker: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            database_url: None,
            db_max_connections: 8,
            durability: Durability::Full,
            max_body_bytes: 2 * 1024 * 1024,
            log_format: "text".into(),
            worker_poll_ms: 1000,
            job_retry_base_ms: 1000,
            run_worker: true,
        }
    }
}

impl Config {
    /// Loads defaults → TOML file (if present) → environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let file = file.map_or_else(|| PathBuf::from("guanxi.toml"), Path::to_path_buf);
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(&file))
            .merge(Env::prefixed("GUANXI_").ignore(&["DATABASE_URL"]))
            .merge(Env::raw().only(&["DATABASE_URL"]))
            .extract()
            .map_err(|e| anyhow::anyhow!("configuration error: {e}"))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.max_body_bytes >= 1024,
            "max_body_bytes must be at least 1024"
        );
        anyhow::ensure!(
            matches!(self.log_format.as_str(), "text" | "json"),
            "log_format must be text or json"
        );
        if let Some(url) = self.database_url.as_deref().filter(|u| !u.is_empty()) {
            guanxi_store::db::backend_of(url).map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        Ok(())
    }

    /// The database URL, defaulting to `data_dir/guanxi.db`.
    pub fn database_url(&self) -> String {
        match self.database_url.as_deref().filter(|u| !u.is_empty()) {
            Some(url) => url.to_owned(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("guanxi.db").display()
            ),
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::result_large_err,
    reason = "figment's Jail API fixes the error type"
)]
mod tests {
    use super::*;

    #[test]
    fn without_configuration_the_database_is_sqlite_in_the_data_dir() {
        let c = Config::default();
        assert_eq!(c.database_url(), "sqlite://data/guanxi.db?mode=rwc");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn the_file_then_the_environment_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "guanxi.toml",
                "listen = \"127.0.0.1:9000\"\nmax_body_bytes = 4096\n",
            )?;
            jail.set_env("GUANXI_MAX_BODY_BYTES", "8192");
            jail.set_env("DATABASE_URL", "postgres://u@localhost/guanxi");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.listen.port(), 9000);
            assert_eq!(c.max_body_bytes, 8192);
            assert_eq!(c.database_url(), "postgres://u@localhost/guanxi");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("guanxi.toml", "lisen = \"127.0.0.1:9000\"\n")?;
            assert!(Config::load(None).is_err());
            jail.create_file("guanxi.toml", "database_url = \"mysql://x\"\n")?;
            assert!(Config::load(None).is_err());
            Ok(())
        });
    }
}
