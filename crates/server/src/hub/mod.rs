//! The agents' connections: which agent is online, and the way a command reaches its agent.
//!
//! Each connected agent has one socket task (see `socket.rs`) that alone writes to its socket.
//! Others talk to it through a channel. Sending a command means asking that task to flush the
//! agent's pending commands from the database: it sends each, and only a send that succeeded
//! turns a command `running`, so a failed send leaves it pending for the next connection.

mod socket;

pub use socket::ws_handler;
pub(crate) use socket::{authenticate, store_metrics, Authenticated};

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::events::Event;
use crate::state::AppState;

/// Where commands are written: the agent's socket (a seam so tests can make sends fail).
pub(crate) trait CommandSink {
    async fn send_command(&mut self, command: gururmm_protocol::Command) -> Result<(), String>;
}

/// Sends every pending command of the agent, oldest first. A command turns `running` only
/// once its frame was written; returns false when a send failed (that command and the rest
/// stay pending for the next connection).
pub(crate) async fn deliver_pending(
    state: &AppState,
    agent_id: &str,
    sink: &mut impl CommandSink,
) -> bool {
    let pending = match state.store.pending_commands(agent_id).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(agent_id, error = %e, "cannot read pending commands");
            return true;
        }
    };
    for command in pending {
        if let Err(e) = sink.send_command(command.to_wire()).await {
            tracing::warn!(agent_id, command_id = %command.id, error = %e, "command send failed; it stays pending");
            return false;
        }
        match state.store.mark_running(&command.id).await {
            Ok(true) => state.events.publish(Event::CommandUpdated {
                id: command.id.clone(),
                agent_id: agent_id.to_owned(),
                status: gururmm_protocol::command_status::RUNNING.into(),
            }),
            Ok(false) => {}
            Err(e) => {
                tracing::error!(agent_id, command_id = %command.id, error = %e, "cannot mark command running")
            }
        }
    }
    true
}

pub(crate) enum Outbound {
    /// Send every pending command of this agent, then acknowledge.
    Flush(Option<oneshot::Sender<()>>),
    /// A newer connection of the same agent took over: close this one.
    Replaced,
}

struct Connection {
    conn_id: u64,
    tx: mpsc::Sender<Outbound>,
}

#[derive(Default)]
pub struct Hub {
    connections: Mutex<HashMap<String, Connection>>,
    /// Legacy (HTTP polling) agents: when each last polled.
    legacy_polls: Mutex<HashMap<String, Instant>>,
    next_conn_id: AtomicU64,
}

impl Hub {
    /// Registers a live socket for `agent_id`, replacing (and closing) any older one.
    pub(crate) fn register(&self, agent_id: &str, tx: mpsc::Sender<Outbound>) -> u64 {
        let conn_id = self.next_conn_id.fetch_add(1, Ordering::Relaxed) + 1;
        let old = self
            .connections
            .lock()
            .expect("hub lock")
            .insert(agent_id.to_owned(), Connection { conn_id, tx });
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

    pub fn connected_count(&self) -> usize {
        self.connections.lock().expect("hub lock").len()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{NewAgent, NewCommand};

    /// Accepts `ok` sends, then fails every one, like a socket whose peer vanished.
    struct FlakySink {
        ok: usize,
        sent: Vec<String>,
    }

    impl CommandSink for FlakySink {
        async fn send_command(&mut self, command: gururmm_protocol::Command) -> Result<(), String> {
            if self.sent.len() < self.ok {
                self.sent.push(command.id);
                Ok(())
            } else {
                Err("connection reset".into())
            }
        }
    }

    #[tokio::test]
    async fn a_failed_send_leaves_the_command_pending_for_redelivery() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::Config {
            data_dir: dir.path().to_owned(),
            ..Default::default()
        };
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let state = crate::build_state(config, rx).await.unwrap();
        let agent = state
            .store
            .insert_agent(NewAgent {
                site_id: None,
                hostname: "h",
                device_id: None,
                os_type: None,
                os_version: None,
                arch: None,
                version: None,
                api_key_hash: "x",
            })
            .await
            .unwrap();
        let mut ids = Vec::new();
        for _ in 0..3 {
            let c = state
                .store
                .insert_command(NewCommand {
                    agent_id: &agent,
                    command_type: "shell",
                    command: "true",
                    interpreter: None,
                    timeout_seconds: 5,
                    elevated: false,
                    created_by: None,
                })
                .await
                .unwrap();
            ids.push(c.id);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let mut flaky = FlakySink {
            ok: 1,
            sent: vec![],
        };
        assert!(!deliver_pending(&state, &agent, &mut flaky).await);
        let status = |id: &str| {
            let store = state.store.clone();
            let id = id.to_owned();
            async move { store.command(&id).await.unwrap().unwrap().status }
        };
        assert_eq!(status(&ids[0]).await, "running");
        assert_eq!(status(&ids[1]).await, "pending");
        assert_eq!(status(&ids[2]).await, "pending");

        // The next connection gets exactly the two that did not go out, in order.
        let mut healthy = FlakySink {
            ok: 10,
            sent: vec![],
        };
        assert!(deliver_pending(&state, &agent, &mut healthy).await);
        assert_eq!(healthy.sent, ids[1..].to_vec());
        assert_eq!(status(&ids[2]).await, "running");
    }
}
