use std::sync::Arc;

use crate::auth::JwtKeys;
use crate::cluster::Notice;
use crate::config::Config;
use crate::db::Store;
use crate::events::{Event, EventBus};
use crate::hub::Hub;
use crate::rate_limit::RateLimiter;
use crate::sign_in::SessionEnded;

/// Everything a request handler or a socket task needs, cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub store: Store,
    pub jwt: JwtKeys,
    /// Seals TOTP secrets at rest.
    pub two_factor: crate::two_factor::SecretBox,
    pub hub: Hub,
    /// The metrics write path: queued, written in batches.
    pub metrics: crate::session::metrics_writer::MetricsWriter,
    /// Live output pieces of running commands: kept and relayed, written in batches.
    pub live_output: crate::session::live_output::LiveOutput,
    /// Other agent messages, written off the sockets' tasks (they never wait on the database).
    pub deferred: crate::session::deferred::DeferredWrites,
    /// This node among the others on the same database.
    pub cluster: crate::cluster::Cluster,
    /// Alert rules and their evaluation (cached rules, in-memory conditions, the writer).
    pub alerting: crate::alerting::Alerting,
    /// This node's dashboard event streams; publish through [`AppState::publish`].
    pub events: EventBus,
    pub limiter: RateLimiter,
    /// The "session ended" broadcast, the password-check count.
    pub sign_in: crate::sign_in::SignIn,
    /// Settings administrators change at run time (cached from the database).
    pub settings: crate::settings::RuntimeSettings,
    /// Single sign-on: the OpenID Connect provider's client, discovered on first use.
    pub sso: crate::oidc::Sso,
    /// The release public key (base64) agents check updates against, from
    /// `release_public_key_file`; None when there is none (no `update` is sent then).
    pub release_public_key: Option<String>,
    /// Wakes this node's notification delivery worker.
    pub notifier: crate::notify::Notifier,
    /// Flips to true when the server shuts down, so long-lived sockets close.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

impl AppState {
    /// Whether every user must sign in with a second factor: the operator's config, or an
    /// administrator's setting.
    pub async fn two_factor_required(&self) -> crate::db::DbResult<bool> {
        Ok(self.config.require_two_factor || self.settings.require_two_factor(&self.store).await?)
    }

    pub fn new(inner: Inner) -> AppState {
        AppState(Arc::new(inner))
    }

    /// Sign-in and enrollment limits, counted for the whole cluster.
    pub fn limits(&self) -> crate::rate_limit::SharedLimits<'_> {
        crate::rate_limit::SharedLimits::new(&self.store)
    }

    /// An agent moved, or a client or site went: effective policies and alert placements are
    /// worked out again, here and on the other nodes.
    pub async fn placement_changed(&self) {
        crate::policy::changed(self);
        self.alerting.changed(self).await;
    }

    /// A dashboard event, for the technicians on every node.
    pub fn publish(&self, event: Event) {
        self.events.publish(event.clone());
        self.cluster.tell_others(Notice::Event { event });
    }

    /// The agent has new pending commands: its socket sends them, on whichever node it is.
    /// Waits (bounded) when the socket is on this node.
    pub async fn dispatch(&self, agent_id: &str) {
        if !self.hub.dispatch(agent_id).await {
            self.cluster.tell_others(Notice::Dispatch {
                agent_id: agent_id.to_owned(),
            });
        }
    }

    /// Closes the agent's socket (close code 4003 with `reason`), on whichever node it is.
    pub async fn disconnect_agent(&self, agent_id: &str, reason: &'static str) {
        self.hub.disconnect(agent_id, reason).await;
        self.cluster.tell_others(Notice::Disconnect {
            agent_id: agent_id.to_owned(),
            reason: reason.to_owned(),
        });
    }

    /// Ends event streams of a session (or of all a user's sessions), on every node.
    pub fn announce_session_ended(&self, ended: SessionEnded) {
        self.sign_in.announce_ended_local(ended.clone());
        self.cluster.tell_others(Notice::SessionEnded { ended });
    }

    /// Online: a socket or a recent legacy poll, on this node or (as recorded) another.
    pub fn is_online(&self, agent: &crate::db::AgentRecord) -> bool {
        let window = self.config.idle_timeout();
        self.hub.is_online(&agent.id, window)
            || self
                .cluster
                .presence
                .online_elsewhere(&self.cluster.node_id, agent, window)
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
