//! Live events for the dashboard: agents going online/offline, commands changing state.

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    AgentStatus {
        agent_id: String,
        online: bool,
        hostname: String,
    },
    CommandUpdated {
        id: String,
        agent_id: String,
        status: String,
    },
    /// An agent's update changed state (see `rollout::status`).
    AgentUpdate {
        agent_id: String,
        update_id: String,
        to_version: String,
        status: String,
    },
    /// A piece of a running command's output (`command_output` from its agent).
    CommandOutput {
        id: String,
        agent_id: String,
        stream: String,
        seq: i64,
        data: String,
    },
    /// An alert opened, was acknowledged or resolved.
    Alert {
        id: String,
        agent_id: String,
        status: String,
        severity: String,
    },
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::AgentStatus { .. } => "agent_status",
            Event::CommandUpdated { .. } => "command_updated",
            Event::AgentUpdate { .. } => "agent_update",
            Event::CommandOutput { .. } => "command_output",
            Event::Alert { .. } => "alert",
        }
    }
}

#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            tx: broadcast::channel(1024).0,
        }
    }
}

impl EventBus {
    /// Publishes to whoever listens on this node; no listener is fine. Other nodes hear of it
    /// through [`crate::state::AppState::publish`].
    pub fn publish(&self, event: Event) {
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}
