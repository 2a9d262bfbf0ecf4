//! `/downloads/`: the agent builds in `downloads_dir`, without authentication. ServeDir gives
//! Content-Length, Last-Modified and byte ranges (206, so a cut download resumes); this adds
//! a strong ETag (size and modification time), `If-None-Match` (304) and `If-Range` with an
//! ETag, so a resumed download never splices two different builds together.

use std::path::PathBuf;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The ETag of a file: its size and modification time, quoted.
pub fn etag_of(meta: &std::fs::Metadata) -> Option<String> {
    let modified = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some(format!("\"{:x}-{:x}\"", meta.len(), modified.as_nanos()))
}

fn matches(list: &HeaderValue, etag: &str) -> bool {
    list.to_str().is_ok_and(|l| {
        l.split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == "*" || t == etag)
    })
}

pub async fn etag(State(dir): State<PathBuf>, mut req: Request, next: Next) -> Response {
    let name = req.uri().path().rsplit('/').next().unwrap_or("").to_owned();
    let plain = !name.is_empty() && !name.starts_with('.') && !name.contains('\\');
    let tag = if plain {
        tokio::fs::metadata(dir.join(&name))
            .await
            .ok()
            .filter(std::fs::Metadata::is_file)
            .and_then(|m| etag_of(&m))
    } else {
        None
    };
    let Some(tag) = tag else {
        return next.run(req).await;
    };
    let headers = req.headers_mut();
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| matches(v, &tag))
    {
        let mut not_modified = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(v) = HeaderValue::from_str(&tag) {
            not_modified.headers_mut().insert(header::ETAG, v);
        }
        return not_modified;
    }
    // If-Range with an ETag: the range holds only for the same build; otherwise the whole
    // file (200). A date is left to ServeDir.
    if let Some(if_range) = headers.get(header::IF_RANGE).cloned() {
        if if_range.as_bytes().first() == Some(&b'"') || if_range.as_bytes().starts_with(b"W/") {
            headers.remove(header::IF_RANGE);
            if if_range.to_str().ok().map(str::trim) != Some(tag.as_str()) {
                headers.remove(header::RANGE);
            }
        }
    }
    let mut response = next.run(req).await;
    if response.status().is_success() {
        if let Ok(v) = HeaderValue::from_str(&tag) {
            response.headers_mut().insert(header::ETAG, v);
        }
    }
    response
}
