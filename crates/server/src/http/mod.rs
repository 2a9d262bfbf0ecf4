//! The HTTP surface. Every API route is declared once in [`api_routes`], with its summary and
//! who may call it; the router and the OpenAPI document are both built from that table, so the
//! document cannot drift from what the server serves.

mod agents;
mod auth;
mod clients;
mod commands;
pub mod dashboard;
pub mod error;
mod events;
pub mod extract;
mod legacy;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Router;
use serde_json::{json, Map, Value};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

use error::ApiError;

use crate::state::AppState;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Anyone,
    User,
    Admin,
    AgentKey,
}

pub struct ApiRoute {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub caller: Caller,
    handler: MethodRouter<AppState>,
}

fn route(
    method: &'static str,
    path: &'static str,
    caller: Caller,
    summary: &'static str,
    handler: MethodRouter<AppState>,
) -> ApiRoute {
    ApiRoute {
        method,
        path,
        summary,
        caller,
        handler,
    }
}

pub fn api_routes() -> Vec<ApiRoute> {
    use Caller::*;
    vec![
        route(
            "POST",
            "/api/auth/login",
            Anyone,
            "Sign in with email and password; returns a JWT valid 24 h",
            post(auth::login),
        ),
        route(
            "POST",
            "/api/auth/register",
            Anyone,
            "Self-registration (disabled unless configured)",
            post(auth::register),
        ),
        route(
            "GET",
            "/api/auth/me",
            User,
            "The signed-in user",
            get(auth::me),
        ),
        route(
            "GET",
            "/api/users",
            Admin,
            "List users",
            get(auth::list_users),
        ),
        route(
            "POST",
            "/api/users",
            Admin,
            "Create a user {email, password, role}",
            post(auth::add_user),
        ),
        route(
            "DELETE",
            "/api/users/{id}",
            Admin,
            "Delete a user",
            delete(auth::delete_user),
        ),
        route(
            "GET",
            "/api/clients",
            User,
            "List clients",
            get(clients::list_clients),
        ),
        route(
            "POST",
            "/api/clients",
            User,
            "Create a client {name, notes?}",
            post(clients::create_client),
        ),
        route(
            "GET",
            "/api/clients/{id}",
            User,
            "A client",
            get(clients::get_client),
        ),
        route(
            "PUT",
            "/api/clients/{id}",
            User,
            "Update a client {name, notes?}",
            put(clients::update_client),
        ),
        route(
            "DELETE",
            "/api/clients/{id}",
            User,
            "Delete a client and its sites (agents become unassigned)",
            delete(clients::delete_client),
        ),
        route(
            "GET",
            "/api/clients/{id}/sites",
            User,
            "A client's sites",
            get(clients::client_sites),
        ),
        route(
            "GET",
            "/api/sites",
            User,
            "List sites",
            get(clients::list_sites),
        ),
        route(
            "POST",
            "/api/sites",
            User,
            "Create a site {client_id, name, notes?} with a new site code",
            post(clients::create_site),
        ),
        route(
            "GET",
            "/api/sites/{id}",
            User,
            "A site",
            get(clients::get_site),
        ),
        route(
            "PUT",
            "/api/sites/{id}",
            User,
            "Update a site {name, notes?}",
            put(clients::update_site),
        ),
        route(
            "DELETE",
            "/api/sites/{id}",
            User,
            "Delete a site (its agents become unassigned)",
            delete(clients::delete_site),
        ),
        route(
            "POST",
            "/api/sites/{id}/regenerate-key",
            User,
            "Replace the site's enrollment code",
            post(clients::regenerate_code),
        ),
        route(
            "GET",
            "/api/agents",
            User,
            "List agents (?client_id, site_id, status=online|offline, search)",
            get(agents::list),
        ),
        route(
            "POST",
            "/api/agents",
            User,
            "Register an agent {hostname, site_id?}; the grmm_ key is shown once",
            post(agents::register),
        ),
        route(
            "GET",
            "/api/agents/stats",
            User,
            "Fleet counts: total, online, offline, by OS, by version",
            get(agents::stats),
        ),
        route(
            "GET",
            "/api/agents/unassigned",
            User,
            "Agents with no site",
            get(agents::unassigned),
        ),
        route(
            "GET",
            "/api/agents/{id}",
            User,
            "An agent",
            get(agents::get),
        ),
        route(
            "DELETE",
            "/api/agents/{id}",
            User,
            "Delete an agent",
            delete(agents::delete),
        ),
        route(
            "POST",
            "/api/agents/{id}/move",
            User,
            "Move an agent {site_id | null}",
            post(agents::move_to_site),
        ),
        route(
            "GET",
            "/api/agents/{id}/state",
            User,
            "Latest network state and metrics",
            get(agents::agent_state),
        ),
        route(
            "POST",
            "/api/agents/{id}/command",
            User,
            "Send a command {command_type, command, timeout_seconds?, elevated?, interpreter?}",
            post(agents::send_command),
        ),
        route(
            "GET",
            "/api/agents/{id}/metrics",
            User,
            "Metrics history (?from, to: RFC 3339 or Unix seconds); downsampled",
            get(agents::metrics),
        ),
        route(
            "GET",
            "/api/agents/{id}/watchdog-events",
            User,
            "Watchdog events, newest first",
            get(agents::watchdog_events),
        ),
        route(
            "GET",
            "/api/commands",
            User,
            "Recent commands (?agent_id, status, since, until, limit)",
            get(commands::list),
        ),
        route(
            "GET",
            "/api/commands/{id}",
            User,
            "A command's status and result",
            get(commands::get),
        ),
        route(
            "POST",
            "/api/commands/{id}/cancel",
            User,
            "Cancel a pending or running command",
            post(commands::cancel),
        ),
        route(
            "GET",
            "/api/metrics/summary",
            User,
            "Fleet-wide metrics summary over the last 15 minutes",
            get(metrics_summary),
        ),
        route(
            "GET",
            "/api/events",
            User,
            "Server-sent events: agent_status, command_updated (?access_token= allowed)",
            get(events::stream),
        ),
        route(
            "POST",
            "/api/agent/register-legacy",
            Anyone,
            "Legacy agent enrolls with a site code",
            post(legacy::register),
        ),
        route(
            "POST",
            "/api/agent/heartbeat",
            AgentKey,
            "Legacy heartbeat; returns pending commands, now running",
            post(legacy::heartbeat),
        ),
        route(
            "POST",
            "/api/agent/command-result",
            AgentKey,
            "Legacy agent submits a command result",
            post(legacy::command_result),
        ),
        route(
            "GET",
            "/api/health",
            Anyone,
            "Liveness and database check",
            get(health),
        ),
        route(
            "GET",
            "/api/openapi.json",
            Anyone,
            "This document",
            get(openapi_json),
        ),
    ]
}

async fn metrics_summary(
    State(state): State<AppState>,
    _user: extract::AuthUser,
) -> error::ApiResult<axum::Json<Value>> {
    let summary = state.store.metrics_summary(15 * 60 * 1000).await?;
    let mut v = serde_json::to_value(summary).map_err(|e| ApiError::Internal(e.into()))?;
    v["agents_connected"] = json!(state.hub.connected_count());
    Ok(axum::Json(v))
}

async fn health(State(state): State<AppState>) -> Response {
    match sqlx::query("SELECT 1").execute(state.store.pool()).await {
        Ok(_) => axum::Json(json!({"status": "ok"})).into_response(),
        Err(_) => ApiError::Unavailable("database unreachable".into()).into_response(),
    }
}

/// OpenAPI 3.1 document built from [`api_routes`].
pub fn openapi() -> Value {
    let mut paths = Map::new();
    for r in api_routes() {
        let security = match r.caller {
            Caller::Anyone => json!([]),
            Caller::User | Caller::Admin => json!([{"bearerJwt": []}]),
            Caller::AgentKey => json!([{"agentKey": []}]),
        };
        let params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut op = json!({
            "summary": r.summary,
            "security": security,
            "parameters": params,
            "responses": {
                "200": {"description": "Success (201 for creations, 204 for deletions)"},
                "4XX": {"description": "Bad input or not allowed", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        });
        if r.caller == Caller::Admin {
            op["x-required-role"] = json!("admin");
        }
        if matches!(r.method, "POST" | "PUT") {
            op["requestBody"] =
                json!({"content": {"application/json": {"schema": {"type": "object"}}}});
        }
        let entry = paths.entry(r.path.to_owned()).or_insert_with(|| json!({}));
        entry[r.method.to_lowercase()] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "GuruRMM API", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerJwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "agentKey": {"type": "http", "scheme": "bearer", "description": "the agent's grmm_ key"}
            },
            "schemas": {"Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}}
        }
    })
}

async fn openapi_json() -> axum::Json<Value> {
    axum::Json(openapi())
}

pub fn router(state: AppState) -> Router {
    // Several methods share a path: merge them into one method router per path.
    let mut by_path: Vec<(&'static str, MethodRouter<AppState>)> = Vec::new();
    for r in api_routes() {
        match by_path.iter_mut().find(|(p, _)| *p == r.path) {
            Some((_, existing)) => *existing = std::mem::take(existing).merge(r.handler),
            None => by_path.push((r.path, r.handler)),
        }
    }
    let mut api = Router::new();
    for (path, handler) in by_path {
        api = api.route(path, handler);
    }
    let cors = cors_layer(&state.config.cors_origins);
    let downloads = ServeDir::new(state.config.downloads_dir());
    Router::new()
        .merge(api)
        .route("/ws", get(crate::hub::ws_handler))
        .nest_service("/downloads", downloads)
        .fallback(fallback)
        .method_not_allowed_fallback(|| async {
            (
                StatusCode::METHOD_NOT_ALLOWED,
                axum::Json(json!({"error": "method not allowed on this path"})),
            )
        })
        .layer(axum::extract::DefaultBodyLimit::max(
            state.config.max_body_bytes,
        ))
        .layer(cors)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

fn cors_layer(origins: &[String]) -> CorsLayer {
    // None configured: no CORS headers at all, so browsers allow same-origin only.
    let allowed: Vec<HeaderValue> = origins.iter().filter_map(|o| o.parse().ok()).collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
}

/// Unknown `/api` paths get a JSON 404; everything else is the dashboard.
async fn fallback(State(state): State<AppState>, req: Request) -> Response {
    let path = req.uri().path();
    if path.starts_with("/api/") || path == "/api" {
        return ApiError::NotFound(format!("no API endpoint {path}")).into_response();
    }
    dashboard::serve(&state.config, req).await
}
