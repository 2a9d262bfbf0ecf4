//! The WebSocket transport: connect, `auth` first, then every message of the session
//! ([`crate::session`]) as one text frame; commands come back as frames at any time.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use gururmm_protocol::{capability, AgentMessage, Auth, Command, Heartbeat, ServerMessage};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::agent::Ctx;
use crate::logging::ascii;
use crate::metrics::now_unix;
use crate::session::{scrub, Lost, Transport};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A send that takes longer than this counts as a lost connection.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct Ws<'a> {
    ctx: &'a Ctx,
    tls: Option<Arc<rustls::ClientConfig>>,
    socket: Option<Socket>,
    /// When the server last sent anything (the idle timeout counts from here).
    last_rx: Instant,
    /// The saved key was refused: authenticate with the configured one (enroll again).
    prefer_config_key: bool,
}

impl<'a> Ws<'a> {
    pub(crate) fn new(ctx: &'a Ctx) -> anyhow::Result<Ws<'a>> {
        let tls = if ctx.config.server.url.starts_with("wss://") {
            Some(
                super::tls::client_config(ctx.config.server.ca_file.as_deref())
                    .map_err(|e| anyhow::anyhow!(e))?,
            )
        } else {
            None
        };
        Ok(Ws {
            ctx,
            tls,
            socket: None,
            last_rx: Instant::now(),
            prefer_config_key: false,
        })
    }

    fn socket(&mut self) -> Result<&mut Socket, Lost> {
        self.socket
            .as_mut()
            .ok_or_else(|| Lost::from("not connected"))
    }
}

impl Transport for Ws<'_> {
    async fn connect(&mut self) -> Result<(), Lost> {
        self.socket = None;
        let mut ws = connect(self.ctx, self.tls.clone()).await?;
        let had_saved_key = !self.prefer_config_key;
        if let Err(e) = authenticate(self.ctx, &mut ws, &mut self.prefer_config_key).await {
            if !(had_saved_key && self.prefer_config_key) {
                return Err(e.into());
            }
            // The saved key was refused (agent deleted, database restored): enroll again with
            // the configured site code or token at once, on a new connection.
            tracing::warn!(
                "{}; enrolling again with the configured site code or token",
                ascii(&e)
            );
            ws = connect(self.ctx, self.tls.clone()).await?;
            authenticate(self.ctx, &mut ws, &mut self.prefer_config_key).await?;
        }
        self.socket = Some(ws);
        self.last_rx = Instant::now();
        Ok(())
    }

    async fn send(&mut self, msg: AgentMessage) -> Result<(), Lost> {
        Ok(send(self.socket()?, msg).await?)
    }

    async fn heartbeat(&mut self) -> Result<Vec<Command>, Lost> {
        let ws = self.socket()?;
        let hb = Heartbeat {
            timestamp: Some(now_unix()),
        };
        send(ws, AgentMessage::Heartbeat(hb)).await?;
        // A WebSocket ping too: the server's pong keeps the idle timer honest.
        ws.send(Message::Ping(Vec::new().into()))
            .await
            .map_err(|e| format!("ping failed: {e}"))?;
        Ok(Vec::new())
    }

    async fn recv(&mut self) -> Result<String, Lost> {
        let idle = self.ctx.config.idle_timeout();
        loop {
            let deadline = self.last_rx + idle;
            let ws = self.socket()?;
            let frame = tokio::time::timeout_at(deadline, ws.next())
                .await
                .map_err(|_| format!("nothing heard from the server for {} s", idle.as_secs()))?;
            self.last_rx = Instant::now();
            match frame {
                Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_owned()),
                Some(Ok(Message::Close(f))) => {
                    return Err(Lost(format!(
                        "server closed the connection{}",
                        f.map(|f| format!(": {}", f.reason)).unwrap_or_default()
                    )))
                }
                Some(Ok(Message::Binary(_))) => {
                    tracing::warn!("binary frame from the server ignored")
                }
                Some(Ok(_)) => {} // ping/pong: answered by the library
                Some(Err(e)) => return Err(Lost(format!("read failed: {e}"))),
                None => return Err(Lost::from("connection closed")),
            }
        }
    }

    async fn close(&mut self) {
        if let Some(mut ws) = self.socket.take() {
            let _ = timeout(Duration::from_secs(2), ws.close(None)).await;
        }
    }

    fn polls(&self) -> bool {
        false
    }

    fn acknowledges_results(&self) -> bool {
        true
    }
}

async fn send(ws: &mut Socket, msg: AgentMessage) -> Result<(), String> {
    match timeout(SEND_TIMEOUT, ws.send(Message::text(msg.to_json()))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("send failed: {e}")),
        Err(_) => Err("send timed out".into()),
    }
}

async fn connect(ctx: &Ctx, tls: Option<Arc<rustls::ClientConfig>>) -> Result<Socket, String> {
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

/// What this agent tells the server it can do: live output and commands with an environment
/// always, `claude_task` only with the AI task executor enabled.
pub(crate) fn capabilities(ctx: &Ctx) -> Vec<String> {
    let mut caps = vec![
        capability::LIVE_OUTPUT.to_owned(),
        capability::COMMAND_ENVIRONMENT.to_owned(),
    ];
    if ctx.executor.claude_enabled() {
        caps.push(capability::CLAUDE_TASK.to_owned());
    }
    caps
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
        previous_version: ctx
            .previous_version
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone(),
        policy_revision: ctx.live.borrow().revision.clone(),
        capabilities: capabilities(ctx),
    };
    send(ws, scrub(AgentMessage::Auth(auth))).await?;
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
                crate::update::remember_release_key(ctx, r.release_public_key.as_deref());
                if let Some(note) = r.message.as_deref() {
                    // E.g. the record waits for a technician's approval.
                    tracing::warn!("server: {}", ascii(note));
                }
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
