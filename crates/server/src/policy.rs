//! Policies reaching agents: an agent's effective policy is the merge, setting by setting, of
//! the policies assigned to the fleet, its client, its site and itself (the more specific
//! wins), each setting remembering the policy and scope it came from.
//!
//! It goes out as a `policy` message: after `auth` when the agent's revision differs, with a
//! legacy heartbeat's answer likewise, and at once after any change to every connected agent
//! whose effective revision is not the one it last reported. A change on one node tells the
//! others (`Notice::PoliciesChanged`); each recomputes for the sockets it holds. A lost notice
//! waits until the agent reconnects.

use std::collections::{BTreeMap, HashMap};

use gururmm_protocol::{Policy, PolicySettings, PolicyStatus};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use crate::cluster::Notice;
use crate::db::{AssignmentRecord, DbResult, PolicyStatusRecord};
use crate::hub::Outbound;
use crate::scope::{Placement, Scope};
use crate::session::sanitize;
use crate::state::AppState;

/// Where one effective setting came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub policy_id: String,
    pub policy_name: String,
    pub policy_version: i64,
    pub scope: Scope,
}

/// An agent's effective policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Effective {
    pub settings: PolicySettings,
    pub revision: String,
    /// By setting name, for the settings that are set.
    pub sources: BTreeMap<String, Source>,
}

impl Effective {
    /// The message for an agent that runs with `agent_revision`, or None when it has this
    /// one already (an agent with no policy needs no empty one).
    pub fn to_send(&self, agent_revision: Option<&str>) -> Option<Policy> {
        match agent_revision {
            Some(r) if r == self.revision => None,
            None if self.settings.is_empty() => None,
            _ => Some(Policy {
                revision: self.revision.clone(),
                settings: self.settings.clone(),
            }),
        }
    }
}

/// Merges the assignments that cover `placement`, least specific first.
pub fn merge(placement: &Placement, assignments: &[AssignmentRecord]) -> Effective {
    let mut covering: Vec<&AssignmentRecord> = assignments
        .iter()
        .filter(|a| placement.covers(&a.scope))
        .collect();
    covering.sort_by_key(|a| a.scope.kind);
    let mut merged = Map::new();
    let mut sources = BTreeMap::new();
    for a in covering {
        let Ok(Value::Object(fields)) = serde_json::to_value(&a.settings) else {
            continue;
        };
        for (field, value) in fields {
            sources.insert(
                field.clone(),
                Source {
                    policy_id: a.policy_id.clone(),
                    policy_name: a.policy_name.clone(),
                    policy_version: a.policy_version,
                    scope: a.scope.clone(),
                },
            );
            merged.insert(field, value);
        }
    }
    // Each value came from a PolicySettings, so the merge reads back as one.
    let settings: PolicySettings =
        serde_json::from_value(Value::Object(merged)).unwrap_or_default();
    Effective {
        revision: settings.revision(),
        settings,
        sources,
    }
}

/// The agent's effective policy, or None for an unknown agent.
pub async fn effective_for(state: &AppState, agent_id: &str) -> DbResult<Option<Effective>> {
    let Some(placement) = state.store.agent_placement(agent_id).await? else {
        return Ok(None);
    };
    let assignments = state.store.list_policy_assignments().await?;
    Ok(Some(merge(&placement, &assignments)))
}

/// What the agent last said, as the API shows it: applied, refused (with the reason) or
/// pending (it has not answered for the effective revision yet).
pub fn applied_state(effective: &Effective, status: Option<&PolicyStatusRecord>) -> &'static str {
    match status {
        Some(s) if s.revision == effective.revision && s.applied => "applied",
        Some(s) if s.revision == effective.revision => "refused",
        // No policy at all and none reported: agent.toml applies, nothing to wait for.
        None if effective.settings.is_empty() => "applied",
        _ => "pending",
    }
}

/// A `policy_status` from the agent, bounded (hostile input) and stored.
pub async fn record_status(state: &AppState, agent_id: &str, mut s: PolicyStatus) -> DbResult<()> {
    sanitize::no_nul(&mut s.revision);
    sanitize::bounded(&mut s.revision, 64);
    if let Some(e) = s.error.as_mut() {
        sanitize::no_nul(e);
        sanitize::bounded(e, 1000);
    }
    if s.applied {
        tracing::info!(agent_id, revision = %sanitize::for_log(&s.revision), "agent applied its policy");
    } else {
        tracing::warn!(agent_id, revision = %sanitize::for_log(&s.revision), error = %sanitize::for_log(s.error.as_deref().unwrap_or("")), "agent refused its policy");
    }
    state.store.set_policy_status(agent_id, &s).await
}

/// Right after `auth`: the agent gets its policy when its revision differs, off the socket's
/// task (which never waits on the database).
pub(crate) fn offer_on_connect(
    state: &AppState,
    agent_id: &str,
    revision: Option<String>,
    tx: mpsc::Sender<Outbound>,
) {
    let (task_state, agent_id) = (state.clone(), agent_id.to_owned());
    let accepted = state.deferred.spawn(async move {
        let outcome = crate::db::retry_while_unavailable("agent policy", || {
            effective_for(&task_state, &agent_id)
        })
        .await;
        match outcome {
            Ok(Some(eff)) => {
                if let Some(p) = eff.to_send(revision.as_deref()) {
                    let _ = tx.send(Outbound::Policy(Box::new(p))).await;
                }
            }
            Ok(None) => {}
            Err(e) => tracing::error!(agent_id, error = %e, "deciding an agent's policy failed"),
        }
    });
    if !accepted {
        tracing::debug!("agent policy check dropped: too many wait for the database");
    }
}

/// Policies or assignments changed here: the agents on this node get theirs, and the other
/// nodes are told to do the same for theirs.
pub fn changed(state: &AppState) {
    push_local(state);
    state.cluster.tell_others(Notice::PoliciesChanged);
}

/// Sends every agent connected to this node whose effective policy is not the one it last
/// reported its policy (in the background).
pub fn push_local(state: &AppState) {
    if state.hub.connected_count() == 0 {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = push_connected(&state).await {
            tracing::warn!(error = %e, "pushing changed policies failed");
        }
    });
}

async fn push_connected(state: &AppState) -> DbResult<()> {
    let assignments = state.store.list_policy_assignments().await?;
    let statuses: HashMap<String, PolicyStatusRecord> = state.store.policy_statuses().await?;
    let placements = state.store.placements().await?;
    let mut sent = 0usize;
    for (agent_id, _) in state.hub.connected_agents() {
        let Some(placement) = placements.iter().find(|p| p.agent_id == agent_id) else {
            continue;
        };
        let eff = merge(placement, &assignments);
        let reported = statuses.get(&agent_id).map(|s| s.revision.as_str());
        if let Some(p) = eff.to_send(reported) {
            if state.hub.send_policy(&agent_id, p) {
                sent += 1;
            }
        }
    }
    tracing::info!(sent, "changed policies sent to the agents connected here");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::ScopeKind;

    fn assigned(kind: ScopeKind, id: Option<&str>, settings: PolicySettings) -> AssignmentRecord {
        AssignmentRecord {
            id: format!("a-{}", kind.as_str()),
            policy_id: format!("p-{}", kind.as_str()),
            policy_name: kind.as_str().to_owned(),
            policy_version: 1,
            settings,
            scope: Scope {
                kind,
                id: id.map(str::to_owned),
            },
            created_at: 0,
        }
    }

    #[test]
    fn the_more_specific_scope_wins_setting_by_setting() {
        let here = Placement {
            agent_id: "ag".into(),
            site_id: Some("si".into()),
            client_id: Some("cl".into()),
        };
        let interval = |v| PolicySettings {
            metrics_interval_seconds: Some(v),
            ..Default::default()
        };
        // Listed most specific first: the order of the rows does not matter.
        let rows = vec![
            assigned(ScopeKind::Agent, Some("other"), interval(11)),
            assigned(ScopeKind::Site, Some("si"), interval(30)),
            assigned(
                ScopeKind::Client,
                Some("cl"),
                PolicySettings {
                    heartbeat_interval_seconds: Some(20),
                    ..interval(40)
                },
            ),
            assigned(
                ScopeKind::Fleet,
                None,
                PolicySettings {
                    cpu_alert_percent: Some(90),
                    ..interval(50)
                },
            ),
        ];
        let eff = merge(&here, &rows);
        assert_eq!(eff.settings.metrics_interval_seconds, Some(30));
        assert_eq!(eff.settings.heartbeat_interval_seconds, Some(20));
        assert_eq!(eff.settings.cpu_alert_percent, Some(90));
        assert_eq!(
            eff.sources["metrics_interval_seconds"].scope.kind,
            ScopeKind::Site
        );
        assert_eq!(eff.sources["cpu_alert_percent"].policy_name, "fleet");
        assert_eq!(eff.revision, eff.settings.revision());
        // Nothing applies: an empty policy, which an agent without one does not need.
        let elsewhere = Placement {
            agent_id: "x".into(),
            site_id: None,
            client_id: None,
        };
        let none = merge(&elsewhere, &rows[..3]);
        assert!(none.settings.is_empty() && none.sources.is_empty());
        assert_eq!(none.to_send(None), None);
        assert!(none.to_send(Some(&eff.revision)).is_some());
        assert_eq!(eff.to_send(Some(&eff.revision)), None);
    }
}
