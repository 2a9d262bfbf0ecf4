//! Extractors whose rejections are [`ApiError`]s, so malformed input gets the same JSON error
//! body as everything else; and the authenticated user.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::state::AppState;

/// `axum::Json` with our error body.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rejection) => Err(if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge("request body too large".into())
            } else {
                ApiError::BadRequest(rejection.body_text())
            }),
        }
    }
}

/// `axum::extract::Query` with our error body.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|r| ApiError::BadRequest(r.body_text()))
    }
}

/// A signed-in user, from `Authorization: Bearer <JWT>`. The user must still exist: deleting
/// a user ends their sessions.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: String,
    pub email: String,
    pub role: String,
}

impl AuthUser {
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.role == "admin" {
            Ok(())
        } else {
            Err(ApiError::Forbidden("this needs the admin role".into()))
        }
    }

    /// Viewers may look but not change or run anything.
    pub fn require_write(&self) -> Result<(), ApiError> {
        if self.role == "viewer" {
            Err(ApiError::Forbidden(
                "viewers cannot change or run anything".into(),
            ))
        } else {
            Ok(())
        }
    }
}

pub(crate) async fn user_from_token(state: &AppState, token: &str) -> Result<AuthUser, ApiError> {
    let claims = state.jwt.verify(token).ok_or_else(|| {
        ApiError::Unauthorized("invalid or expired session; sign in again".into())
    })?;
    let user = state
        .store
        .user_by_id(&claims.sub)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("this account no longer exists".into()))?;
    Ok(AuthUser {
        id: user.id,
        email: user.email,
        role: user.role,
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

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(|| {
            ApiError::Unauthorized("sign in first: missing Authorization: Bearer token".into())
        })?;
        user_from_token(state, token).await
    }
}

/// An agent on the legacy HTTP endpoints, from `Authorization: Bearer grmm_...`.
pub struct AgentKey {
    pub agent_id: String,
}

impl FromRequestParts<AppState> for AgentKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
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
}
