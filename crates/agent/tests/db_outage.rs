//! A database outage under a fleet: the real agent binary and 300 simulated agents on a server
//! whose PostgreSQL (a cluster of this test's own) is stopped for 60 s and started again.
//!
//! What an operator relies on: every agent stays connected through the outage; API calls that
//! need the database answer 503 within 2 s instead of hanging; `/api/health` answers at once
//! and `/api/ready` says not ready; after the database returns, a command started before the
//! outage and one sent after it both complete, and the metrics reports sent during the outage
//! are stored (the queue's bound is far above what this fleet sends).

mod common;

use std::time::{Duration, Instant};

use common::own_postgres::OwnPostgres;
use common::{wait_for, Agent};
use gururmm_fleet_sim::{Fleet, FleetConfig};
use gururmm_server::testing::{count_metrics, TestDb, TestServer};
use serde_json::{json, Value};

const SIMULATED: usize = 300;
const OUTAGE: Duration = Duration::from_secs(60);

async fn timed_get(server: &TestServer, path: &str, token: bool) -> (u16, Value, Duration) {
    let started = Instant::now();
    let mut request = server.client.get(server.url(path));
    if token {
        request = request.bearer_auth(&server.token);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body, started.elapsed())
}

/// Queues a shell command for the agent; returns its id.
async fn shell(server: &TestServer, agent_id: &str, text: &str) -> String {
    server
        .post(
            &format!("/api/agents/{agent_id}/command"),
            json!({"command_type": "shell", "command": text, "timeout_seconds": 300, "elevated": false}),
        )
        .await["id"]
        .as_str()
        .expect("command id")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_fleet_stays_connected_through_a_database_outage() {
    let pg = OwnPostgres::start();
    let server = TestServer::start_with(TestDb::Postgres, |c| {
        c.database_url = pg.url();
        c.enrollments_per_minute_per_address = 100_000;
    })
    .await;
    let (_, _, code) = server.create_site().await;

    // The real agent (heartbeat 1 s, idle timeout 6 s: it gives up on a silent server fast).
    let agent = Agent::start_new(&server.ws_url, &code, "");
    let agents = server
        .wait_for("/api/agents", Duration::from_secs(30), |v| {
            v.as_array().is_some_and(|a| a.len() == 1)
        })
        .await;
    let agent_id = agents[0]["id"].as_str().unwrap().to_owned();

    let fleet = Fleet::start(FleetConfig {
        servers: vec![server.ws_url.clone()],
        agents: SIMULATED,
        site_code: Some(code.clone()),
        heartbeat: Duration::from_secs(2),
        metrics: Duration::from_secs(5),
        ..FleetConfig::default()
    })
    .await
    .expect("start the simulated fleet");
    assert!(
        fleet
            .wait_connected(SIMULATED, Duration::from_secs(60))
            .await,
        "the simulated fleet connects: {}",
        fleet.snapshot().line()
    );

    // A command that is still running when the database goes away.
    let before = shell(&server, &agent_id, "sleep 6; echo before").await;
    server
        .wait_for(
            &format!("/api/commands/{before}"),
            Duration::from_secs(10),
            |c| c["status"] == json!("running"),
        )
        .await;

    let at_start = fleet.snapshot();
    pg.stop_server();
    let outage_started = Instant::now();

    // During the outage: liveness at once, readiness and data calls fail fast.
    let (status, _, took) = timed_get(&server, "/api/health", false).await;
    assert_eq!(status, 200, "health answers during the outage");
    assert!(took < Duration::from_millis(100), "health took {took:?}");
    let (status, body, took) = timed_get(&server, "/api/ready", false).await;
    assert_eq!(status, 503, "not ready during the outage: {body}");
    assert!(body["error"].is_string(), "a JSON reason: {body}");
    assert!(took < Duration::from_secs(2), "ready took {took:?}");
    let (status, body, took) = timed_get(&server, "/api/agents", true).await;
    assert_eq!(status, 503, "a data call says unavailable: {body}");
    assert!(body["error"].is_string(), "a JSON reason: {body}");
    assert!(took < Duration::from_secs(2), "the data call took {took:?}");
    let started = Instant::now();
    let (status, body) = server
        .request(
            reqwest::Method::POST,
            &format!("/api/agents/{agent_id}/command"),
            Some(json!({"command_type": "shell", "command": "echo during", "timeout_seconds": 30, "elevated": false})),
        )
        .await;
    assert_eq!(status, 503, "a command cannot be queued: {body}");
    assert!(started.elapsed() < Duration::from_secs(2));

    // Hold the outage; every agent stays connected all along.
    while outage_started.elapsed() < OUTAGE {
        assert_eq!(
            fleet.connected(),
            SIMULATED,
            "a simulated agent dropped during the outage: {}",
            fleet.snapshot().line()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let at_end = fleet.snapshot();
    assert_eq!(
        at_end.disconnects,
        at_start.disconnects,
        "no socket dropped: {}",
        at_end.line()
    );
    assert!(
        !agent.log_text().contains("connection to the server lost"),
        "the real agent stayed connected:\n{}",
        agent.log_text()
    );
    assert!(
        at_end.metrics_sent > at_start.metrics_sent,
        "the fleet kept reporting"
    );

    pg.start_server();

    // Pending work flows again: the command from before completes, a new one too.
    let done = server
        .wait_for(
            &format!("/api/commands/{before}"),
            Duration::from_secs(60),
            |c| c["status"] == json!("completed"),
        )
        .await;
    assert_eq!(done["stdout"], json!("before\n"));
    let after = shell(&server, &agent_id, "echo after").await;
    let done = server
        .wait_for(
            &format!("/api/commands/{after}"),
            Duration::from_secs(30),
            |c| c["status"] == json!("completed"),
        )
        .await;
    assert_eq!(done["stdout"], json!("after\n"));
    let (status, body, _) = timed_get(&server, "/api/ready", false).await;
    assert_eq!(status, 200, "ready again: {body}");

    // Every report the fleet sent (before, during and after the outage) is stored.
    let fleet_end = fleet.stop().await;
    assert_eq!(fleet_end.disconnects, 0, "{}", fleet_end.line());
    let sent = fleet_end.metrics_sent as i64;
    let stored = wait_for(60, "the reports sent during the outage stored", || async {
        let n = count_metrics(&pg.url()).await;
        (n >= sent).then_some(n)
    })
    .await;
    assert!(stored >= sent, "stored {stored} of {sent}");
    drop(agent);
}
