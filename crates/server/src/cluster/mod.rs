//! Several server nodes on one database.
//!
//! Agents and technicians may reach any node, so what one node learns the others must hear:
//!
//! - **Notices** (`Notice`): dashboard events, "this agent has a command waiting", "close this
//!   agent's socket", "this session ended", "this agent connected here", "a rollout changed"
//!   and "a technician asked to update this agent" (so agents connected to any node get their
//!   `update` at once, not only at their next connect). On PostgreSQL they
//!   travel by `NOTIFY` on one channel and every node `LISTEN`s (see `notify.rs`); on SQLite
//!   there is one node and nothing travels.
//! - **Presence** (`presence.rs`): which node holds each agent's socket, when agents were last
//!   heard from, when legacy agents polled. Kept in memory and written in batches, once a
//!   second, so a heartbeat costs no database round trip; each node beats in `server_nodes`,
//!   and an agent held by a node whose beat stopped counts as offline.
//! - **Leases**: background work (timeouts, retention) runs on the node holding its lease.
//!
//! A lost notice costs latency, not correctness: commands stay pending in the database and
//! every node re-offers waiting commands to the agents it holds (`resync`); a lost rollout or
//! update notice waits until the agent next connects.

pub mod notify;
pub mod presence;

use std::sync::OnceLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::events::Event;
use crate::sign_in::SessionEnded;

pub use presence::Presence;

/// What a node tells the others.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notice {
    /// A dashboard event, for the technicians connected to other nodes.
    Event { event: Event },
    /// The agent has pending commands: the node holding its socket sends them.
    Dispatch { agent_id: String },
    /// Close the agent's socket (deleted, or its identity changed).
    Disconnect { agent_id: String, reason: String },
    /// The agent's newest socket is on the sending node: any older one elsewhere closes.
    Connected { agent_id: String },
    /// Close the event streams of an ended session.
    SessionEnded { ended: SessionEnded },
    /// The rollout of os/arch changed: each node evaluates the agents connected to it.
    RolloutChanged { os: String, arch: String },
    /// A technician asked for an update of the agent: the node holding its socket offers it.
    UpdateRequested { agent_id: String },
    /// A node started: the others count it alive at once (and start telling it things).
    Hello,
    /// Policies or their assignments changed: each node sends the agents it holds theirs.
    PoliciesChanged,
    /// Alert rules or maintenance windows changed: each node reloads its cache.
    AlertRulesChanged,
}

/// Queue size for notices waiting to be sent; a burst beyond it is dropped with a warning
/// (commands are re-offered by the resync, dashboards refresh).
const OUTBOX_CAPACITY: usize = 50_000;

/// This node's place in the cluster.
pub struct Cluster {
    pub node_id: String,
    pub started_at: i64,
    pub presence: Presence,
    outbox: OnceLock<mpsc::Sender<Notice>>,
}

impl Cluster {
    pub fn new(idle_timeout: Duration) -> Cluster {
        Cluster {
            node_id: crate::db::new_id(),
            started_at: crate::db::now_ms(),
            presence: Presence::new(idle_timeout),
            outbox: OnceLock::new(),
        }
    }

    /// Starts sending notices (PostgreSQL); returns the queue's receiving end for the sender.
    pub(crate) fn open_outbox(&self) -> mpsc::Receiver<Notice> {
        let (tx, rx) = mpsc::channel(OUTBOX_CAPACITY);
        let _ = self.outbox.set(tx);
        rx
    }

    /// Tells the other nodes, if any is alive. Never waits. A node alone sends nothing (a
    /// restart storm on one node costs no notices); a node that starts says hello, so the
    /// others count it at once.
    pub fn tell_others(&self, notice: Notice) {
        let Some(tx) = self.outbox.get() else {
            return;
        };
        if !matches!(notice, Notice::Hello) && !self.presence.others_alive(&self.node_id) {
            return;
        }
        if tx.try_send(notice).is_err() {
            tracing::warn!("cluster notice dropped: the outbox is full or closed");
        }
    }
}

/// Reasons a socket is closed on another node's request, mapped back to the fixed texts the
/// close frame carries (an unknown one closes with a generic reason).
pub fn known_close_reason(reason: &str) -> &'static str {
    const KNOWN: [&str; 4] = [
        "agent deleted",
        "replaced by an approved enrollment",
        "approved: reconnect with your agent key",
        "enrollment rejected",
    ];
    KNOWN
        .into_iter()
        .find(|k| *k == reason)
        .unwrap_or("disconnected by the server")
}
