//! Notices between nodes over PostgreSQL's `NOTIFY`/`LISTEN` on one channel: the database the
//! deployment already runs, no cluster protocol of our own.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use tokio::sync::mpsc;

use super::Notice;
use crate::state::AppState;

pub const CHANNEL: &str = "gururmm_cluster";

/// PostgreSQL refuses payloads of 8000 bytes or more; a batch is split below that.
const MAX_PAYLOAD: usize = 7_000;

/// One NOTIFY payload: notices from one node, in order.
#[derive(Serialize, Deserialize)]
struct Envelope {
    from: String,
    notices: Vec<Notice>,
}

/// Starts the sender and the listener (PostgreSQL only).
pub fn start(state: &AppState, database_url: String) {
    let outbox = state.cluster.open_outbox();
    tokio::spawn(send_loop(state.clone(), outbox));
    tokio::spawn(listen_loop(state.clone(), database_url));
    state.cluster.tell_others(Notice::Hello);
}

/// Splits notices into payloads under the size limit, in order.
fn payloads(from: &str, notices: Vec<Notice>) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Vec<Notice> = Vec::new();
    let mut size = 0;
    for notice in notices {
        let len = serde_json::to_string(&notice).map(|s| s.len()).unwrap_or(0);
        if len + 100 > MAX_PAYLOAD {
            tracing::warn!("cluster notice too large to send; dropped");
            continue;
        }
        if size + len + 100 > MAX_PAYLOAD && !current.is_empty() {
            out.push(encode(from, std::mem::take(&mut current)));
            size = 0;
        }
        size += len + 1;
        current.push(notice);
    }
    if !current.is_empty() {
        out.push(encode(from, current));
    }
    out
}

fn encode(from: &str, notices: Vec<Notice>) -> String {
    serde_json::to_string(&Envelope {
        from: from.to_owned(),
        notices,
    })
    .unwrap_or_default()
}

/// Sends queued notices; what queued while one was being sent goes together in the next.
/// Sends queued notices; what queued while one batch was being sent goes in the next, all of
/// its payloads in one statement.
async fn send_loop(state: AppState, mut outbox: mpsc::Receiver<Notice>) {
    while let Some(first) = outbox.recv().await {
        let mut notices = vec![first];
        while notices.len() < 5_000 {
            match outbox.try_recv() {
                Ok(n) => notices.push(n),
                Err(_) => break,
            }
        }
        let payloads = payloads(&state.cluster.node_id, notices);
        for chunk in payloads.chunks(PAYLOADS_PER_STATEMENT) {
            if let Err(e) = state.store.notify(CHANNEL, chunk).await {
                tracing::warn!(error = %e, "sending cluster notices failed");
            }
        }
    }
}

/// NOTIFY payloads sent in one statement.
const PAYLOADS_PER_STATEMENT: usize = 100;

/// Listens for the other nodes' notices, reconnecting when the connection drops. After a
/// reconnect notices may have been missed: waiting commands are re-offered at once.
async fn listen_loop(state: AppState, url: String) {
    let mut shutdown = state.shutdown.clone();
    loop {
        let mut listener = match connect(&url).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for cluster notices; retrying in 2 s");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                    _ = shutdown.changed() => return,
                }
            }
        };
        resync(&state).await;
        loop {
            let received = tokio::select! {
                r = listener.try_recv() => r,
                _ = shutdown.changed() => return,
            };
            match received {
                Ok(Some(n)) => handle(&state, n.payload()).await,
                Ok(None) => {
                    tracing::warn!("cluster notice connection lost; reconnecting");
                    resync(&state).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cluster notice connection failed");
                    break;
                }
            }
        }
    }
}

async fn connect(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

async fn handle(state: &AppState, payload: &str) {
    let envelope: Envelope = match serde_json::from_str(payload) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "unreadable cluster notice ignored");
            return;
        }
    };
    if envelope.from == state.cluster.node_id {
        return;
    }
    state.cluster.presence.heard_from(&envelope.from);
    for notice in envelope.notices {
        match notice {
            Notice::Event { event } => state.events.publish(event),
            Notice::Dispatch { agent_id } => {
                state.hub.flush(&agent_id);
            }
            Notice::Disconnect { agent_id, reason } => {
                state
                    .hub
                    .disconnect(&agent_id, super::known_close_reason(&reason))
                    .await
            }
            Notice::Connected { agent_id } => state.hub.replaced_elsewhere(&agent_id),
            Notice::SessionEnded { ended } => state.sign_in.announce_ended_local(ended),
            Notice::RolloutChanged { os, arch } => {
                if crate::rollout::check_os(&os).is_ok()
                    && crate::rollout::check_arch(&arch).is_ok()
                {
                    crate::rollout::reevaluate(state, &os, &arch);
                } else {
                    tracing::warn!("rollout notice for an unknown os or arch ignored");
                }
            }
            Notice::UpdateRequested { agent_id } => offer_update(state, agent_id),
            Notice::Hello => {}
            Notice::PoliciesChanged => crate::policy::push_local(state),
            Notice::AlertRulesChanged => {
                let state = state.clone();
                tokio::spawn(async move {
                    if let Err(e) = state.alerting.reload(&state).await {
                        tracing::warn!(error = %e, "reloading alert rules failed");
                    }
                });
            }
        }
    }
}

/// Offers a technician's update to the agent if its socket is here, off the listener's task
/// (which must not wait on the database).
fn offer_update(state: &AppState, agent_id: String) {
    if !state.hub.is_connected(&agent_id) {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        match crate::rollout::offer_if_connected(&state, &agent_id).await {
            Ok(true) => tracing::info!(agent_id, "requested update sent to agent"),
            Ok(false) => {}
            Err(e) => tracing::warn!(agent_id, error = %e, "offering a requested update failed"),
        }
    });
}

/// Re-offers commands that have waited more than a moment to the agents this node holds: a
/// dispatch notice may have been lost (a dropped listen connection, a full outbox).
pub async fn resync(state: &AppState) {
    if state.hub.connected_count() == 0 {
        return;
    }
    let now = crate::db::now_ms();
    match state
        .store
        .agents_with_waiting_commands(now - 3_600_000, now - 2_000)
        .await
    {
        Ok(agents) => {
            for agent_id in agents {
                state.hub.flush(&agent_id);
            }
        }
        Err(e) => tracing::warn!(error = %e, "re-offering waiting commands failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_batches_split_under_the_payload_limit_in_order() {
        let notices: Vec<Notice> = (0..400)
            .map(|i| Notice::Dispatch {
                agent_id: format!("{i:0>36}"),
            })
            .collect();
        let out = payloads("node", notices);
        assert!(out.len() > 1);
        let mut seen = Vec::new();
        for p in &out {
            assert!(p.len() < 8000, "{}", p.len());
            let e: Envelope = serde_json::from_str(p).unwrap();
            for n in e.notices {
                let Notice::Dispatch { agent_id } = n else {
                    panic!()
                };
                seen.push(agent_id);
            }
        }
        let expected: Vec<String> = (0..400).map(|i| format!("{i:0>36}")).collect();
        assert_eq!(seen, expected);
    }
}
