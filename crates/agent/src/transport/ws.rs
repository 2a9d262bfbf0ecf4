//! The WebSocket transport: connect, `auth` first, then heartbeats, metrics, network state,
//! commands and results until the connection drops; then reconnect with backoff.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use gururmm_protocol::{AgentMessage, Auth, Heartbeat, ServerMessage};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::backoff::Backoff;
use crate::agent::{Ctx, Inbox};
use crate::commands::Finished;
use crate::logging::ascii;
use crate::metrics::{network_state, now_unix};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A send that takes longer than this counts as a lost connection.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

enum End {
    Shutdown,
    Lost { authenticated: bool, reason: String },
}

pub async fn run(
    ctx: &Ctx,
    inbox: &mut Inbox,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let tls = if ctx.config.server.url.starts_with("wss://") {
        Some(
            super::tls::client_config(ctx.config.server.ca_file.as_deref())
                .map_err(|e| anyhow::anyhow!(e))?,
        )
    } else {
        None
    };
    let mut backoff = Backoff::new(
        Duration::from_secs(ctx.config.agent.reconnect_delay_seconds),
        Duration::from_secs(ctx.config.agent.reconnect_max_delay_seconds),
    );
    let mut prefer_config_key = false;
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let end = session(
            ctx,
            inbox,
            &mut shutdown,
            tls.clone(),
            &mut prefer_config_key,
        )
        .await;
        match end {
            End::Shutdown => return Ok(()),
            End::Lost {
                authenticated,
                reason,
            } => {
                if authenticated {
                    backoff.reset();
                }
                let delay = backoff.next_delay();
                tracing::warn!(
                    "connection to the server lost: {}; reconnecting in {:.1} s",
                    ascii(&reason),
                    delay.as_secs_f64()
                );
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => return Ok(()),
                }
            }
        }
    }
}

async fn send(ws: &mut Socket, msg: AgentMessage) -> Result<(), String> {
    match timeout(SEND_TIMEOUT, ws.send(Message::text(msg.to_json()))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("send failed: {e}")),
        Err(_) => Err("send timed out".into()),
    }
}

fn lost(authenticated: bool, reason: impl Into<String>) -> End {
    End::Lost {
        authenticated,
        reason: reason.into(),
    }
}

async fn connect(
    ctx: &Ctx,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
) -> Result<Socket, String> {
    let connector = tls.map(tokio_tungstenite::Connector::Rustls);
    let fut = tokio_tungstenite::connect_async_tls_with_config(
        ctx.config.server.url.as_str(),
        None,
        true,
        connector,
    );
    match timeout(ctx.config.auth_timeout(), fut).await {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(e)) => Err(format!("cannot connect: {e}")),
        Err(_) => Err("connect timed out".into()),
    }
}

/// Sends `auth` and waits for `auth_response`.
async fn authenticate(
    ctx: &Ctx,
    ws: &mut Socket,
    prefer_config_key: &mut bool,
) -> Result<(), String> {
    let key = ctx.api_key(*prefer_config_key);
    let using_saved = key != ctx.config.server.api_key;
    let auth = Auth {
        api_key: key,
        device_id: ctx.device_id.clone(),
        hostname: ctx.hostname.clone(),
        os_info: ctx.os_info.clone(),
        version: ctx.version.to_owned(),
        previous_version: None,
    };
    send(ws, AgentMessage::Auth(auth)).await?;
    let deadline = Instant::now() + ctx.config.auth_timeout();
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| {
                format!(
                    "no auth_response within {} s",
                    ctx.config.agent.auth_timeout_seconds
                )
            })?;
        let text = match frame {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(f))) => {
                return Err(format!(
                    "server closed the connection during auth{}",
                    f.map(|f| format!(": {}", f.reason)).unwrap_or_default()
                ))
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("read failed during auth: {e}")),
            None => return Err("connection closed during auth".into()),
        };
        match ServerMessage::from_json(&text) {
            Ok(ServerMessage::AuthResponse(r)) if r.success => {
                if let Some(new_key) = r.api_key.filter(|k| !k.is_empty()) {
                    if ctx.state.agent_key().as_deref() != Some(new_key.as_str()) {
                        ctx.state
                            .save_agent_key(&new_key)
                            .map_err(|e| format!("cannot save the issued agent key: {e}"))?;
                        tracing::info!("enrolled; agent key saved in the state folder");
                    }
                }
                *prefer_config_key = false;
                tracing::info!(
                    "connected to the server as agent {}",
                    ascii(r.agent_id.as_deref().unwrap_or("?"))
                );
                return Ok(());
            }
            Ok(ServerMessage::AuthResponse(r)) => {
                let why = r.message.unwrap_or_else(|| "no reason given".into());
                if using_saved {
                    // The saved key may belong to a deleted agent: enroll again next time.
                    *prefer_config_key = true;
                }
                return Err(format!("server refused authentication: {why}"));
            }
            Ok(other) => tracing::warn!(
                "'{}' message before auth_response; ignored",
                ascii(other.message_type())
            ),
            Err(e) => tracing::warn!(
                "unparsable message before auth_response: {}",
                ascii(&e.to_string())
            ),
        }
    }
}

async fn deliver(ctx: &Ctx, ws: &mut Socket, f: Finished) -> Result<(), String> {
    if let Some(path) = &f.outbox {
        if !path.exists() {
            return Ok(()); // already sent from the outbox
        }
    }
    let id = f.result.id.clone();
    send(ws, AgentMessage::CommandResult(f.result)).await?;
    if let Some(path) = &f.outbox {
        ctx.state.remove_outbox(path);
    }
    tracing::info!("result of command {} sent", ascii(&id));
    Ok(())
}

async fn flush_outbox(ctx: &Ctx, ws: &mut Socket) -> Result<(), String> {
    for (path, result) in ctx.state.outbox() {
        let id = result.id.clone();
        send(ws, AgentMessage::CommandResult(result)).await?;
        ctx.state.remove_outbox(&path);
        tracing::info!("kept result of command {} delivered", ascii(&id));
    }
    Ok(())
}

async fn send_network_state(
    ws: &mut Socket,
    last_hash: &mut Option<String>,
    force: bool,
) -> Result<(), String> {
    let state = tokio::task::spawn_blocking(network_state::read)
        .await
        .map_err(|e| format!("network state read failed: {e}"))?;
    if force || last_hash.as_deref() != Some(state.hash.as_str()) {
        let hash = state.hash.clone();
        send(ws, AgentMessage::NetworkState(state)).await?;
        if last_hash.is_some() {
            tracing::info!("network state changed; sent");
        }
        *last_hash = Some(hash);
    }
    Ok(())
}

async fn handle_text(ctx: &Ctx, ws: &mut Socket, text: &str) -> Result<(), String> {
    match ServerMessage::from_json(text) {
        Ok(ServerMessage::Command(cmd)) => ctx.executor.submit(cmd),
        Ok(ServerMessage::Ping(_)) => {
            send(
                ws,
                AgentMessage::Heartbeat(Heartbeat {
                    timestamp: Some(now_unix()),
                }),
            )
            .await?
        }
        Ok(ServerMessage::Update(u)) => tracing::warn!(
            "server offers version {}; self-update is not part of this build, staying on {}",
            ascii(&u.version),
            ctx.version
        ),
        Ok(ServerMessage::AuthResponse(_)) => tracing::debug!("extra auth_response ignored"),
        Ok(ServerMessage::Unsupported(u)) => tracing::warn!(
            "message type '{}' from the server is not supported by this agent; ignored",
            ascii(&u.message_type)
        ),
        Err(e) => match &e.command_id {
            Some(id) => {
                tracing::warn!(
                    "{}; answering command {} with a failed result",
                    ascii(&e.to_string()),
                    ascii(id)
                );
                ctx.executor
                    .reject(id, format!("the agent could not read this command: {e}"));
            }
            None => tracing::warn!("{}; ignored", ascii(&e.to_string())),
        },
    }
    Ok(())
}

async fn session(
    ctx: &Ctx,
    inbox: &mut Inbox,
    shutdown: &mut watch::Receiver<bool>,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    prefer_config_key: &mut bool,
) -> End {
    let mut ws = match connect(ctx, tls).await {
        Ok(ws) => ws,
        Err(e) => return lost(false, e),
    };
    if let Err(e) = authenticate(ctx, &mut ws, prefer_config_key).await {
        return lost(false, e);
    }
    let mut last_hash = None;
    if let Err(e) = send_network_state(&mut ws, &mut last_hash, true).await {
        return lost(true, e);
    }
    if let Err(e) = flush_outbox(ctx, &mut ws).await {
        return lost(true, e);
    }
    let start = Instant::now();
    let mut heartbeat = tokio::time::interval_at(
        start + ctx.config.heartbeat_interval(),
        ctx.config.heartbeat_interval(),
    );
    // The first report goes out right after connecting.
    let mut metrics = tokio::time::interval_at(start, ctx.config.metrics_interval());
    let mut netcheck = tokio::time::interval_at(
        start + ctx.config.network_check_interval(),
        ctx.config.network_check_interval(),
    );
    for i in [&mut heartbeat, &mut metrics, &mut netcheck] {
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    let idle = ctx.config.idle_timeout();
    let mut last_rx = Instant::now();
    loop {
        let step: Result<(), String> = tokio::select! {
            frame = ws.next() => {
                last_rx = Instant::now();
                match frame {
                    Some(Ok(Message::Text(t))) => handle_text(ctx, &mut ws, &t).await,
                    Some(Ok(Message::Close(f))) => Err(format!(
                        "server closed the connection{}",
                        f.map(|f| format!(": {}", f.reason)).unwrap_or_default()
                    )),
                    Some(Ok(Message::Binary(_))) => {
                        tracing::warn!("binary frame from the server ignored");
                        Ok(())
                    }
                    Some(Ok(_)) => Ok(()), // ping/pong: answered by the library
                    Some(Err(e)) => Err(format!("read failed: {e}")),
                    None => Err("connection closed".into()),
                }
            }
            _ = heartbeat.tick() => {
                let hb = send(&mut ws, AgentMessage::Heartbeat(Heartbeat { timestamp: Some(now_unix()) })).await;
                // A WebSocket ping too: the server's pong keeps the idle timer honest.
                match hb {
                    Ok(()) => ws.send(Message::Ping(Vec::new().into())).await.map_err(|e| format!("ping failed: {e}")),
                    Err(e) => Err(e),
                }
            }
            _ = metrics.tick() => match ctx.collect_metrics().await {
                Some(report) => send(&mut ws, AgentMessage::MetricsReport(report)).await,
                None => Ok(()),
            },
            _ = netcheck.tick() => send_network_state(&mut ws, &mut last_hash, false).await,
            Some(f) = inbox.finished.recv() => deliver(ctx, &mut ws, f).await,
            Some(e) = inbox.events.recv() => send(&mut ws, AgentMessage::WatchdogEvent(e)).await,
            _ = tokio::time::sleep_until(last_rx + idle) => Err(format!(
                "nothing heard from the server for {} s",
                idle.as_secs()
            )),
            _ = shutdown.changed() => {
                let _ = timeout(Duration::from_secs(2), ws.close(None)).await;
                return End::Shutdown;
            }
        };
        if let Err(reason) = step {
            return lost(true, reason);
        }
    }
}
