use std::time::Duration;

use gururmm_server::testing::{TestDb, TestServer};
use reqwest::Method;
use serde_json::json;

use crate::agent_sim::{new_device_id, SimAgent};
use crate::on_both_databases;

const WAIT: Duration = Duration::from_secs(10);

/// Commands created while the agent is away wait as `pending` and go out, oldest first, when
/// it connects.
async fn offline_commands_delivered_on_connect(db: TestDb) {
    let server = TestServer::start(db).await;
    let (_, _, code) = server.create_site().await;
    let device = new_device_id();
    let (agent, auth) = SimAgent::enroll(&server.ws_url, &code, &device).await;
    let key = auth["api_key"].as_str().unwrap().to_owned();
    let id = auth["agent_id"].as_str().unwrap().to_owned();
    drop(agent);
    server
        .wait_for(&format!("/api/agents/{id}"), WAIT, |a| a["online"] == false)
        .await;

    let mut ids = Vec::new();
    for n in 0..3 {
        let c = server
            .post(
                &format!("/api/agents/{id}/command"),
                json!({"command_type": "python", "command": format!("print({n})")}),
            )
            .await;
        assert_eq!(c["status"], "pending");
        assert_eq!(c["timeout_seconds"], 300, "the default timeout");
        ids.push(c["id"].as_str().unwrap().to_owned());
    }
    let pending = server
        .get(&format!("/api/commands?agent_id={id}&status=pending"))
        .await;
    assert_eq!(pending.as_array().unwrap().len(), 3);

    let (mut agent, _) = SimAgent::enroll(&server.ws_url, &key, &device).await;
    for expected in &ids {
        let frame = agent.recv_json(WAIT).await.expect("queued command");
        assert_eq!(frame["payload"]["id"], expected.as_str(), "oldest first");
        assert_eq!(frame["payload"]["command_type"], "python");
    }
    for cid in &ids {
        assert_eq!(
            server.get(&format!("/api/commands/{cid}")).await["status"],
            "running"
        );
    }
    agent.answer(&ids[0], 3, "").await;
    server
        .wait_for(&format!("/api/commands/{}", ids[0]), WAIT, |c| {
            c["status"] == "failed" && c["exit_code"] == 3
        })
        .await;
    // Nothing is sent twice: reconnecting does not resend running commands.
    drop(agent);
    let (mut agent, _) = SimAgent::enroll(&server.ws_url, &key, &device).await;
    assert!(agent.recv_json(Duration::from_millis(800)).await.is_none());
}

/// A command that never gets a result is marked `timed_out` after its timeout plus the grace;
/// a result that arrives later still replaces it with what happened.
async fn command_without_result_times_out(db: TestDb) {
    let server = TestServer::start(db).await;
    let (_, _, code) = server.create_site().await;
    let (mut agent, auth) = SimAgent::enroll(&server.ws_url, &code, &new_device_id()).await;
    let id = auth["agent_id"].as_str().unwrap();
    let c = server
        .post(
            &format!("/api/agents/{id}/command"),
            json!({"command_type": "shell", "command": "sleep 100", "timeout_seconds": 1}),
        )
        .await;
    assert_eq!(c["status"], "running");
    let cid = c["id"].as_str().unwrap();
    let path = format!("/api/commands/{cid}");
    let timed_out = server
        .wait_for(&path, Duration::from_secs(15), |c| {
            c["status"] == "timed_out"
        })
        .await;
    assert!(timed_out["completed_at"].is_string());
    assert!(timed_out["exit_code"].is_null());

    agent.answer(cid, 0, "late but done").await;
    let late = server
        .wait_for(&path, WAIT, |c| c["stdout"] == "late but done")
        .await;
    assert_eq!(late["status"], "completed");
    // And the agent's own timeout report is stored as timed_out.
    let c2 = server
        .post(
            &format!("/api/agents/{id}/command"),
            json!({"command_type": "shell", "command": "sleep 100", "timeout_seconds": 5}),
        )
        .await;
    let mut r: serde_json::Value =
        serde_json::from_str(&gururmm_protocol::fixture("command_result_timed_out")).unwrap();
    r["payload"]["id"] = c2["id"].clone();
    agent.send(&r).await;
    let t = server
        .wait_for(
            &format!("/api/commands/{}", c2["id"].as_str().unwrap()),
            WAIT,
            |c| c["status"] == "timed_out",
        )
        .await;
    assert_eq!(t["exit_code"], 124);
}

async fn cancel_and_filters(db: TestDb) {
    let server = TestServer::start(db).await;
    let (_, _, code) = server.create_site().await;
    let device = new_device_id();
    let (agent, auth) = SimAgent::enroll(&server.ws_url, &code, &device).await;
    let id = auth["agent_id"].as_str().unwrap().to_owned();
    let key = auth["api_key"].as_str().unwrap().to_owned();
    drop(agent);
    server
        .wait_for(&format!("/api/agents/{id}"), WAIT, |a| a["online"] == false)
        .await;
    let c = server
        .post(
            &format!("/api/agents/{id}/command"),
            json!({"command_type": "shell", "command": "reboot"}),
        )
        .await;
    let cid = c["id"].as_str().unwrap();
    let cancelled = server
        .post(&format!("/api/commands/{cid}/cancel"), json!({}))
        .await;
    assert_eq!(cancelled["status"], "cancelled");
    let (status, body) = server
        .request(
            Method::POST,
            &format!("/api/commands/{cid}/cancel"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    // A cancelled command is not delivered.
    let (mut agent, _) = SimAgent::enroll(&server.ws_url, &key, &device).await;
    assert!(agent.recv_json(Duration::from_millis(500)).await.is_none());

    let all = server.get(&format!("/api/commands?agent_id={id}")).await;
    assert_eq!(all.as_array().unwrap().len(), 1);
    assert_eq!(
        server
            .get("/api/commands?status=cancelled")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        server
            .get("/api/commands?status=running")
            .await
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let future = chrono::Utc::now().timestamp() + 3600;
    assert_eq!(
        server
            .get(&format!("/api/commands?since={future}"))
            .await
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        server
            .get(&format!("/api/commands?until={future}"))
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let (status, body) = server
        .request(Method::GET, "/api/commands?status=lost", None)
        .await;
    assert_eq!(status, 400, "{body}");
}

/// Submissions beyond the per-agent rate get 429 with Retry-After, and nothing is created.
async fn command_rate_limit(db: TestDb) {
    let server = TestServer::start_with(db, |c| c.commands_per_minute_per_agent = 3).await;
    let (_, _, code) = server.create_site().await;
    let (_agent, auth) = SimAgent::enroll(&server.ws_url, &code, &new_device_id()).await;
    let id = auth["agent_id"].as_str().unwrap();
    for _ in 0..3 {
        server
            .post(
                &format!("/api/agents/{id}/command"),
                json!({"command_type": "shell", "command": "true"}),
            )
            .await;
    }
    let r = server
        .client
        .post(server.url(&format!("/api/agents/{id}/command")))
        .bearer_auth(&server.token)
        .json(&json!({"command_type": "shell", "command": "true"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().get("retry-after").is_some());
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("too many"),
        "{body}"
    );
    assert_eq!(
        server
            .get(&format!("/api/commands?agent_id={id}"))
            .await
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

/// An agent cannot complete another agent's command; oversized output is capped with a marker.
async fn results_are_checked_and_capped(db: TestDb) {
    let server = TestServer::start_with(db, |c| c.max_output_bytes = 2048).await;
    let (_, _, code) = server.create_site().await;
    let (mut a, auth_a) = SimAgent::enroll(&server.ws_url, &code, &new_device_id()).await;
    let (mut b, _) = SimAgent::enroll(&server.ws_url, &code, &new_device_id()).await;
    let id_a = auth_a["agent_id"].as_str().unwrap();
    let c = server
        .post(
            &format!("/api/agents/{id_a}/command"),
            json!({"command_type": "shell", "command": "yes"}),
        )
        .await;
    let cid = c["id"].as_str().unwrap();
    a.recv_json(WAIT).await.expect("command");
    b.answer(cid, 0, "forged").await;
    let big = "x".repeat(10_000);
    a.answer(cid, 0, &big).await;
    let done = server
        .wait_for(&format!("/api/commands/{cid}"), WAIT, |c| {
            c["status"] == "completed"
        })
        .await;
    let stdout = done["stdout"].as_str().unwrap();
    assert!(
        stdout.starts_with("xxxx") && stdout.len() < 2200,
        "{}",
        stdout.len()
    );
    assert!(stdout.ends_with("[output truncated by the server: 2048 of 10000 bytes kept]"));
    // A second result for a finished command changes nothing.
    a.answer(cid, 1, "again").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        server.get(&format!("/api/commands/{cid}")).await["exit_code"],
        0
    );
}

on_both_databases!(
    offline_commands_delivered_on_connect,
    command_without_result_times_out,
    cancel_and_filters,
    command_rate_limit,
    results_are_checked_and_capped
);
