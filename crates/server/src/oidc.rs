//! Single sign-on through OpenID Connect (Microsoft Entra ID or any compliant provider): the
//! authorization code flow with PKCE (S256), state and nonce. The `openidconnect` crate does
//! discovery, the authorization URL, the code exchange and the ID token's verification
//! (signature against the provider's keys, issuer, audience, expiry, nonce).
//!
//! Which email counts: `email` when `email_verified` is true; a token saying
//! `email_verified: false` is refused. Entra ID sends no `email_verified`: then `email`, or
//! else `preferred_username` when it is an address, is taken as the provider's word. That is
//! safe only for an issuer of one tenant (its admins own the addresses), which is why the
//! issuer must name the tenant: tokens of any other issuer fail verification.

use std::time::{Duration, Instant};

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse,
};

use crate::auth::Role;
use crate::config::Config;
use crate::http::error::ApiError;

type Provider = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Discovery (with the provider's signing keys) is fetched again after this, so a key
/// rotation at the provider is picked up.
const METADATA_TTL: Duration = Duration::from_secs(10 * 60);

/// The provider's client, discovered on first use (the provider need not be up when the
/// server starts) and cached.
pub struct Sso {
    http: openidconnect::reqwest::Client,
    provider: tokio::sync::Mutex<Option<(Instant, Provider)>>,
}

impl Default for Sso {
    fn default() -> Self {
        Sso {
            http: openidconnect::reqwest::ClientBuilder::new()
                // Following redirects would let a provider's answer point us anywhere (SSRF).
                .redirect(openidconnect::reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(15))
                .build()
                .expect("HTTP client for the sign-in provider"),
            provider: Default::default(),
        }
    }
}

/// A sign-in to send the browser to, with what the callback will need.
pub struct Begun {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// What a verified ID token says about the user.
#[derive(Debug)]
pub struct Verified {
    /// Lower-case, per the rule at the top of this module.
    pub email: String,
    pub groups: Vec<String>,
}

impl Sso {
    async fn provider(&self, config: &Config) -> Result<Provider, ApiError> {
        let mut cached = self.provider.lock().await;
        if let Some((at, provider)) = cached.as_ref() {
            if at.elapsed() < METADATA_TTL {
                return Ok(provider.clone());
            }
        }
        let unreachable = |what: &str, e: &dyn std::fmt::Display| {
            tracing::warn!(issuer = %config.oidc_issuer, error = %e, "single sign-on: {what}");
            ApiError::Unavailable("the sign-in provider cannot be reached; try again".into())
        };
        let issuer = IssuerUrl::new(config.oidc_issuer.clone())
            .map_err(|e| unreachable("bad issuer URL", &e))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| unreachable("discovery failed", &error_chain(&e)))?;
        let redirect = RedirectUrl::new(config.oidc_redirect_url.clone())
            .map_err(|e| unreachable("bad redirect URL", &e))?;
        let secret = (!config.oidc_client_secret.is_empty())
            .then(|| ClientSecret::new(config.oidc_client_secret.clone()));
        let provider = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(config.oidc_client_id.clone()),
            secret,
        )
        .set_redirect_uri(redirect);
        *cached = Some((Instant::now(), provider.clone()));
        Ok(provider)
    }

    /// The provider's authorization URL for a new sign-in (PKCE S256, fresh state and nonce).
    pub async fn begin(&self, config: &Config) -> Result<Begun, ApiError> {
        let provider = self.provider(config).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = provider
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge)
            .url();
        Ok(Begun {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges the code (with the PKCE verifier) and verifies the ID token and its nonce.
    pub async fn finish(
        &self,
        config: &Config,
        code: &str,
        nonce: &str,
        pkce_verifier: &str,
    ) -> Result<Verified, ApiError> {
        let provider = self.provider(config).await?;
        let refused = |what: &str, e: &dyn std::fmt::Display| {
            tracing::info!(error = %e, "single sign-on refused: {what}");
            ApiError::BadRequest(format!("single sign-on failed: {what}"))
        };
        let tokens = provider
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| refused("the provider has no token endpoint", &e))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(|e| refused("the provider refused the code", &error_chain(&e)))?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| refused("the provider sent no ID token", &"no id_token"))?;
        let claims = id_token
            .claims(&provider.id_token_verifier(), &Nonce::new(nonce.to_owned()))
            .map_err(|e| refused(&format!("the ID token is not valid ({e})"), &e))?;
        let extra = verified_payload(&id_token.to_string());
        let email = claims.email().map(|e| e.as_str().to_owned());
        let email = match claims.email_verified() {
            Some(true) => email,
            Some(false) => None,
            // Entra ID: no email_verified; see the rule at the top of this module.
            None => email.or(extra.preferred_username.filter(|u| u.contains('@'))),
        };
        let email = email
            .and_then(|e| crate::auth::validate_email(&e).ok())
            .ok_or_else(|| {
                ApiError::Forbidden(
                    "the provider did not vouch for an email address (a verified email is needed)"
                        .into(),
                )
            })?;
        Ok(Verified {
            email,
            groups: extra.groups,
        })
    }
}

/// Claims the core types do not carry, read from an ID token whose signature has just been
/// verified.
#[derive(serde::Deserialize, Default)]
struct ExtraClaims {
    #[serde(default)]
    groups: Vec<String>,
    preferred_username: Option<String>,
}

fn verified_payload(jwt: &str) -> ExtraClaims {
    use base64::Engine;
    jwt.split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|json| serde_json::from_slice(&json).ok())
        .unwrap_or_default()
}

/// The role the provider's groups give: the highest mapped one, if any group is mapped.
pub fn role_from_groups(map: &[(String, Role)], groups: &[String]) -> Option<Role> {
    map.iter()
        .filter(|(group, _)| groups.iter().any(|g| g == group))
        .map(|(_, role)| *role)
        .max()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_mapped_group_role_wins() {
        let map = vec![
            ("techs".to_owned(), Role::Technician),
            ("admins".to_owned(), Role::Admin),
        ];
        let groups = |g: &[&str]| g.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            role_from_groups(&map, &groups(&["techs", "admins", "x"])),
            Some(Role::Admin)
        );
        assert_eq!(
            role_from_groups(&map, &groups(&["techs"])),
            Some(Role::Technician)
        );
        assert_eq!(role_from_groups(&map, &groups(&["other"])), None);
    }
}
