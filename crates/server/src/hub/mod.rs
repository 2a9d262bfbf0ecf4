//! The agents' connections: which agent is online, and the way a command reaches its agent.
//!
//! Each connected agent has one socket task (see `socket.rs`) that alone writes to its socket.
//! Others talk to it through a channel. Sending a command means asking that task to flush the
//! agent's pending commands (`session::AgentSession::hand_out`): they are claimed (`running`)
//! in one statement and sent; a failed send gives back what did not go, pending for the next
//! connection. Sockets on other server nodes are reached through `cluster`.

pub mod pending;
mod socket;

pub use socket::ws_handler;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

pub(crate) enum Outbound {
    /// Send every pending command of this agent, then acknowledge.
    Flush(Option<oneshot::Sender<()>>),
    /// Send this `update` (the rollout decided off the socket's task).
    Update(Box<gururmm_protocol::Update>),
    /// Send this `policy` (the agent's effective policy changed).
    Policy(Box<gururmm_protocol::Policy>),
    /// A newer connection of the same agent took over: close this one.
    Replaced,
    /// Close the socket with code 4003 and this reason: the agent was deleted, or its
    /// identity changed (an enrollment approved or rejected) and it must reconnect.
    Close(&'static str),
}

struct Connection {
    conn_id: u64,
    tx: mpsc::Sender<Outbound>,
    /// Where this agent downloads builds from (its `update` URLs).
    downloads: crate::rollout::DownloadBase,
}

#[derive(Default)]
pub struct Hub {
    connections: Mutex<HashMap<String, Connection>>,
    /// Legacy (HTTP polling) agents: when each last polled.
    legacy_polls: Mutex<HashMap<String, Instant>>,
    next_conn_id: AtomicU64,
    /// Sockets not yet authenticated, capped per address and in total.
    pub pending: Arc<pending::PendingSockets>,
}

impl Hub {
    /// Registers a live socket for `agent_id`, replacing (and closing) any older one.
    pub(crate) fn register(
        &self,
        agent_id: &str,
        tx: mpsc::Sender<Outbound>,
        downloads: crate::rollout::DownloadBase,
    ) -> u64 {
        let conn_id = self.next_conn_id.fetch_add(1, Ordering::Relaxed) + 1;
        let old = self.connections.lock().expect("hub lock").insert(
            agent_id.to_owned(),
            Connection {
                conn_id,
                tx,
                downloads,
            },
        );
        if let Some(old) = old {
            tracing::info!(agent_id, "a new connection replaces the previous one");
            let _ = old.tx.try_send(Outbound::Replaced);
        }
        conn_id
    }

    /// Removes the socket if it is still the registered one; returns whether it was.
    pub(crate) fn unregister(&self, agent_id: &str, conn_id: u64) -> bool {
        let mut conns = self.connections.lock().expect("hub lock");
        if conns.get(agent_id).is_some_and(|c| c.conn_id == conn_id) {
            conns.remove(agent_id);
            true
        } else {
            false
        }
    }

    /// Closes the agent's live socket at once (close code 4003 with `reason`) and forgets its
    /// legacy polls: the agent was deleted, or its identity changed (an enrollment approved or
    /// rejected) and it must reconnect with its key.
    pub async fn disconnect(&self, agent_id: &str, reason: &'static str) {
        self.legacy_polls.lock().expect("hub lock").remove(agent_id);
        let tx = match self.connections.lock().expect("hub lock").get(agent_id) {
            Some(c) => c.tx.clone(),
            None => return,
        };
        let _ =
            tokio::time::timeout(Duration::from_secs(5), tx.send(Outbound::Close(reason))).await;
    }

    /// A legacy agent polled this node (recorded for the other nodes by the caller).
    pub fn note_legacy_poll(&self, agent_id: &str) {
        self.legacy_polls
            .lock()
            .expect("hub lock")
            .insert(agent_id.to_owned(), Instant::now());
    }

    /// Online: a live socket, or (legacy agents) a poll within `legacy_window`.
    pub fn is_online(&self, agent_id: &str, legacy_window: Duration) -> bool {
        self.connections
            .lock()
            .expect("hub lock")
            .contains_key(agent_id)
            || self
                .legacy_polls
                .lock()
                .expect("hub lock")
                .get(agent_id)
                .is_some_and(|t| t.elapsed() < legacy_window)
    }

    pub fn is_connected(&self, agent_id: &str) -> bool {
        self.connections
            .lock()
            .expect("hub lock")
            .contains_key(agent_id)
    }

    /// Hands an `update` to the agent's socket task, if on this node; false when it has none.
    pub fn send_update(&self, agent_id: &str, update: gururmm_protocol::Update) -> bool {
        match self.connections.lock().expect("hub lock").get(agent_id) {
            Some(c) => c.tx.try_send(Outbound::Update(Box::new(update))).is_ok(),
            None => false,
        }
    }

    /// Hands a `policy` to the agent's socket task, if on this node; false when it has none.
    pub fn send_policy(&self, agent_id: &str, policy: gururmm_protocol::Policy) -> bool {
        match self.connections.lock().expect("hub lock").get(agent_id) {
            Some(c) => c.tx.try_send(Outbound::Policy(Box::new(policy))).is_ok(),
            None => false,
        }
    }

    /// Asks the agent's socket task (if on this node) to send its pending commands, without
    /// waiting.
    pub fn flush(&self, agent_id: &str) {
        if let Some(c) = self.connections.lock().expect("hub lock").get(agent_id) {
            let _ = c.tx.try_send(Outbound::Flush(None));
        }
    }

    /// The agent connected to another node: its socket here (if any) is stale. It is
    /// forgotten first, so closing it announces no "offline".
    pub fn replaced_elsewhere(&self, agent_id: &str) {
        if let Some(old) = self.connections.lock().expect("hub lock").remove(agent_id) {
            tracing::info!(
                agent_id,
                "the agent connected to another node; closing its socket here"
            );
            let _ = old.tx.try_send(Outbound::Replaced);
        }
    }

    /// The agents connected here, with where each downloads builds from.
    pub fn connected_agents(&self) -> Vec<(String, crate::rollout::DownloadBase)> {
        self.connections
            .lock()
            .expect("hub lock")
            .iter()
            .map(|(id, c)| (id.clone(), c.downloads.clone()))
            .collect()
    }

    /// Where the agent downloads builds from, if it is connected here: the address its own
    /// connection reached (or `public_url`).
    pub fn download_base(&self, agent_id: &str) -> Option<crate::rollout::DownloadBase> {
        self.connections
            .lock()
            .expect("hub lock")
            .get(agent_id)
            .map(|c| c.downloads.clone())
    }

    pub fn connected_count(&self) -> usize {
        self.connections.lock().expect("hub lock").len()
    }

    /// Legacy agents that polled this node within `window`.
    pub fn legacy_online_count(&self, window: Duration) -> usize {
        self.legacy_polls
            .lock()
            .expect("hub lock")
            .values()
            .filter(|t| t.elapsed() < window)
            .count()
    }

    /// Asks the agent's socket task to send its pending commands and waits (bounded) until it
    /// has. Returns false when the agent has no socket; the commands then wait in the database.
    pub async fn dispatch(&self, agent_id: &str) -> bool {
        let tx = match self.connections.lock().expect("hub lock").get(agent_id) {
            Some(c) => c.tx.clone(),
            None => return false,
        };
        let (ack_tx, ack_rx) = oneshot::channel();
        if tx.send(Outbound::Flush(Some(ack_tx))).await.is_err() {
            return false;
        }
        matches!(
            tokio::time::timeout(Duration::from_secs(5), ack_rx).await,
            Ok(Ok(()))
        )
    }
}
