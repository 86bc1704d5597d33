//! Configuration: built-in defaults, then `guanxi.toml` (or the file given with `--config`),
//! then `GUANXI_*` environment variables, and `DATABASE_URL` for the database. Validated once
//! at start-up; handlers never read the environment.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use guanxi_store::Durability;
use serde::{Deserialize, Serialize};

/// The top-level keys of [`Config`], for reading `GUANXI_*` variables.
const CONFIG_KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "database_url",
    "db_max_connections",
    "durability",
    "max_body_bytes",
    "max_upload_bytes",
    "log_format",
    "worker_poll_ms",
    "job_retry_base_ms",
    "run_worker",
    "auth",
    "mail",
    "log_retention_days",
];

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
    /// Largest accepted body of an attachment upload (`POST /api/v1/files`), whatever a field
    /// allows; larger uploads get 413 `payload_too_large`. Each field's own limit is smaller.
    pub max_upload_bytes: usize,
    /// `text` or `json` log lines.
    pub log_format: String,
    /// How often the job worker looks for due jobs, in milliseconds.
    pub worker_poll_ms: u64,
    /// Base delay of job retries in milliseconds (doubles with each attempt).
    pub job_retry_base_ms: u64,
    /// Whether this server runs the job worker (turn off on API-only nodes).
    pub run_worker: bool,
    /// Sign-in, sessions and password rules (`[auth]`, `GUANXI_AUTH__…`).
    #[serde(default)]
    pub auth: AuthConfig,
    /// Outgoing mail (`[mail]`, `GUANXI_MAIL__…`).
    #[serde(default)]
    pub mail: MailConfig,
    /// Days that login and operation logs are kept; 0 keeps them for ever.
    pub log_retention_days: i64,
}

/// Sign-in and session settings (seed 000 §2.2–2.4; every number configurable).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Sessions end after this many idle minutes.
    pub session_idle_minutes: i64,
    /// Sessions end this many hours after sign-in, however active.
    pub session_absolute_hours: i64,
    /// "Remember me" keeps a user signed in on a device for this many days.
    pub remember_days: i64,
    /// Failed sign-ins (per name, within the window) after which a captcha is required.
    pub captcha_after_failures: i64,
    /// Failed sign-ins within the window after which the account locks.
    pub lock_after_failures: i64,
    pub failure_window_minutes: i64,
    pub lock_minutes: i64,
    /// Whether people may register themselves (then verify their email and wait for approval).
    pub registration_enabled: bool,
    pub reserved_usernames: Vec<String>,
    pub password: guanxi_core::password::PasswordPolicy,
    /// `auto` (Secure when the request came over HTTPS), `always` or `never`.
    pub secure_cookies: String,
    /// The address users reach Guanxi at, for links in emails.
    pub public_url: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            session_idle_minutes: 30,
            session_absolute_hours: 12,
            remember_days: 14,
            captcha_after_failures: 3,
            lock_after_failures: 5,
            failure_window_minutes: 15,
            lock_minutes: 15,
            registration_enabled: true,
            reserved_usernames: guanxi_core::password::DEFAULT_RESERVED_USERNAMES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            password: guanxi_core::password::PasswordPolicy::default(),
            secure_cookies: "auto".into(),
            public_url: "http://127.0.0.1:8080".into(),
        }
    }
}

/// Outgoing mail. With `mode = "log"` (the default) mails are not sent; the log records the
/// recipient and subject only (never the body, which may hold a one-time link).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    /// `log` or `smtp`.
    pub mode: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    /// `none`, `starttls` or `tls`.
    pub smtp_tls: String,
    pub smtp_username: String,
    pub smtp_password: String,
    pub from: String,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            mode: "log".into(),
            smtp_host: "127.0.0.1".into(),
            smtp_port: 25,
            smtp_tls: "none".into(),
            smtp_username: String::new(),
            smtp_password: String::new(),
            from: "Guanxi 关系 <noreply@localhost>".into(),
        }
    }
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
            max_upload_bytes: 64 * 1024 * 1024,
            log_format: "text".into(),
            worker_poll_ms: 1000,
            job_retry_base_ms: 1000,
            run_worker: true,
            auth: AuthConfig::default(),
            mail: MailConfig::default(),
            log_retention_days: 180,
        }
    }
}

impl Config {
    /// Loads defaults → TOML file (if present) → environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let file = file.map_or_else(|| PathBuf::from("guanxi.toml"), Path::to_path_buf);
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(&file))
            .merge(
                Env::prefixed("GUANXI_")
                    .split("__")
                    // Other GUANXI_* variables (GUANXI_ADMIN_PASSWORD for create-admin, scripts'
                    // own) are not server settings; only known keys are read, and a misspelt
                    // key in guanxi.toml is still refused.
                    .filter(|k| {
                        let top = k.as_str().split('.').next().unwrap_or("").to_ascii_lowercase();
                        CONFIG_KEYS.contains(&top.as_str())
                    }),
            )
            .merge(Env::raw().only(&["DATABASE_URL"]))
            .extract()
            .map_err(|e| anyhow::anyhow!("configuration error: {e}"))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.max_body_bytes >= 1024, "max_body_bytes must be at least 1024");
        anyhow::ensure!(self.max_upload_bytes >= 1024, "max_upload_bytes must be at least 1024");
        anyhow::ensure!(
            matches!(self.log_format.as_str(), "text" | "json"),
            "log_format must be text or json"
        );
        anyhow::ensure!(
            matches!(self.mail.mode.as_str(), "log" | "smtp"),
            "mail.mode must be log or smtp"
        );
        anyhow::ensure!(
            matches!(self.mail.smtp_tls.as_str(), "none" | "starttls" | "tls"),
            "mail.smtp_tls must be none, starttls or tls"
        );
        anyhow::ensure!(
            matches!(self.auth.secure_cookies.as_str(), "auto" | "always" | "never"),
            "auth.secure_cookies must be auto, always or never"
        );
        anyhow::ensure!(
            self.auth.session_idle_minutes > 0 && self.auth.session_absolute_hours > 0,
            "session timeouts must be positive"
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
            None => format!("sqlite://{}?mode=rwc", self.data_dir.join("guanxi.db").display()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err, reason = "figment's Jail API fixes the error type")]
mod tests {
    use super::*;

    #[test]
    fn without_configuration_the_database_is_sqlite_in_the_data_dir() {
        let c = Config::default();
        assert_eq!(c.database_url(), "sqlite://data/guanxi.db?mode=rwc");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn every_setting_is_readable_from_the_environment() {
        let json = serde_json::to_value(Config::default()).unwrap_or_default();
        let mut keys: Vec<&str> = json
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        keys.sort_unstable();
        let mut known = CONFIG_KEYS.to_vec();
        known.sort_unstable();
        assert_eq!(keys, known, "CONFIG_KEYS must list every top-level setting");
    }

    #[test]
    fn the_file_then_the_environment_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("guanxi.toml", "listen = \"127.0.0.1:9000\"\nmax_body_bytes = 4096\n")?;
            jail.set_env("GUANXI_MAX_BODY_BYTES", "8192");
            jail.set_env("GUANXI_AUTH__LOCK_MINUTES", "30");
            jail.set_env("GUANXI_ADMIN_PASSWORD", "not a setting");
            jail.set_env("DATABASE_URL", "postgres://u@localhost/guanxi");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.listen.port(), 9000);
            assert_eq!(c.max_body_bytes, 8192);
            assert_eq!(c.auth.lock_minutes, 30, "nested keys use a double underscore");
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
