//! Agent releases and their rollout: which agent gets which build, and when.
//!
//! A rollout is the target version of one (os, arch) with a scope: everyone, chosen sites or
//! clients, or a percentage of agents. The percentage is deterministic: each agent has a
//! bucket 0..99 from the SHA-256 of its id and the rollout's os/arch, and is in while its
//! bucket is below the percentage, so the same agents stay in as the percentage grows.
//!
//! [`offer`] decides, for one agent that just connected (or polled), whether it gets an
//! `update`: a technician's request waiting for it first, else the rollout. It never resends
//! a version that is in progress, and never retries a failed one by itself (a technician's
//! retry does). The `agent_updates` row records the life cycle: `pending` (sent), then what
//! the agent reports (`downloading`, `installed`, `failed`, `rolled_back`), and `completed`
//! once the agent connects with the new version; one the agent stops reporting on is failed
//! after `update_report_timeout_seconds` (`upkeep`).
//!
//! A changed rollout ([`reevaluate`]) and a technician's request ([`offer_if_connected`])
//! reach agents connected right now, on this node and, through cluster notices, on the
//! others.

use std::cmp::Ordering;

use gururmm_protocol::Update;
use serde::{Deserialize, Serialize};

use crate::db::{AgentRecord, AgentUpdateRecord, Approval, DbResult, ReleaseRecord};
use crate::events::Event;
use crate::state::AppState;

pub const OSES: [&str; 2] = ["linux", "windows"];
pub const ARCHES: [&str; 2] = ["x86_64", "aarch64"];

/// The states of an `agent_updates` row.
pub mod status {
    /// Sent (or, with no `sent_at`, requested by a technician and waiting for the agent).
    pub const PENDING: &str = "pending";
    pub const DOWNLOADING: &str = "downloading";
    pub const INSTALLED: &str = "installed";
    /// The agent connected with the new version.
    pub const COMPLETED: &str = "completed";
    pub const FAILED: &str = "failed";
    pub const ROLLED_BACK: &str = "rolled_back";
    /// Still going: not sent again while one of these is open.
    pub const IN_PROGRESS: [&str; 3] = [PENDING, DOWNLOADING, INSTALLED];
    pub const ALL: [&str; 6] = [
        PENDING,
        DOWNLOADING,
        INSTALLED,
        COMPLETED,
        FAILED,
        ROLLED_BACK,
    ];
}

/// Who a rollout reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
// Named apart from `crate::scope::Scope` (fleet, client, site, agent) in the API document.
#[schema(as = RolloutScope)]
pub enum Scope {
    All,
    Sites,
    Clients,
    Percentage,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::All => "all",
            Scope::Sites => "sites",
            Scope::Clients => "clients",
            Scope::Percentage => "percentage",
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Scope, String> {
        match s {
            "all" => Ok(Scope::All),
            "sites" => Ok(Scope::Sites),
            "clients" => Ok(Scope::Clients),
            "percentage" => Ok(Scope::Percentage),
            other => Err(format!(
                "unknown scope {other:?} (all, sites, clients or percentage)"
            )),
        }
    }
}

/// The target of one (os, arch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    pub os: String,
    pub arch: String,
    pub version: String,
    pub scope: Scope,
    pub site_ids: Vec<String>,
    pub client_ids: Vec<String>,
    pub percent: u8,
    pub paused: bool,
    pub updated_at: i64,
}

/// `linux` / `windows`; the message says what is accepted.
pub fn check_os(os: &str) -> Result<(), String> {
    if OSES.contains(&os) {
        Ok(())
    } else {
        Err(format!("os must be one of {OSES:?}, not {os:?}"))
    }
}

pub fn check_arch(arch: &str) -> Result<(), String> {
    if ARCHES.contains(&arch) {
        Ok(())
    } else {
        Err(format!("arch must be one of {ARCHES:?}, not {arch:?}"))
    }
}

/// A version as semver (`0.2.0`, `1.0.0-rc.1`); a leading `v` is allowed.
pub fn parse_version(text: &str) -> Result<semver::Version, String> {
    let t = text.trim();
    semver::Version::parse(t.strip_prefix('v').unwrap_or(t))
        .map_err(|e| format!("{text:?} is not a semantic version (like 1.2.3): {e}"))
}

/// Compares two versions; None when either is not a semantic version.
pub fn compare(a: &str, b: &str) -> Option<Ordering> {
    Some(parse_version(a).ok()?.cmp(&parse_version(b).ok()?))
}

/// The agent's bucket, 0..99, for the rollout of `os`/`arch`: the same on every node and
/// every evaluation.
pub fn bucket(agent_id: &str, os: &str, arch: &str) -> u8 {
    let digest = gururmm_protocol::release::digest(format!("{agent_id}/{os}/{arch}").as_bytes());
    let n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    (n % 100) as u8
}

/// The download file of a build: `gururmm-agent-linux-x86_64-0.2.0`, `...-windows-x86_64-0.2.0.exe`.
pub fn file_name(os: &str, arch: &str, version: &str) -> String {
    format!("{}-{version}{}", stable_stem(os, arch), exe(os))
}

/// The name the install commands fetch, always the newest build of os/arch:
/// `gururmm-agent-linux-x86_64`, `gururmm-agent-windows-x86_64.exe`.
pub fn stable_file_name(os: &str, arch: &str) -> String {
    format!("{}{}", stable_stem(os, arch), exe(os))
}

fn stable_stem(os: &str, arch: &str) -> String {
    format!("gururmm-agent-{os}-{arch}")
}

fn exe(os: &str) -> &'static str {
    if os == "windows" {
        ".exe"
    } else {
        ""
    }
}

impl Rollout {
    /// Whether the agent is in this rollout's scope (os and arch are the caller's match).
    pub fn includes(&self, agent: &AgentRecord) -> bool {
        match self.scope {
            Scope::All => true,
            Scope::Sites => agent
                .site_id
                .as_ref()
                .is_some_and(|s| self.site_ids.contains(s)),
            Scope::Clients => agent
                .client_id
                .as_ref()
                .is_some_and(|c| self.client_ids.contains(c)),
            Scope::Percentage => bucket(&agent.id, &self.os, &self.arch) < self.percent,
        }
    }

    /// Whether the rollout sends the agent its target now: not paused, in scope, and the
    /// target newer than what the agent runs (never a downgrade).
    pub fn wants(&self, agent: &AgentRecord) -> bool {
        let older = agent
            .version
            .as_deref()
            .and_then(|v| compare(v, &self.version))
            == Some(Ordering::Less);
        !self.paused && older && self.includes(agent)
    }
}

/// Where agents download builds from: `public_url` when set, else the address the agent (or
/// the dashboard) reached this server on, with `X-Forwarded-Proto` when a proxy sets it.
#[derive(Debug, Clone)]
pub struct DownloadBase(pub String);

impl DownloadBase {
    pub fn from_request(state: &AppState, headers: &axum::http::HeaderMap) -> DownloadBase {
        let configured = state.config.public_url.trim().trim_end_matches('/');
        if !configured.is_empty() {
            return DownloadBase(configured.to_owned());
        }
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_owned)
            .unwrap_or_else(|| state.config.listen.to_string());
        let scheme = headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .filter(|p| *p == "https" || *p == "http")
            .unwrap_or("http");
        DownloadBase(format!("{scheme}://{host}"))
    }

    pub fn url(&self, file_name: &str) -> String {
        format!("{}/downloads/{file_name}", self.0)
    }
}

/// The `update` message for a row and its release.
pub fn message(row: &AgentUpdateRecord, release: &ReleaseRecord, base: &DownloadBase) -> Update {
    Update {
        version: release.version.clone(),
        download_url: base.url(&release.file_name),
        checksum: release.sha256.clone(),
        signature: Some(release.signature.clone()),
        update_id: Some(row.id.clone()),
        size: u64::try_from(release.size).ok(),
        allow_downgrade: row.allow_downgrade,
    }
}

/// The agent just connected with `version` (after an update: `previous_version`): open
/// updates to that version are completed; then, whether it gets an `update` now (never
/// without a release public key: agents could not check it).
pub async fn on_connect(
    state: &AppState,
    agent_id: &str,
    version: &str,
    previous_version: Option<&str>,
    base: &DownloadBase,
) -> DbResult<Option<Update>> {
    for done in state
        .store
        .complete_updates(agent_id, version, previous_version)
        .await?
    {
        tracing::info!(agent_id, version = %crate::session::sanitize::for_log(version), "agent update completed");
        publish(state, &done);
    }
    if state.release_public_key.is_none() {
        return Ok(None);
    }
    offer(state, agent_id, base).await
}

/// Whether the agent gets an `update` now (and its row, `pending`, is written): a
/// technician's request waiting for it, else its rollout's target.
pub async fn offer(
    state: &AppState,
    agent_id: &str,
    base: &DownloadBase,
) -> DbResult<Option<Update>> {
    let store = &state.store;
    let Some(agent) = store.agent(agent_id).await? else {
        return Ok(None);
    };
    if agent.approval != Approval::Approved {
        return Ok(None);
    }
    let (Some(os), Some(arch)) = (agent.os_type.as_deref(), agent.arch.as_deref()) else {
        return Ok(None);
    };
    if let Some(row) = store.take_requested_update(agent_id).await? {
        return match store.release(&row.to_version, os, arch).await? {
            Some(release) => {
                publish(state, &row);
                Ok(Some(message(&row, &release, base)))
            }
            None => {
                let failed = store
                    .set_update_state(
                        agent_id,
                        Some(&row.id),
                        &row.to_version,
                        status::FAILED,
                        Some("no published build of this version for the agent's os and arch"),
                    )
                    .await?;
                failed.iter().for_each(|r| publish(state, r));
                Ok(None)
            }
        };
    }
    let Some(rollout) = store.rollout(os, arch).await? else {
        return Ok(None);
    };
    if !rollout.wants(&agent) {
        return Ok(None);
    }
    let Some(release) = store.release(&rollout.version, os, arch).await? else {
        return Ok(None);
    };
    let Some(row) = store
        .start_rollout_update(agent_id, agent.version.as_deref(), &release.version)
        .await?
    else {
        return Ok(None);
    };
    publish(state, &row);
    Ok(Some(message(&row, &release, base)))
}

/// If the agent is connected to this node: whether it gets an `update` now (see [`offer`]),
/// sent on its socket with its own connection's download base. True when one went out.
/// Used for a technician's request on this node and, from another node, its notice.
pub async fn offer_if_connected(state: &AppState, agent_id: &str) -> DbResult<bool> {
    if state.release_public_key.is_none() {
        return Ok(false);
    }
    let Some(base) = state.hub.download_base(agent_id) else {
        return Ok(false);
    };
    offer_and_send(state, agent_id, &base).await
}

/// An `update` that could not go out (the socket closed meanwhile) is put back as not sent,
/// so the agent gets it when it next connects.
async fn offer_and_send(state: &AppState, agent_id: &str, base: &DownloadBase) -> DbResult<bool> {
    let Some(update) = offer(state, agent_id, base).await? else {
        return Ok(false);
    };
    let update_id = update.update_id.clone();
    if state.hub.send_update(agent_id, update) {
        return Ok(true);
    }
    if let Some(id) = update_id {
        state.store.mark_update_unsent(&id).await?;
    }
    Ok(false)
}

/// A rollout changed: the agents connected to this node are evaluated again (in the
/// background, one after another), and those now in get their `update`. The node where it
/// changed tells the others (`Notice::RolloutChanged`), which do the same for theirs; a lost
/// notice, and legacy agents, wait until the agent next connects or polls.
pub fn reevaluate(state: &AppState, os: &str, arch: &str) {
    if state.release_public_key.is_none() {
        return;
    }
    let state = state.clone();
    let (os, arch) = (os.to_owned(), arch.to_owned());
    tokio::spawn(async move {
        let mut sent = 0usize;
        for (agent_id, base) in state.hub.connected_agents() {
            match offer_and_send(&state, &agent_id, &base).await {
                Ok(true) => sent += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "rollout evaluation stopped: storage error");
                    return;
                }
            }
        }
        tracing::info!(
            os,
            arch,
            sent,
            "rollout evaluated for the agents connected here"
        );
    });
}

/// A dashboard event for a row that changed.
pub fn publish(state: &AppState, row: &AgentUpdateRecord) {
    state.publish(Event::AgentUpdate {
        agent_id: row.agent_id.clone(),
        update_id: row.id.clone(),
        to_version: row.to_version.clone(),
        status: row.status.clone(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: &str, version: &str, site: Option<&str>, client: Option<&str>) -> AgentRecord {
        AgentRecord {
            id: id.into(),
            site_id: site.map(Into::into),
            site_name: None,
            client_id: client.map(Into::into),
            client_name: None,
            hostname: id.into(),
            device_id: None,
            os_type: Some("linux".into()),
            os_version: None,
            arch: Some("x86_64".into()),
            version: Some(version.into()),
            online: false,
            status: crate::db::AgentStatus::Offline,
            approval: Approval::Approved,
            claims_agent_id: None,
            last_seen: None,
            created_at: 0,
            connected_node: None,
            legacy_poll_at: None,
            alert_severity: None,
            capabilities: Vec::new(),
        }
    }

    fn rollout(scope: Scope) -> Rollout {
        Rollout {
            os: "linux".into(),
            arch: "x86_64".into(),
            version: "0.2.0".into(),
            scope,
            site_ids: vec!["s1".into()],
            client_ids: vec!["c1".into()],
            percent: 50,
            paused: false,
            updated_at: 0,
        }
    }

    #[test]
    fn scopes_pick_their_agents() {
        let a = agent("a", "0.1.0", Some("s1"), Some("c2"));
        let b = agent("b", "0.1.0", Some("s2"), Some("c1"));
        let none = agent("c", "0.1.0", None, None);
        assert!(rollout(Scope::All).includes(&none));
        assert!(rollout(Scope::Sites).includes(&a));
        assert!(!rollout(Scope::Sites).includes(&b));
        assert!(!rollout(Scope::Sites).includes(&none));
        assert!(rollout(Scope::Clients).includes(&b));
        assert!(!rollout(Scope::Clients).includes(&a));
    }

    #[test]
    fn only_older_agents_are_wanted_and_a_pause_stops_it() {
        let r = rollout(Scope::All);
        assert!(r.wants(&agent("a", "0.1.9", None, None)));
        assert!(r.wants(&agent("a", "0.2.0-rc.1", None, None)));
        assert!(!r.wants(&agent("a", "0.2.0", None, None)));
        assert!(
            !r.wants(&agent("a", "0.10.0", None, None)),
            "never a downgrade"
        );
        assert!(!r.wants(&agent("a", "not a version", None, None)));
        let paused = Rollout {
            paused: true,
            ..rollout(Scope::All)
        };
        assert!(!paused.wants(&agent("a", "0.1.0", None, None)));
    }

    #[test]
    fn percentage_buckets_are_stable_and_grow_monotonically() {
        let ids: Vec<String> = (0..2000).map(|i| format!("agent-{i}")).collect();
        let chosen = |percent: u8| -> Vec<&String> {
            let r = Rollout {
                percent,
                ..rollout(Scope::Percentage)
            };
            ids.iter()
                .filter(|id| r.includes(&agent(id, "0.1.0", None, None)))
                .collect()
        };
        let ten = chosen(10);
        let thirty = chosen(30);
        assert!((150..=250).contains(&ten.len()), "{}", ten.len());
        assert!((520..=680).contains(&thirty.len()), "{}", thirty.len());
        assert!(ten.iter().all(|id| thirty.contains(id)));
        assert_eq!(chosen(10), ten, "the same agents on every evaluation");
        assert_eq!(chosen(0).len(), 0);
        assert_eq!(chosen(100).len(), ids.len());
        // Another os/arch has its own buckets.
        assert_ne!(
            (0..50)
                .map(|i| bucket(&format!("a{i}"), "linux", "x86_64"))
                .collect::<Vec<_>>(),
            (0..50)
                .map(|i| bucket(&format!("a{i}"), "windows", "x86_64"))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn versions_and_file_names() {
        assert_eq!(compare("0.0.0-sim", "0.1.0"), Some(Ordering::Less));
        assert_eq!(compare("v1.2.3", "1.2.3"), Some(Ordering::Equal));
        assert_eq!(compare("1.10.0", "1.9.0"), Some(Ordering::Greater));
        assert!(parse_version("1.2").is_err());
        assert_eq!(
            file_name("windows", "x86_64", "0.2.0"),
            "gururmm-agent-windows-x86_64-0.2.0.exe"
        );
        assert_eq!(
            stable_file_name("linux", "x86_64"),
            "gururmm-agent-linux-x86_64"
        );
    }
}
