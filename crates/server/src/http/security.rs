//! Security headers on every response. The dashboard is a Vite bundle with no inline script
//! and no inline style (its `index.html` loads one script and one stylesheet from `/assets`),
//! so the policy needs no `unsafe-inline`: an injected `<script>` or `style=""` does not run.
//! `connect-src 'self'` covers the same-origin API and the event stream.

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The dashboard's policy: everything from the server itself, nothing inline, no framing. (The
/// two-factor QR code is drawn as SVG elements, so no `data:` images are needed.)
pub const DASHBOARD_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; font-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// API answers are data, never a page: nothing may load or run from them.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Middleware: the headers on every answer, errors included.
pub async fn headers(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let is_api = path == "/api" || path.starts_with("/api/");
    add_headers(is_api, next.run(req).await)
}

/// Adds the headers unless the handler set its own.
fn add_headers(is_api: bool, mut resp: Response) -> Response {
    let csp = if is_api { API_CSP } else { DASHBOARD_CSP };
    let h = resp.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, csp),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    }
    resp
}
