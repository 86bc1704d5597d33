//! The browser UI, embedded in the binary. A release build bakes `web/dist` in (build the UI
//! first: `./scripts/run` does); a debug build reads the folder from disk, so UI work needs no
//! Rust rebuild. Paths without a file get `index.html` (the single-page app routes itself);
//! unknown `/api/…` paths stay JSON 404s.

use axum::http::{StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};

use crate::error::ApiError;

#[derive(rust_embed::RustEmbed)]
#[folder = "../../web/dist"]
#[allow_missing = true]
struct Assets;

/// Serves an embedded file, or the app's `index.html`, or a note that the UI is not built.
pub async fn serve(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    if path.starts_with("api/") || path == "api" {
        return ApiError::route_not_found().into_response();
    }
    if let Some(file) = Assets::get(path).filter(|_| !path.is_empty()) {
        let mime = file.metadata.mimetype().to_owned();
        // Vite puts a content hash in every asset name: those never change and cache for a year.
        let cache = if path.starts_with("assets/") {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        return (
            [(header::CONTENT_TYPE, mime.as_str()), (header::CACHE_CONTROL, cache)],
            file.data.into_owned(),
        )
            .into_response();
    }
    match Assets::get("index.html") {
        Some(index) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            index.data.into_owned(),
        )
            .into_response(),
        None => (StatusCode::OK, Html(NOT_BUILT)).into_response(),
    }
}

const NOT_BUILT: &str = "<!doctype html><html lang=\"zh-CN\"><meta charset=\"utf-8\"><title>Guanxi 关系</title>\
<h1>Guanxi 关系 CRM</h1><p>界面尚未构建：请用 <code>./scripts/run</code> 启动（会自动构建界面）。\
The web UI is not built into this binary: start Guanxi with <code>./scripts/run</code>, which builds it.</p>\
<p>API: <a href=\"/api/docs\">/api/docs</a> · <a href=\"/api/v1/openapi.json\">openapi.json</a></p></html>";
