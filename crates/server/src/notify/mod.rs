//! Notifications: channels (webhook, Slack, Teams, email), routes (which severities of which
//! scope go to which channel) and a delivery queue in the database, so a slow or failing
//! channel never delays alert evaluation or the other channels, and every node can deliver.
//!
//! The interface alerting uses: queue a notice in the same transaction as the alert change
//! ([`enqueue_alert_notice`]), then [`wake`] the delivery worker after the commit.

mod send;
pub mod worker;

use serde::{Deserialize, Serialize};

use crate::alerting::Severity;
use crate::db::notifications::{insert_delivery, matching_channels};
use crate::db::DbResult;
use crate::scope::Placement;
use crate::state::AppState;

pub use send::{signature, SIGNATURE_HEADER};

/// What happened to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertTransition {
    Opened,
    Resolved,
}

/// One alert change to tell people about.
#[derive(Debug, Clone)]
pub struct AlertNotice {
    pub alert_id: String,
    pub rule_id: Option<String>,
    pub rule_name: String,
    pub agent_id: String,
    pub hostname: String,
    pub client_id: Option<String>,
    pub site_id: Option<String>,
    pub severity: Severity,
    pub transition: AlertTransition,
    pub message: String,
    /// Unix milliseconds.
    pub at: i64,
}

/// What a delivery carries, stored with it: the webhook body as is, and what the Slack, Teams
/// and email texts are made from. `delivery_id` stays the same across retries, so receivers
/// can drop a repeat.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payload {
    /// `alert.opened`, `alert.resolved` or `test`.
    pub event: String,
    pub delivery_id: String,
    pub alert_id: Option<String>,
    pub rule_id: Option<String>,
    pub rule_name: Option<String>,
    pub agent_id: Option<String>,
    pub hostname: Option<String>,
    pub client_id: Option<String>,
    pub site_id: Option<String>,
    pub severity: Severity,
    pub message: String,
    /// Unix milliseconds.
    pub at: i64,
}

impl Payload {
    fn for_notice(delivery_id: String, n: &AlertNotice) -> Payload {
        Payload {
            event: match n.transition {
                AlertTransition::Opened => "alert.opened",
                AlertTransition::Resolved => "alert.resolved",
            }
            .into(),
            delivery_id,
            alert_id: Some(n.alert_id.clone()),
            rule_id: n.rule_id.clone(),
            rule_name: Some(n.rule_name.clone()),
            agent_id: Some(n.agent_id.clone()),
            hostname: Some(n.hostname.clone()),
            client_id: n.client_id.clone(),
            site_id: n.site_id.clone(),
            severity: n.severity,
            message: n.message.clone(),
            at: n.at,
        }
    }

    /// The "send test" notice of a channel.
    pub fn test(delivery_id: String, channel_name: &str) -> Payload {
        Payload {
            event: "test".into(),
            delivery_id,
            alert_id: None,
            rule_id: None,
            rule_name: None,
            agent_id: None,
            hostname: None,
            client_id: None,
            site_id: None,
            severity: Severity::Info,
            message: format!("Test notification to channel {channel_name:?} from GuruRMM"),
            at: crate::db::now_ms(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a payload serializes")
    }
}

/// Queues one delivery per channel whose routes match the notice, inside the caller's
/// transaction (the alert change and its notifications commit together).
pub async fn enqueue_alert_notice(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    notice: &AlertNotice,
) -> DbResult<()> {
    let placement = Placement {
        agent_id: notice.agent_id.clone(),
        site_id: notice.site_id.clone(),
        client_id: notice.client_id.clone(),
    };
    for channel in matching_channels(tx, &placement, notice.severity).await? {
        let id = crate::db::new_id();
        let payload = Payload::for_notice(id.clone(), notice).to_json();
        insert_delivery(tx, &id, &channel, Some(&notice.alert_id), &payload).await?;
    }
    Ok(())
}

/// Tells this node's delivery worker that work was queued (call after the commit).
pub fn wake(state: &AppState) {
    state.notifier.wake();
}

/// This node's handle on its delivery worker.
#[derive(Default)]
pub struct Notifier {
    wake: tokio::sync::Notify,
}

impl Notifier {
    pub fn wake(&self) {
        // Stores a permit when the worker is busy, so the wake is never lost.
        self.wake.notify_one();
    }
}
