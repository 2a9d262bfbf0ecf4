//! The real agent whose saved key the server refuses, with the site code still in its config:
//! it enrolls again through the same path as any machine instead of retrying a dead key.
//! - Its agent was deleted: the device id is free again, so it comes back as a new agent at
//!   the site (what a technician who deleted it by mistake expects; a site that requires
//!   approval would hold it pending).
//! - The server's database was restored from an older backup (the agent's record is there but
//!   with another key): it comes back as a record waiting for approval, claiming its agent;
//!   approving it gives the machine its old agent id (and history) again.

mod common;

use std::time::Duration;

use common::{runs_echo, saved_key, wait_for, Agent};
use gururmm_server::db::Store;
use gururmm_server::testing::{TestDb, TestServer};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

async fn enrolled(db: TestDb) -> (TestServer, Agent, Value) {
    let server = TestServer::start(db).await;
    let (_, _, code) = server.create_site().await;
    let agent = Agent::start_new(&server.ws_url, &code, "");
    let list = server
        .wait_for("/api/agents", WAIT, |v| {
            v.as_array()
                .is_some_and(|a| a.len() == 1 && a[0]["online"] == json!(true))
        })
        .await;
    (server, agent, list[0].clone())
}

async fn deleted_agent_comes_back_as_a_new_agent(db: TestDb) {
    let (server, mut agent, old) = enrolled(db).await;
    let old_id = old["id"].as_str().unwrap().to_owned();
    let old_key = saved_key(&agent).await;
    agent.stop();
    let (status, _) = server
        .request(
            reqwest::Method::DELETE,
            &format!("/api/agents/{old_id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    agent.start();

    let list = server
        .wait_for("/api/agents", WAIT, |v| {
            v.as_array().is_some_and(|a| {
                a.len() == 1 && a[0]["online"] == json!(true) && a[0]["id"] != json!(old_id)
            })
        })
        .await;
    let new = &list[0];
    assert_eq!(new["approval"], "approved", "{new}");
    assert_eq!(new["device_id"], old["device_id"]);
    assert_eq!(new["site_id"], old["site_id"]);
    let key = wait_for(10, "a new saved key", || {
        let path = agent.state_dir().join("agent_key");
        let old_key = old_key.clone();
        async move {
            std::fs::read_to_string(&path)
                .ok()
                .filter(|k| *k != old_key)
        }
    })
    .await;
    assert!(key.starts_with("grmm_"));
    runs_echo(&server, new["id"].as_str().unwrap()).await;
}

async fn restored_database_needs_approval_then_keeps_the_agent(db: TestDb) {
    let (server, mut agent, old) = enrolled(db).await;
    let old_id = old["id"].as_str().unwrap().to_owned();
    agent.stop();
    // An older backup knew the agent under another key.
    let store = Store::connect(&server.config.database_url).await.unwrap();
    sqlx::query("UPDATE agents SET api_key_hash = 'from-an-older-backup' WHERE id = $1")
        .bind(&old_id)
        .execute(store.pool())
        .await
        .unwrap();
    let queued = server
        .post(
            &format!("/api/agents/{old_id}/command"),
            json!({"command_type": "shell", "command": "echo mine", "timeout_seconds": 20}),
        )
        .await;
    agent.start();

    let pending = server
        .wait_for("/api/agents?approval=pending", WAIT, |v| {
            v.as_array()
                .is_some_and(|a| a.len() == 1 && a[0]["online"] == json!(true))
        })
        .await;
    let pending = &pending[0];
    assert_eq!(pending["claims_agent_id"], json!(old_id));
    assert_eq!(pending["device_id"], old["device_id"]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let q = server
        .get(&format!("/api/commands/{}", queued["id"].as_str().unwrap()))
        .await;
    assert_eq!(q["status"], "pending", "nothing reaches a pending record");

    server
        .post(
            &format!("/api/agents/{}/approve", pending["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    // The machine reconnects with its new key as the old agent, and gets what waited.
    let list = server
        .wait_for("/api/agents", WAIT, |v| {
            v.as_array().is_some_and(|a| {
                a.len() == 1 && a[0]["online"] == json!(true) && a[0]["id"] == json!(old_id)
            })
        })
        .await;
    assert_eq!(list[0]["approval"], "approved");
    let done = server
        .wait_for(
            &format!("/api/commands/{}", queued["id"].as_str().unwrap()),
            WAIT,
            |c| c["status"] == json!("completed"),
        )
        .await;
    assert_eq!(done["stdout"], json!("mine\n"));
    runs_echo(&server, &old_id).await;
}

#[tokio::test]
async fn deleted_agent_comes_back_as_a_new_agent_sqlite() {
    deleted_agent_comes_back_as_a_new_agent(TestDb::Sqlite).await;
}

#[tokio::test]
async fn deleted_agent_comes_back_as_a_new_agent_postgres() {
    deleted_agent_comes_back_as_a_new_agent(TestDb::Postgres).await;
}

#[tokio::test]
async fn restored_database_needs_approval_then_keeps_the_agent_sqlite() {
    restored_database_needs_approval_then_keeps_the_agent(TestDb::Sqlite).await;
}

#[tokio::test]
async fn restored_database_needs_approval_then_keeps_the_agent_postgres() {
    restored_database_needs_approval_then_keeps_the_agent(TestDb::Postgres).await;
}
