//! Several server nodes on one PostgreSQL, in one test process: commands created on one node
//! reach the agent connected to another, dashboard events and online state cross nodes, and
//! background work runs on one node at a time. (A node killed with SIGKILL, with a fleet, is
//! in `tests/fleet_smoke.rs`, where the nodes are real processes.)

use std::time::Duration;

use futures_util::StreamExt;
use gururmm_server::db::Store;
use gururmm_server::testing::{fresh_postgres_database, TestDb, TestServer};
use serde_json::{json, Value};

use crate::agent_sim::{new_device_id, SimAgent};
use crate::on_both_databases;
use crate::updates::{next_of, publish, put, release_keys};

/// Short timeouts, so a node's beat (idle / 6) and the test are quick.
async fn first_node() -> TestServer {
    TestServer::start_with(TestDb::Postgres, |c| {
        c.ping_interval_seconds = 2;
        c.idle_timeout_seconds = 6;
    })
    .await
}

/// Waits until `server` says the agent is (or is not) online.
pub async fn online_on(server: &TestServer, agent_id: &str, online: bool) {
    server
        .wait_for(
            &format!("/api/agents/{agent_id}"),
            Duration::from_secs(15),
            |a| a["online"] == online,
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_commands_events_and_online_state() {
    let a = first_node().await;
    let b = a.another_node().await;
    let (_, _, code) = a.create_site().await;

    // The dashboard's event stream is on node A; the agent connects to node B.
    let ticket = a.post("/api/auth/event-ticket", json!({})).await;
    let mut events = a
        .events_with_ticket(ticket["ticket"].as_str().unwrap())
        .await
        .bytes_stream();
    let (mut agent, auth) = SimAgent::enroll(&b.ws_url, &code, &new_device_id()).await;
    let id = auth["agent_id"].as_str().unwrap().to_owned();
    online_on(&a, &id, true).await;

    // A command created on A goes out on B's socket, once; its result is seen on A.
    let cmd = a
        .post(
            &format!("/api/agents/{id}/command"),
            json!({"command_type": "shell", "command": "echo hi"}),
        )
        .await;
    let cmd_id = cmd["id"].as_str().unwrap().to_owned();
    // Under 2 s: through the dispatch notice, not the re-offer of commands waiting longer.
    let frame = agent
        .recv_json(Duration::from_millis(1900))
        .await
        .expect("the command reached the agent on the other node");
    assert_eq!(frame["type"], "command", "{frame}");
    assert_eq!(frame["payload"]["id"], cmd_id.as_str());
    // Its live output, streamed to B, is read on A while it runs (and relayed, below).
    agent
        .send(&json!({"type": "command_output",
            "payload": {"id": cmd_id, "stream": "stdout", "seq": 0, "data": "live from B"}}))
        .await;
    let live = a
        .wait_for(
            &format!("/api/commands/{cmd_id}"),
            Duration::from_secs(10),
            |c| c["live_seq"] == 0,
        )
        .await;
    assert_eq!(live["stdout"], "live from B");
    agent.answer(&cmd_id, 0, "hi\n").await;
    let done = a
        .wait_for(
            &format!("/api/commands/{cmd_id}"),
            Duration::from_secs(10),
            |c| c["status"] == "completed",
        )
        .await;
    assert_eq!(done["stdout"], "hi\n");
    assert!(
        agent.recv_json(Duration::from_millis(1500)).await.is_none(),
        "the command went out once"
    );
    assert_eq!(
        agent.acks,
        vec![cmd_id.clone()],
        "the node holding the socket acknowledged the stored result"
    );

    // B's events reached the technician on A.
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !(seen.contains("\"online\":true")
        && seen.contains("\"status\":\"completed\"")
        && seen.contains("live from B"))
    {
        match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some(Ok(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!("stream ended or timed out: {other:?}; seen: {seen}"),
        }
    }
    assert!(seen.contains(&id), "{seen}");

    // Deleting the agent on A closes its socket on B.
    let (status, _) = a
        .request(reqwest::Method::DELETE, &format!("/api/agents/{id}"), None)
        .await;
    assert_eq!(status, 204);
    assert!(agent.closed_within(Duration::from_secs(10)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_nodes_agents_go_offline_and_reconnect_elsewhere() {
    let a = first_node().await;
    let mut b = a.another_node().await;
    let (_, _, code) = a.create_site().await;
    let device = new_device_id();
    let (mut agent, auth) = SimAgent::enroll(&b.ws_url, &code, &device).await;
    let id = auth["agent_id"].as_str().unwrap().to_owned();
    let key = auth["api_key"].as_str().unwrap().to_owned();
    online_on(&a, &id, true).await;

    b.stop().await;
    assert!(agent.closed_within(Duration::from_secs(10)).await);
    online_on(&a, &id, false).await;

    // The agent comes back through node A; a command queued meanwhile is waiting for it.
    let cmd = a
        .post(
            &format!("/api/agents/{id}/command"),
            json!({"command_type": "shell", "command": "true"}),
        )
        .await;
    let (mut agent, again) = SimAgent::enroll(&a.ws_url, &key, &device).await;
    assert_eq!(again["success"], true, "{again}");
    let frame: Value = agent.recv_json(Duration::from_secs(10)).await.unwrap();
    assert_eq!(frame["payload"]["id"], cmd["id"]);
    online_on(&a, &id, true).await;
}

/// A rollout changed on one node, and a technician's update asked for on it, reach agents
/// connected to another node at once, with download URLs of the node they connected to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollouts_and_requested_updates_reach_agents_on_other_nodes() {
    let keys = release_keys();
    let a = crate::updates::start(TestDb::Postgres, &keys).await;
    let b = a.another_node().await;
    let (_, _, code) = a.create_site().await;
    publish(&a, &keys, "0.3.0", b"build three").await;
    // Both agents run 0.1.0 (the auth fixture's version), on node B.
    let (mut first, auth) = SimAgent::enroll(&b.ws_url, &code, &new_device_id()).await;
    let first_id = auth["agent_id"].as_str().unwrap().to_owned();
    let (mut second, auth) = SimAgent::enroll(&b.ws_url, &code, &new_device_id()).await;
    let second_id = auth["agent_id"].as_str().unwrap().to_owned();
    online_on(&a, &first_id, true).await;
    online_on(&a, &second_id, true).await;

    // A technician on node A asks for 0.3.0 on the second agent.
    let asked = a
        .post(
            &format!("/api/agents/{second_id}/update"),
            json!({"version": "0.3.0"}),
        )
        .await;
    let update = next_of(&mut second, "update", Duration::from_secs(5))
        .await
        .expect("the requested update reached the agent on the other node");
    assert_eq!(update["update_id"], asked["id"]);
    assert_eq!(update["version"], "0.3.0");
    assert_eq!(
        update["download_url"],
        b.url("/downloads/gururmm-agent-linux-x86_64-0.3.0")
            .as_str(),
        "the address the agent reached, not the technician's"
    );

    // A rollout to 0.3.0 set on node A reaches the first agent on node B.
    let (status, body) = put(
        &a,
        "/api/rollouts/linux/x86_64",
        json!({"version": "0.3.0", "scope": "all"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let update = next_of(&mut first, "update", Duration::from_secs(5))
        .await
        .expect("the rollout reached the agent on the other node");
    assert_eq!(update["version"], "0.3.0");
    assert_eq!(
        update["download_url"],
        b.url("/downloads/gururmm-agent-linux-x86_64-0.3.0")
            .as_str()
    );
    let rows = a.get(&format!("/api/agents/{first_id}/updates")).await;
    assert_eq!(rows[0]["id"], update["update_id"]);
    assert_eq!(rows[0]["status"], "pending");
    // The second agent's update to 0.3.0 is under way: not sent to it again
    // (across nodes too).
    assert!(next_of(&mut second, "update", Duration::from_secs(1))
        .await
        .is_none());
}

/// Sign-in limits are counted for the cluster: guesses spread over nodes get no more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_limits_hold_across_nodes() {
    let a = TestServer::start_with(TestDb::Postgres, |c| c.login_attempts_per_account = 4).await;
    let b = a.another_node().await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        let node = if i % 2 == 0 { &a } else { &b };
        let status = match node.login("admin@example.com", "wrong-password").await {
            Ok(_) => 200,
            Err((status, _)) => status,
        };
        statuses.push(status);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 429, 429], "{statuses:?}");
}

/// One holder at a time; the lease passes on when it lapses.
async fn leases_have_one_holder(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let url = match db {
        TestDb::Sqlite => format!("sqlite://{}", dir.path().join("l.db").display()),
        TestDb::Postgres => fresh_postgres_database().await,
    };
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    // Long enough that a slow machine does not let a lease lapse between two calls.
    let ttl = 2_000;
    assert!(store.take_lease("upkeep", "node-a", ttl).await.unwrap());
    assert!(!store.take_lease("upkeep", "node-b", ttl).await.unwrap());
    assert!(
        store.take_lease("upkeep", "node-a", ttl).await.unwrap(),
        "renewed"
    );
    assert!(store.take_lease("other", "node-b", ttl).await.unwrap());
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    assert!(
        store.take_lease("upkeep", "node-b", ttl).await.unwrap(),
        "lapsed"
    );
    assert!(!store.take_lease("upkeep", "node-a", ttl).await.unwrap());
}

on_both_databases!(leases_have_one_holder);
