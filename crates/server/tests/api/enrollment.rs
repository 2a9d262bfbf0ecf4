use std::time::Duration;

use gururmm_server::testing::{TestDb, TestServer};
use serde_json::json;

use crate::agent_sim::{new_device_id, SimAgent};
use crate::on_both_databases;

const WAIT: Duration = Duration::from_secs(10);

/// The whole story: sign in, client and site, a JSON-only agent enrolls with the site code,
/// gets a `shell` command as a plain string, answers, and the result reads back as completed.
async fn enroll_run_command_read_result(db: TestDb) {
    let server = TestServer::start(db).await;
    let (_client_id, site_id, site_code) = server.create_site().await;

    let device = new_device_id();
    let (mut agent, auth) = SimAgent::enroll(&server.ws_url, &site_code, &device).await;
    assert_eq!(auth["success"], true, "{auth}");
    let key = auth["api_key"]
        .as_str()
        .expect("a grmm_ key is issued on enrollment");
    assert!(key.starts_with("grmm_"));
    let agent_id = auth["agent_id"].as_str().unwrap().to_owned();

    let shown = server.get(&format!("/api/agents/{agent_id}")).await;
    assert_eq!(shown["online"], true);
    assert_eq!(shown["status"], "online");
    assert_eq!(shown["site_id"], site_id.as_str());
    assert_eq!(shown["hostname"], "ws-frontdesk-01");
    assert_eq!(shown["os_type"], "linux");

    let created = server
        .post(
            &format!("/api/agents/{agent_id}/command"),
            json!({"command_type": "shell", "command": "echo hello", "timeout_seconds": 30, "elevated": false}),
        )
        .await;
    assert_eq!(
        created["status"], "running",
        "a connected agent gets it at once: {created}"
    );

    let frame = agent.recv_json(WAIT).await.expect("command frame");
    assert_eq!(frame["type"], "command");
    assert_eq!(
        frame["payload"]["command_type"],
        json!("shell"),
        "a plain string on the wire"
    );
    assert_eq!(frame["payload"]["command"], "echo hello");
    assert_eq!(frame["payload"]["id"], created["id"]);
    assert_eq!(frame["payload"]["timeout_seconds"], 30);

    agent
        .answer(created["id"].as_str().unwrap(), 0, "hello\n")
        .await;
    let path = format!("/api/commands/{}", created["id"].as_str().unwrap());
    let done = server
        .wait_for(&path, WAIT, |c| c["status"] == "completed")
        .await;
    assert_eq!(done["exit_code"], 0);
    assert_eq!(done["stdout"], "hello\n");
    assert_eq!(done["duration_ms"], 12);
    assert!(done["completed_at"].is_string());

    // The key works from now on, and the agent is the same one.
    drop(agent);
    server
        .wait_for(&format!("/api/agents/{agent_id}"), WAIT, |a| {
            a["online"] == false
        })
        .await;
    let (_again, auth2) = SimAgent::enroll(&server.ws_url, key, &device).await;
    assert_eq!(auth2["success"], true);
    assert_eq!(auth2["agent_id"], agent_id.as_str());
    assert!(
        auth2.get("api_key").is_none(),
        "no new key when authenticating with one"
    );
}

/// A device enrolling again by site code (a reinstall) does not take its agent over: it gets
/// a new record waiting for approval, with its own key, while the old key keeps working.
/// Approving it gives the agent the new key (same agent id); the old key dies. (Issue 10
/// changed this: it used to get the agent at once.)
async fn same_device_enrolls_again(db: TestDb) {
    let server = TestServer::start(db).await;
    let (_, _, code) = server.create_site().await;
    let device = new_device_id();
    let (a1, first) = SimAgent::enroll(&server.ws_url, &code, &device).await;
    drop(a1);
    let (_a2, second) = SimAgent::enroll(&server.ws_url, &code, &device).await;
    assert_eq!(second["success"], true);
    assert_ne!(
        first["agent_id"], second["agent_id"],
        "a new, pending record"
    );
    assert_ne!(first["api_key"], second["api_key"]);
    let pending = server
        .get(&format!(
            "/api/agents/{}",
            second["agent_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(pending["approval"], "pending");
    assert_eq!(pending["claims_agent_id"], first["agent_id"]);
    let agents = server.get("/api/agents").await;
    assert_eq!(agents.as_array().unwrap().len(), 2);
    let (a3, old) =
        SimAgent::enroll(&server.ws_url, first["api_key"].as_str().unwrap(), &device).await;
    assert_eq!(
        old["success"], true,
        "the old key still works until approval"
    );
    drop(a3);

    server
        .post(
            &format!(
                "/api/agents/{}/approve",
                second["agent_id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(server.get("/api/agents").await.as_array().unwrap().len(), 1);
    let (_a4, old) =
        SimAgent::enroll(&server.ws_url, first["api_key"].as_str().unwrap(), &device).await;
    assert_eq!(old["success"], false, "the old key died on approval");
    let (_a5, new) =
        SimAgent::enroll(&server.ws_url, second["api_key"].as_str().unwrap(), &device).await;
    assert_eq!(new["success"], true);
    assert_eq!(
        new["agent_id"], first["agent_id"],
        "the same agent, with the new key"
    );
}

/// Online is true exactly while the socket is; a new socket replaces a stale one.
async fn reconnect_replaces_stale_socket(db: TestDb) {
    let server = TestServer::start(db).await;
    let (_, _, code) = server.create_site().await;
    let device = new_device_id();
    let (mut stale, auth) = SimAgent::enroll(&server.ws_url, &code, &device).await;
    let key = auth["api_key"].as_str().unwrap().to_owned();
    let id = auth["agent_id"].as_str().unwrap().to_owned();

    let (mut fresh, auth2) = SimAgent::enroll(&server.ws_url, &key, &device).await;
    assert_eq!(auth2["success"], true);
    assert!(
        stale.closed_within(WAIT).await,
        "the older socket is closed by the server"
    );

    // Still online (the new socket), and commands go to the new socket.
    let agent = server.get(&format!("/api/agents/{id}")).await;
    assert_eq!(agent["online"], true);
    let cmd = server
        .post(
            &format!("/api/agents/{id}/command"),
            json!({"command_type": "shell", "command": "hostname"}),
        )
        .await;
    let frame = fresh
        .recv_json(WAIT)
        .await
        .expect("command on the new socket");
    assert_eq!(frame["payload"]["id"], cmd["id"]);
    assert_eq!(server.get("/api/agents/stats").await["online"], 1);

    drop(fresh);
    server
        .wait_for(&format!("/api/agents/{id}"), WAIT, |a| {
            a["online"] == false && a["last_seen"].is_string()
        })
        .await;
    assert_eq!(server.get("/api/agents/stats").await["online"], 0);
}

/// Metrics stored as a series, network state stored once per hash, watchdog events stored.
async fn reports_are_stored(db: TestDb) {
    let server = TestServer::start(db).await;
    let (_, _, code) = server.create_site().await;
    let (mut agent, auth) = SimAgent::enroll(&server.ws_url, &code, &new_device_id()).await;
    let id = auth["agent_id"].as_str().unwrap().to_owned();
    let now = chrono::Utc::now().timestamp();
    for (i, cpu) in [10.0, 30.0].iter().enumerate() {
        let mut m: serde_json::Value =
            serde_json::from_str(&gururmm_protocol::fixture("metrics_report")).unwrap();
        m["payload"]["timestamp"] = json!(now - 60 + i as i64 * 30);
        m["payload"]["cpu_percent"] = json!(cpu);
        agent.send(&m).await;
    }
    agent
        .send_text(&gururmm_protocol::fixture("network_state"))
        .await;
    agent
        .send_text(&gururmm_protocol::fixture("watchdog_event"))
        .await;

    let metrics = server
        .wait_for(&format!("/api/agents/{id}/metrics"), WAIT, |m| {
            m["points"].as_array().is_some_and(|p| p.len() == 2)
        })
        .await;
    assert_eq!(metrics["points"][0]["cpu_percent"], 10.0);
    assert_eq!(metrics["points"][1]["cpu_percent"], 30.0);
    assert_eq!(metrics["points"][0]["disk_total_bytes"], 512110190592i64);
    assert_eq!(metrics["points"][0]["network_rx_bytes"], 123456789);

    let state = server
        .wait_for(&format!("/api/agents/{id}/state"), WAIT, |s| {
            !s["network"].is_null()
        })
        .await;
    assert_eq!(state["network"]["interfaces"][0]["name"], "eth0");
    assert_eq!(state["metrics"]["cpu_percent"], 30.0);
    let events = server
        .wait_for(&format!("/api/agents/{id}/watchdog-events"), WAIT, |e| {
            e.as_array().is_some_and(|a| !a.is_empty())
        })
        .await;
    assert_eq!(events[0]["service"], "Spooler");
    assert_eq!(events[0]["event"], "restarted");

    // A long range is averaged into buckets: both points fall in one.
    let from = now - 30 * 86400;
    let long = server
        .get(&format!(
            "/api/agents/{id}/metrics?from={from}&to={}",
            now + 60
        ))
        .await;
    assert!(long["bucket_seconds"].as_i64().unwrap() >= 7000);
    let points = long["points"].as_array().unwrap();
    assert_eq!(points.len(), 1, "{long}");
    assert_eq!(points[0]["cpu_percent"], 20.0);

    let summary = server.get("/api/metrics/summary").await;
    assert_eq!(summary["agents_reporting"], 1);
    assert_eq!(summary["agents_connected"], 1);
}

/// The server pings, and closes a socket it has heard nothing from for the idle timeout; a
/// heartbeating agent stays.
async fn idle_socket_is_closed(db: TestDb) {
    let server = TestServer::start_with(db, |c| {
        c.ping_interval_seconds = 1;
        c.idle_timeout_seconds = 2;
    })
    .await;
    let (_, _, code) = server.create_site().await;
    let (mut silent, auth) = SimAgent::enroll(&server.ws_url, &code, &new_device_id()).await;
    let silent_id = auth["agent_id"].as_str().unwrap().to_owned();
    let (mut chatty, auth) = SimAgent::enroll(&server.ws_url, &code, &new_device_id()).await;
    let chatty_id = auth["agent_id"].as_str().unwrap().to_owned();
    let heartbeat = gururmm_protocol::fixture("heartbeat");
    // The chatty agent heartbeats every half second for 4 s: it stays.
    for _ in 0..8 {
        chatty.send_text(&heartbeat).await;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
        while let Ok(Some(Ok(_))) =
            tokio::time::timeout_at(deadline, futures_util::StreamExt::next(&mut chatty.ws)).await
        {
        }
    }
    // The silent one was pinged once it had been quiet for the ping interval, then closed at
    // the idle timeout (its frames waited in the socket meanwhile).
    let mut saw_ping = false;
    let mut closed = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(next) =
        tokio::time::timeout_at(deadline, futures_util::StreamExt::next(&mut silent.ws)).await
    {
        match next {
            Some(Ok(msg)) if msg.is_close() => {
                closed = true;
                break;
            }
            Some(Ok(msg)) => saw_ping |= msg.to_text().is_ok_and(|t| t.contains("\"ping\"")),
            _ => {
                closed = true;
                break;
            }
        }
    }
    assert!(saw_ping, "the server pings a quiet socket");
    assert!(closed, "the silent socket was closed");
    assert_eq!(
        server.get(&format!("/api/agents/{silent_id}")).await["online"],
        false
    );
    assert_eq!(
        server.get(&format!("/api/agents/{chatty_id}")).await["online"],
        true
    );
}

on_both_databases!(
    idle_socket_is_closed,
    enroll_run_command_read_result,
    same_device_enrolls_again,
    reconnect_replaces_stale_socket,
    reports_are_stored
);
