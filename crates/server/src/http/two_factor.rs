//! Two-factor sign-in for the signed-in user: status, setup (a new secret, pending until a code
//! confirms it), confirm (turns it on and hands out recovery codes once), disable; an admin can
//! turn it off for a user who lost their device and codes. Sign-in itself checks the code in
//! `auth::login` through [`check_second_factor`].

use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::error::{ApiError, ApiResult};
use super::extract::{AuthUser, Json};
use super::types::{RecoveryCodes, TwoFactorCode, TwoFactorSetup, TwoFactorStatus};
use crate::db::{Actor, UserRecord};
use crate::state::AppState;
use crate::two_factor;

pub async fn status(
    State(state): State<AppState>,
    user: AuthUser,
) -> ApiResult<axum::Json<TwoFactorStatus>> {
    Ok(axum::Json(TwoFactorStatus {
        enabled: user.two_factor,
        required: state.two_factor_required().await?,
        recovery_codes_left: state.store.recovery_codes_left(&user.id).await?,
    }))
}

pub async fn setup(
    State(state): State<AppState>,
    user: AuthUser,
) -> ApiResult<axum::Json<TwoFactorSetup>> {
    if user.two_factor {
        return Err(ApiError::Conflict(
            "two-factor sign-in is already on; turn it off first to use another device".into(),
        ));
    }
    let secret = two_factor::new_secret();
    let (otpauth_uri, base32) = two_factor::enrolment(&secret, &user.email)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("cannot build the otpauth URI")))?;
    state
        .store
        .set_pending_totp(&user.id, &state.two_factor.seal(&secret))
        .await?;
    Ok(axum::Json(TwoFactorSetup {
        otpauth_uri,
        secret: base32,
    }))
}

pub async fn confirm(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<TwoFactorCode>,
) -> ApiResult<axum::Json<RecoveryCodes>> {
    let (pending, _) = state.store.totp_secrets(&user.id).await?;
    let sealed = pending.ok_or_else(|| {
        ApiError::Conflict("no two-factor setup is waiting: start one first".into())
    })?;
    let secret = state
        .two_factor
        .open(&sealed)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("pending TOTP secret unreadable")))?;
    let step = two_factor::check_code(&secret, &body.code).ok_or_else(|| {
        ApiError::BadRequest("that code is not the one the app shows now; try the next one".into())
    })?;
    let (codes, hashes) = two_factor::new_recovery_codes();
    state
        .store
        .enable_totp(&user.id, &sealed, step, &hashes, Actor::user(&user.id))
        .await?;
    Ok(axum::Json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

/// Turns it off; needs a current code (or a recovery code), so a stolen session alone cannot.
pub async fn disable(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<TwoFactorCode>,
) -> ApiResult<axum::Json<TwoFactorStatus>> {
    if state.two_factor_required().await? {
        return Err(ApiError::Conflict(
            "this server requires two-factor sign-in; it cannot be turned off".into(),
        ));
    }
    let record = state
        .store
        .user_by_id(&user.id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    if !record.two_factor {
        return Err(ApiError::Conflict("two-factor sign-in is not on".into()));
    }
    if !second_factor_ok(&state, &record, Some(&body.code), Some(&body.code)).await? {
        return Err(ApiError::BadRequest("that code is not valid".into()));
    }
    state
        .store
        .disable_totp(&user.id, Actor::user(&user.id))
        .await?;
    Ok(axum::Json(TwoFactorStatus {
        enabled: false,
        required: false,
        recovery_codes_left: 0,
    }))
}

/// An admin turns two-factor sign-in off for a user (a lost device and lost codes).
pub async fn reset_for_user(
    State(state): State<AppState>,
    admin: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .user_by_id(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    state
        .store
        .disable_totp(&id, Actor::user(&admin.id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Whether the code (TOTP, each time step accepted once) or the recovery code (each once) is
/// right for `user`.
async fn second_factor_ok(
    state: &AppState,
    user: &UserRecord,
    totp_code: Option<&str>,
    recovery_code: Option<&str>,
) -> ApiResult<bool> {
    let (_, active) = state.store.totp_secrets(&user.id).await?;
    let Some(secret) = active.and_then(|s| state.two_factor.open(&s)) else {
        return Ok(false);
    };
    if let Some(step) = totp_code.and_then(|c| two_factor::check_code(&secret, c)) {
        return Ok(state.store.claim_totp_step(&user.id, step).await?);
    }
    match recovery_code.filter(|c| !c.trim().is_empty()) {
        Some(code) => Ok(state
            .store
            .use_recovery_code(&user.id, &two_factor::recovery_hash(code))
            .await?),
        None => Ok(false),
    }
}

/// At sign-in, after the password was right: an account with two-factor sign-in also needs a
/// code. Missing: 401 with `two_factor_required`; wrong or used: 401 (the caller counts it as a
/// failed attempt).
pub async fn check_second_factor(
    state: &AppState,
    user: &UserRecord,
    totp_code: Option<&str>,
    recovery_code: Option<&str>,
) -> ApiResult<()> {
    if !user.two_factor {
        return Ok(());
    }
    let given = |c: Option<&str>| c.is_some_and(|c| !c.trim().is_empty());
    if !given(totp_code) && !given(recovery_code) {
        return Err(ApiError::TwoFactorRequired(
            "enter the code from your authenticator app, or a recovery code".into(),
        ));
    }
    if second_factor_ok(state, user, totp_code, recovery_code).await? {
        Ok(())
    } else {
        Err(ApiError::Unauthorized(
            "that code is wrong or was already used".into(),
        ))
    }
}
