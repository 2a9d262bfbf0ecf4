//! Presence: who is connected where, and when agents were heard from. Kept in memory and
//! written once a second in one transaction, so heartbeats and reconnect storms cost no
//! database round trip each. A crash loses at most that second of last-seen times; sockets
//! held by a dead node are told apart by its stale beat.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use crate::db::{now_ms, AgentRecord, PresenceBatch};
use crate::state::AppState;

/// How often presence is written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Pending {
    seen: HashMap<String, i64>,
    /// true: this node now holds the agent's socket; false: its socket here closed.
    connected: HashMap<String, bool>,
    polled: HashMap<String, i64>,
}

pub struct Presence {
    pending: Mutex<Pending>,
    /// Nodes whose beat is fresh, as of the last check.
    live_nodes: RwLock<HashSet<String>>,
    pub beat_every: Duration,
    /// A node that has not beaten for this long is dead; its agents are offline.
    pub dead_after: Duration,
}

impl Presence {
    /// Beats often enough that a dead node's agents show offline well within `idle_timeout`.
    pub fn new(idle_timeout: Duration) -> Presence {
        let beat_every = (idle_timeout / 6).clamp(Duration::from_secs(1), Duration::from_secs(5));
        Presence {
            pending: Mutex::default(),
            live_nodes: RwLock::default(),
            beat_every,
            dead_after: beat_every * 3,
        }
    }

    pub fn seen(&self, agent_id: &str) {
        self.pending
            .lock()
            .expect("presence lock")
            .seen
            .insert(agent_id.to_owned(), now_ms());
    }

    pub fn connected(&self, agent_id: &str) {
        let mut p = self.pending.lock().expect("presence lock");
        p.connected.insert(agent_id.to_owned(), true);
        p.seen.insert(agent_id.to_owned(), now_ms());
    }

    pub fn disconnected(&self, agent_id: &str) {
        let mut p = self.pending.lock().expect("presence lock");
        p.connected.insert(agent_id.to_owned(), false);
        p.seen.insert(agent_id.to_owned(), now_ms());
    }

    pub fn polled(&self, agent_id: &str) {
        let now = now_ms();
        let mut p = self.pending.lock().expect("presence lock");
        p.polled.insert(agent_id.to_owned(), now);
        p.seen.insert(agent_id.to_owned(), now);
    }

    fn take(&self) -> PresenceBatch {
        let p = std::mem::take(&mut *self.pending.lock().expect("presence lock"));
        let (connected, disconnected): (Vec<_>, Vec<_>) =
            p.connected.into_iter().partition(|(_, up)| *up);
        PresenceBatch {
            seen: p.seen.into_iter().collect(),
            connected: connected.into_iter().map(|(id, _)| id).collect(),
            disconnected: disconnected.into_iter().map(|(id, _)| id).collect(),
            polled: p.polled.into_iter().collect(),
        }
    }

    /// Puts back a batch that could not be written; anything newer since wins.
    fn restore(&self, batch: PresenceBatch) {
        let mut p = self.pending.lock().expect("presence lock");
        for (id, at) in batch.seen {
            p.seen.entry(id).or_insert(at);
        }
        for (id, at) in batch.polled {
            p.polled.entry(id).or_insert(at);
        }
        for id in batch.connected {
            p.connected.entry(id).or_insert(true);
        }
        for id in batch.disconnected {
            p.connected.entry(id).or_insert(false);
        }
    }

    /// Writes what gathered since the last flush.
    pub async fn flush(&self, state: &AppState) {
        let batch = self.take();
        if batch.is_empty() {
            return;
        }
        let (started, agents) = (std::time::Instant::now(), batch.seen.len());
        if let Err(e) = state
            .store
            .write_presence(&state.cluster.node_id, &batch)
            .await
        {
            tracing::warn!(error = %e, "writing presence failed; retrying in a second");
            self.restore(batch);
        }
        crate::telemetry::write_batch(crate::telemetry::Writer::Presence, agents, started);
    }

    /// Agents whose presence waits to be written.
    pub fn pending_agents(&self) -> usize {
        self.pending.lock().expect("presence lock").seen.len()
    }

    /// Online as another node or a legacy poll recorded it (this node's own sockets and
    /// polls are in the hub, which is always current).
    pub fn online_elsewhere(&self, own_node: &str, agent: &AgentRecord, window: Duration) -> bool {
        let held_by_live_node = agent.connected_node.as_deref().is_some_and(|n| {
            n != own_node && self.live_nodes.read().expect("nodes lock").contains(n)
        });
        let polled_lately = agent
            .legacy_poll_at
            .is_some_and(|t| now_ms() - t < window.as_millis() as i64);
        held_by_live_node || polled_lately
    }

    fn set_live_nodes(&self, nodes: Vec<String>) {
        *self.live_nodes.write().expect("nodes lock") = nodes.into_iter().collect();
    }

    /// A node was heard from (a notice): alive now, before its next beat is read.
    pub fn heard_from(&self, node: &str) {
        if !self.live_nodes.read().expect("nodes lock").contains(node) {
            self.live_nodes
                .write()
                .expect("nodes lock")
                .insert(node.to_owned());
        }
    }

    /// Whether any node but `own_node` is alive: a lone node sends no notices.
    pub fn others_alive(&self, own_node: &str) -> bool {
        self.live_nodes
            .read()
            .expect("nodes lock")
            .iter()
            .any(|n| n != own_node)
    }
}

/// The node's presence loop: writes presence every second; beats and refreshes the set of
/// live nodes every `beat_every`.
pub async fn run(state: AppState) {
    let cluster = &state.cluster;
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_beat: Option<tokio::time::Instant> = None;
    loop {
        tick.tick().await;
        cluster.presence.flush(&state).await;
        if last_beat.is_some_and(|t| t.elapsed() < cluster.presence.beat_every) {
            continue;
        }
        last_beat = Some(tokio::time::Instant::now());
        if let Err(e) = state
            .store
            .node_beat(&cluster.node_id, cluster.started_at)
            .await
        {
            tracing::warn!(error = %e, "node beat failed");
            continue;
        }
        let since = now_ms() - cluster.presence.dead_after.as_millis() as i64;
        match state.store.live_nodes(since).await {
            Ok(nodes) => cluster.presence.set_live_nodes(nodes),
            Err(e) => tracing::warn!(error = %e, "reading live nodes failed"),
        }
        super::notify::resync(&state).await;
    }
}

/// A clean stop: what gathered is written, and this node's agents are offline at once.
pub async fn leave(state: &AppState) {
    state.cluster.presence.flush(state).await;
    if let Err(e) = state.store.leave_cluster(&state.cluster.node_id).await {
        tracing::warn!(error = %e, "leaving the cluster failed; this node's agents show offline when its beat goes stale");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_change_of_an_agent_wins_and_a_failed_batch_comes_back() {
        let p = Presence::new(Duration::from_secs(90));
        p.connected("a");
        p.disconnected("a");
        p.connected("b");
        let batch = p.take();
        assert_eq!(batch.connected, vec!["b".to_owned()]);
        assert_eq!(batch.disconnected, vec!["a".to_owned()]);
        assert_eq!(batch.seen.len(), 2);
        // Written meanwhile: b disconnected. Restoring must not bring back "b connected".
        p.disconnected("b");
        p.restore(batch);
        let again = p.take();
        assert_eq!(again.disconnected.len(), 2);
        assert!(again.connected.is_empty());
    }

    #[test]
    fn a_dead_node_is_detected_within_the_idle_timeout() {
        for idle in [10, 30, 90, 600] {
            let p = Presence::new(Duration::from_secs(idle));
            assert!(
                p.dead_after + p.beat_every
                    <= Duration::from_secs(idle).max(Duration::from_secs(4))
            );
        }
    }
}
