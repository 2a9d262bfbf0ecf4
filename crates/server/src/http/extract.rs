//! Extractors whose rejections are [`ApiError`]s, so malformed input gets the same JSON error
//! body as everything else; and who is calling, as the route's access layer found it.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode, Uri};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ApiError;
use crate::auth::Role;
use crate::state::AppState;

/// `axum::Json` with our error body. Text holding a NUL byte is refused here, naming the field,
/// for every body: PostgreSQL cannot store it, and no user needs it.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = read_json::<Value, S>(req, state).await?;
        parse_json(value).map(Json)
    }
}

/// A JSON body an agent reports (the legacy endpoints). Unlike [`Json`], NUL bytes are not
/// refused: agent text is hostile input that `session::sanitize` cleans before storage, and
/// refusing a result would leave its command running forever.
pub struct AgentJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AgentJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        read_json::<T, S>(req, state)
            .await
            .map(|axum::Json(v)| AgentJson(v))
    }
}

async fn read_json<T: DeserializeOwned, S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<axum::Json<T>, ApiError> {
    axum::Json::<T>::from_request(req, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge("request body too large".into())
            } else {
                ApiError::BadRequest(rejection.body_text())
            }
        })
}

/// A JSON value into `T`, refusing NUL bytes in any string first.
pub fn parse_json<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    if let Some(path) = nul_path(&value, "") {
        let path = if path.is_empty() { "body" } else { &path };
        return Err(ApiError::BadRequest(format!(
            "{path} must not contain a NUL byte"
        )));
    }
    serde_json::from_value(value).map_err(|e| {
        ApiError::BadRequest(format!(
            "Failed to deserialize the JSON body into the target type: {e}"
        ))
    })
}

/// Where the first string holding a NUL is, as `field.list[2].name`.
fn nul_path(value: &Value, at: &str) -> Option<String> {
    match value {
        Value::String(s) if s.contains('\0') => Some(at.to_owned()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_path(v, &format!("{at}[{i}]"))),
        Value::Object(fields) => fields.iter().find_map(|(k, v)| {
            let at = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            if k.contains('\0') {
                Some(at)
            } else {
                nul_path(v, &at)
            }
        }),
        _ => None,
    }
}

/// `axum::extract::Query` with our error body; a NUL byte in a value is refused, naming it.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        reject_nul_in_uri(&parts.uri)?;
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|r| ApiError::BadRequest(r.body_text()))
    }
}

/// A NUL byte in the path (an `{id}`) or in a query value answers 400 naming it.
pub(crate) fn reject_nul_in_uri(uri: &Uri) -> Result<(), ApiError> {
    if uri.path().to_ascii_lowercase().contains("%00") {
        return Err(ApiError::BadRequest(
            "the path must not contain a NUL byte".into(),
        ));
    }
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(uri.query().unwrap_or_default()).unwrap_or_default();
    match pairs
        .iter()
        .find(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        Some((k, _)) => Err(ApiError::BadRequest(format!(
            "{} must not contain a NUL byte",
            k.replace('\0', "\\0")
        ))),
        None => Ok(()),
    }
}

/// A signed-in user, put into the request by the route's access layer (see
/// [`super::Access`]), with the live session the request was made with.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: String,
    pub email: String,
    pub role: Role,
    pub session_id: String,
    /// Whether the account signs in with a second factor.
    pub two_factor: bool,
    /// The session was started by single sign-on (the provider did the second factor).
    pub via_sso: bool,
}

/// The user of a valid JWT whose session is still live (one indexed lookup).
pub(crate) async fn user_from_token(state: &AppState, token: &str) -> Result<AuthUser, ApiError> {
    let claims = state.jwt.verify(token).ok_or_else(|| {
        ApiError::Unauthorized("invalid or expired session; sign in again".into())
    })?;
    let user = user_from_session(state, &claims.sid).await?;
    if user.id != claims.sub {
        return Err(ApiError::Unauthorized(
            "invalid session; sign in again".into(),
        ));
    }
    Ok(user)
}

/// The user of a live session: not ended, not expired, the user still there and enabled.
pub(crate) async fn user_from_session(state: &AppState, sid: &str) -> Result<AuthUser, ApiError> {
    let (session, user) =
        state.store.live_session(sid).await?.ok_or_else(|| {
            ApiError::Unauthorized("this session has ended; sign in again".into())
        })?;
    Ok(AuthUser {
        id: user.id,
        email: user.email,
        role: user.role,
        session_id: session.id,
        two_factor: user.two_factor,
        via_sso: session.via_sso,
    })
}

pub(crate) fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// `?ticket=` for EventSource: a single-use ticket from `POST /api/auth/event-ticket`.
pub(crate) fn query_ticket(parts: &Parts) -> Option<String> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(parts.uri.query().unwrap_or_default()).ok()?;
    pairs
        .into_iter()
        .find(|(k, _)| k == "ticket")
        .map(|(_, v)| v)
}

/// A route declared for users but missing the layer would be a bug in the route table.
fn unguarded() -> ApiError {
    ApiError::Internal(anyhow::anyhow!(
        "route reads a caller its access in api_routes() does not check"
    ))
}

impl<S: Send + Sync> FromRequestParts<S> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<AuthUser>()
            .cloned()
            .ok_or_else(unguarded)
    }
}

/// An agent on the legacy HTTP endpoints, from `Authorization: Bearer grmm_...` (or
/// `X-Agent-Key`), put into the request by the route's access layer.
#[derive(Debug, Clone)]
pub struct AgentKey {
    pub agent_id: String,
}

pub(crate) async fn agent_from_parts(
    state: &AppState,
    parts: &Parts,
) -> Result<AgentKey, ApiError> {
    let key = bearer(parts)
        .or_else(|| {
            parts
                .headers
                .get("x-agent-key")
                .and_then(|v| v.to_str().ok())
        })
        .ok_or_else(|| ApiError::Unauthorized("missing agent key".into()))?;
    if !key.starts_with(crate::auth::AGENT_KEY_PREFIX) {
        return Err(ApiError::Unauthorized("invalid agent key".into()));
    }
    let agent_id = state
        .store
        .agent_id_by_key_hash(&crate::auth::key_hash(key))
        .await?
        .ok_or_else(|| ApiError::Unauthorized("invalid agent key".into()))?;
    Ok(AgentKey { agent_id })
}

impl<S: Send + Sync> FromRequestParts<S> for AgentKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<AgentKey>()
            .cloned()
            .ok_or_else(unguarded)
    }
}
