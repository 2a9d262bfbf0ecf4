//! The dashboard: built into the binary from `dashboard/dist` at compile time, or served from
//! `dashboard_dir` when that is set (dashboard development). It is a single-page app, so a
//! path that is not a file gets `index.html` and the client-side route survives a reload.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;
use serde_json::json;
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

use super::error::ApiError;
use crate::config::Config;

#[derive(RustEmbed)]
#[folder = "../../dashboard/dist"]
struct Embedded;

/// Vite names everything under `assets/` by content hash: cache it for good. `index.html`
/// names the current bundle, so it is revalidated on every load.
const ASSET_CACHE: &str = "public, max-age=31536000, immutable";
const INDEX_CACHE: &str = "no-cache";

/// Whether the binary was compiled with a built dashboard in it.
pub fn embedded() -> bool {
    Embedded::get("index.html").is_some()
}

fn not_built() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "GuruRMM server is running, but the dashboard is not built. Run ./scripts/serve.sh (see README.md), \
         or set dashboard_dir / GURURMM_DASHBOARD_DIR to a built dashboard.\n",
    )
        .into_response()
}

pub async fn serve(config: &Config, req: Request) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            axum::Json(json!({"error": "method not allowed on this path"})),
        )
            .into_response();
    }
    match &config.dashboard_dir {
        Some(dir) if !dir.as_os_str().is_empty() => serve_dir(dir, req).await,
        _ => serve_embedded(req.uri().path(), req.headers()),
    }
}

async fn serve_dir(dir: &std::path::Path, req: Request) -> Response {
    let index = dir.join("index.html");
    if !index.exists() {
        return not_built();
    }
    let service = ServeDir::new(dir).fallback(ServeFile::new(index));
    match service.oneshot(req).await {
        Ok(resp) => resp.into_response(),
        Err(e) => ApiError::Internal(anyhow::anyhow!("serving dashboard: {e}")).into_response(),
    }
}

fn serve_embedded(path: &str, headers: &HeaderMap) -> Response {
    let name = path.trim_start_matches('/');
    let (name, file) = match Embedded::get(name).filter(|_| !name.is_empty()) {
        Some(file) => (name, file),
        // A missing bundle file is a 404, never index.html under a script's name.
        None if name.starts_with("assets/") => {
            return (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "not found\n",
            )
                .into_response()
        }
        None => match Embedded::get("index.html") {
            Some(file) => ("index.html", file),
            None => return not_built(),
        },
    };
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let cache = if name.starts_with("assets/") {
        ASSET_CACHE
    } else {
        INDEX_CACHE
    };
    let mut builder = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::CACHE_CONTROL, cache);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if fresh {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .unwrap_or_else(|_| StatusCode::NOT_MODIFIED.into_response());
    }
    let mime = file.metadata.mimetype();
    let content_type = if mime.starts_with("text/") && !mime.contains("charset") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_owned()
    };
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        builder = builder.header(header::CONTENT_TYPE, v);
    }
    builder
        .body(Body::from(file.data.into_owned()))
        .unwrap_or_else(|e| {
            ApiError::Internal(anyhow::anyhow!("dashboard file: {e}")).into_response()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, headers: &HeaderMap) -> Response {
        serve_embedded(path, headers)
    }

    /// The CSP allows no inline script or style: the built page must have none.
    #[test]
    fn built_index_has_no_inline_script_or_style() {
        let Some(index) = Embedded::get("index.html") else {
            return;
        };
        let html = String::from_utf8_lossy(&index.data).to_lowercase();
        for (at, _) in html.match_indices("<script") {
            let tag = &html[at..at + html[at..].find('>').expect("tag ends")];
            assert!(tag.contains(" src="), "inline script: {tag}");
        }
        assert!(!html.contains("<style"), "inline stylesheet");
        assert!(!html.contains(" style="), "inline style attribute");
        let handler = html.match_indices(" on").any(|(at, _)| {
            let rest = &html[at + 3..];
            let name_len = rest.chars().take_while(char::is_ascii_lowercase).count();
            name_len > 0 && rest[name_len..].starts_with('=')
        });
        assert!(!handler, "inline event handler");
    }

    /// Built dashboards only: the single-binary test fails loudly when it was not built.
    #[test]
    fn embedded_files_have_types_and_cache_rules() {
        if !embedded() {
            return;
        }
        let none = HeaderMap::new();
        let index = get("/", &none);
        assert_eq!(index.status(), StatusCode::OK);
        assert_eq!(index.headers()[header::CACHE_CONTROL], INDEX_CACHE);
        assert!(index.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let spa = get("/agents/some-id", &none);
        assert_eq!(spa.status(), StatusCode::OK);
        assert_eq!(spa.headers()[header::ETAG], index.headers()[header::ETAG]);

        let script = Embedded::iter()
            .find(|n| n.starts_with("assets/") && n.ends_with(".js"))
            .expect("a script bundle");
        let js = get(&format!("/{script}"), &none);
        assert_eq!(js.status(), StatusCode::OK);
        assert_eq!(js.headers()[header::CACHE_CONTROL], ASSET_CACHE);
        assert!(js.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .contains("javascript"));

        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, js.headers()[header::ETAG].clone());
        assert_eq!(
            get(&format!("/{script}"), &again).status(),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            get("/assets/missing.js", &none).status(),
            StatusCode::NOT_FOUND
        );
    }
}
