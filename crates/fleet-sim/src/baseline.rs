//! The bare baseline: the least a server must do for a fleet. Accept a WebSocket, read the
//! `auth`, answer success (issuing a key when the agent enrolled), then read and parse every
//! frame as an `AgentMessage` and count it. No database, no hub, no pings. The real server's
//! figures are given as ratios to this one's, measured the same way in the same run.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use gururmm_protocol::{AgentMessage, AuthResponse, ServerMessage};
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

#[derive(Default)]
pub struct BaselineStats {
    pub open: AtomicI64,
    pub accepted: AtomicU64,
    pub handshake_errors: AtomicU64,
    pub auths: AtomicU64,
    pub enrolled: AtomicU64,
    pub messages: AtomicU64,
    pub heartbeats: AtomicU64,
    pub metrics: AtomicU64,
    pub command_results: AtomicU64,
    pub other: AtomicU64,
    pub unreadable: AtomicU64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BaselineSnapshot {
    pub open: i64,
    pub accepted: u64,
    pub handshake_errors: u64,
    pub auths: u64,
    pub enrolled: u64,
    pub messages: u64,
    pub heartbeats: u64,
    pub metrics: u64,
    pub command_results: u64,
    pub other: u64,
    pub unreadable: u64,
}

impl BaselineStats {
    pub fn snapshot(&self) -> BaselineSnapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BaselineSnapshot {
            open: self.open.load(Ordering::Relaxed),
            accepted: g(&self.accepted),
            handshake_errors: g(&self.handshake_errors),
            auths: g(&self.auths),
            enrolled: g(&self.enrolled),
            messages: g(&self.messages),
            heartbeats: g(&self.heartbeats),
            metrics: g(&self.metrics),
            command_results: g(&self.command_results),
            other: g(&self.other),
            unreadable: g(&self.unreadable),
        }
    }
}

impl BaselineSnapshot {
    pub fn line(&self) -> String {
        format!(
            "open={} accepted={} handshake_errors={} auths={} enrolled={} messages={} heartbeats={} \
             metrics={} command_results={} other={} unreadable={}",
            self.open,
            self.accepted,
            self.handshake_errors,
            self.auths,
            self.enrolled,
            self.messages,
            self.heartbeats,
            self.metrics,
            self.command_results,
            self.other,
            self.unreadable
        )
    }
}

/// Server-side buffers: 4 KiB read buffer, writes go straight out.
pub fn baseline_ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(64 * 1024)
        .max_message_size(Some(4 * 1024 * 1024))
        .max_frame_size(Some(4 * 1024 * 1024))
}

/// Accepts connections until `stop` turns true. Any path is accepted (the simulator uses
/// `/ws`, like the real server).
pub async fn serve(
    listener: TcpListener,
    stats: Arc<BaselineStats>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = crate::fleet::stopped(&mut stop) => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    stats.accepted.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(connection(stream, stats.clone()));
                }
                // Out of file descriptors, typically: wait a moment rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
}

async fn connection(stream: TcpStream, stats: Arc<BaselineStats>) {
    let _ = stream.set_nodelay(true);
    let mut ws =
        match tokio_tungstenite::accept_async_with_config(stream, Some(baseline_ws_config())).await
        {
            Ok(ws) => ws,
            Err(_) => {
                stats.handshake_errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
    let auth = match ws.next().await {
        Some(Ok(Message::Text(t))) => match AgentMessage::from_json(&t) {
            Ok(AgentMessage::Auth(a)) => a,
            _ => {
                stats.unreadable.fetch_add(1, Ordering::Relaxed);
                return;
            }
        },
        _ => return,
    };
    stats.auths.fetch_add(1, Ordering::Relaxed);
    // A site code (anything but an agent key) enrolls: issue a key, as the real server does.
    let issued = (!auth.api_key.starts_with("grmm_")).then(|| {
        stats.enrolled.fetch_add(1, Ordering::Relaxed);
        format!(
            "grmm_{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        )
    });
    let reply = ServerMessage::AuthResponse(AuthResponse {
        success: true,
        agent_id: Some(format!("baseline-{}", auth.device_id)),
        api_key: issued,
        message: None,
        release_public_key: None,
    });
    if ws.send(Message::text(reply.to_json())).await.is_err() {
        return;
    }
    stats.open.fetch_add(1, Ordering::Relaxed);
    while let Some(Ok(frame)) = ws.next().await {
        let Message::Text(text) = frame else {
            continue;
        };
        stats.messages.fetch_add(1, Ordering::Relaxed);
        let counter = match AgentMessage::from_json(&text) {
            Ok(AgentMessage::Heartbeat(_)) => &stats.heartbeats,
            Ok(AgentMessage::MetricsReport(_)) => &stats.metrics,
            Ok(AgentMessage::CommandResult(_)) => &stats.command_results,
            Ok(_) => &stats.other,
            Err(_) => &stats.unreadable,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
    stats.open.fetch_sub(1, Ordering::Relaxed);
}
