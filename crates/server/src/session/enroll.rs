//! Who an agent is: its own `grmm_` key, or enrollment with a site code or an enrollment
//! token (`grmt_`) plus its device id. Only the key proves identity: an enrollment whose
//! device id belongs to an agent makes a new record awaiting approval, never a takeover.
//! Enrollment is rate limited per source address, and every refused one is audited.

use std::net::IpAddr;
use std::time::Duration;

use gururmm_protocol::Auth;
use rand::RngCore;

use super::sanitize::bounded;
use crate::auth::{key_hash, new_agent_key, AGENT_KEY_PREFIX};
use crate::db::{Approval, DbResult, EnrollVia, NewAgent, TokenRefusal};
use crate::rate_limit::Limited;
use crate::site_code;
use crate::state::AppState;

/// Enrollment tokens start with this, so they are told apart from keys and site codes.
pub const TOKEN_PREFIX: &str = "grmt_";

/// A new enrollment token: the prefix and 32 random bytes in hex.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// The agent authenticated: its id, a newly issued key when it enrolled, and whether the
/// record waits for a technician's approval.
pub struct Authenticated {
    pub agent_id: String,
    pub issued_key: Option<String>,
    pub approval: Approval,
}

impl Authenticated {
    /// What the agent is told when its record waits for approval.
    pub fn message(&self) -> Option<String> {
        (self.approval == Approval::Pending).then(|| {
            "enrolled; waiting for a technician's approval before commands are sent".to_owned()
        })
    }
}

/// Why authentication was refused.
pub enum Refused {
    /// Unknown key, site code or token; expired, revoked or used-up token; bad identity.
    Unknown(String),
    /// Too many enrollments from this address.
    RateLimited(crate::rate_limit::RetryAfter),
}

impl Refused {
    pub fn message(&self) -> String {
        match self {
            Refused::Unknown(m) => m.clone(),
            Refused::RateLimited(r) => format!(
                "too many enrollment attempts from this address; try again in {} s",
                r.0.as_secs() + 1
            ),
        }
    }
}

/// What the agent says about itself, cleaned and bounded (it is hostile input).
struct Identity {
    device_id: String,
    hostname: String,
    os_type: String,
    os_version: String,
    arch: String,
    version: String,
    capabilities: String,
}

impl Identity {
    fn from_auth(auth: &Auth) -> Identity {
        let clean = |s: &str, max: usize| {
            let mut s = s.trim().to_owned();
            bounded(&mut s, max);
            s
        };
        Identity {
            device_id: clean(&auth.device_id, 255),
            hostname: clean(&auth.hostname, 255),
            os_type: clean(&auth.os_info.os_type, 64),
            os_version: clean(&auth.os_info.os_version, 128),
            arch: clean(&auth.os_info.arch, 32),
            version: clean(&auth.version, 64),
            capabilities: crate::db::capabilities_column(&auth.capabilities),
        }
    }

    /// Whether the stored record already says all this.
    fn matches(&self, agent: &crate::db::AgentRecord) -> bool {
        let same = |stored: &Option<String>, said: &str| stored.as_deref() == Some(said);
        agent.hostname == self.hostname
            && same(&agent.device_id, &self.device_id)
            && same(&agent.os_type, &self.os_type)
            && same(&agent.os_version, &self.os_version)
            && same(&agent.arch, &self.arch)
            && same(&agent.version, &self.version)
            && agent.capabilities.join(",") == self.capabilities
    }

    fn as_new_agent<'a>(&'a self, site_id: Option<&'a str>, key_hash: &'a str) -> NewAgent<'a> {
        NewAgent {
            site_id,
            hostname: &self.hostname,
            device_id: Some(&self.device_id),
            os_type: Some(&self.os_type),
            os_version: Some(&self.os_version),
            arch: Some(&self.arch),
            version: Some(&self.version),
            api_key_hash: key_hash,
            capabilities: Some(&self.capabilities),
        }
    }
}

/// Shows what was tried without giving it away: `AMBER-****-****`, `grmt_ab…`.
fn masked(code: &str) -> String {
    if let Some(rest) = code.strip_prefix(TOKEN_PREFIX) {
        let head: String = rest.chars().take(2).collect();
        return format!("{TOKEN_PREFIX}{head}…");
    }
    let first: String = code
        .split('-')
        .next()
        .unwrap_or("")
        .chars()
        .take(16)
        .collect();
    format!("{first}-****-****")
}

/// Checks an agent's credentials, from `peer`.
pub async fn authenticate(
    state: &AppState,
    auth: &Auth,
    peer: IpAddr,
) -> DbResult<Result<Authenticated, Refused>> {
    let store = &state.store;
    let identity = Identity::from_auth(auth);
    if identity.hostname.is_empty() || identity.device_id.is_empty() {
        return Ok(Err(Refused::Unknown(
            "hostname and device_id are required".into(),
        )));
    }

    if auth.api_key.starts_with(AGENT_KEY_PREFIX) {
        let hash = key_hash(&auth.api_key);
        let Some(agent) = store.agent_by_key_hash(&hash).await? else {
            return Ok(Err(Refused::Unknown("unknown agent key".into())));
        };
        // Written only when the agent says something new (an upgrade, a rename); the time
        // it was seen goes with the next presence batch.
        if !identity.matches(&agent) {
            store
                .update_agent_identity(&agent.id, &identity.as_new_agent(None, &hash))
                .await?;
        }
        return Ok(Ok(Authenticated {
            agent_id: agent.id,
            issued_key: None,
            approval: agent.approval,
        }));
    }

    // Enrollment: counted per address before anything is looked up, so concurrent guesses
    // cannot pass the limit.
    let limit = state.config.enrollments_per_minute_per_address;
    let limited = state
        .limits()
        .check_and_record(&format!("enroll-ip:{peer}"), limit, Duration::from_secs(60))
        .await;
    match limited {
        Ok(()) => {}
        Err(Limited::Retry(wait)) => {
            tracing::info!(%peer, "enrollment refused: rate limit");
            return Ok(Err(Refused::RateLimited(wait)));
        }
        Err(Limited::Store(e)) => return Err(e),
    }
    let presented = auth.api_key.trim();
    let fail = |reason: &str| {
        let details = format!("from {peer}: {reason} ({})", masked(presented));
        let message = reason.to_owned();
        async move {
            tracing::info!(%peer, reason = %details, "enrollment refused");
            store
                .audit_failed_enrollment(&details)
                .await
                .map(|()| Err(Refused::Unknown(message)))
        }
    };

    let (site_id, via_token) = if presented.starts_with(TOKEN_PREFIX) {
        let Some(token) = store.token_by_hash(&key_hash(presented)).await? else {
            return fail("unknown enrollment token").await;
        };
        if let Err(why) = token.usable(crate::db::now_ms()) {
            return fail(match why {
                TokenRefusal::Revoked => "enrollment token revoked",
                TokenRefusal::Expired => "enrollment token expired",
                TokenRefusal::UsedUp => "enrollment token used up",
            })
            .await;
        }
        let Some(site_id) = token.site_id else {
            return fail("enrollment token has no site").await;
        };
        (site_id, Some(token.id))
    } else {
        let code = site_code::normalize(presented);
        if !site_code::is_site_code(&code) {
            return fail("not a site code, enrollment token or agent key").await;
        }
        let Some(site) = store.site_by_code(&code).await? else {
            return fail("unknown site code").await;
        };
        (site.id, None)
    };
    let require_approval = store
        .site(&site_id)
        .await?
        .is_some_and(|s| s.require_approval);

    let key = new_agent_key();
    let hash = key_hash(&key);
    let via = match &via_token {
        Some(id) => EnrollVia::Token(id),
        None => EnrollVia::SiteCode,
    };
    let enrolled = match store
        .enroll_agent(
            identity.as_new_agent(Some(&site_id), &hash),
            require_approval,
            via,
        )
        .await
    {
        // The token's last use went to a concurrent enrollment.
        Err(e) if e.is_conflict() && via_token.is_some() => {
            return fail("enrollment token used up").await
        }
        other => other?,
    };
    tracing::info!(agent_id = %enrolled.agent_id, %site_id, approval = enrolled.approval.as_str(), claims = ?enrolled.claims_agent_id, "agent enrolled");
    Ok(Ok(Authenticated {
        agent_id: enrolled.agent_id,
        issued_key: Some(key),
        approval: enrolled.approval,
    }))
}
