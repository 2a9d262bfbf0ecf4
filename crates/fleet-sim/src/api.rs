//! The REST side of the `commands` scenario: sign in, submit commands to agents, and watch
//! the dashboard's event stream (`GET /api/events?ticket=`) for each command's final state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::fleet::Fleet;

/// An authenticated REST client for one or more server nodes (requests go round robin).
#[derive(Clone)]
pub struct Api {
    bases: Vec<String>,
    token: String,
    http: reqwest::Client,
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client")
}

fn trim(base: &str) -> String {
    base.trim_end_matches('/').to_owned()
}

impl Api {
    pub fn with_token(bases: &[String], token: &str) -> Api {
        Api {
            bases: bases.iter().map(|b| trim(b)).collect(),
            token: token.to_owned(),
            http: http_client(),
        }
    }

    /// `POST /api/auth/login` on the first base URL.
    pub async fn login(bases: &[String], email: &str, password: &str) -> anyhow::Result<Api> {
        anyhow::ensure!(!bases.is_empty(), "no API base URL given");
        let http = http_client();
        let r = http
            .post(format!("{}/api/auth/login", trim(&bases[0])))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let token = body["token"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("login refused: {status} {body}"))?;
        Ok(Api {
            bases: bases.iter().map(|b| trim(b)).collect(),
            token: token.to_owned(),
            http,
        })
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn bases(&self) -> &[String] {
        &self.bases
    }

    /// An authenticated request to node `node % n`; the status and the JSON body.
    pub async fn request(
        &self,
        node: usize,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let base = &self.bases[node % self.bases.len()];
        let mut req = self
            .http
            .request(method, format!("{base}{path}"))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await?;
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// Submits a harmless shell command; returns its id. A 503 (the server's database is busy
    /// or away: nothing was created) is tried again a few times, as a technician would.
    pub async fn submit_command(&self, node: usize, agent_id: &str) -> anyhow::Result<String> {
        let mut attempts = 0;
        let (status, body) = loop {
            let (status, body) = self
                .request(
                    node,
                    reqwest::Method::POST,
                    &format!("/api/agents/{agent_id}/command"),
                    Some(json!({"command_type": "shell", "command": "echo fleet-sim"})),
                )
                .await?;
            attempts += 1;
            if status != 503 || attempts == 5 {
                break (status, body);
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        };
        body["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("command refused: {status} {body}"))
    }

    /// `GET /api/commands/{id}`'s `status`.
    pub async fn command_status(&self, id: &str) -> anyhow::Result<String> {
        let (status, body) = self
            .request(
                0,
                reqwest::Method::GET,
                &format!("/api/commands/{id}"),
                None,
            )
            .await?;
        body["status"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("GET /api/commands/{id}: {status} {body}"))
    }

    /// Opens the event stream on every node (a command's result may be handled by any).
    pub async fn watch_commands(&self) -> anyhow::Result<CommandWatcher> {
        let seen: Arc<Mutex<HashMap<String, (String, Instant)>>> = Default::default();
        let notify = Arc::new(Notify::new());
        let mut readers = Vec::new();
        for node in 0..self.bases.len() {
            let (status, ticket) = self
                .request(node, reqwest::Method::POST, "/api/auth/event-ticket", None)
                .await?;
            let ticket = ticket["ticket"]
                .as_str()
                .ok_or_else(|| anyhow::anyhow!("event ticket refused: {status} {ticket}"))?;
            // No overall timeout: the stream stays open for the whole run.
            let stream = reqwest::Client::new()
                .get(format!("{}/api/events?ticket={ticket}", self.bases[node]))
                .send()
                .await?;
            anyhow::ensure!(
                stream.status().is_success(),
                "GET /api/events: {}",
                stream.status()
            );
            readers.push(tokio::spawn(read_events(
                stream,
                seen.clone(),
                notify.clone(),
            )));
        }
        Ok(CommandWatcher {
            seen,
            notify,
            readers,
        })
    }
}

/// Final command states seen on the event stream(s), with when they were seen.
pub struct CommandWatcher {
    seen: Arc<Mutex<HashMap<String, (String, Instant)>>>,
    notify: Arc<Notify>,
    readers: Vec<JoinHandle<()>>,
}

impl Drop for CommandWatcher {
    fn drop(&mut self) {
        for r in &self.readers {
            r.abort();
        }
    }
}

impl CommandWatcher {
    /// Waits for command `id` to reach a final state; (status, when seen), or None on timeout.
    pub async fn wait_final(&self, id: &str, timeout: Duration) -> Option<(String, Instant)> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(hit) = self.seen.lock().expect("seen").get(id) {
                return Some(hit.clone());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }
}

fn is_final(status: &str) -> bool {
    use gururmm_protocol::command_status::*;
    [COMPLETED, FAILED, TIMED_OUT, CANCELLED].contains(&status)
}

/// Reads server-sent events; records every `command_updated` with a final status.
async fn read_events(
    response: reqwest::Response,
    seen: Arc<Mutex<HashMap<String, (String, Instant)>>>,
    notify: Arc<Notify>,
) {
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    while let Some(Ok(chunk)) = stream.next().await {
        let now = Instant::now();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        // Events end with a blank line; keep a partial one for the next chunk.
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            for line in event.lines() {
                let Some(data) = line.strip_prefix("data:") else {
                    continue;
                };
                let Ok(v) = serde_json::from_str::<Value>(data.trim()) else {
                    continue;
                };
                if v["event"] != "command_updated" {
                    continue;
                }
                if let (Some(id), Some(status)) = (v["id"].as_str(), v["status"].as_str()) {
                    if is_final(status) {
                        seen.lock()
                            .expect("seen")
                            .entry(id.to_owned())
                            .or_insert((status.to_owned(), now));
                        notify.notify_waiters();
                    }
                }
            }
        }
    }
}

/// The outcome of a `commands` run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CommandRun {
    pub submitted: usize,
    pub refused: usize,
    pub completed: usize,
    /// Final but not `completed` (failed, timed_out, cancelled).
    pub other_final: usize,
    /// No final state seen on the event stream within the timeout.
    pub missing: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub elapsed_secs: f64,
    /// Ids of the commands submitted (for checks by the caller).
    #[serde(skip)]
    pub ids: Vec<String>,
    /// Round trips in milliseconds, sorted.
    #[serde(skip)]
    pub round_trips_ms: Vec<f64>,
}

/// The `p`-quantile (0..=1) of sorted values; 0 for none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Submits `count` commands to random connected agents, `concurrency` at a time, and times
/// each from the REST submit to its final state on the event stream.
pub async fn run_commands(
    api: &Api,
    fleet: &Fleet,
    count: usize,
    concurrency: usize,
    per_command_timeout: Duration,
) -> anyhow::Result<CommandRun> {
    let watcher = api.watch_commands().await?;
    let next = std::sync::atomic::AtomicUsize::new(0);
    // (command id, (final status, round trip) if seen)
    type Outcome = (String, Option<(String, Duration)>);
    let results: Mutex<Vec<Outcome>> = Mutex::new(Vec::new());
    let refused = std::sync::atomic::AtomicUsize::new(0);
    let started = Instant::now();
    let worker = |_| async {
        loop {
            let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if n >= count {
                return;
            }
            let Some(agent) = fleet.random_connected_agent() else {
                refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let t = Instant::now();
            let id = match api.submit_command(n, &agent).await {
                Ok(id) => id,
                Err(e) => {
                    eprintln!("command {n}: {e}");
                    refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    continue;
                }
            };
            let outcome = watcher
                .wait_final(&id, per_command_timeout)
                .await
                .map(|(status, at)| (status, at.saturating_duration_since(t)));
            results.lock().expect("results").push((id, outcome));
        }
    };
    futures_util::future::join_all((0..concurrency.max(1)).map(worker)).await;
    let elapsed = started.elapsed();
    let results = results.into_inner().expect("results");
    let mut run = CommandRun {
        submitted: results.len(),
        refused: refused.into_inner(),
        elapsed_secs: elapsed.as_secs_f64(),
        ..Default::default()
    };
    for (id, outcome) in results {
        match outcome {
            Some((status, took)) if status == gururmm_protocol::command_status::COMPLETED => {
                run.completed += 1;
                run.round_trips_ms.push(took.as_secs_f64() * 1000.0);
            }
            Some(_) => run.other_final += 1,
            None => run.missing += 1,
        }
        run.ids.push(id);
    }
    run.round_trips_ms.sort_by(f64::total_cmp);
    run.p50_ms = percentile(&run.round_trips_ms, 0.50);
    run.p95_ms = percentile(&run.round_trips_ms, 0.95);
    run.p99_ms = percentile(&run.round_trips_ms, 0.99);
    run.max_ms = run.round_trips_ms.last().copied().unwrap_or(0.0);
    Ok(run)
}
