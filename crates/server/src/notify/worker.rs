//! The delivery worker, one per node: claims due deliveries with a lease (so two nodes never
//! send the same one), sends each in its own task with bounded concurrency, and records every
//! attempt with its answer. Woken by [`super::wake`], and polls in case another node queued.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::send::{send, SEND_TIMEOUT};
use crate::db::notifications::{AttemptOutcome, AttemptRecord, ChannelRecord, DeliveryRecord};
use crate::db::now_ms;
use crate::state::AppState;

/// Deliveries in flight on one node.
const MAX_IN_FLIGHT: usize = 16;
/// Deliveries in flight to one channel: a hanging channel holds at most these slots.
const MAX_PER_CHANNEL: usize = 4;
/// Work queued on other nodes (or a retry falling due) is found within this.
const POLL: Duration = Duration::from_secs(2);
/// A node that stops mid-send loses its claim after this; another node sends again.
const LEASE: Duration = Duration::from_secs(60);
/// Retries wait at most this long.
const MAX_BACKOFF_MS: i64 = 3_600_000;

pub async fn run(state: AppState) {
    let http = reqwest::Client::builder()
        .timeout(SEND_TIMEOUT)
        .connect_timeout(SEND_TIMEOUT)
        // A receiver does not get to point the server somewhere else.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client");
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let per_channel: Arc<Mutex<HashMap<String, usize>>> = Default::default();
    loop {
        let free = slots.available_permits();
        if free > 0 {
            let claimed = {
                let busy = per_channel.lock().expect("not poisoned").clone();
                state
                    .store
                    .claim_deliveries(
                        &state.cluster.node_id,
                        free,
                        now_ms() + LEASE.as_millis() as i64,
                        |channel| busy.get(channel).copied().unwrap_or(0) >= MAX_PER_CHANNEL,
                    )
                    .await
            };
            match claimed {
                Ok(claimed) => {
                    for (delivery, channel) in claimed {
                        let permit = Arc::clone(&slots)
                            .try_acquire_owned()
                            .expect("claimed no more than the free slots");
                        *per_channel
                            .lock()
                            .expect("not poisoned")
                            .entry(channel.id.clone())
                            .or_default() += 1;
                        let (state, http, per_channel) =
                            (state.clone(), http.clone(), Arc::clone(&per_channel));
                        tokio::spawn(async move {
                            let channel_id = channel.id.clone();
                            attempt(&state, &http, delivery, channel).await;
                            if let Some(n) = per_channel
                                .lock()
                                .expect("not poisoned")
                                .get_mut(&channel_id)
                            {
                                *n = n.saturating_sub(1);
                            }
                            drop(permit);
                            state.notifier.wake();
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "notifications: cannot claim deliveries"),
            }
        }
        // A retry falling due sooner than the next poll is waited for. Deliveries already due
        // but not claimed are held by another node or wait for a busy channel: a finished send
        // wakes this loop, and the poll finds them.
        let now = now_ms();
        let wait = match state.store.next_delivery_due(now).await {
            Ok(Some(due)) if due > now && slots.available_permits() > 0 => {
                Duration::from_millis((due - now) as u64).min(POLL)
            }
            _ => POLL,
        };
        tokio::select! {
            _ = state.notifier.wake.notified() => {}
            _ = tokio::time::sleep(wait.max(Duration::from_millis(50))) => {}
        }
    }
}

async fn attempt(
    state: &AppState,
    http: &reqwest::Client,
    delivery: DeliveryRecord,
    channel: ChannelRecord,
) {
    let started = std::time::Instant::now();
    let at = now_ms();
    let answer = send(
        &state.config,
        http,
        &state.two_factor,
        &channel,
        &delivery.payload,
    )
    .await;
    let number = delivery.attempts + 1;
    let max = i64::from(state.config.notification_max_attempts);
    let outcome = if answer.ok {
        AttemptOutcome::Delivered
    } else if number >= max {
        AttemptOutcome::Failed
    } else {
        let base = state.config.notification_retry_base_seconds as i64 * 1000;
        let backoff = base
            .saturating_mul(1 << (number - 1).min(20))
            .min(MAX_BACKOFF_MS);
        AttemptOutcome::Retry(now_ms() + backoff)
    };
    // The channel's name and kind only: its URL or address may be a secret.
    match &outcome {
        AttemptOutcome::Delivered => {
            tracing::debug!(delivery = %delivery.id, channel = %channel.name, kind = %channel.kind, attempt = number, "notification delivered")
        }
        _ => {
            tracing::info!(delivery = %delivery.id, channel = %channel.name, kind = %channel.kind, attempt = number, status = ?answer.status_code, error = ?answer.error, "notification not delivered")
        }
    }
    let record = AttemptRecord {
        delivery_id: delivery.id.clone(),
        attempt: number,
        at,
        status_code: answer.status_code,
        response: answer.response,
        error: answer.error,
        duration_ms: started.elapsed().as_millis() as i64,
    };
    if let Err(e) = state
        .store
        .record_attempt(&state.cluster.node_id, &record, outcome)
        .await
    {
        // The lease runs out and the delivery is tried again (receivers dedupe by its id).
        tracing::warn!(error = %e, delivery = %delivery.id, "notifications: cannot record an attempt");
    }
}
