//! Start-up and the router. [`Application::build`] opens the database (taking the SQLite
//! in-use lock), migrates, loads metadata, binds the listener (port 0 picks a free port, which
//! the test kit uses) and prepares the job worker; [`Application::run_until_stopped`] serves
//! until the shutdown future completes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router, middleware};
use guanxi_core::objects::builtin_objects;
use guanxi_store::backup::{InUseLock, lock_database};
use guanxi_store::hooks::HookRegistry;
use guanxi_store::jobs::{JobHandler, Worker};
use guanxi_store::regions::RegionCache;
use guanxi_store::{Catalog, Db, DbOptions, Engine, migrate};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::error::{ApiError, localize_errors};
use crate::state::{AppInner, AppState};
use crate::{modules, openapi, routes, telemetry};

/// Extra wiring, for tests and embedders: hooks and job handlers beyond the built-in modules.
#[derive(Default)]
pub struct AppOptions {
    pub hooks: HookRegistry,
    pub jobs: Vec<(String, Arc<dyn JobHandler>)>,
}

/// A server ready to run.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    worker: Worker,
    _lock: Option<InUseLock>,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        Application::build_with(config, AppOptions::default()).await
    }

    pub async fn build_with(config: Config, options: AppOptions) -> anyhow::Result<Application> {
        let url = config.database_url();
        if let Some(path) = guanxi_store::db::sqlite_path(&url)
            && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir)?;
        }
        let lock = lock_database(&url)?;
        let db = Db::connect(&DbOptions {
            url,
            max_connections: config.db_max_connections,
            durability: config.durability,
        })
        .await?;
        migrate::run(&db).await?;
        guanxi_store::regions::ensure_loaded(&db).await?;
        let regions = Arc::new(RegionCache::new(db.clone()));
        let identity = Arc::new(modules::identity::IdentityState::default());
        let engine_cell = modules::customers::EngineCell::default();
        let mut hooks = modules::hooks(&config, &identity, &engine_cell, &regions);
        hooks.merge(options.hooks);
        let catalog = Arc::new(Catalog::load(&db, builtin_objects()).await?);
        let engine = Engine::new(db.clone(), catalog, hooks);
        let _ = engine_cell.set(engine.clone());
        let mut worker = Worker::new(db.clone()).retry_base(Duration::from_millis(config.job_retry_base_ms));
        worker.register(
            crate::mail::SEND_EMAIL,
            crate::mail::MailSender::new(config.mail.clone()),
        );
        modules::transfer::register_jobs(&mut worker, &engine, &config);
        modules::pool::register_jobs(&mut worker, &engine);
        modules::classification::register_jobs(&mut worker, &engine);
        for (kind, handler) in options.jobs {
            worker.register(&kind, handler);
        }
        let listener = TcpListener::bind(config.listen).await?;
        let state = AppState(Arc::new(AppInner {
            config,
            db,
            engine,
            metrics: telemetry::metrics_handle(),
            identity,
            regions,
        }));
        Ok(Application {
            listener,
            state,
            worker,
            _lock: lock,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serves until `shutdown` completes, then stops the worker and closes the database.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let state = self.state.clone();
        let mut tasks = Vec::new();
        if state.config.run_worker {
            let poll = Duration::from_millis(state.config.worker_poll_ms.max(10));
            tasks.push(tokio::spawn(self.worker.clone().run(poll, stop_rx.clone())));
            // Servers that run jobs also queue the daily ones (pool reclaim, classification).
            tasks.push(tokio::spawn(modules::pool::run_scheduler(
                state.clone(),
                stop_rx.clone(),
            )));
        }
        tasks.push(tokio::spawn(refresh_metadata(state.clone(), stop_rx)));
        // An index built by older term rules (or none, after an upgrade) is rebuilt in the
        // background; searches work meanwhile, on whatever is indexed so far.
        let engine = state.engine.clone();
        tokio::spawn(async move {
            // Entries an import staged and did not merge (the server stopped mid-import).
            match engine.merge_staged_search().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(records = n, "staged search entries merged"),
                Err(e) => tracing::error!(error = ?e, "merging staged search entries failed"),
            }
            match engine.search_index_current().await {
                Ok(true) => {}
                Ok(false) => match engine.rebuild_search_index().await {
                    Ok(n) => tracing::info!(records = n, "search index rebuilt"),
                    Err(e) => tracing::error!(error = ?e, "search index rebuild failed"),
                },
                Err(e) => tracing::error!(error = ?e, "cannot read the search index version"),
            }
            // The same for the customer duplicate keys (their rules are Rust, so a migration
            // cannot fill them for customers written before they existed).
            match engine.duplicate_keys_current().await {
                Ok(true) => {}
                Ok(false) => match engine.rebuild_duplicate_keys().await {
                    Ok(n) => tracing::info!(records = n, "customer duplicate keys rebuilt"),
                    Err(e) => tracing::error!(error = ?e, "customer duplicate keys rebuild failed"),
                },
                Err(e) => tracing::error!(error = ?e, "cannot read the duplicate keys version"),
            }
        });
        let app = router(state.clone());
        axum::serve(self.listener, app).with_graceful_shutdown(shutdown).await?;
        let _ = stop_tx.send(true);
        for t in tasks {
            let _ = t.await;
        }
        state.db.close().await;
        Ok(())
    }
}

/// Opens the database, migrates it and builds the engine with the built-in modules' hooks —
/// for commands that work on data without serving (create-admin, demo-data).
pub async fn open_engine(config: &Config) -> anyhow::Result<Engine> {
    let url = config.database_url();
    if let Some(path) = guanxi_store::db::sqlite_path(&url)
        && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)?;
    }
    let db = Db::connect(&DbOptions {
        url,
        max_connections: 4,
        durability: config.durability,
    })
    .await?;
    migrate::run(&db).await?;
    guanxi_store::regions::ensure_loaded(&db).await?;
    let regions = Arc::new(RegionCache::new(db.clone()));
    let identity = Arc::new(modules::identity::IdentityState::default());
    let engine_cell = modules::customers::EngineCell::default();
    let hooks = modules::hooks(config, &identity, &engine_cell, &regions);
    let catalog = Arc::new(Catalog::load(&db, builtin_objects()).await?);
    let engine = Engine::new(db, catalog, hooks);
    let _ = engine_cell.set(engine.clone());
    Ok(engine)
}

/// Keeps custom fields and dictionaries in step with other servers sharing the database.
async fn refresh_metadata(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut ticks: u64 = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(10)) => {}
            _ = stop.changed() => return,
        }
        if let Err(e) = state.engine.catalog().reload(&state.db).await {
            tracing::warn!(error = ?e, "metadata refresh failed");
        }
        ticks += 1;
        // Once a day (8,640 ticks of 10 s): drop logs past their retention period.
        if ticks % 8_640 == 1
            && let Err(e) = modules::identity::admin::purge_old_logs(&state).await
        {
            tracing::warn!(error = ?e, "log clean-up failed");
        }
    }
}

/// The full router with every middleware.
pub fn router(state: AppState) -> Router {
    let x_request_id = HeaderName::from_static("x-request-id");
    let max_body = state.config.max_body_bytes;
    Router::new()
        .merge(routes::records::router())
        .merge(routes::meta::router())
        .merge(routes::jobs::router())
        .merge(routes::audit::router())
        .merge(routes::health::router())
        .merge(modules::identity::router())
        .merge(modules::transfer::router())
        .merge(modules::customers::router())
        .merge(modules::regions::router())
        .merge(modules::pool::router())
        .merge(modules::classification::router())
        .merge(modules::customer_duplicates::router())
        .merge(modules::customer_merge::router())
        .merge(modules::customer_stats::router())
        .merge(modules::views::router())
        .merge(modules::files::router(state.config.max_upload_bytes))
        .route("/api/v1/openapi.json", get(openapi_json))
        .route_layer(middleware::from_fn(telemetry::track_metrics))
        .merge(
            utoipa_swagger_ui::SwaggerUi::new("/api/docs")
                .config(utoipa_swagger_ui::Config::from("/api/v1/openapi.json")),
        )
        .fallback(crate::web::serve)
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "不支持该请求方法",
                "method not allowed",
            )
        })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            modules::identity::session::authenticate,
        ))
        .layer(middleware::from_fn(localize_errors))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("handler panicked").into_response()
        }))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
        .with_state(state)
}

async fn openapi_json(State(state): State<AppState>) -> impl IntoResponse {
    Json(openapi::document(&state.engine.catalog().snapshot()))
}
