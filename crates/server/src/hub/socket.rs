//! One agent's WebSocket: authentication, then the message loop.

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use gururmm_protocol::{AgentMessage, Auth, AuthResponse, ServerMessage};
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};

use super::Outbound;
use crate::auth::{key_hash, new_agent_key, AGENT_KEY_PREFIX};
use crate::db::NewAgent;
use crate::events::Event;
use crate::site_code;
use crate::state::AppState;

pub async fn ws_handler(State(state): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    let max = state.config.max_frame_bytes;
    upgrade
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| async move {
            run(state, socket).await;
        })
}

async fn send(socket: &mut WebSocket, msg: &ServerMessage) -> Result<(), axum::Error> {
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
    });
    let _ = send(socket, &reply).await;
    close(socket, 4001, "authentication failed").await;
}

/// The agent authenticated: its id, and a newly issued key when it enrolled by site code.
pub(crate) struct Authenticated {
    pub agent_id: String,
    pub issued_key: Option<String>,
}

async fn run(state: AppState, mut socket: WebSocket) {
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
        Message::Text(text) => match AgentMessage::from_json(&text) {
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
                tracing::info!(error = %e, "agent socket refused: unreadable auth message");
                refuse(&mut socket, &format!("unreadable auth message: {e}")).await;
                return;
            }
        },
        _ => {
            refuse(&mut socket, "the first message must be a JSON text frame").await;
            return;
        }
    };
    let authed = match authenticate(&state, &auth).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            tracing::info!(hostname = %auth.hostname, "agent socket refused: unknown key or site code");
            refuse(&mut socket, "unknown agent key or site code").await;
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "agent authentication failed on a storage error");
            refuse(&mut socket, "server error during authentication").await;
            return;
        }
    };
    let agent_id = authed.agent_id;
    let reply = ServerMessage::AuthResponse(AuthResponse {
        success: true,
        agent_id: Some(agent_id.clone()),
        api_key: authed.issued_key,
        message: None,
    });
    if send(&mut socket, &reply).await.is_err() {
        return;
    }

    let (tx, rx) = mpsc::channel(64);
    let conn_id = state.hub.register(&agent_id, tx.clone());
    tracing::info!(agent_id, hostname = %auth.hostname, version = %auth.version, "agent connected");
    state.events.publish(Event::AgentStatus {
        agent_id: agent_id.clone(),
        online: true,
        hostname: auth.hostname.clone(),
    });
    // Whatever waited while the agent was away goes out first, oldest first.
    let _ = tx.try_send(Outbound::Flush(None));
    drop(tx);

    let reason = message_loop(&state, &agent_id, &mut socket, rx).await;
    tracing::info!(agent_id, reason, "agent disconnected");

    if state.hub.unregister(&agent_id, conn_id) {
        state.events.publish(Event::AgentStatus {
            agent_id: agent_id.clone(),
            online: false,
            hostname: auth.hostname.clone(),
        });
    }
    if let Err(e) = state.store.touch_agent(&agent_id).await {
        tracing::warn!(agent_id, error = %e, "could not record last_seen");
    }
}

pub(crate) async fn authenticate(
    state: &AppState,
    auth: &Auth,
) -> anyhow::Result<Option<Authenticated>> {
    let store = &state.store;
    let os = &auth.os_info;
    let limit = |s: &str, n: usize| s.chars().take(n).collect::<String>();
    let (hostname, device_id) = (limit(&auth.hostname, 255), limit(&auth.device_id, 255));
    if hostname.is_empty() || device_id.is_empty() {
        return Ok(None);
    }
    let update_identity = |id: String| {
        let (device_id, hostname) = (&device_id, &hostname);
        async move {
            store
                .update_agent_identity(
                    &id,
                    device_id,
                    hostname,
                    &limit(&os.os_type, 64),
                    &limit(&os.os_version, 128),
                    &limit(&os.arch, 32),
                    &limit(&auth.version, 64),
                )
                .await
                .map(|_| id)
        }
    };

    if auth.api_key.starts_with(AGENT_KEY_PREFIX) {
        let Some(id) = store.agent_id_by_key_hash(&key_hash(&auth.api_key)).await? else {
            return Ok(None);
        };
        let agent_id = update_identity(id).await?;
        return Ok(Some(Authenticated {
            agent_id,
            issued_key: None,
        }));
    }

    let code = site_code::normalize(&auth.api_key);
    if !site_code::is_site_code(&code) {
        return Ok(None);
    }
    let Some(site) = store.site_by_code(&code).await? else {
        return Ok(None);
    };
    // Enrollment: the same device enrolling again is the same agent (a reinstall); it gets a
    // fresh key, which invalidates the one it lost, and joins the site whose code it used.
    let key = new_agent_key();
    let agent_id = match store.agent_id_by_device(&auth.device_id).await? {
        Some(id) => {
            store.set_agent_key_hash(&id, &key_hash(&key)).await?;
            store.move_agent(&id, Some(&site.id)).await?;
            id
        }
        None => {
            store
                .insert_agent(NewAgent {
                    site_id: Some(&site.id),
                    hostname: &hostname,
                    device_id: Some(&device_id),
                    os_type: Some(&os.os_type),
                    os_version: Some(&os.os_version),
                    arch: Some(&os.arch),
                    version: Some(&auth.version),
                    api_key_hash: &key_hash(&key),
                })
                .await?
        }
    };
    let agent_id = update_identity(agent_id).await?;
    tracing::info!(agent_id, site_id = %site.id, "agent enrolled with a site code");
    Ok(Some(Authenticated {
        agent_id,
        issued_key: Some(key),
    }))
}

async fn message_loop(
    state: &AppState,
    agent_id: &str,
    socket: &mut WebSocket,
    mut rx: mpsc::Receiver<Outbound>,
) -> &'static str {
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
                    Message::Text(text) => handle_text(state, agent_id, &text).await,
                    Message::Binary(_) => tracing::warn!(agent_id, "binary frame ignored: the protocol is JSON text frames"),
                    Message::Close(_) => return "closed by agent",
                    Message::Ping(_) | Message::Pong(_) => {}
                }
            }
            out = rx.recv() => match out {
                Some(Outbound::Flush(ack)) => {
                    let sent = super::deliver_pending(state, agent_id, socket).await;
                    if let Some(ack) = ack {
                        let _ = ack.send(());
                    }
                    if !sent {
                        return "send failed";
                    }
                }
                Some(Outbound::Replaced) => {
                    close(socket, 4000, "replaced by a newer connection").await;
                    return "replaced by a newer connection";
                }
                None => return "hub dropped the connection",
            },
            _ = ping.tick() => {
                if send(socket, &ServerMessage::Ping(Default::default())).await.is_err() {
                    return "send failed";
                }
            }
            _ = tokio::time::sleep_until(last_heard + idle) => {
                close(socket, 4002, "idle timeout").await;
                return "idle timeout";
            }
            _ = shutdown.changed() => {
                close(socket, 1012, "server restarting").await;
                return "server shutting down";
            }
        }
    }
}

impl super::CommandSink for WebSocket {
    async fn send_command(&mut self, command: gururmm_protocol::Command) -> Result<(), String> {
        send(self, &ServerMessage::Command(command))
            .await
            .map_err(|e| e.to_string())
    }
}

async fn handle_text(state: &AppState, agent_id: &str, text: &str) {
    let msg = match AgentMessage::from_json(text) {
        Ok(msg) => msg,
        Err(e) => {
            tracing::warn!(agent_id, error = %e, "malformed frame from agent");
            // A result we cannot read still ends its command: failed, with the reason.
            if let (Some("command_result"), Some(id)) =
                (e.message_type.as_deref(), e.command_id.as_deref())
            {
                let failed = gururmm_protocol::CommandResult {
                    id: id.to_owned(),
                    exit_code: -1,
                    stdout: String::new(),
                    stderr: format!(
                        "the server could not read this command's result: {}",
                        e.reason
                    ),
                    duration_ms: 0,
                    timed_out: false,
                };
                if let Err(e) = crate::commands::record_result(state, agent_id, &failed).await {
                    tracing::error!(agent_id, error = %e, "cannot store failed result");
                }
            }
            return;
        }
    };
    let outcome = match msg {
        AgentMessage::Heartbeat(_) => state.store.touch_agent(agent_id).await.map_err(Into::into),
        AgentMessage::MetricsReport(m) => store_metrics(state, agent_id, &m).await,
        AgentMessage::NetworkState(n) => {
            let json = serde_json::to_string(&n).unwrap_or_default();
            state
                .store
                .store_network_state(agent_id, &n.hash, &json)
                .await
                .map(|_| ())
                .map_err(Into::into)
        }
        AgentMessage::CommandResult(r) => crate::commands::record_result(state, agent_id, &r)
            .await
            .map(|_| ()),
        AgentMessage::WatchdogEvent(e) => state
            .store
            .insert_watchdog_event(agent_id, &e)
            .await
            .map_err(Into::into),
        AgentMessage::Auth(_) => {
            tracing::warn!(agent_id, "auth message on an authenticated socket ignored");
            Ok(())
        }
        AgentMessage::Unsupported(u) => {
            tracing::warn!(agent_id, message_type = %u.message_type, "unsupported message type from agent ignored");
            Ok(())
        }
    };
    if let Err(e) = outcome {
        tracing::error!(agent_id, error = %e, "storing an agent message failed");
    }
}

pub(crate) async fn store_metrics(
    state: &AppState,
    agent_id: &str,
    m: &gururmm_protocol::MetricsReport,
) -> anyhow::Result<()> {
    state.store.insert_metrics(agent_id, m).await?;
    state
        .store
        .store_metrics_snapshot(agent_id, &serde_json::to_string(m)?)
        .await?;
    Ok(())
}
