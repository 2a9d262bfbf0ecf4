//! The restore drill of docs/OPERATIONS.md: agent A enrolls, the database is backed up, agent
//! B (the real agent binary) enrolls, the server is stopped, the backup restored and the server
//! started again. A reconnects as the same agent; B's saved key is unknown to the restored
//! database, so B enrolls again with the site code in its config and is listed again, not lost.
//!
//! Every agent binary on one machine has the machine's device id, and a second enrollment of a
//! known device is held for approval (a cloned machine); so A, a different machine, is a
//! simulated agent (the fleet simulator, one agent with its own device id and a saved key).

mod common;

use std::time::Duration;

use common::{runs_echo, saved_key, wait_for, Agent};
use gururmm_fleet_sim::{Fleet, FleetConfig};
use gururmm_server::backup;
use gururmm_server::testing::{TestDb, TestServer};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

/// Waits until `n` agents are listed, all online and approved; returns the list.
async fn listed(server: &TestServer, n: usize) -> Vec<Value> {
    let list = server
        .wait_for("/api/agents", WAIT, |v| {
            v.as_array().is_some_and(|a| {
                a.len() == n
                    && a.iter()
                        .all(|x| x["online"] == json!(true) && x["approval"] == json!("approved"))
            })
        })
        .await;
    list.as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_drill_agents_enrolled_since_the_backup_enroll_again() {
    let mut server = TestServer::start(TestDb::Sqlite).await;
    let (_, site_id, code) = server.create_site().await;
    let folder = tempfile::tempdir().unwrap();
    let a_fleet = Fleet::start(FleetConfig {
        servers: vec![server.ws_url.clone()],
        agents: 1,
        site_code: Some(code.clone()),
        keys_file: Some(folder.path().join("a-keys.jsonl")),
        backoff_min: Duration::from_millis(200),
        backoff_max: Duration::from_secs(1),
        ..FleetConfig::default()
    })
    .await
    .expect("agent A");
    let a = listed(&server, 1).await.remove(0);

    let file = folder.path().join("drill.db");
    backup::backup(&server.config, &file)
        .await
        .expect("backup while serving");

    let b_agent = Agent::start_new(&server.ws_url, &code, "");
    let b = listed(&server, 2)
        .await
        .into_iter()
        .find(|x| x["id"] != a["id"])
        .unwrap();
    let b_key = saved_key(&b_agent).await;

    let refused = backup::restore(&server.config, &file).await.unwrap_err();
    assert!(
        refused.to_string().contains("stop it before restoring"),
        "{refused:#}"
    );
    server.stop().await;
    let restored = backup::restore(&server.config, &file)
        .await
        .expect("restore");
    assert!(restored.previous.is_some_and(|p| p.exists()));
    server.restart().await;

    // A is back under its id; B is back as an agent of its site on the same machine.
    let agents = listed(&server, 2).await;
    assert!(
        agents.iter().any(|x| x["id"] == a["id"]),
        "agent A keeps its id: {agents:?}"
    );
    let b_again = agents
        .iter()
        .find(|x| x["id"] != a["id"])
        .unwrap_or_else(|| panic!("agent B is listed again: {agents:?}"));
    assert_eq!(b_again["device_id"], b["device_id"]);
    assert_eq!(b_again["site_id"], json!(site_id));
    let new_key = wait_for(10, "B's new saved key", || {
        let path = b_agent.state_dir().join("agent_key");
        let old = b_key.clone();
        async move { std::fs::read_to_string(&path).ok().filter(|k| *k != old) }
    })
    .await;
    assert!(new_key.starts_with("grmm_"));
    runs_echo(&server, b_again["id"].as_str().unwrap()).await;

    let c = server
        .post(
            &format!("/api/agents/{}/command", a["id"].as_str().unwrap()),
            json!({"command_type": "shell", "command": "echo a", "timeout_seconds": 20}),
        )
        .await;
    server
        .wait_for(
            &format!("/api/commands/{}", c["id"].as_str().unwrap()),
            WAIT,
            |c| c["status"] == json!("completed"),
        )
        .await;
    let counters = a_fleet.stop().await;
    assert_eq!(counters.enrolled, 1, "A enrolled once: {}", counters.line());
}
