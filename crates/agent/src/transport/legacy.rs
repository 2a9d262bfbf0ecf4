//! Legacy mode: HTTP polling for machines that cannot keep a WebSocket.
//!
//! `POST /api/agent/register-legacy` once (with the site code) to get a `grmm_` key, then
//! `POST /api/agent/heartbeat` every heartbeat interval; the answer carries the commands to
//! run. Results go at once to `POST /api/agent/command-result`. Metrics, network state and
//! watchdog events ride along on the next heartbeat and stay queued until a heartbeat
//! carrying them is accepted. What is sent when is decided by [`crate::session`].

use std::time::Duration;

use gururmm_protocol::legacy::{
    HeartbeatRequest, HeartbeatResponse, RegisterRequest, RegisterResponse,
};
use gururmm_protocol::{
    AgentMessage, Command, MetricsReport, NetworkState, PolicyStatus, ServerMessage, UpdateStatus,
    WatchdogEvent,
};
use reqwest::StatusCode;

use crate::agent::Ctx;
use crate::logging::ascii;
use crate::metrics::now_unix;
use crate::session::{Lost, Transport};

/// Watchdog events kept for the next heartbeat; a machine offline for long keeps the newest.
const MAX_PENDING_EVENTS: usize = 1000;

/// `ws://host:port/ws` -> `http://host:port` (and wss -> https); http(s) URLs keep their origin.
pub fn base_url(server_url: &str) -> Result<String, String> {
    let (scheme, rest) = server_url
        .split_once("://")
        .ok_or_else(|| format!("server.url '{server_url}' has no scheme"))?;
    let scheme = match scheme {
        "ws" | "http" => "http",
        "wss" | "https" => "https",
        other => return Err(format!("server.url scheme '{other}' is not supported")),
    };
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() {
        return Err(format!("server.url '{server_url}' has no host"));
    }
    Ok(format!("{scheme}://{host}"))
}

enum Failure {
    /// The key was refused: enroll again.
    Unauthorized,
    Other(String),
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn post<B: serde::Serialize, R: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        key: Option<&str>,
        body: &B,
    ) -> Result<R, Failure> {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| Failure::Other(format!("POST {path} failed: {e}")))?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(Failure::Unauthorized);
        }
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(Failure::Other(format!(
                "POST {path} answered {status}: {}",
                ascii(text.chars().take(300).collect::<String>().as_str())
            )));
        }
        resp.json::<R>()
            .await
            .map_err(|e| Failure::Other(format!("POST {path}: unexpected answer: {e}")))
    }
}

fn http_client(ctx: &Ctx) -> anyhow::Result<reqwest::Client> {
    Ok(super::tls::http_client_builder(ctx)
        .map_err(|e| anyhow::anyhow!(e))?
        .timeout(Duration::from_secs(30))
        .build()?)
}

async fn register(ctx: &Ctx, client: &Client) -> Result<String, Failure> {
    let body = RegisterRequest {
        site_code: ctx.config.server.api_key.clone(),
        device_id: ctx.device_id.clone(),
        hostname: ctx.hostname.clone(),
        os_info: ctx.os_info.clone(),
        version: ctx.version.to_owned(),
    };
    let resp: RegisterResponse = client
        .post("/api/agent/register-legacy", None, &body)
        .await?;
    ctx.state
        .save_agent_key(&resp.api_key)
        .map_err(|e| Failure::Other(format!("cannot save the issued agent key: {e}")))?;
    tracing::info!("enrolled over HTTP as agent {}", ascii(&resp.agent_id));
    Ok(resp.api_key)
}

pub(crate) struct Legacy<'a> {
    ctx: &'a Ctx,
    client: Client,
    key: Option<String>,
    /// What the next heartbeat carries; kept until a heartbeat carrying it is accepted.
    metrics: Option<MetricsReport>,
    network_state: Option<NetworkState>,
    events: Vec<WatchdogEvent>,
    update_status: Vec<UpdateStatus>,
    /// The answer to the last `policy`, until a heartbeat carrying it is accepted.
    policy_status: Option<PolicyStatus>,
    /// An `update` or `policy` that came with a heartbeat, handed to the session by `recv`.
    incoming: std::collections::VecDeque<String>,
}

impl<'a> Legacy<'a> {
    pub(crate) fn new(ctx: &'a Ctx) -> anyhow::Result<Legacy<'a>> {
        let client = Client {
            http: http_client(ctx)?,
            base: base_url(&ctx.config.server.url).map_err(|e| anyhow::anyhow!(e))?,
        };
        let key = ctx.state.agent_key().or_else(|| {
            let k = &ctx.config.server.api_key;
            k.starts_with("grmm_").then(|| k.clone())
        });
        Ok(Legacy {
            ctx,
            client,
            key,
            metrics: None,
            network_state: None,
            events: Vec::new(),
            update_status: Vec::new(),
            policy_status: None,
            incoming: Default::default(),
        })
    }

    async fn post<B: serde::Serialize, R: serde::de::DeserializeOwned>(
        &mut self,
        path: &str,
        body: &B,
    ) -> Result<R, Lost> {
        let key = self
            .key
            .as_deref()
            .ok_or_else(|| Lost::from("not enrolled"))?;
        match self.client.post(path, Some(key), body).await {
            Ok(r) => Ok(r),
            Err(Failure::Unauthorized) => {
                let _ = self.ctx.state.remove_agent_key();
                self.key = None;
                Err(Lost::from(
                    "the server refused the agent key; enrolling again with the site code",
                ))
            }
            Err(Failure::Other(e)) => Err(Lost(e)),
        }
    }
}

impl Transport for Legacy<'_> {
    async fn connect(&mut self) -> Result<(), Lost> {
        if self.key.is_none() {
            self.key = Some(
                register(self.ctx, &self.client)
                    .await
                    .map_err(|e| match e {
                        Failure::Unauthorized => Lost::from("the server refused the site code"),
                        Failure::Other(e) => Lost(e),
                    })?,
            );
        }
        Ok(())
    }

    async fn send(&mut self, msg: AgentMessage) -> Result<(), Lost> {
        match msg {
            AgentMessage::CommandResult(r) => {
                let _: serde_json::Value = self.post("/api/agent/command-result", &r).await?;
            }
            AgentMessage::MetricsReport(m) => self.metrics = Some(m),
            AgentMessage::NetworkState(n) => self.network_state = Some(n),
            AgentMessage::WatchdogEvent(e) => {
                tracing::info!(
                    "watchdog event {} for {}; sent with the next heartbeat",
                    ascii(&e.event),
                    ascii(&e.service)
                );
                if self.events.len() >= MAX_PENDING_EVENTS {
                    self.events.remove(0);
                }
                self.events.push(e);
            }
            AgentMessage::UpdateStatus(u) => self.update_status.push(u),
            AgentMessage::PolicyStatus(p) => self.policy_status = Some(p),
            // The periodic heartbeat goes anyway.
            AgentMessage::Heartbeat(_) => {}
            other => tracing::debug!(
                "'{}' has no legacy endpoint; not sent",
                ascii(other.message_type())
            ),
        }
        Ok(())
    }

    async fn heartbeat(&mut self) -> Result<Vec<Command>, Lost> {
        let body = HeartbeatRequest {
            timestamp: Some(now_unix()),
            version: Some(self.ctx.version.to_owned()),
            metrics: self.metrics.clone(),
            network_state: self.network_state.clone(),
            watchdog_events: self.events.clone(),
            update_status: self.update_status.clone(),
            policy_revision: self.ctx.live.borrow().revision.clone(),
            policy_status: self.policy_status.clone(),
        };
        let resp: HeartbeatResponse = self.post("/api/agent/heartbeat", &body).await?;
        self.metrics = None;
        self.network_state = None;
        self.events.drain(..body.watchdog_events.len());
        self.update_status.drain(..body.update_status.len());
        if self.policy_status == body.policy_status {
            self.policy_status = None;
        }
        if let Some(u) = resp.update {
            self.incoming.push_back(ServerMessage::Update(u).to_json());
        }
        if let Some(p) = resp.policy {
            self.incoming.push_back(ServerMessage::Policy(p).to_json());
        }
        Ok(resp.commands)
    }

    async fn recv(&mut self) -> Result<String, Lost> {
        // Commands come only with heartbeats; an update that came with one is handed on here.
        match self.incoming.pop_front() {
            Some(text) => Ok(text),
            None => std::future::pending().await,
        }
    }

    async fn close(&mut self) {}

    fn polls(&self) -> bool {
        true
    }

    /// The HTTP answer to a result is its acknowledgement: `send` fails unless it was stored.
    fn acknowledges_results(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_from_ws_urls() {
        assert_eq!(
            base_url("ws://127.0.0.1:3001/ws").unwrap(),
            "http://127.0.0.1:3001"
        );
        assert_eq!(
            base_url("wss://rmm.example.com/ws").unwrap(),
            "https://rmm.example.com"
        );
        assert_eq!(
            base_url("https://rmm.example.com").unwrap(),
            "https://rmm.example.com"
        );
        assert!(base_url("ftp://x").is_err());
        assert!(base_url("ws:///ws").is_err());
    }
}
