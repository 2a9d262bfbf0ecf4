//! Background work: commands past their deadline become `timed_out`, job commands past their
//! job's expiry `expired`; agent updates the agent
//! stopped reporting on become `failed`; old metrics are pruned; rate-limit counters are
//! trimmed. With several nodes, the shared work runs on one of them.

use std::time::Duration;

use crate::events::Event;
use crate::state::AppState;

const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Live output of finished commands is removed this often (their result is the record).
const PURGE_OUTPUT_EVERY: Duration = Duration::from_secs(60);
const UPKEEP_LEASE: &str = "upkeep";

pub async fn run(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(state.config.sweep_interval_seconds));
    let mut last_prune: Option<tokio::time::Instant> = None;
    let mut last_local_prune: Option<tokio::time::Instant> = None;
    let mut last_output_purge: Option<tokio::time::Instant> = None;
    let lease_ms = (state.config.sweep_interval_seconds * 3 * 1000) as i64;
    loop {
        tick.tick().await;
        if last_local_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            // This node's own memory: every node trims its own.
            last_local_prune = Some(tokio::time::Instant::now());
            state.limiter.prune(Duration::from_secs(3600));
        }
        // Shared work runs on one node of the cluster: the holder of the lease, which renews
        // it every tick; another node takes over when it lapses (three ticks).
        match state
            .store
            .take_lease(UPKEEP_LEASE, &state.cluster.node_id, lease_ms)
            .await
        {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "cannot take the upkeep lease");
                continue;
            }
        }
        time_out_overdue(&state).await;
        expire_job_commands(&state).await;
        crate::schedules::run_due(&state).await;
        fail_unreported_updates(&state).await;
        crate::alerting::engine::check_offline(&state).await;
        if last_output_purge.is_none_or(|t| t.elapsed() >= PURGE_OUTPUT_EVERY) {
            last_output_purge = Some(tokio::time::Instant::now());
            if let Err(e) = state.store.purge_finished_output().await {
                tracing::error!(error = %e, "removing live output of finished commands failed");
            }
        }
        if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            last_prune = Some(tokio::time::Instant::now());
            prune_metrics(&state).await;
            if let Err(e) = state.store.rate_prune(3_600_000).await {
                tracing::error!(error = %e, "pruning rate-limit counts failed");
            }
            // Old sessions are kept a while: the sign-in slowdown spares addresses a user
            // signed in from.
            if let Err(e) = state.store.prune_event_tickets().await {
                tracing::error!(error = %e, "pruning event tickets failed");
            }
            if let Err(e) = state.store.prune_sessions(90 * 86_400_000).await {
                tracing::error!(error = %e, "pruning sessions failed");
            }
            // The notification delivery log is kept as long as metrics.
            let cutoff = (state.config.metrics_retention_days as i64) * 86_400_000;
            if let Err(e) = state
                .store
                .prune_deliveries(crate::db::now_ms() - cutoff)
                .await
            {
                tracing::error!(error = %e, "pruning notification deliveries failed");
            }
        }
    }
}

/// Job commands still queued when their job's expiry passed: `expired`.
async fn expire_job_commands(state: &AppState) {
    match state.store.expire_commands().await {
        Ok(expired) => {
            for (id, agent_id) in expired {
                state.publish(Event::CommandUpdated {
                    id,
                    agent_id,
                    status: gururmm_protocol::command_status::EXPIRED.into(),
                });
            }
        }
        Err(e) => tracing::error!(error = %e, "expiring job commands failed"),
    }
}

async fn time_out_overdue(state: &AppState) {
    let grace_ms = (state.config.command_grace_seconds * 1000) as i64;
    match state.store.time_out_overdue(grace_ms).await {
        Ok(timed_out) => {
            for c in timed_out {
                tracing::warn!(command_id = %c.id, agent_id = %c.agent_id, "command timed out with no result");
                state
                    .alerting
                    .on_command_failed(state, &c.agent_id, &c.id, true, None)
                    .await;
                state.publish(Event::CommandUpdated {
                    id: c.id,
                    agent_id: c.agent_id,
                    status: gururmm_protocol::command_status::TIMED_OUT.into(),
                });
            }
        }
        Err(e) => tracing::error!(error = %e, "timing out overdue commands failed"),
    }
}

/// Updates sent but not reported on within `update_report_timeout_seconds` (the agent died,
/// or went silent mid-way) are failed, so the dashboard stops showing them under way. The
/// rollout does not send a failed version again by itself; a technician retries.
async fn fail_unreported_updates(state: &AppState) {
    let timeout = state.config.update_report_timeout_seconds;
    let cutoff = crate::db::now_ms() - (timeout as i64) * 1000;
    let reason =
        format!("no report from the agent within {timeout} s (update_report_timeout_seconds)");
    match state.store.fail_unreported_updates(cutoff, &reason).await {
        Ok(failed) => {
            for row in failed {
                tracing::warn!(
                    agent_id = %row.agent_id,
                    update_id = %row.id,
                    version = %crate::session::sanitize::for_log(&row.to_version),
                    "agent update failed: no report from the agent in time"
                );
                crate::rollout::publish(state, &row);
            }
        }
        Err(e) => tracing::error!(error = %e, "failing unreported agent updates failed"),
    }
}

pub(crate) async fn prune_metrics(state: &AppState) {
    let cutoff = crate::db::now_ms() - (state.config.metrics_retention_days as i64) * 86_400_000;
    match state.store.prune_metrics(cutoff).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(rows = n, "pruned metrics past retention"),
        Err(e) => tracing::error!(error = %e, "pruning metrics failed"),
    }
}
