//! Single sign-on routes. The browser goes to `login` (302 to the provider), comes back to
//! `callback` (state taken once from the database, code exchanged, ID token verified, user
//! matched or created), which redirects to the dashboard with a one-time code in the address
//! fragment; the dashboard exchanges it for the usual session. The JWT never goes into a URL.
//! Second factor: the provider does it (Entra ID: Conditional Access), so the local TOTP
//! check is skipped for single sign-on.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::error::{ApiError, ApiResult};
use super::extract::{Json, Query};
use super::types::{
    AuthProviders, LoginResponse, OidcCallbackQuery, OidcExchangeRequest, OidcProvider,
};
use crate::config::OIDC_CALLBACK_PATH;
use crate::db::{SsoIdentity, SsoOutcome};
use crate::sign_in::SessionEnded;
use crate::state::AppState;

/// A sign-in sent to the provider must come back within this.
const LOGIN_TTL_MS: i64 = 10 * 60 * 1000;
/// The dashboard exchanges the hand-off code within this.
const HANDOFF_TTL_MS: i64 = 60 * 1000;
pub const LOGIN_PATH: &str = "/api/auth/oidc/login";

fn require_sso(state: &AppState) -> ApiResult<()> {
    if state.config.oidc_enabled() {
        Ok(())
    } else {
        Err(ApiError::NotFound(
            "single sign-on is not configured on this server".into(),
        ))
    }
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A 302 that no cache keeps.
fn found(location: &str) -> Response {
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, location.to_owned()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response()
}

pub async fn providers(State(state): State<AppState>) -> axum::Json<AuthProviders> {
    let config = &state.config;
    axum::Json(AuthProviders {
        oidc: config.oidc_enabled().then(|| OidcProvider {
            display_name: config.oidc_display_name.clone(),
            login_url: LOGIN_PATH.to_owned(),
        }),
    })
}

/// Each start stores a row: counted per address like password sign-ins.
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> ApiResult<Response> {
    require_sso(&state)?;
    state
        .limits()
        .check_and_record(
            &format!("oidc-login:{}", peer.ip()),
            state.config.login_attempts_per_address,
            super::auth::LOGIN_WINDOW,
        )
        .await?;
    let begun = state.sso.begin(&state.config).await?;
    state
        .store
        .save_oidc_login(
            &begun.state,
            &begun.nonce,
            &begun.pkce_verifier,
            LOGIN_TTL_MS,
        )
        .await?;
    Ok(found(&begun.url))
}

pub async fn callback(
    State(state): State<AppState>,
    Query(q): Query<OidcCallbackQuery>,
) -> ApiResult<Response> {
    require_sso(&state)?;
    let config = &state.config;
    let state_param = q
        .state
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::BadRequest("the sign-in state is missing".into()))?;
    let login = state
        .store
        .take_oidc_login(&state_param)
        .await?
        .ok_or_else(|| {
            ApiError::BadRequest(
                "unknown or already used sign-in state; start the sign-in again".into(),
            )
        })?;
    if crate::db::now_ms() - login.created_at > LOGIN_TTL_MS {
        return Err(ApiError::BadRequest(
            "this sign-in took longer than 10 minutes; start it again".into(),
        ));
    }
    if let Some(error) = q.error {
        let detail = q.error_description.unwrap_or_default();
        return Err(ApiError::BadRequest(format!(
            "the provider refused the sign-in: {error} {detail}"
        )));
    }
    let code = q
        .code
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::BadRequest("the authorization code is missing".into()))?;
    let verified = state
        .sso
        .finish(config, &code, &login.nonce, &login.pkce_verifier)
        .await?;

    let default_role = config.oidc_new_user_role().map_err(ApiError::BadRequest)?;
    let map = config.oidc_group_role_map().map_err(ApiError::BadRequest)?;
    // With a mapping, the provider decides the role at every sign-in: the highest mapped
    // group, else the default role; without one, local roles stay as they are.
    let (new_user_role, group_role) = if map.is_empty() {
        (default_role, None)
    } else {
        let role = crate::oidc::role_from_groups(&map, &verified.groups).or(default_role);
        if role.is_none() {
            return Err(ApiError::Forbidden(format!(
                "{} is in no group allowed to sign in here; ask an administrator",
                verified.email
            )));
        }
        (role, role)
    };
    let handoff = hex::encode(rand::random::<[u8; 32]>());
    let outcome = state
        .store
        .sso_sign_in(SsoIdentity {
            email: &verified.email,
            new_user_role,
            group_role,
            handoff_hash: &sha256_hex(&handoff),
        })
        .await?;
    match outcome {
        SsoOutcome::Unknown => Err(ApiError::Forbidden(format!(
            "{} has no account on this server; ask an administrator",
            verified.email
        ))),
        SsoOutcome::Disabled => Err(ApiError::Forbidden(
            "this account is disabled; ask an administrator".into(),
        )),
        SsoOutcome::SignedIn {
            user,
            created,
            role_changed,
        } => {
            if role_changed {
                state.announce_session_ended(SessionEnded::AllOf(user.id.clone()));
            }
            tracing::info!(user = %user.id, created, role = %user.role, "single sign-on");
            // The dashboard lives where the callback route is mounted, minus the route.
            let base = config
                .oidc_redirect_url
                .strip_suffix(OIDC_CALLBACK_PATH)
                .unwrap_or("");
            Ok(found(&format!("{base}/#/sso?code={handoff}")))
        }
    }
}

/// The dashboard's half: the one-time code from the redirect, for a session.
pub async fn exchange(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(req): Json<OidcExchangeRequest>,
) -> ApiResult<axum::Json<LoginResponse>> {
    require_sso(&state)?;
    let unknown =
        || ApiError::BadRequest("unknown, used or expired sign-in code; sign in again".into());
    let user_id = state
        .store
        .take_oidc_handoff(&sha256_hex(req.code.trim()), HANDOFF_TTL_MS)
        .await?
        .ok_or_else(unknown)?;
    let user = state
        .store
        .user_by_id(&user_id)
        .await?
        .ok_or_else(unknown)?;
    if user.disabled {
        return Err(ApiError::Forbidden(
            "this account is disabled; ask an administrator".into(),
        ));
    }
    let response =
        super::auth::start_session(&state, user, &peer.ip().to_string(), &headers, true).await?;
    Ok(axum::Json(response))
}
