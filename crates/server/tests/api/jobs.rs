//! Jobs: a saved script with parameters, or a command, run on many agents.

use std::time::Duration;

use gururmm_server::testing::{TestDb, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

use crate::agent_sim::{auth_frame, new_device_id, SimAgent};
use crate::on_both_databases;

const WAIT: Duration = Duration::from_secs(10);
const ABLE: &[&str] = &["live_output", "command_environment"];

/// Connects an agent listing `capabilities` with `key` (a site code or its own key).
async fn connect(
    server: &TestServer,
    key: &str,
    device: &str,
    capabilities: &[&str],
) -> (SimAgent, Value) {
    let mut agent = SimAgent::connect(&server.ws_url).await;
    let mut auth: Value = serde_json::from_str(&auth_frame(key, device)).unwrap();
    auth["payload"]["capabilities"] = json!(capabilities);
    agent.send(&auth).await;
    let reply = agent.recv_json(WAIT).await.expect("auth_response");
    assert_eq!(reply["payload"]["success"], true, "{reply}");
    (agent, reply["payload"].clone())
}

/// An agent enrolled on the site; returns it, its id, key and device id.
async fn enrolled(server: &TestServer, code: &str) -> (SimAgent, String, String, String) {
    let device = new_device_id();
    let (agent, auth) = connect(server, code, &device, ABLE).await;
    (
        agent,
        auth["agent_id"].as_str().unwrap().to_owned(),
        auth["api_key"].as_str().unwrap().to_owned(),
        device,
    )
}

async fn offline(server: &TestServer, id: &str) {
    server
        .wait_for(&format!("/api/agents/{id}"), WAIT, |a| a["online"] == false)
        .await;
}

fn report_script() -> Value {
    json!({
        "name": "Folder report",
        "command_type": "shell",
        "body": "du -sh -- \"$TOP_PATH\" | head -n \"$COUNT\"",
        "target_os": "linux",
        "parameters": [
            {"name": "TOP_PATH", "kind": "string", "required": true},
            {"name": "COUNT", "kind": "number", "default": 3}
        ]
    })
}

/// The three agents each get their own command carrying the parameters as environment
/// variables (a value with quotes, `;` and `$(...)` arrives as literal text, and the script's
/// text is unchanged); results add up in the job; a re-run covers only the failed agent.
async fn parameterised_script_on_three_agents(db: TestDb) {
    let server = TestServer::start(db).await;
    let (_, _, code) = server.create_site().await;
    let script = server.post("/api/scripts", report_script()).await;
    let mut agents = Vec::new();
    for _ in 0..3 {
        agents.push(enrolled(&server, &code).await);
    }
    let ids: Vec<String> = agents.iter().map(|a| a.1.clone()).collect();
    let literal = "it's \"quoted\"; $(touch /tmp/pwned) `id`";
    let job = server
        .post(
            "/api/jobs",
            json!({"script_id": script["id"], "parameters": {"TOP_PATH": literal},
                   "target": {"agent_ids": ids}}),
        )
        .await;
    let job_id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(job["name"], "Folder report");
    assert_eq!(job["script_version"], 1);
    assert_eq!(job["counts"]["total"], 3);
    assert_eq!(
        job["parameters"],
        json!({"COUNT": "3", "TOP_PATH": literal})
    );

    let mut command_ids = Vec::new();
    for (n, (agent, ..)) in agents.iter_mut().enumerate() {
        let Some(frame) = agent.recv_json(WAIT).await else {
            panic!(
                "no command: {}",
                server.get(&format!("/api/jobs/{job_id}/agents")).await
            );
        };
        let p = &frame["payload"];
        assert_eq!(
            p["command"],
            report_script()["body"],
            "the script text as saved"
        );
        assert_eq!(p["environment"]["TOP_PATH"], literal);
        assert_eq!(p["environment"]["COUNT"], "3");
        let id = p["id"].as_str().unwrap().to_owned();
        assert!(!command_ids.contains(&id), "one command per agent");
        agent.answer(&id, if n == 2 { 1 } else { 0 }, "ok\n").await;
        command_ids.push(id);
    }
    let done = server
        .wait_for(&format!("/api/jobs/{job_id}"), WAIT, |j| {
            j["status"] == "finished"
        })
        .await;
    assert_eq!(done["counts"]["completed"], 2);
    assert_eq!(done["counts"]["failed"], 1);
    let rows = server.get(&format!("/api/jobs/{job_id}/agents")).await;
    assert_eq!(rows.as_array().unwrap().len(), 3);
    let failed_agent = &agents[2].1;
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["agent_id"] == failed_agent.as_str())
        .unwrap();
    assert_eq!(
        (row["status"].as_str(), row["exit_code"].as_i64()),
        (Some("failed"), Some(1))
    );
    let command = server
        .get(&format!("/api/commands/{}", command_ids[0]))
        .await;
    assert_eq!(command["job_id"], job_id.as_str());

    let again = server
        .post(&format!("/api/jobs/{job_id}/rerun"), json!({}))
        .await;
    assert_eq!(again["rerun_of"], job_id.as_str());
    assert_eq!(again["counts"]["total"], 1);
    assert_eq!(again["parameters"]["TOP_PATH"], literal);
    let frame = agents[2].0.recv_json(WAIT).await.expect("the re-run");
    assert_eq!(frame["payload"]["environment"]["TOP_PATH"], literal);
    for (agent, ..) in &mut agents[..2] {
        assert!(agent.recv_json(Duration::from_millis(500)).await.is_none());
    }
    let store = server.state().store.clone();
    assert_eq!(store.audit_count("job.create").await.unwrap(), 2);
}

/// An agent away when the job starts gets its command when it comes back; one still away
/// at the job's expiry gets `expired` (and nothing afterwards); cancelling cancels what is
/// queued and leaves what runs.
async fn offline_agents_return_expire_or_are_cancelled(db: TestDb) {
    let server = TestServer::start(db).await;
    let (_, site_id, code) = server.create_site().await;
    let (mut here, here_id, _, _) = enrolled(&server, &code).await;
    let (away, back_id, back_key, back_device) = enrolled(&server, &code).await;
    drop(away);
    let (gone, gone_id, gone_key, gone_device) = enrolled(&server, &code).await;
    drop(gone);
    offline(&server, &back_id).await;
    offline(&server, &gone_id).await;

    let job = server
        .post(
            "/api/jobs",
            json!({"command": "uptime", "target": {"site_id": site_id}, "expires_in_seconds": 4}),
        )
        .await;
    let job_id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(job["counts"]["total"], 3);
    let frame = here
        .recv_json(WAIT)
        .await
        .expect("the online agent's command");
    here.answer(frame["payload"]["id"].as_str().unwrap(), 0, "up\n")
        .await;

    let (mut back, _) = connect(&server, &back_key, &back_device, ABLE).await;
    let frame = back.recv_json(WAIT).await.expect("given on return");
    back.answer(frame["payload"]["id"].as_str().unwrap(), 0, "up\n")
        .await;

    let done = server
        .wait_for(
            &format!("/api/jobs/{job_id}"),
            Duration::from_secs(15),
            |j| j["status"] == "finished",
        )
        .await;
    assert_eq!(done["counts"]["completed"], 2, "{done}");
    assert_eq!(done["counts"]["expired"], 1, "{done}");
    let (mut late, _) = connect(&server, &gone_key, &gone_device, ABLE).await;
    assert!(
        late.recv_json(Duration::from_secs(2)).await.is_none(),
        "an expired command is never sent"
    );

    // Cancel: the connected agent's command is running and stays so; the away one's is
    // cancelled.
    drop(back);
    offline(&server, &back_id).await;
    let job = server
        .post(
            "/api/jobs",
            json!({"command": "sleep 5", "target": {"agent_ids": [here_id, back_id]}}),
        )
        .await;
    let job_id = job["id"].as_str().unwrap().to_owned();
    let frame = here
        .recv_json(WAIT)
        .await
        .expect("the online agent's command");
    let cancelled = server
        .post(&format!("/api/jobs/{job_id}/cancel"), json!({}))
        .await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["counts"]["cancelled"], 1, "{cancelled}");
    assert_eq!(cancelled["counts"]["running"], 1, "{cancelled}");
    let (status, _) = server
        .request(Method::POST, &format!("/api/jobs/{job_id}/cancel"), None)
        .await;
    assert_eq!(status, 409);
    here.answer(frame["payload"]["id"].as_str().unwrap(), 0, "")
        .await;
    server
        .wait_for(&format!("/api/jobs/{job_id}"), WAIT, |j| {
            j["counts"]["completed"] == 1
        })
        .await;
}

/// A script with parameters is never sent to an agent that cannot pass them: its command
/// fails with the reason instead.
async fn parameters_need_an_agent_that_takes_them(db: TestDb) {
    let server = TestServer::start(db).await;
    let (_, _, code) = server.create_site().await;
    let script = server.post("/api/scripts", report_script()).await;
    let (mut old, auth) = connect(&server, &code, &new_device_id(), &["live_output"]).await;
    let id = auth["agent_id"].as_str().unwrap().to_owned();
    let job = server
        .post(
            "/api/jobs",
            json!({"script_id": script["id"], "parameters": {"TOP_PATH": "/var"},
                   "target": {"agent_ids": [id]}}),
        )
        .await;
    let done = server
        .wait_for(
            &format!("/api/jobs/{}", job["id"].as_str().unwrap()),
            WAIT,
            |j| j["status"] == "finished",
        )
        .await;
    assert_eq!(done["counts"]["failed"], 1);
    assert!(old.recv_json(Duration::from_millis(800)).await.is_none());
    let commands = server.get(&format!("/api/commands?agent_id={id}")).await;
    assert!(
        commands[0]["stderr"]
            .as_str()
            .unwrap()
            .contains("command_environment"),
        "{commands}"
    );
}

/// Bad requests say what is wrong; viewers cannot start jobs.
async fn bad_jobs_are_refused(db: TestDb) {
    let server = TestServer::start(db).await;
    let (_, _, code) = server.create_site().await;
    let script = server.post("/api/scripts", report_script()).await;
    let (_agent, id, _, _) = enrolled(&server, &code).await;
    let sid = script["id"].clone();
    for (body, status, says) in [
        (json!({"command": "uptime", "target": {}}), 400, "target"),
        (
            json!({"command": "uptime", "script_id": sid, "target": {"all": true}}),
            400,
            "either",
        ),
        (
            json!({"script_id": sid, "target": {"all": true}}),
            400,
            "TOP_PATH is required",
        ),
        (
            json!({"script_id": sid, "parameters": {"TOP_PATH": "/", "PATH": "/x"}, "target": {"all": true}}),
            400,
            "no parameter",
        ),
        (
            json!({"script_id": sid, "parameters": {"TOP_PATH": "/", "COUNT": "many"}, "target": {"all": true}}),
            400,
            "number",
        ),
        (
            json!({"script_id": "nope", "target": {"all": true}}),
            404,
            "script",
        ),
        (
            json!({"command": "uptime", "target": {"agent_ids": ["nope"]}}),
            400,
            "no approved agent",
        ),
        (
            json!({"command": "uptime", "target": {"all": true}, "expires_in_seconds": 0}),
            400,
            "expires_in_seconds",
        ),
        (
            json!({"command": "uptime", "target": {"all": true}, "timeout_seconds": 0}),
            400,
            "timeout_seconds",
        ),
    ] {
        let (got, answer) = server
            .request(Method::POST, "/api/jobs", Some(body.clone()))
            .await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(says),
            "{body}: {answer}"
        );
    }
    server
        .post(
            "/api/users",
            json!({"email": "viewer@example.com", "password": "viewer-pass-1", "role": "viewer"}),
        )
        .await;
    let token = server
        .login("viewer@example.com", "viewer-pass-1")
        .await
        .unwrap();
    let status = server
        .client
        .post(server.url("/api/jobs"))
        .bearer_auth(&token)
        .json(&json!({"command": "uptime", "target": {"agent_ids": [id]}}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 403);
}

on_both_databases!(
    parameterised_script_on_three_agents,
    offline_agents_return_expire_or_are_cancelled,
    parameters_need_an_agent_that_takes_them,
    bad_jobs_are_refused,
);
