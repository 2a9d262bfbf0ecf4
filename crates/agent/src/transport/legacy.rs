//! Legacy mode: HTTP polling for machines that cannot keep a WebSocket.
//!
//! `POST /api/agent/register-legacy` once (with the site code) to get a `grmm_` key, then
//! `POST /api/agent/heartbeat` every heartbeat interval (with metrics when they are due); the
//! answer carries the commands to run. Results go to `POST /api/agent/command-result`.
//! Network state (when its hash changed) and watchdog events ride along on the next heartbeat;
//! events stay queued until a heartbeat carrying them is accepted.

use std::time::Duration;

use gururmm_protocol::legacy::{
    HeartbeatRequest, HeartbeatResponse, RegisterRequest, RegisterResponse,
};
use gururmm_protocol::CommandResult;
use reqwest::StatusCode;
use tokio::sync::watch;
use tokio::time::Instant;

use super::backoff::Backoff;
use crate::agent::{Ctx, Inbox};
use crate::logging::ascii;
use crate::metrics::{network_state, now_unix};

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
    let mut b = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(ctx.config.auth_timeout())
        .user_agent(format!("gururmm-agent/{}", ctx.version));
    if let Some(path) = &ctx.config.server.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read CA file {}: {e}", path.display()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| anyhow::anyhow!("invalid CA file {}: {e}", path.display()))?
        {
            b = b.add_root_certificate(cert);
        }
    }
    Ok(b.build()?)
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

async fn send_result(client: &Client, key: &str, result: &CommandResult) -> Result<(), Failure> {
    let _: serde_json::Value = client
        .post("/api/agent/command-result", Some(key), result)
        .await?;
    Ok(())
}

/// Sends every kept result; stops at the first failure (the rest stay on disk).
async fn flush_outbox(ctx: &Ctx, client: &Client, key: &str) -> Result<(), Failure> {
    for (path, result) in ctx.state.outbox() {
        send_result(client, key, &result).await?;
        ctx.state.remove_outbox(&path);
        tracing::info!("result of command {} sent", ascii(&result.id));
    }
    Ok(())
}

pub async fn run(
    ctx: &Ctx,
    inbox: &mut Inbox,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let client = Client {
        http: http_client(ctx)?,
        base: base_url(&ctx.config.server.url).map_err(|e| anyhow::anyhow!(e))?,
    };
    let mut backoff = Backoff::new(
        Duration::from_secs(ctx.config.agent.reconnect_delay_seconds),
        Duration::from_secs(ctx.config.agent.reconnect_max_delay_seconds),
    );
    let mut key: Option<String> = ctx.state.agent_key().or_else(|| {
        let k = &ctx.config.server.api_key;
        k.starts_with("grmm_").then(|| k.clone())
    });
    let mut next_metrics = Instant::now();
    // The hash the server last accepted, and watchdog events not yet delivered.
    let mut sent_network_hash: Option<String> = None;
    let mut pending_events: Vec<gururmm_protocol::WatchdogEvent> = Vec::new();
    loop {
        let round: Result<(), Failure> = async {
            let k = match &key {
                Some(k) => k.clone(),
                None => {
                    let k = register(ctx, &client).await?;
                    key = Some(k.clone());
                    k
                }
            };
            flush_outbox(ctx, &client, &k).await?;
            let metrics = if Instant::now() >= next_metrics {
                next_metrics = Instant::now() + ctx.config.metrics_interval();
                ctx.collect_metrics().await
            } else {
                None
            };
            let network = tokio::task::spawn_blocking(network_state::read)
                .await
                .ok()
                .filter(|n| sent_network_hash.as_deref() != Some(n.hash.as_str()));
            let body = HeartbeatRequest {
                timestamp: Some(now_unix()),
                version: Some(ctx.version.to_owned()),
                metrics,
                network_state: network,
                watchdog_events: pending_events.clone(),
            };
            let resp: HeartbeatResponse =
                client.post("/api/agent/heartbeat", Some(&k), &body).await?;
            if let Some(n) = body.network_state {
                sent_network_hash = Some(n.hash);
            }
            pending_events.drain(..body.watchdog_events.len());
            for cmd in resp.commands {
                ctx.executor.submit(cmd);
            }
            Ok(())
        }
        .await;
        let wait = match round {
            Ok(()) => {
                backoff.reset();
                ctx.config.heartbeat_interval()
            }
            Err(Failure::Unauthorized) => {
                tracing::warn!(
                    "the server refused the agent key; enrolling again with the site code"
                );
                let _ = ctx.state.remove_agent_key();
                key = None;
                backoff.next_delay()
            }
            Err(Failure::Other(e)) => {
                let d = backoff.next_delay();
                tracing::warn!("{}; retrying in {:.1} s", ascii(&e), d.as_secs_f64());
                d
            }
        };
        let until = Instant::now() + wait;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => break,
                _ = shutdown.changed() => return Ok(()),
                Some(f) = inbox.finished.recv() => {
                    // Deliver at once rather than at the next heartbeat; on failure it stays
                    // in the outbox for the next round.
                    if let (Some(k), Some(path)) = (&key, &f.outbox) {
                        if path.exists() && send_result(&client, k, &f.result).await.is_ok() {
                            ctx.state.remove_outbox(path);
                            tracing::info!("result of command {} sent", ascii(&f.result.id));
                        }
                    } else if let (Some(k), None) = (&key, &f.outbox) {
                        let _ = send_result(&client, k, &f.result).await;
                    }
                }
                Some(e) = inbox.events.recv() => {
                    tracing::info!(
                        "watchdog event {} for {}; sent with the next heartbeat",
                        ascii(&e.event), ascii(&e.service)
                    );
                    // Bounded: a machine offline for long keeps the newest events.
                    if pending_events.len() >= 1000 {
                        pending_events.remove(0);
                    }
                    pending_events.push(e);
                }
            }
        }
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
