//! Notifications: channels (webhook, Slack, Teams, email), routes (which severities of which
//! scope go to which channel) and a delivery queue in the database, so a slow or failing
//! channel never delays alert evaluation or the other channels, and every node can deliver.
//!
//! The interface alerting uses: queue a notice in the same transaction as the alert change
//! ([`enqueue_alert_notice`]), then [`wake`] the delivery worker after the commit.

use crate::alerting::Severity;
use crate::db::DbResult;
use crate::state::AppState;

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

/// Queues one delivery per channel whose routes match the notice, inside the caller's
/// transaction (the alert change and its notifications commit together).
pub async fn enqueue_alert_notice(
    _tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    _notice: &AlertNotice,
) -> DbResult<()> {
    // Placeholder until the delivery queue lands (issue 14, notifications).
    Ok(())
}

/// Tells this node's delivery worker that work was queued (call after the commit).
pub fn wake(_state: &AppState) {}
