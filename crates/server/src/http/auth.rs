use std::net::SocketAddr;
use std::time::Duration;

use super::error::{ApiError, ApiResult};
use super::extract::{AuthUser, Json};
use super::types::{
    list, AuthStatus, ChangePasswordRequest, EventTicket, LoginRequest, LoginResponse,
    NewUserRequest, Session, UpdateUserRequest, User,
};
use crate::auth::{dummy_hash, hash_password, validate_email, validate_password, Role};
use crate::db::{Actor, NewSession, StoreError, UserChange, UserRecord};
use crate::sign_in::{SessionEnded, TICKET_TTL};
use crate::state::AppState;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};

pub(super) const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);
/// The longest a slowed-down sign-in waits for its turn; past it the answer is 429.
const SLOWDOWN_MAX_WAIT: Duration = Duration::from_secs(5);

/// How to create the first administrator, for the log at start and the sign-in page.
pub const FIRST_ADMIN_COMMAND: &str =
    "gururmm-server user add --email you@example.com --role admin --password 'a-long-password'";

/// Sign-in. Each attempt is counted BEFORE the password is checked, per address and per
/// account-and-address, so concurrent guesses cannot pass the limits and a stranger elsewhere
/// cannot lock the user out of their own address. After many failures on an account from
/// anywhere, attempts from addresses it never signed in from are spaced out per account.
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(req): Json<LoginRequest>,
) -> ApiResult<axum::Json<LoginResponse>> {
    let config = &state.config;
    let email = req.email.trim().to_lowercase();
    let ip = peer.ip().to_string();
    let ip_key = format!("login-ip:{ip}");
    let pair_key = format!("login-account-ip:{email}|{ip}");
    let failures_key = format!("login-failures:{email}");
    let limits = state.limits();
    limits
        .check_and_record(&ip_key, config.login_attempts_per_address, LOGIN_WINDOW)
        .await?;
    limits
        .check_and_record(&pair_key, config.login_attempts_per_account, LOGIN_WINDOW)
        .await?;

    let user = state.store.user_by_email(&email).await?;
    let failures = limits.count(&failures_key, LOGIN_WINDOW).await?;
    if failures >= config.login_slowdown_after_failures as usize {
        let known = match &user {
            Some(u) => state.store.has_signed_in_from(&u.id, &ip).await?,
            None => false,
        };
        if !known {
            let wait = limits
                .take_slot(
                    &format!("login-slow:{email}"),
                    Duration::from_millis(config.login_slowdown_interval_ms),
                    SLOWDOWN_MAX_WAIT,
                )
                .await?;
            tokio::time::sleep(wait).await;
        }
    }

    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| dummy_hash().to_owned());
    let valid = state.sign_in.verify_password(req.password, hash).await?;
    let failed = |e: ApiError| async {
        limits.record(&failures_key).await?;
        tracing::info!(ip = %peer.ip(), "failed login");
        Err::<axum::Json<LoginResponse>, ApiError>(e)
    };
    let user = match (user, valid) {
        (Some(user), true) => user,
        _ => return failed(ApiError::Unauthorized("wrong email or password".into())).await,
    };
    if user.disabled {
        return Err(ApiError::Forbidden(
            "this account is disabled; ask an administrator".into(),
        ));
    }
    match super::two_factor::check_second_factor(
        &state,
        &user,
        req.totp_code.as_deref(),
        req.recovery_code.as_deref(),
    )
    .await
    {
        Ok(()) => {}
        // Asking for the code is not a failed attempt (the password was right): its attempt
        // is given back. A wrong code is a failure.
        Err(e @ ApiError::TwoFactorRequired(_)) => {
            limits.release_one(&ip_key).await?;
            limits.release_one(&pair_key).await?;
            return Err(e);
        }
        Err(e) => return failed(e).await,
    }
    // The right password gives back its attempt and clears this address's count for the
    // account; failures from elsewhere stay counted.
    limits.release_one(&ip_key).await?;
    limits.reset(&pair_key).await?;
    Ok(axum::Json(
        start_session(&state, user, &ip, &headers, false).await?,
    ))
}

/// A new server-side session and its token (password sign-in, and single sign-on with
/// `via_sso`).
pub(super) async fn start_session(
    state: &AppState,
    user: UserRecord,
    ip: &str,
    headers: &HeaderMap,
    via_sso: bool,
) -> ApiResult<LoginResponse> {
    let now = chrono::Utc::now().timestamp();
    let exp = now + crate::auth::SESSION_HOURS * 3600;
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let session = state
        .store
        .create_session(
            &user.id,
            NewSession {
                user_agent,
                source_address: Some(ip),
                expires_at: exp.saturating_mul(1000),
                via_sso,
            },
        )
        .await?;
    let (token, exp) = state
        .jwt
        .issue_at(&user.id, user.role.as_str(), &session.id, now, exp)?;
    Ok(LoginResponse {
        token,
        expires_at: crate::db::rfc3339::format(exp.saturating_mul(1000)),
        two_factor_setup_required: !user.two_factor
            && !via_sso
            && state.two_factor_required().await?,
        user: user.into(),
    })
}

/// Ends the session this request was made with.
pub async fn logout(State(state): State<AppState>, user: AuthUser) -> ApiResult<StatusCode> {
    end_own_session(&state, &user, &user.session_id).await
}

async fn end_own_session(state: &AppState, user: &AuthUser, id: &str) -> ApiResult<StatusCode> {
    state.store.end_session(&user.id, id).await?;
    state.announce_session_ended(SessionEnded::One(id.to_owned()));
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_sessions(
    State(state): State<AppState>,
    user: AuthUser,
) -> ApiResult<axum::Json<Vec<Session>>> {
    let sessions = state.store.list_sessions(&user.id).await?;
    Ok(axum::Json(
        sessions
            .into_iter()
            .map(|s| Session::new(s, &user.session_id))
            .collect(),
    ))
}

/// Ends one of the caller's own sessions; another user's session is "not found".
pub async fn end_session(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    end_own_session(&state, &user, &id).await
}

/// The caller's own password change: needs the current password, ends every session of the
/// user, and answers a fresh session for this browser.
pub async fn change_password(
    State(state): State<AppState>,
    user: AuthUser,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(req): Json<ChangePasswordRequest>,
) -> ApiResult<axum::Json<LoginResponse>> {
    validate_password(&req.new_password).map_err(ApiError::BadRequest)?;
    // A stolen token must not become a fast way to guess the current password.
    let key = format!("password-change:{}", user.id);
    state
        .limits()
        .check_and_record(&key, state.config.login_attempts_per_account, LOGIN_WINDOW)
        .await?;
    let record = state
        .store
        .user_by_id(&user.id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let valid = state
        .sign_in
        .verify_password(req.current_password, record.password_hash.clone())
        .await?;
    if !valid {
        return Err(ApiError::BadRequest("the current password is wrong".into()));
    }
    state.limits().reset(&key).await?;
    let hash = hash_blocking(req.new_password).await?;
    state.store.change_own_password(&user.id, &hash).await?;
    state.announce_session_ended(SessionEnded::AllOf(user.id.clone()));
    let response = start_session(&state, record, &peer.ip().to_string(), &headers, false).await?;
    Ok(axum::Json(response))
}

async fn hash_blocking(password: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(ApiError::Internal)
}

/// Whether the server has no user yet, and how to create the first administrator.
pub async fn status(State(state): State<AppState>) -> ApiResult<axum::Json<AuthStatus>> {
    let needs_first_admin = state.store.count_users().await? == 0;
    Ok(axum::Json(AuthStatus {
        needs_first_admin,
        hint: needs_first_admin.then(|| FIRST_ADMIN_COMMAND.to_owned()),
    }))
}

/// A single-use ticket, valid about 30 s, for `GET /api/events?ticket=`: EventSource cannot
/// send headers, and the long-lived token must not appear in a URL.
pub async fn event_ticket(
    State(state): State<AppState>,
    user: AuthUser,
) -> ApiResult<axum::Json<EventTicket>> {
    let (ticket, hash) = crate::sign_in::new_ticket();
    let expires_ms = crate::db::now_ms() + TICKET_TTL.as_millis() as i64;
    state
        .store
        .store_event_ticket(&hash, &user.session_id, expires_ms)
        .await?;
    Ok(axum::Json(EventTicket {
        ticket,
        expires_at: crate::db::rfc3339::format(expires_ms),
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
    let hash = hash_blocking(req.password).await?;
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
    state.announce_session_ended(SessionEnded::AllOf(id));
    Ok(StatusCode::NO_CONTENT)
}

/// An admin changes a user's role, resets their password, or disables/enables them; every
/// change ends all of that user's sessions.
pub async fn update_user(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(req): Json<UpdateUserRequest>,
) -> ApiResult<axum::Json<User>> {
    if req.role.is_none() && req.password.is_none() && req.disabled.is_none() {
        return Err(ApiError::BadRequest(
            "nothing to change: give role, password or disabled".into(),
        ));
    }
    if id == user.id && (req.role.is_some_and(|r| r != Role::Admin) || req.disabled == Some(true)) {
        return Err(ApiError::BadRequest(
            "you cannot demote or disable your own account".into(),
        ));
    }
    let hash = match req.password {
        Some(password) => {
            validate_password(&password).map_err(ApiError::BadRequest)?;
            Some(hash_blocking(password).await?)
        }
        None => None,
    };
    let change = UserChange {
        role: req.role,
        password_hash: hash.as_deref(),
        disabled: req.disabled,
    };
    let updated = state
        .store
        .update_user(&id, change, Actor::user(&user.id))
        .await?;
    state.announce_session_ended(SessionEnded::AllOf(id));
    Ok(axum::Json(updated.into()))
}
