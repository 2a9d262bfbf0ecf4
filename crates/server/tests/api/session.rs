//! The agent session, through both transports. The WebSocket hub and the legacy HTTP
//! endpoints are adapters over one session module (`gururmm_server::session`), so every case
//! here runs once over each transport, on SQLite and on PostgreSQL, and must behave alike.
//! The agent is played in raw JSON from the protocol fixtures, as a third-party agent would.

use std::time::Duration;

use gururmm_protocol::fixture;
use gururmm_server::testing::{TestDb, TestServer};
use serde_json::{json, Value};

use crate::agent_sim::{new_device_id, SimAgent};

#[derive(Debug, Clone, Copy)]
pub enum Transport {
    WebSocket,
    Legacy,
}

/// An enrolled agent on one transport.
struct TestAgent<'s> {
    server: &'s TestServer,
    id: String,
    key: String,
    ws: Option<SimAgent>,
}

fn payload(name: &str) -> Value {
    let v: Value = serde_json::from_str(&fixture(name)).unwrap();
    v["payload"].clone()
}

impl<'s> TestAgent<'s> {
    /// Enrolls with the site code, sending `hostname`.
    async fn enroll(server: &'s TestServer, t: Transport, code: &str, hostname: &str) -> Self {
        let device_id = new_device_id();
        match t {
            Transport::WebSocket => {
                let mut auth: Value = serde_json::from_str(&fixture("auth")).unwrap();
                auth["payload"]["api_key"] = json!(code);
                auth["payload"]["device_id"] = json!(device_id);
                auth["payload"]["hostname"] = json!(hostname);
                let mut sim = SimAgent::connect(&server.ws_url).await;
                sim.send(&auth).await;
                let reply = sim.recv_json(Duration::from_secs(10)).await.unwrap();
                assert_eq!(reply["payload"]["success"], true, "{reply}");
                TestAgent {
                    server,
                    id: reply["payload"]["agent_id"].as_str().unwrap().to_owned(),
                    key: reply["payload"]["api_key"].as_str().unwrap().to_owned(),
                    ws: Some(sim),
                }
            }
            Transport::Legacy => {
                let mut reg: Value = serde_json::from_str(&fixture("legacy_register")).unwrap();
                reg["site_code"] = json!(code);
                reg["device_id"] = json!(device_id);
                reg["hostname"] = json!(hostname);
                let r = server
                    .client
                    .post(server.url("/api/agent/register-legacy"))
                    .json(&reg)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), 201);
                let body: Value = r.json().await.unwrap();
                TestAgent {
                    server,
                    id: body["agent_id"].as_str().unwrap().to_owned(),
                    key: body["api_key"].as_str().unwrap().to_owned(),
                    ws: None,
                }
            }
        }
    }

    async fn legacy_post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .server
            .client
            .post(self.server.url(path))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Reports one message (`metrics_report`, `network_state`, `watchdog_event`).
    async fn report(&mut self, kind: &str, payload: Value) {
        match &mut self.ws {
            Some(ws) => ws.send(&json!({"type": kind, "payload": payload})).await,
            None => {
                let body = match kind {
                    "metrics_report" => json!({"metrics": payload}),
                    "network_state" => json!({"network_state": payload}),
                    "watchdog_event" => json!({"watchdog_events": [payload]}),
                    other => panic!("no legacy form for {other}"),
                };
                let (status, reply) = self.legacy_post("/api/agent/heartbeat", &body).await;
                assert_eq!(status, 200, "{reply}");
                assert_eq!(reply["commands"], json!([]), "no command was queued");
            }
        }
    }

    /// The commands the server hands out now (WebSocket: the frames that arrive within a
    /// moment; legacy: one poll).
    async fn commands(&mut self) -> Vec<Value> {
        match &mut self.ws {
            Some(ws) => {
                let mut got = Vec::new();
                while let Some(frame) = ws.recv_json(Duration::from_millis(700)).await {
                    assert_eq!(frame["type"], "command", "{frame}");
                    got.push(frame["payload"].clone());
                }
                got
            }
            None => {
                let (status, reply) = self.legacy_post("/api/agent/heartbeat", &json!({})).await;
                assert_eq!(status, 200, "{reply}");
                reply["commands"].as_array().unwrap().clone()
            }
        }
    }

    async fn result(&mut self, id: &str, exit_code: i64, stdout: &str) {
        let mut r = payload("command_result");
        r["id"] = json!(id);
        r["exit_code"] = json!(exit_code);
        r["stdout"] = json!(stdout);
        match &mut self.ws {
            Some(ws) => {
                ws.send(&json!({"type": "command_result", "payload": r}))
                    .await
            }
            None => {
                let (status, reply) = self.legacy_post("/api/agent/command-result", &r).await;
                assert!(status == 200 || status == 404, "{status} {reply}");
            }
        }
    }
}

async fn queue(server: &TestServer, agent_id: &str, command: &str) -> String {
    let c = server
        .post(
            &format!("/api/agents/{agent_id}/command"),
            json!({"command_type": "shell", "command": command}),
        )
        .await;
    c["id"].as_str().unwrap().to_owned()
}

async fn command(server: &TestServer, id: &str, check: impl Fn(&Value) -> bool) -> Value {
    server
        .wait_for(
            &format!("/api/commands/{id}"),
            Duration::from_secs(10),
            check,
        )
        .await
}

/// The agent's watchdog events, once there is at least one.
async fn watchdog_events(server: &TestServer, agent_id: &str) -> Value {
    server
        .wait_for(
            &format!("/api/agents/{agent_id}/watchdog-events"),
            Duration::from_secs(10),
            |e| e.as_array().is_some_and(|a| !a.is_empty()),
        )
        .await
}

async fn enrollment_places_the_agent_and_its_key_works(db: TestDb, t: Transport) {
    let server = TestServer::start(db).await;
    let (_, site_id, code) = server.create_site().await;
    let agent = TestAgent::enroll(&server, t, &code, "pc-reception").await;
    assert!(agent.key.starts_with("grmm_"));
    let shown = server.get(&format!("/api/agents/{}", agent.id)).await;
    assert_eq!(shown["site_id"], site_id.as_str());
    assert_eq!(shown["hostname"], "pc-reception");
    assert_eq!(shown["online"], true);
    assert_eq!(server.get("/api/sites").await[0]["agent_count"], 1);
}

async fn reports_are_stored(db: TestDb, t: Transport) {
    let server = TestServer::start(db).await;
    let (_, _, code) = server.create_site().await;
    let mut agent = TestAgent::enroll(&server, t, &code, "pc-1").await;
    let mut metrics = payload("metrics_report");
    metrics["timestamp"] = json!(chrono_now_secs());
    agent.report("metrics_report", metrics).await;
    agent
        .report("network_state", payload("network_state"))
        .await;
    agent
        .report("watchdog_event", payload("watchdog_event"))
        .await;
    let state = server
        .wait_for(
            &format!("/api/agents/{}/state", agent.id),
            Duration::from_secs(10),
            |s| !s["metrics"].is_null() && !s["network"].is_null(),
        )
        .await;
    assert_eq!(state["metrics"]["cpu_percent"], 12.5);
    assert_eq!(state["network"]["interfaces"][0]["name"], "eth0");
    let events = watchdog_events(&server, &agent.id).await;
    assert_eq!(events[0]["service"], "Spooler");
    assert_eq!(events[0]["event"], "restarted");
    let history = server
        .get(&format!("/api/agents/{}/metrics", agent.id))
        .await;
    assert_eq!(history["points"].as_array().unwrap().len(), 1);
}

/// Collectors come and go: a report with every value missing, then odd but valid values
/// (a tiny CPU figure, a timestamp before 1970, no disks), each stored, none a 5xx.
async fn sparse_and_odd_reports_are_stored(db: TestDb, t: Transport) {
    let server = TestServer::start(db).await;
    let (_, _, code) = server.create_site().await;
    let mut agent = TestAgent::enroll(&server, t, &code, "pc-sparse").await;
    agent
        .report("metrics_report", json!({"timestamp": chrono_now_secs()}))
        .await;
    agent
        .report(
            "metrics_report",
            json!({"timestamp": -532080, "cpu_percent": 2.220446049250313e-16,
                   "memory_used_bytes": 34709, "disks": [], "network": {"rx_bytes": 0, "tx_bytes": 0}}),
        )
        .await;
    let mut full = payload("metrics_report");
    full["timestamp"] = json!(chrono_now_secs());
    agent.report("metrics_report", full).await;
    let state = server
        .wait_for(
            &format!("/api/agents/{}/state", agent.id),
            Duration::from_secs(10),
            |s| s["metrics"]["cpu_percent"] == 12.5,
        )
        .await;
    assert_eq!(state["metrics"]["memory_used_bytes"], 4294967296u64);
    let from_1969 = server
        .get(&format!(
            "/api/agents/{}/metrics?from=-532081&to=-532079",
            agent.id
        ))
        .await;
    assert_eq!(
        from_1969["points"][0]["cpu_percent"], 2.220446049250313e-16,
        "{from_1969}"
    );
}

async fn commands_go_out_once_in_order_and_results_are_stored(db: TestDb, t: Transport) {
    let server = TestServer::start(db).await;
    let (_, _, code) = server.create_site().await;
    let mut agent = TestAgent::enroll(&server, t, &code, "pc-2").await;
    // Over the WebSocket a command goes out at once; a poll collects what waited.
    let first = queue(&server, &agent.id, "echo one").await;
    let second = queue(&server, &agent.id, "exit 3").await;
    let got = agent.commands().await;
    let ids: Vec<&str> = got.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [first.as_str(), second.as_str()], "oldest first");
    assert_eq!(got[0]["command_type"], "shell");
    assert!(agent.commands().await.is_empty(), "each goes out once");
    assert_eq!(
        command(&server, &first, |_| true).await["status"],
        "running"
    );

    agent.result(&first, 0, "one\n").await;
    agent.result(&second, 3, "").await;
    let done = command(&server, &first, |c| c["status"] == "completed").await;
    assert_eq!(done["stdout"], "one\n");
    assert_eq!(done["exit_code"], 0);
    let failed = command(&server, &second, |c| c["status"] != "running").await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["exit_code"], 3);
}

async fn an_agent_cannot_finish_another_agents_command(db: TestDb, t: Transport) {
    let server = TestServer::start(db).await;
    let (_, _, code) = server.create_site().await;
    let mut owner = TestAgent::enroll(&server, t, &code, "pc-owner").await;
    let mut other = TestAgent::enroll(&server, t, &code, "pc-other").await;
    let id = queue(&server, &owner.id, "echo mine").await;
    assert_eq!(owner.commands().await.len(), 1);
    other.result(&id, 0, "forged").await;
    // The forged result is dropped; the owner's real one still lands.
    owner.result(&id, 0, "real").await;
    let done = command(&server, &id, |c| c["status"] == "completed").await;
    assert_eq!(done["stdout"], "real");
}

/// PostgreSQL text refuses NUL bytes: what an agent reports has them replaced (U+FFFD) before
/// storage, on both backends, so nothing is refused and no command stays running.
async fn nul_bytes_from_agents_are_replaced(db: TestDb, t: Transport) {
    let server = TestServer::start(db).await;
    let (_, _, code) = server.create_site().await;
    let mut agent = TestAgent::enroll(&server, t, &code, "pc\u{0}3").await;
    assert_eq!(
        server.get(&format!("/api/agents/{}", agent.id)).await["hostname"],
        "pc\u{FFFD}3"
    );
    let mut event = payload("watchdog_event");
    event["message"] = json!("bad\u{0}name");
    agent.report("watchdog_event", event).await;
    let mut metrics = payload("metrics_report");
    metrics["timestamp"] = json!(chrono_now_secs());
    metrics["disks"][0]["mount"] = json!("/mnt/\u{0}x");
    agent.report("metrics_report", metrics).await;

    let id = queue(&server, &agent.id, "printf 'a\\000b'").await;
    assert_eq!(agent.commands().await.len(), 1);
    agent.result(&id, 0, "a\u{0}b").await;
    let done = command(&server, &id, |c| c["status"] != "running").await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["stdout"], "a\u{FFFD}b");

    let events = watchdog_events(&server, &agent.id).await;
    assert_eq!(events[0]["message"], "bad\u{FFFD}name");
    let state = server
        .wait_for(
            &format!("/api/agents/{}/state", agent.id),
            Duration::from_secs(10),
            |s| !s["metrics"].is_null(),
        )
        .await;
    assert_eq!(state["metrics"]["disks"][0]["mount"], "/mnt/\u{FFFD}x");
}

fn chrono_now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Declares `name::{websocket,legacy}::{sqlite,postgres}`.
macro_rules! on_both_transports {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                use super::Transport;
                use gururmm_server::testing::TestDb;
                mod websocket {
                    use super::*;
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn sqlite() {
                        super::super::$name(TestDb::Sqlite, Transport::WebSocket).await
                    }
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn postgres() {
                        super::super::$name(TestDb::Postgres, Transport::WebSocket).await
                    }
                }
                mod legacy {
                    use super::*;
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn sqlite() {
                        super::super::$name(TestDb::Sqlite, Transport::Legacy).await
                    }
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn postgres() {
                        super::super::$name(TestDb::Postgres, Transport::Legacy).await
                    }
                }
            }
        )+
    };
}

on_both_transports!(
    enrollment_places_the_agent_and_its_key_works,
    reports_are_stored,
    sparse_and_odd_reports_are_stored,
    commands_go_out_once_in_order_and_results_are_stored,
    an_agent_cannot_finish_another_agents_command,
    nul_bytes_from_agents_are_replaced,
);
