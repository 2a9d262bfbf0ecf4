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

pub mod deferred;
pub mod delivery;
pub mod enroll;
pub mod live_output;
pub mod metrics_writer;
pub mod results;
pub mod sanitize;

pub(crate) use delivery::CommandSink;
pub use enroll::{authenticate, Authenticated, Refused};

use gururmm_protocol::{AgentMessage, CommandResult, ParseError};

use crate::db::{retry_while_unavailable, DbResult};
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
                self.state.alerting.on_metrics(self.state, id, &m);
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
            AgentMessage::CommandOutput(o) => {
                self.state.live_output.queue(id, o);
                Ok(())
            }
            AgentMessage::WatchdogEvent(mut e) => {
                sanitize::watchdog_event(&mut e);
                store.insert_watchdog_event(id, &e).await?;
                if e.kind() == gururmm_protocol::WatchdogEventKind::GaveUp {
                    self.state
                        .alerting
                        .on_watchdog_gave_up(self.state, id, &e.service)
                        .await;
                }
                Ok(())
            }
            AgentMessage::UpdateStatus(u) => self.update_status(u).await,
            AgentMessage::PolicyStatus(p) => crate::policy::record_status(self.state, id, p).await,
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

    /// For a socket: takes `msg` without waiting on the database. Heartbeats and metrics
    /// reports go to memory anyway (presence, the metrics queue); anything else is written by
    /// a deferred task that waits out a database outage ([`deferred`]). A command result,
    /// once stored, is acknowledged by sending its id to `acks`.
    pub async fn take(&self, msg: AgentMessage, acks: &tokio::sync::mpsc::Sender<String>) {
        let in_memory = matches!(
            msg,
            AgentMessage::Heartbeat(_)
                | AgentMessage::MetricsReport(_)
                | AgentMessage::CommandOutput(_)
                | AgentMessage::Auth(_)
                | AgentMessage::Unsupported(_)
        );
        if in_memory {
            // These never touch the database here: no error to report.
            let _ = self.ingest(msg).await;
            return;
        }
        let (kind, ack) = match &msg {
            AgentMessage::CommandResult(r) => ("command_result", Some(r.id.clone())),
            AgentMessage::NetworkState(_) => ("network_state", None),
            AgentMessage::UpdateStatus(_) => ("update_status", None),
            AgentMessage::PolicyStatus(_) => ("policy_status", None),
            _ => ("watchdog_event", None),
        };
        self.defer(kind, ack, acks, move |state, agent_id| {
            let msg = msg.clone();
            async move { AgentSession::new(&state, &agent_id).ingest(msg).await }
        });
    }

    /// [`AgentSession::unreadable`] for a socket: written like [`AgentSession::take`].
    pub fn take_unreadable(&self, error: ParseError, acks: &tokio::sync::mpsc::Sender<String>) {
        tracing::warn!(agent_id = self.agent_id, error = %sanitize::for_log(&error.to_string()), "malformed message from agent");
        // An unreadable result is answered (its command fails with the reason), so the agent
        // may drop it: sending it again would not make it readable.
        let ack = match error.message_type.as_deref() {
            Some("command_result") => error.command_id.clone(),
            _ => None,
        };
        self.defer("unreadable", ack, acks, move |state, agent_id| {
            let error = error.clone();
            async move {
                AgentSession::new(&state, &agent_id)
                    .fail_unreadable_result(&error)
                    .await
            }
        });
    }

    /// Runs `write` (retried while the database is away) in a deferred task; then sends
    /// `ack` to `acks`, if any.
    fn defer<F, Fut>(
        &self,
        kind: &'static str,
        ack: Option<String>,
        acks: &tokio::sync::mpsc::Sender<String>,
        write: F,
    ) where
        F: Fn(AppState, String) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = DbResult<()>> + Send + 'static,
    {
        let state = self.state.clone();
        let agent_id = self.agent_id.to_owned();
        let acks = acks.clone();
        let accepted = self.state.deferred.spawn(async move {
            let outcome = retry_while_unavailable("agent messages", || {
                write(state.clone(), agent_id.clone())
            })
            .await;
            match outcome {
                // A full channel only costs the ack: the agent sends the result again later.
                Ok(()) => {
                    if let Some(id) = ack {
                        let _ = acks.try_send(id);
                    }
                }
                Err(e) => {
                    tracing::error!(agent_id, message_type = kind, error = %e, "storing an agent message failed")
                }
            }
        });
        if !accepted {
            tracing::debug!(
                agent_id = self.agent_id,
                message_type = kind,
                "agent message dropped: too many wait for the database"
            );
        }
    }

    /// How an update is going, from the agent: its row moves forward (see
    /// [`crate::db::Store::set_update_state`]) and the dashboard hears of it. An unknown state
    /// or update is logged and ignored.
    async fn update_status(&self, mut u: gururmm_protocol::UpdateStatus) -> DbResult<()> {
        let id = self.agent_id;
        sanitize::update_status(&mut u);
        tracing::info!(agent_id = id, version = %sanitize::for_log(&u.version), state = %sanitize::for_log(&u.state), reason = %sanitize::for_log(u.reason.as_deref().unwrap_or("")), "agent update status");
        if !gururmm_protocol::update_state::ALL.contains(&u.state.as_str()) {
            tracing::warn!(agent_id = id, state = %sanitize::for_log(&u.state), "unknown update state ignored");
            return Ok(());
        }
        let changed = self
            .state
            .store
            .set_update_state(
                id,
                u.update_id.as_deref(),
                &u.version,
                &u.state,
                u.reason.as_deref(),
            )
            .await?;
        if let Some(row) = changed {
            crate::rollout::publish(self.state, &row);
        }
        Ok(())
    }

    /// Stores a metrics report and waits until it is written (a legacy poll answers only
    /// then, so the agent keeps in its outbox whatever was not stored).
    pub async fn store_metrics_now(&self, mut m: gururmm_protocol::MetricsReport) -> DbResult<()> {
        sanitize::metrics(&mut m);
        self.state
            .alerting
            .on_metrics(self.state, self.agent_id, &m);
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
        self.fail_unreadable_result(error).await
    }

    /// When an unreadable frame was a result naming its command: that command fails.
    async fn fail_unreadable_result(&self, error: &ParseError) -> DbResult<()> {
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
