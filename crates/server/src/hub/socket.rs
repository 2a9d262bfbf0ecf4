//! One agent's WebSocket: the transport adapter over `session`. Authentication, then a loop
//! that feeds frames to the session and writes what the hub asks for.

use std::net::SocketAddr;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use gururmm_protocol::{AgentMessage, AuthResponse, ServerMessage};
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};

use super::pending::{PendingSlot, Refused};
use super::Outbound;
use crate::events::Event;
use crate::http::error::ApiError;
use crate::session::{self, sanitize, AgentSession, CommandSink};
use crate::state::AppState;

/// Socket buffers: agents send small frames most of the time, and tungstenite's default
/// 128 KiB read buffer per socket is what made idle sockets expensive. Larger messages still
/// arrive whole (the buffer grows up to `max_frame_bytes` as needed).
const READ_BUFFER_BYTES: usize = 4 * 1024;
const WRITE_BUFFER_BYTES: usize = 4 * 1024;

pub async fn ws_handler(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let downloads = crate::rollout::DownloadBase::from_request(&state, &headers);
    // Counted before the upgrade, so a refused socket costs no WebSocket buffers.
    let slot = match state.hub.pending.try_acquire(
        peer.ip(),
        state.config.max_pending_sockets_per_address,
        state.config.max_pending_sockets,
    ) {
        Ok(slot) => slot,
        Err(refused) => {
            tracing::debug!(peer = %peer.ip(), ?refused, "agent socket refused: too many unauthenticated sockets");
            // A flood must not flood the log too: one warning a minute.
            let minute = std::time::Duration::from_secs(60);
            if state
                .limiter
                .check_and_record("log:pending-sockets", 1, minute)
                .is_ok()
            {
                tracing::warn!(peer = %peer.ip(), ?refused, "agent sockets refused: too many unauthenticated sockets (logged once a minute)");
            }
            return match refused {
                Refused::Address => ApiError::TooManyRequests {
                    message: "too many unauthenticated sockets from this address".into(),
                    retry_after_seconds: state.config.auth_timeout_seconds,
                },
                Refused::Total => {
                    ApiError::Unavailable("too many unauthenticated sockets; try again".into())
                }
            }
            .into_response();
        }
    };
    let max = state.config.max_frame_bytes;
    upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| async move {
            run(state, socket, peer.ip(), slot, downloads).await;
        })
}

async fn send(socket: &mut WebSocket, msg: &ServerMessage) -> Result<(), axum::Error> {
    crate::telemetry::agent_message_out(msg);
    socket
        .send(Message::Text(Utf8Bytes::from(msg.to_json())))
        .await
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        })))
        .await;
}

async fn refuse(socket: &mut WebSocket, message: &str) {
    let reply = ServerMessage::AuthResponse(AuthResponse {
        success: false,
        agent_id: None,
        api_key: None,
        message: Some(message.to_owned()),
        release_public_key: None,
    });
    let _ = send(socket, &reply).await;
    close(socket, 4001, "authentication failed").await;
}

async fn run(
    state: AppState,
    mut socket: WebSocket,
    peer: std::net::IpAddr,
    slot: PendingSlot,
    downloads: crate::rollout::DownloadBase,
) {
    // The first frame must be `auth`, within the auth timeout.
    let first = match timeout(state.config.auth_timeout(), socket.recv()).await {
        Err(_) => {
            tracing::info!("agent socket closed: no auth message within the auth timeout");
            close(&mut socket, 4008, "auth timeout").await;
            return;
        }
        Ok(None) | Ok(Some(Err(_))) => return,
        Ok(Some(Ok(msg))) => msg,
    };
    let auth = match first {
        Message::Text(text) => match crate::telemetry::agent_message_in(&text) {
            Ok(AgentMessage::Auth(auth)) => auth,
            Ok(other) => {
                tracing::info!(
                    message_type = other.message_type(),
                    "agent socket refused: first message was not auth"
                );
                refuse(&mut socket, "the first message must be auth").await;
                return;
            }
            Err(e) => {
                tracing::info!(error = %sanitize::for_log(&e.to_string()), "agent socket refused: unreadable auth message");
                refuse(&mut socket, &format!("unreadable auth message: {e}")).await;
                return;
            }
        },
        _ => {
            refuse(&mut socket, "the first message must be a JSON text frame").await;
            return;
        }
    };
    let authed = match session::authenticate(&state, &auth, peer).await {
        Ok(Ok(a)) => a,
        Ok(Err(refused)) => {
            tracing::info!(hostname = %sanitize::for_log(&auth.hostname), "agent socket refused: unknown key, site code or token");
            refuse(&mut socket, &refused.message()).await;
            return;
        }
        Err(e) => {
            // Not a refusal: no auth_response, so the agent keeps its key (a refused key
            // would make it enroll again) and retries after its backoff. 1013: try again later.
            let minute = std::time::Duration::from_secs(60);
            if state
                .limiter
                .check_and_record("log:auth-unavailable", 1, minute)
                .is_ok()
            {
                tracing::warn!(error = %e, "agent sign-ins deferred: the database is unavailable (logged once a minute)");
            }
            close(&mut socket, 1013, "database unavailable; try again later").await;
            return;
        }
    };
    let message = authed.message();
    // Authenticated: no longer counted against the unauthenticated caps.
    drop(slot);
    let agent_id = authed.agent_id;
    let reply = ServerMessage::AuthResponse(AuthResponse {
        success: true,
        agent_id: Some(agent_id.clone()),
        api_key: authed.issued_key,
        message,
        release_public_key: state.release_public_key.clone(),
    });
    if send(&mut socket, &reply).await.is_err() {
        return;
    }

    let (tx, rx) = mpsc::channel(64);
    let conn_id = state.hub.register(&agent_id, tx.clone(), downloads.clone());
    state.cluster.presence.connected(&agent_id);
    state.alerting.prime(&state, &agent_id);
    state
        .cluster
        .tell_others(crate::cluster::Notice::Connected {
            agent_id: agent_id.clone(),
        });
    tracing::info!(agent_id, hostname = %sanitize::for_log(&auth.hostname), version = %sanitize::for_log(&auth.version), "agent connected");
    state.publish(Event::AgentStatus {
        agent_id: agent_id.clone(),
        online: true,
        hostname: auth.hostname.clone(),
    });
    // Whatever waited while the agent was away goes out first, oldest first.
    let _ = tx.try_send(Outbound::Flush(None));
    crate::policy::offer_on_connect(&state, &agent_id, auth.policy_revision.clone(), tx.clone());
    offer_update(&state, &agent_id, &auth, downloads, tx);

    let reason = message_loop(&state, &agent_id, &mut socket, rx).await;
    tracing::info!(agent_id, reason, "agent disconnected");

    if state.hub.unregister(&agent_id, conn_id) {
        state.cluster.presence.disconnected(&agent_id);
        state.publish(Event::AgentStatus {
            agent_id: agent_id.clone(),
            online: false,
            hostname: auth.hostname.clone(),
        });
    }
}

async fn message_loop(
    state: &AppState,
    agent_id: &str,
    socket: &mut WebSocket,
    mut rx: mpsc::Receiver<Outbound>,
) -> &'static str {
    let session = AgentSession::new(state, agent_id);
    // Results stored by the deferred writes, to acknowledge (the agent drops them then).
    let (acks, mut stored) = mpsc::channel::<String>(256);
    let mut shutdown = state.shutdown.clone();
    let mut ping = tokio::time::interval_at(
        Instant::now() + state.config.ping_interval(),
        state.config.ping_interval(),
    );
    let idle = state.config.idle_timeout();
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let msg = match incoming {
                    None => return "socket closed",
                    Some(Err(e)) => {
                        tracing::info!(agent_id, error = %e, "socket error (an oversized frame is one)");
                        return "socket error";
                    }
                    Some(Ok(msg)) => msg,
                };
                last_heard = Instant::now();
                match msg {
                    Message::Text(text) => handle_text(&session, &text, &acks).await,
                    Message::Binary(_) => tracing::warn!(agent_id, "binary frame ignored: the protocol is JSON text frames"),
                    Message::Close(_) => return "closed by agent",
                    Message::Ping(_) | Message::Pong(_) => {}
                }
            }
            out = rx.recv() => match out {
                Some(Outbound::Flush(ack)) => {
                    let sent = session.hand_out(socket).await;
                    if let Some(ack) = ack {
                        let _ = ack.send(());
                    }
                    if !sent {
                        return "send failed";
                    }
                }
                Some(Outbound::Update(update)) => {
                    if send(socket, &ServerMessage::Update(*update)).await.is_err() {
                        return "send failed";
                    }
                }
                Some(Outbound::Policy(policy)) => {
                    if send(socket, &ServerMessage::Policy(*policy)).await.is_err() {
                        return "send failed";
                    }
                }
                Some(Outbound::Replaced) => {
                    close(socket, 4000, "replaced by a newer connection").await;
                    return "replaced by a newer connection";
                }
                Some(Outbound::Close(reason)) => {
                    close(socket, 4003, reason).await;
                    return reason;
                }
                None => return "hub dropped the connection",
            },
            Some(id) = stored.recv() => {
                let ack = ServerMessage::ResultAck(gururmm_protocol::ResultAck { id });
                if send(socket, &ack).await.is_err() {
                    return "send failed";
                }
            }
            _ = ping.tick() => {
                // Only a socket quiet for a whole interval is pinged: an agent sending its
                // heartbeats is known to be alive, and each ping would cost a message both
                // ways (the agent answers it).
                if last_heard.elapsed() >= state.config.ping_interval()
                    && send(socket, &ServerMessage::Ping(Default::default())).await.is_err()
                {
                    return "send failed";
                }
            }
            _ = tokio::time::sleep_until(last_heard + idle) => {
                close(socket, 4002, "idle timeout").await;
                return "idle timeout";
            }
            _ = shutdown.changed() => {
                // 1012 (service restart): the agent reconnects soon, with jitter, to this
                // server once it is back or to another node.
                close(socket, 1012, "server restarting").await;
                return "server shutting down";
            }
        }
    }
}

/// Completes an update the agent came back from and decides whether it gets one now, off the
/// socket's task (which never waits on the database): the `update` reaches the socket through
/// its channel.
fn offer_update(
    state: &AppState,
    agent_id: &str,
    auth: &gururmm_protocol::Auth,
    downloads: crate::rollout::DownloadBase,
    tx: mpsc::Sender<Outbound>,
) {
    let (task_state, agent_id) = (state.clone(), agent_id.to_owned());
    let clean = |text: &str| {
        let mut text = text.to_owned();
        sanitize::no_nul(&mut text);
        sanitize::bounded(&mut text, 64);
        text
    };
    let version = clean(&auth.version);
    let previous = auth.previous_version.as_deref().map(clean);
    let accepted = state.deferred.spawn(async move {
        let outcome = crate::db::retry_while_unavailable("agent updates", || {
            crate::rollout::on_connect(
                &task_state,
                &agent_id,
                &version,
                previous.as_deref(),
                &downloads,
            )
        })
        .await;
        match outcome {
            Ok(Some(update)) => {
                tracing::info!(agent_id, version = %update.version, "update sent to agent");
                let _ = tx.send(Outbound::Update(Box::new(update))).await;
            }
            Ok(None) => {}
            Err(e) => tracing::error!(agent_id, error = %e, "deciding an agent's update failed"),
        }
    });
    if !accepted {
        tracing::debug!("agent update check dropped: too many wait for the database");
    }
}

impl CommandSink for WebSocket {
    async fn send_command(&mut self, command: gururmm_protocol::Command) -> Result<(), String> {
        send(self, &ServerMessage::Command(command))
            .await
            .map_err(|e| e.to_string())
    }
}

/// Never waits on the database (see `session::deferred`), so pings, heartbeats and commands
/// keep flowing while it is away.
async fn handle_text(session: &AgentSession<'_>, text: &str, acks: &mpsc::Sender<String>) {
    match crate::telemetry::agent_message_in(text) {
        Ok(msg) => session.take(msg, acks).await,
        Err(e) => session.take_unreadable(e, acks),
    }
}
