use std::sync::Arc;

use crate::auth::JwtKeys;
use crate::config::Config;
use crate::db::Store;
use crate::events::EventBus;
use crate::hub::Hub;
use crate::rate_limit::RateLimiter;

/// Everything a request handler or a socket task needs, cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub store: Store,
    pub jwt: JwtKeys,
    /// Seals TOTP secrets at rest.
    pub two_factor: crate::two_factor::SecretBox,
    pub hub: Hub,
    pub events: EventBus,
    pub limiter: RateLimiter,
    /// The "session ended" broadcast, the password-check count.
    pub sign_in: crate::sign_in::SignIn,
    /// Settings administrators change at run time (cached from the database).
    pub settings: crate::settings::RuntimeSettings,
    /// Single sign-on: the OpenID Connect provider's client, discovered on first use.
    pub sso: crate::oidc::Sso,
    /// Flips to true when the server shuts down, so long-lived sockets close.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

impl AppState {
    /// Whether every user must sign in with a second factor: the operator's config, or an
    /// administrator's setting.
    pub async fn two_factor_required(&self) -> crate::db::DbResult<bool> {
        Ok(self.config.require_two_factor || self.settings.require_two_factor(&self.store).await?)
    }

    pub fn new(inner: Inner) -> AppState {
        AppState(Arc::new(inner))
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
