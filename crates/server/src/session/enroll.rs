//! Who an agent is: its own `grmm_` key, or enrollment with a site code plus its device id.

use gururmm_protocol::Auth;

use super::sanitize::bounded;
use crate::auth::{key_hash, new_agent_key, AGENT_KEY_PREFIX};
use crate::db::{DbResult, NewAgent};
use crate::site_code;
use crate::state::AppState;

/// The agent authenticated: its id, and a newly issued key when it enrolled by site code.
pub struct Authenticated {
    pub agent_id: String,
    pub issued_key: Option<String>,
}

/// What the agent says about itself, cleaned and bounded (it is hostile input).
struct Identity {
    device_id: String,
    hostname: String,
    os_type: String,
    os_version: String,
    arch: String,
    version: String,
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
        }
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
        }
    }
}

/// Checks an agent's credentials. Ok(None): unknown key or site code (the caller refuses).
pub async fn authenticate(state: &AppState, auth: &Auth) -> DbResult<Option<Authenticated>> {
    let store = &state.store;
    let identity = Identity::from_auth(auth);
    if identity.hostname.is_empty() || identity.device_id.is_empty() {
        return Ok(None);
    }

    if auth.api_key.starts_with(AGENT_KEY_PREFIX) {
        let hash = key_hash(&auth.api_key);
        let Some(agent_id) = store.agent_id_by_key_hash(&hash).await? else {
            return Ok(None);
        };
        store
            .update_agent_identity(&agent_id, &identity.as_new_agent(None, &hash))
            .await?;
        return Ok(Some(Authenticated {
            agent_id,
            issued_key: None,
        }));
    }

    let code = site_code::normalize(&auth.api_key);
    if !site_code::is_site_code(&code) {
        return Ok(None);
    }
    let Some(site) = store.site_by_code(&code).await? else {
        return Ok(None);
    };
    let key = new_agent_key();
    let hash = key_hash(&key);
    let agent_id = store
        .enroll_agent(identity.as_new_agent(Some(&site.id), &hash))
        .await?;
    tracing::info!(agent_id, site_id = %site.id, "agent enrolled with a site code");
    Ok(Some(Authenticated {
        agent_id,
        issued_key: Some(key),
    }))
}
