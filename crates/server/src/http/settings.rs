//! Settings administrators change in the dashboard.

use axum::extract::State;

use super::error::{ApiError, ApiResult};
use super::extract::{AuthUser, Json};
use super::types::{ServerSettings, ServerSettingsUpdate};
use crate::db::Actor;
use crate::settings::REQUIRE_TWO_FACTOR;
use crate::state::AppState;

async fn current(state: &AppState) -> ApiResult<ServerSettings> {
    Ok(ServerSettings {
        require_two_factor: state.settings.require_two_factor(&state.store).await?,
        require_two_factor_by_config: state.config.require_two_factor,
    })
}

pub async fn get(
    State(state): State<AppState>,
    _admin: AuthUser,
) -> ApiResult<axum::Json<ServerSettings>> {
    Ok(axum::Json(current(&state).await?))
}

pub async fn update(
    State(state): State<AppState>,
    admin: AuthUser,
    Json(body): Json<ServerSettingsUpdate>,
) -> ApiResult<axum::Json<ServerSettings>> {
    if let Some(on) = body.require_two_factor {
        // Requiring it without having it would confine this admin to the setup page.
        if on && !admin.two_factor {
            return Err(ApiError::Conflict(
                "set up your own two-factor sign-in first: requiring it without it would lock you out"
                    .into(),
            ));
        }
        state
            .store
            .set_setting(
                REQUIRE_TWO_FACTOR,
                if on { "true" } else { "false" },
                Actor::user(&admin.id),
            )
            .await?;
        state.settings.set_require_two_factor(on);
    }
    Ok(axum::Json(current(&state).await?))
}
