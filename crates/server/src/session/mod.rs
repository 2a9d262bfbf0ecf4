//! One agent session, whatever the transport. The WebSocket hub (`hub::socket`) and the legacy
//! HTTP endpoints (`http::legacy`) are thin adapters over this module:
//!
//! - [`enroll::authenticate`]: an agent key, or a site code plus device id (enrollment);
//! - [`AgentSession::ingest`]: what the agent reports (heartbeats, metrics, network state,
//!   watchdog events, command results), cleaned of NUL bytes and bounded, then stored;
//! - [`AgentSession::hand_out`]: its pending commands, oldest first, each turning `running`
//!   only once the transport took it;
//! - [`results`]: how a result is capped and stored, and what status it gives its command.
//!
//! A new agent message is handled here once, and both transports get it.

pub mod delivery;
pub mod enroll;
pub mod metrics_writer;
pub mod results;
pub mod sanitize;

pub(crate) use delivery::CommandSink;
pub use enroll::{authenticate, Authenticated, Refused};

use gururmm_protocol::{AgentMessage, CommandResult, ParseError};

use crate::db::DbResult;
use crate::state::AppState;

/// An authenticated agent, on whichever transport.
pub struct AgentSession<'a> {
    state: &'a AppState,
    agent_id: &'a str,
}

impl<'a> AgentSession<'a> {
    pub fn new(state: &'a AppState, agent_id: &'a str) -> AgentSession<'a> {
        AgentSession { state, agent_id }
    }

    pub fn agent_id(&self) -> &str {
        self.agent_id
    }

    /// The agent was heard from: `last_seen` is written with the next presence batch.
    pub fn seen(&self) {
        self.state.cluster.presence.seen(self.agent_id);
    }

    /// Stores one message the agent reported. Everything in it is hostile input: strings are
    /// cleaned of NUL bytes and bounded before they reach the database.
    pub async fn ingest(&self, msg: AgentMessage) -> DbResult<()> {
        let store = &self.state.store;
        let id = self.agent_id;
        match msg {
            AgentMessage::Heartbeat(_) => {
                self.seen();
                Ok(())
            }
            AgentMessage::MetricsReport(mut m) => {
                sanitize::metrics(&mut m);
                self.state.metrics.queue(id, m).await;
                Ok(())
            }
            AgentMessage::NetworkState(mut n) => {
                sanitize::network_state(&mut n);
                let json = serde_json::to_string(&n).unwrap_or_default();
                store
                    .store_network_state(id, &n.hash, &json)
                    .await
                    .map(drop)
            }
            AgentMessage::CommandResult(r) => self.record_result(r).await.map(drop),
            AgentMessage::WatchdogEvent(mut e) => {
                sanitize::watchdog_event(&mut e);
                store.insert_watchdog_event(id, &e).await
            }
            AgentMessage::Auth(_) => {
                tracing::warn!(
                    agent_id = id,
                    "auth message on an authenticated session ignored"
                );
                Ok(())
            }
            AgentMessage::Unsupported(u) => {
                tracing::warn!(agent_id = id, message_type = %sanitize::for_log(&u.message_type), "unsupported message type from agent ignored");
                Ok(())
            }
        }
    }

    /// Stores a metrics report and waits until it is written (a legacy poll answers only
    /// then, so the agent keeps in its outbox whatever was not stored).
    pub async fn store_metrics_now(&self, mut m: gururmm_protocol::MetricsReport) -> DbResult<()> {
        sanitize::metrics(&mut m);
        self.state.metrics.store(self.agent_id, m).await
    }

    /// Stores a command result; returns the command's status now, or None when this agent
    /// has no such command (logged, nothing stored).
    pub async fn record_result(&self, mut result: CommandResult) -> DbResult<Option<String>> {
        sanitize::command_result(&mut result);
        results::record(self.state, self.agent_id, &result).await
    }

    /// A frame the server could not read. When it was a result naming its command, that
    /// command still ends: failed, with the reason, so nothing stays `running` forever.
    pub async fn unreadable(&self, error: &ParseError) -> DbResult<()> {
        tracing::warn!(agent_id = self.agent_id, error = %sanitize::for_log(&error.to_string()), "malformed message from agent");
        if let (Some("command_result"), Some(id)) =
            (error.message_type.as_deref(), error.command_id.as_deref())
        {
            let failed = CommandResult {
                id: id.to_owned(),
                exit_code: -1,
                stdout: String::new(),
                stderr: format!(
                    "the server could not read this command's result: {}",
                    error.reason
                ),
                duration_ms: 0,
                timed_out: false,
            };
            self.record_result(failed).await?;
        }
        Ok(())
    }

    /// Hands the agent its pending commands, oldest first, through `sink`. Returns false when
    /// the transport failed (that command and the rest stay pending).
    pub(crate) async fn hand_out(&self, sink: &mut impl CommandSink) -> bool {
        delivery::hand_out(self.state, self.agent_id, sink).await
    }
}
