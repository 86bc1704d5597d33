//! Test kit: starts the real server in-process on port 0 with a fresh database per test —
//! SQLite in a temporary directory by default, or a new PostgreSQL database when
//! `TEST_DATABASE_URL=postgres://…` is set (dropped again when the test ends) — and gives tests
//! an HTTP client for it.

use std::sync::Once;

use guanxi_server::state::AppState;
use guanxi_server::{AppOptions, Application, Config};
use reqwest::{Method, StatusCode};
use serde_json::Value as Json;
use sqlx::Connection;
use tempfile::TempDir;

/// A database that exists for one test.
pub struct TestDatabase {
    pub url: String,
    pub dir: TempDir,
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    /// Creates an empty database on the backend named by `TEST_DATABASE_URL`.
    pub async fn create() -> anyhow::Result<TestDatabase> {
        let dir = tempfile::tempdir()?;
        match std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|u| u.starts_with("postgres"))
        {
            None => Ok(TestDatabase {
                url: format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("guanxi.db").display()
                ),
                dir,
                postgres: None,
            }),
            Some(admin_url) => {
                sqlx::any::install_default_drivers();
                let name = format!("guanxi_test_{}", uuid::Uuid::now_v7().simple());
                let mut conn = sqlx::AnyConnection::connect(&admin_url).await?;
                sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await?;
                conn.close().await?;
                let base = admin_url
                    .rsplit_once('/')
                    .map_or(admin_url.as_str(), |(b, _)| b);
                Ok(TestDatabase {
                    url: format!("{base}/{name}"),
                    dir,
                    postgres: Some((admin_url.clone(), name)),
                })
            }
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs inside the test's runtime; a thread with its own runtime can block safely.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut conn) = sqlx::AnyConnection::connect(&admin_url).await {
                    let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

/// A running server and a client for it.
pub struct TestApp {
    pub base_url: String,
    pub client: reqwest::Client,
    pub state: AppState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    pub db: TestDatabase,
}

fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            guanxi_server::telemetry::init_logging("text");
        }
    });
}

/// A configuration for tests: port 0, a fast job worker.
pub fn test_config(db: &TestDatabase) -> Config {
    Config {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: db.dir.path().to_path_buf(),
        database_url: Some(db.url.clone()),
        worker_poll_ms: 20,
        ..Config::default()
    }
}

/// Starts a server with the built-in modules only.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default(), |_| {}).await
}

/// Starts a server with extra hooks or job handlers, and a chance to adjust its configuration.
pub async fn spawn_app_with(options: AppOptions, configure: impl FnOnce(&mut Config)) -> TestApp {
    init_logging();
    let db = match TestDatabase::create().await {
        Ok(db) => db,
        Err(e) => panic!("cannot create a test database: {e:#}"),
    };
    let mut config = test_config(&db);
    configure(&mut config);
    let app = match Application::build_with(config, options).await {
        Ok(app) => app,
        Err(e) => panic!("cannot start the server: {e:#}"),
    };
    let addr = match app.local_addr() {
        Ok(a) => a,
        Err(e) => panic!("no local address: {e}"),
    };
    let state = app.state();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let _ = app
            .run_until_stopped(async move {
                let _ = rx.await;
            })
            .await;
    });
    TestApp {
        base_url: format!("http://{addr}"),
        client: reqwest::Client::new(),
        state,
        shutdown: Some(tx),
        server: Some(server),
        db,
    }
}

/// A response read in full: status and JSON body (`Null` when the body is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Json,
    pub text: String,
}

impl Reply {
    /// The `error.code` of an error envelope.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// The `data` of a success envelope.
    pub fn data(&self) -> &Json {
        &self.body["data"]
    }
}

impl TestApp {
    /// Sends a request with an optional JSON body and reads the reply.
    pub async fn send(&self, method: Method, path: &str, body: Option<&Json>) -> Reply {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base_url));
        if let Some(b) = body {
            req = req.json(b);
        }
        self.read(req).await
    }

    /// Sends a prepared request (for raw bodies and custom headers).
    pub async fn read(&self, req: reqwest::RequestBuilder) -> Reply {
        let res = match req.send().await {
            Ok(r) => r,
            Err(e) => panic!("request failed: {e}"),
        };
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Json::Null);
        Reply { status, body, text }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Json) -> Reply {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Json) -> Reply {
        self.send(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None).await
    }

    /// Creates a record and returns it, failing the test unless the server answers 201.
    pub async fn create(&self, object: &str, body: Json) -> Json {
        let reply = self.post(&format!("/api/v1/records/{object}"), &body).await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "creating {object}: {}",
            reply.text
        );
        reply.body["data"].clone()
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) {
        self.shutdown_now().await;
    }

    async fn shutdown_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.server.take() {
            let _ = handle.await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
