use gururmm_protocol::fixture;
use gururmm_server::testing::{TestDb, TestServer};
use serde_json::{json, Value};

use crate::on_both_databases;

/// The legacy flow: enroll with a site code, poll, get the pending commands (now running),
/// post the result, read it back. The original returned no commands and dropped results.
async fn legacy_polling_round_trip(db: TestDb) {
    let server = TestServer::start(db).await;
    let (_, site_id, code) = server.create_site().await;
    let http = &server.client;

    let mut reg: Value = serde_json::from_str(&fixture("legacy_register")).unwrap();
    reg["site_code"] = json!(code.to_lowercase()); // typed by hand
    let r = http
        .post(server.url("/api/agent/register-legacy"))
        .json(&reg)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let enrolled: Value = r.json().await.unwrap();
    let key = enrolled["api_key"].as_str().unwrap().to_owned();
    let agent_id = enrolled["agent_id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("grmm_"));
    let agent = server.get(&format!("/api/agents/{agent_id}")).await;
    assert_eq!(agent["site_id"], site_id.as_str());
    assert_eq!(agent["os_version"], "Windows Server 2008 R2");

    let server_ref = &server;
    let heartbeat = |body: Value| {
        let key = key.clone();
        let server = server_ref;
        async move {
            let r = server
                .client
                .post(server.url("/api/agent/heartbeat"))
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    assert_eq!(
        heartbeat(serde_json::from_str(&fixture("legacy_heartbeat")).unwrap()).await["commands"],
        json!([])
    );
    assert_eq!(
        server.get(&format!("/api/agents/{agent_id}")).await["online"],
        true,
        "a polling agent is online"
    );

    let c = server
        .post(
            &format!("/api/agents/{agent_id}/command"),
            json!({"command_type": "shell", "command": "ver", "timeout_seconds": 60}),
        )
        .await;
    assert_eq!(
        c["status"], "pending",
        "legacy agents get commands when they poll"
    );
    let mut m: Value = serde_json::from_str(&fixture("metrics_report")).unwrap();
    m["payload"]["timestamp"] = json!(chrono::Utc::now().timestamp());
    let polled = heartbeat(json!({"metrics": m["payload"]})).await;
    let commands = polled["commands"].as_array().unwrap();
    assert_eq!(commands.len(), 1);
    assert_eq!(commands[0]["id"], c["id"]);
    assert_eq!(commands[0]["command_type"], "shell");
    assert_eq!(
        server
            .get(&format!("/api/commands/{}", c["id"].as_str().unwrap()))
            .await["status"],
        "running"
    );
    assert_eq!(
        heartbeat(json!({})).await["commands"],
        json!([]),
        "handed over once"
    );
    let metrics = server.get(&format!("/api/agents/{agent_id}/metrics")).await;
    assert_eq!(metrics["points"].as_array().unwrap().len(), 1);

    let mut result: Value =
        serde_json::from_str::<Value>(&fixture("command_result")).unwrap()["payload"].clone();
    result["id"] = c["id"].clone();
    result["stdout"] = json!("Microsoft Windows [Version 6.1.7601]");
    let r = http
        .post(server.url("/api/agent/command-result"))
        .bearer_auth(&key)
        .json(&result)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "completed");
    let done = server
        .get(&format!("/api/commands/{}", c["id"].as_str().unwrap()))
        .await;
    assert_eq!(done["stdout"], "Microsoft Windows [Version 6.1.7601]");

    // Wrong or missing keys, unknown codes, unknown commands.
    let r = http
        .post(server.url("/api/agent/heartbeat"))
        .bearer_auth("grmm_wrong")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = http
        .post(server.url("/api/agent/heartbeat"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = http
        .post(server.url("/api/agent/heartbeat"))
        .bearer_auth(&server.token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "a user's JWT is not an agent key");
    reg["site_code"] = json!("NOPE-NOPE-0000");
    let r = http
        .post(server.url("/api/agent/register-legacy"))
        .json(&reg)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    result["id"] = json!("no-such-command");
    let r = http
        .post(server.url("/api/agent/command-result"))
        .bearer_auth(&key)
        .json(&result)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = http
        .post(server.url("/api/agent/heartbeat"))
        .bearer_auth(&key)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
}

on_both_databases!(legacy_polling_round_trip);
