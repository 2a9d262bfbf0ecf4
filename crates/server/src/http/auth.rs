use std::net::SocketAddr;
use std::time::Duration;

use super::error::{ApiError, ApiResult};
use super::extract::{AuthUser, Json};
use super::types::{list, LoginRequest, LoginResponse, NewUserRequest, User};
use crate::auth::{
    dummy_hash, hash_password, validate_email, validate_password, verify_password, Role,
};
use crate::db::{Actor, StoreError};
use crate::state::AppState;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;

const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(req): Json<LoginRequest>,
) -> ApiResult<axum::Json<LoginResponse>> {
    let email = req.email.trim().to_lowercase();
    let ip_key = format!("login-ip:{}", peer.ip());
    let account_key = format!("login-account:{email}");
    // Failed attempts are counted per address and per account; either limit stops guessing.
    state.limiter.check(
        &ip_key,
        state.config.login_attempts_per_address,
        LOGIN_WINDOW,
    )?;
    state.limiter.check(
        &account_key,
        state.config.login_attempts_per_account,
        LOGIN_WINDOW,
    )?;

    let user = state.store.user_by_email(&email).await?;
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| dummy_hash().to_owned());
    let password = req.password;
    let valid = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let failed = |e: ApiError| {
        state.limiter.record(&ip_key);
        state.limiter.record(&account_key);
        tracing::info!(ip = %peer.ip(), "failed login");
        e
    };
    let user = match (user, valid) {
        (Some(user), true) => user,
        _ => {
            return Err(failed(ApiError::Unauthorized(
                "wrong email or password".into(),
            )))
        }
    };
    match super::two_factor::check_second_factor(
        &state,
        &user,
        req.totp_code.as_deref(),
        req.recovery_code.as_deref(),
    )
    .await
    {
        Ok(()) => {}
        // Asking for the code is not a failed attempt; a wrong code is.
        Err(e @ ApiError::TwoFactorRequired(_)) => return Err(e),
        Err(e) => return Err(failed(e)),
    }
    state.limiter.reset(&account_key);
    let (token, exp) = state.jwt.issue(&user.id, user.role.as_str())?;
    Ok(axum::Json(LoginResponse {
        token,
        expires_at: crate::db::rfc3339::format(exp.saturating_mul(1000)),
        two_factor_setup_required: state.config.require_two_factor && !user.two_factor,
        user: user.into(),
    }))
}

async fn create_user(
    state: &AppState,
    req: NewUserRequest,
    default_role: Role,
    by: Actor<'_>,
) -> ApiResult<User> {
    let email = validate_email(&req.email).map_err(ApiError::BadRequest)?;
    validate_password(&req.password).map_err(ApiError::BadRequest)?;
    let role = req.role.unwrap_or(default_role);
    let password = req.password;
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ApiError::Internal(e.into()))??;
    state
        .store
        .create_user(&email, &hash, role, by)
        .await
        .map_err(|e| match e {
            StoreError::Conflict { .. } => {
                ApiError::Conflict(format!("a user with email {email} already exists"))
            }
            other => other.into(),
        })
        .map(User::from)
}

/// Self-registration, off unless `allow_registration` is set; creates technicians only.
pub async fn register(
    State(state): State<AppState>,
    Json(req): Json<NewUserRequest>,
) -> ApiResult<(StatusCode, axum::Json<User>)> {
    if !state.config.allow_registration {
        return Err(ApiError::Forbidden(
            "registration is disabled on this server".into(),
        ));
    }
    let req = NewUserRequest { role: None, ..req };
    let user = create_user(&state, req, Role::Technician, Actor::SYSTEM).await?;
    Ok((StatusCode::CREATED, axum::Json(user)))
}

pub async fn me(State(state): State<AppState>, user: AuthUser) -> ApiResult<axum::Json<User>> {
    let record = state
        .store
        .user_by_id(&user.id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok(axum::Json(record.into()))
}

pub async fn list_users(State(state): State<AppState>) -> ApiResult<axum::Json<Vec<User>>> {
    Ok(axum::Json(list(state.store.list_users().await?)))
}

pub async fn add_user(
    State(state): State<AppState>,
    user: AuthUser,
    Json(req): Json<NewUserRequest>,
) -> ApiResult<(StatusCode, axum::Json<User>)> {
    let created = create_user(&state, req, Role::Technician, Actor::user(&user.id)).await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

pub async fn delete_user(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if id == user.id {
        return Err(ApiError::BadRequest(
            "you cannot delete your own account".into(),
        ));
    }
    state.store.delete_user(&id, Actor::user(&user.id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
