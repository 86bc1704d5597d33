//! Test kit: starts the real server in-process on port 0 with a fresh database per test —
//! SQLite in a temporary directory by default, or a new PostgreSQL database when
//! `TEST_DATABASE_URL=postgres://…` is set (dropped again when the test ends) — creates an
//! administrator, and gives tests HTTP clients signed in as the administrator or as users of
//! any role. It also runs a real SMTP listener on loopback that collects the mails the server
//! sends.

pub mod smtp;

use std::ops::Deref;
use std::sync::{Arc, Once};

use guanxi_server::state::AppState;
use guanxi_server::{AppOptions, Application, Config};
use reqwest::cookie::Jar;
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
                url: format!("sqlite://{}?mode=rwc", dir.path().join("guanxi.db").display()),
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
                let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(b, _)| b);
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
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
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

/// The administrator every test server starts with.
pub const ADMIN_USERNAME: &str = "chief_admin";
pub const ADMIN_PASSWORD: &str = "Gx!Admin#2026x";
/// The password of users made with [`TestApp::user`].
pub const USER_PASSWORD: &str = "Ts!User#2026q";

/// An HTTP client bound to the test server, signed in or not.
#[derive(Clone)]
pub struct TestClient {
    pub base_url: String,
    pub client: reqwest::Client,
    /// The cookie jar (session, CSRF and remember-me cookies).
    pub jar: Arc<Jar>,
    pub csrf_token: Option<String>,
    /// The signed-in user's id, if any.
    pub user_id: Option<String>,
}

/// A running server and clients for it. Derefs to the administrator's client.
pub struct TestApp {
    pub admin: TestClient,
    pub base_url: String,
    pub state: AppState,
    pub mail: smtp::SmtpSink,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    pub db: TestDatabase,
}

impl Deref for TestApp {
    type Target = TestClient;

    fn deref(&self) -> &TestClient {
        &self.admin
    }
}

fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            guanxi_server::telemetry::init_logging("text");
        }
    });
}

/// A configuration for tests: port 0, a fast job worker, mail to the given SMTP sink.
pub fn test_config(db: &TestDatabase, smtp_port: u16) -> Config {
    let mut config = Config {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: db.dir.path().to_path_buf(),
        database_url: Some(db.url.clone()),
        worker_poll_ms: 20,
        ..Config::default()
    };
    config.mail.mode = "smtp".into();
    config.mail.smtp_host = "127.0.0.1".into();
    config.mail.smtp_port = smtp_port;
    config.mail.from = "Guanxi <noreply@guanxi.test>".into();
    config
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
    let mail = match smtp::SmtpSink::start().await {
        Ok(m) => m,
        Err(e) => panic!("cannot start the SMTP sink: {e:#}"),
    };
    let mut config = test_config(&db, mail.port());
    configure(&mut config);
    let app = match Application::build_with(config.clone(), options).await {
        Ok(app) => app,
        Err(e) => panic!("cannot start the server: {e:#}"),
    };
    let addr = match app.local_addr() {
        Ok(a) => a,
        Err(e) => panic!("no local address: {e}"),
    };
    let state = app.state();
    if let Err(e) = guanxi_server::modules::identity::create_user(
        &state.engine,
        &config,
        &guanxi_server::modules::identity::NewUser {
            username: ADMIN_USERNAME,
            display_name: "测试管理员",
            email: Some("chief@guanxi.test"),
            password: ADMIN_PASSWORD,
            roles: &["admin"],
            department_id: None,
            manager_id: None,
        },
    )
    .await
    {
        panic!("cannot create the administrator: {e:#}");
    }
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let _ = app
            .run_until_stopped(async move {
                let _ = rx.await;
            })
            .await;
    });
    let base_url = format!("http://{addr}");
    let admin = match sign_in(&base_url, ADMIN_USERNAME, ADMIN_PASSWORD).await {
        Ok(c) => c,
        Err(reply) => panic!("the administrator cannot sign in: {}", reply.text),
    };
    TestApp {
        admin,
        base_url,
        state,
        mail,
        shutdown: Some(tx),
        server: Some(server),
        db,
    }
}

/// A client without a session.
pub fn anonymous(base_url: &str) -> TestClient {
    let jar = Arc::new(Jar::default());
    TestClient {
        base_url: base_url.to_owned(),
        client: reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .build()
            .unwrap_or_default(),
        jar,
        csrf_token: None,
        user_id: None,
    }
}

/// Signs in with a password and returns a client that sends the session cookie and the CSRF
/// header, as the browser UI does. Fails with the server's reply when the sign-in does not
/// complete (wrong password, second factor needed, …).
pub async fn sign_in(base_url: &str, login: &str, password: &str) -> Result<TestClient, Reply> {
    let anon = anonymous(base_url);
    let reply = anon
        .post(
            "/api/v1/auth/login",
            &serde_json::json!({"login": login, "password": password}),
        )
        .await;
    if reply.status != StatusCode::OK || reply.data()["status"] != "ok" {
        return Err(reply);
    }
    Ok(anon.with_session(&reply))
}

/// A response read in full: status, headers and JSON body (`Null` when the body is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
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

impl TestClient {
    /// The same cookie jar with the CSRF header of a completed sign-in.
    pub fn with_session(&self, login_reply: &Reply) -> TestClient {
        let csrf = login_reply.data()["csrf_token"].as_str().unwrap_or_default().to_owned();
        let mut headers = reqwest::header::HeaderMap::new();
        if let Ok(v) = reqwest::header::HeaderValue::from_str(&csrf) {
            headers.insert("x-csrf-token", v);
        }
        TestClient {
            base_url: self.base_url.clone(),
            client: reqwest::Client::builder()
                .cookie_provider(self.jar.clone())
                .default_headers(headers)
                .build()
                .unwrap_or_default(),
            jar: self.jar.clone(),
            csrf_token: Some(csrf),
            user_id: login_reply.data()["me"]["user"]["id"].as_str().map(str::to_owned),
        }
    }

    /// The same session without the CSRF header (to prove it is required).
    pub fn without_csrf(&self) -> TestClient {
        TestClient {
            client: reqwest::Client::builder()
                .cookie_provider(self.jar.clone())
                .build()
                .unwrap_or_default(),
            csrf_token: None,
            ..self.clone()
        }
    }

    /// Sends a request with an optional JSON body and reads the reply.
    pub async fn send(&self, method: Method, path: &str, body: Option<&Json>) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base_url));
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
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Json::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
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
        assert_eq!(reply.status, StatusCode::CREATED, "creating {object}: {}", reply.text);
        reply.body["data"].clone()
    }
}

impl TestApp {
    /// A client without a session.
    pub fn anonymous(&self) -> TestClient {
        anonymous(&self.base_url)
    }

    /// Creates an active user with the given role codes (password [`USER_PASSWORD`]), in a
    /// department and under a manager if given, and returns its id and a signed-in client.
    pub async fn user(
        &self,
        username: &str,
        roles: &[&str],
        department_id: Option<&str>,
        manager_id: Option<&str>,
    ) -> (String, TestClient) {
        let config = self.state.config.clone();
        let id = match guanxi_server::modules::identity::create_user(
            &self.state.engine,
            &config,
            &guanxi_server::modules::identity::NewUser {
                username,
                display_name: username,
                email: Some(&format!("{username}@guanxi.test")),
                password: USER_PASSWORD,
                roles,
                department_id,
                manager_id,
            },
        )
        .await
        {
            Ok(id) => id,
            Err(e) => panic!("cannot create user {username}: {e:#}"),
        };
        match sign_in(&self.base_url, username, USER_PASSWORD).await {
            Ok(client) => (id, client),
            Err(reply) => panic!("{username} cannot sign in: {}", reply.text),
        }
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
