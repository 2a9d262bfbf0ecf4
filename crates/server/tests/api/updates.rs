//! Releases, downloads and rollouts: what a technician publishes and targets, what agents are
//! sent, and how an update's row moves through the states the agent reports.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use gururmm_protocol::release as keys;
use gururmm_server::release::{self, AddRelease};
use gururmm_server::testing::{TestDb, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

use crate::agent_sim::{auth_frame, new_device_id, SimAgent};
use crate::cluster::online_on;
use crate::on_both_databases;

pub struct ReleaseKeys {
    dir: tempfile::TempDir,
    pub key: PathBuf,
    pub public: String,
}

pub fn release_keys() -> ReleaseKeys {
    let dir = tempfile::tempdir().unwrap();
    let (key, _, public) = release::keygen(&dir.path().join("release")).unwrap();
    ReleaseKeys { dir, key, public }
}

/// A server that trusts `keys` (its `release_public_key_file`).
pub async fn start(db: TestDb, keys: &ReleaseKeys) -> TestServer {
    start_with(db, keys, |_| {}).await
}

/// `start` with further settings.
pub async fn start_with(
    db: TestDb,
    keys: &ReleaseKeys,
    adjust: impl FnOnce(&mut gururmm_server::config::Config),
) -> TestServer {
    let public_file = keys.dir.path().join("release.pub");
    TestServer::start_with(db, |c| {
        c.release_public_key_file = Some(public_file);
        c.enrollments_per_minute_per_address = 100_000;
        adjust(c);
    })
    .await
}

/// Publishes `bytes` as linux/x86_64 `version`, signed with `keys`.
pub async fn publish(server: &TestServer, keys: &ReleaseKeys, version: &str, bytes: &[u8]) {
    publish_for(server, keys, "linux", version, bytes).await
}

pub async fn publish_for(
    server: &TestServer,
    keys: &ReleaseKeys,
    os: &str,
    version: &str,
    bytes: &[u8],
) {
    let file = keys.dir.path().join(format!("build-{os}-{version}"));
    std::fs::write(&file, bytes).unwrap();
    release::add(
        &server.config,
        AddRelease {
            file: &file,
            version,
            os,
            arch: "x86_64",
            signature: None,
            key_file: Some(&keys.key),
        },
    )
    .await
    .unwrap();
}

pub async fn put(server: &TestServer, path: &str, body: Value) -> (u16, Value) {
    server.request(Method::PUT, path, Some(body)).await
}

/// The next frame of `type_`, skipping others; None when none came within `within`.
pub async fn next_of(agent: &mut SimAgent, type_: &str, within: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let frame = agent.recv_json(left).await?;
        if frame["type"] == type_ {
            return Some(frame["payload"].clone());
        }
    }
}

/// Connects with a key, claiming `version` (and `previous_version`).
pub async fn connect_as(
    server: &TestServer,
    key: &str,
    device: &str,
    version: &str,
    previous: Option<&str>,
) -> (SimAgent, Value) {
    let mut auth: Value = serde_json::from_str(&auth_frame(key, device)).unwrap();
    auth["payload"]["version"] = json!(version);
    if let Some(p) = previous {
        auth["payload"]["previous_version"] = json!(p);
    }
    let mut agent = SimAgent::connect(&server.ws_url).await;
    agent.send(&auth).await;
    let reply = next_of(&mut agent, "auth_response", Duration::from_secs(10))
        .await
        .expect("auth_response");
    assert_eq!(reply["success"], true, "{reply}");
    (agent, reply)
}

pub async fn latest_update(server: &TestServer, agent_id: &str) -> Value {
    server.get(&format!("/api/agents/{agent_id}/updates")).await[0].clone()
}

async fn wait_update_status(server: &TestServer, agent_id: &str, status: &str) -> Value {
    server
        .wait_for(
            &format!("/api/agents/{agent_id}/updates"),
            Duration::from_secs(10),
            |v| v[0]["status"] == status,
        )
        .await[0]
        .clone()
}

fn status_report(update_id: &str, version: &str, state: &str, reason: Option<&str>) -> Value {
    let mut payload = json!({"update_id": update_id, "version": version, "state": state});
    if let Some(r) = reason {
        payload["reason"] = json!(r);
    }
    json!({"type": "update_status", "payload": payload})
}

/// Published builds are listed newest first, signed by the release key, and downloadable
/// with Content-Length, an ETag and byte ranges (a cut download resumes; a resume against
/// another build starts over); the stable name follows the newest version.
async fn releases_are_listed_and_downloads_resume(db: TestDb) {
    let keys = release_keys();
    let server = start(db, &keys).await;
    assert_eq!(server.get("/api/releases").await, json!([]));
    let old = b"old build ".repeat(100);
    let new = b"new build!".repeat(200);
    publish(&server, &keys, "0.3.0", &new).await;
    publish(&server, &keys, "0.2.0", &old).await;

    let list = server.get("/api/releases").await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["version"], "0.3.0", "newest first");
    assert_eq!(list[0]["stable_file_name"], "gururmm-agent-linux-x86_64");
    assert_eq!(list[1]["stable_file_name"], Value::Null);
    assert_eq!(list[0]["file_name"], "gururmm-agent-linux-x86_64-0.3.0");
    assert_eq!(list[0]["size"], new.len());
    let digest = keys::digest(&new);
    assert_eq!(list[0]["sha256"], keys::hex(&digest));
    let public = keys::parse_public_key(&keys.public).unwrap();
    keys::verify(&public, &digest, list[0]["signature"].as_str().unwrap()).unwrap();

    // Publishing the same version again is refused.
    let file = keys.dir.path().join("again");
    std::fs::write(&file, &new).unwrap();
    let again = release::add(
        &server.config,
        AddRelease {
            file: &file,
            version: "0.3.0",
            os: "linux",
            arch: "x86_64",
            signature: None,
            key_file: Some(&keys.key),
        },
    )
    .await;
    assert!(again.unwrap_err().to_string().contains("already published"));

    let http = &server.client;
    let url = server.url("/downloads/gururmm-agent-linux-x86_64");
    let full = http.get(&url).send().await.unwrap();
    assert_eq!(full.status().as_u16(), 200);
    assert_eq!(
        full.headers()["content-length"].to_str().unwrap(),
        new.len().to_string()
    );
    let etag = full.headers()["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"'), "{etag}");
    assert_eq!(full.bytes().await.unwrap().as_ref(), new.as_slice());

    // A download cut at 700 bytes resumes from there.
    let rest = http
        .get(&url)
        .header("range", "bytes=700-")
        .header("if-range", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status().as_u16(), 206);
    assert_eq!(
        rest.headers()["content-range"].to_str().unwrap(),
        format!("bytes 700-{}/{}", new.len() - 1, new.len())
    );
    assert_eq!(rest.bytes().await.unwrap().as_ref(), &new[700..]);
    // Resuming against another build (its ETag) gets the whole file instead.
    let other = http
        .get(&url)
        .header("range", "bytes=700-")
        .header("if-range", "\"another-build\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 200);
    assert_eq!(other.bytes().await.unwrap().len(), new.len());
    let cached = http
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status().as_u16(), 304);
    let versioned = http
        .get(server.url("/downloads/gururmm-agent-linux-x86_64-0.2.0"))
        .send()
        .await
        .unwrap();
    assert_eq!(versioned.bytes().await.unwrap().as_ref(), old.as_slice());
    let missing = http
        .get(server.url("/downloads/gururmm-agent-windows-x86_64.exe"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
}

/// A rollout's bad input is a 400 (or 404 for an unknown os/arch), never a 500.
async fn rollout_input_is_checked(db: TestDb) {
    let keys = release_keys();
    let server = start(db, &keys).await;
    publish(&server, &keys, "0.2.0", b"build").await;
    let path = "/api/rollouts/linux/x86_64";
    for (body, status) in [
        (json!({"version": "9.9.9", "scope": "all"}), 400),
        (json!({"version": "not-a-version", "scope": "all"}), 400),
        (json!({"version": "0.2.0", "scope": "everyone"}), 400),
        (
            json!({"version": "0.2.0", "scope": "percentage", "percent": 101}),
            400,
        ),
        (
            json!({"version": "0.2.0", "scope": "percentage", "percent": 1000}),
            400,
        ),
        (json!({"version": "0.2.0", "scope": "sites"}), 400),
        (
            json!({"version": "0.2.0", "scope": "sites", "site_ids": ["nope"]}),
            400,
        ),
        (json!({"version": "0.2.0", "scope": "all", "extra": 1}), 400),
    ] {
        let (got, answer) = put(&server, path, body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    let (got, _) = put(
        &server,
        "/api/rollouts/plan9/x86_64",
        json!({"version": "0.2.0", "scope": "all"}),
    )
    .await;
    assert_eq!(got, 404);
    let (got, body) = put(
        &server,
        path,
        json!({"version": "0.2.0", "scope": "percentage", "percent": 40}),
    )
    .await;
    assert_eq!(got, 200, "{body}");
    assert_eq!(body["percent"], 40);
    assert_eq!(server.get("/api/rollouts").await[0]["scope"], "percentage");
    assert_eq!(
        server
            .state()
            .store
            .audit_count("rollout.update")
            .await
            .unwrap(),
        1
    );
}

/// The life of an update: paused rollouts send nothing; unpaused, the connected agent gets
/// `update` with the signed build's URL; its reports move the row; reconnecting mid-way gets
/// no second copy; connecting with the new version completes it. A failed version is not
/// retried until a technician asks; a downgrade only when one asks.
async fn updates_move_through_their_states(db: TestDb) {
    let keys = release_keys();
    let server = start(db, &keys).await;
    let (_, _, code) = server.create_site().await;
    publish(&server, &keys, "0.2.0", b"build two").await;
    let path = "/api/rollouts/linux/x86_64";
    let (status, _) = put(
        &server,
        path,
        json!({"version": "0.2.0", "scope": "all", "paused": true}),
    )
    .await;
    assert_eq!(status, 200);

    let device = new_device_id();
    let (mut agent, reply) = SimAgent::enroll(&server.ws_url, &code, &device).await;
    assert_eq!(reply["release_public_key"], keys.public.as_str());
    let key = reply["api_key"].as_str().unwrap().to_owned();
    let agent_id = reply["agent_id"].as_str().unwrap().to_owned();
    assert!(
        next_of(&mut agent, "update", Duration::from_secs(1))
            .await
            .is_none(),
        "a paused rollout sends nothing"
    );

    let (status, _) = put(&server, path, json!({"version": "0.2.0", "scope": "all"})).await;
    assert_eq!(status, 200);
    let update = next_of(&mut agent, "update", Duration::from_secs(10))
        .await
        .expect("the connected agent gets the update");
    assert_eq!(update["version"], "0.2.0");
    assert_eq!(
        update["download_url"],
        server
            .url("/downloads/gururmm-agent-linux-x86_64-0.2.0")
            .as_str()
    );
    assert_eq!(
        update["checksum"],
        keys::hex(&keys::digest(b"build two")).as_str()
    );
    assert_eq!(update["size"], 9);
    assert!(update["signature"].is_string());
    assert!(update.get("allow_downgrade").is_none());
    let update_id = update["update_id"].as_str().unwrap().to_owned();
    let row = latest_update(&server, &agent_id).await;
    assert_eq!(
        (row["id"].as_str(), row["status"].as_str()),
        (Some(update_id.as_str()), Some("pending"))
    );
    assert_eq!(row["from_version"], "0.1.0");

    agent
        .send(&status_report(&update_id, "0.2.0", "downloading", None))
        .await;
    wait_update_status(&server, &agent_id, "downloading").await;
    // A report naming someone else's update, or an unknown state, changes nothing.
    agent
        .send(&status_report(
            "not-an-update",
            "0.2.0",
            "failed",
            Some("x"),
        ))
        .await;
    agent
        .send(&status_report(&update_id, "0.2.0", "exploded", None))
        .await;
    agent
        .send(&status_report(&update_id, "0.2.0", "installed", None))
        .await;
    wait_update_status(&server, &agent_id, "installed").await;
    drop(agent);

    // Back before the new build came up (same version): no second copy.
    let (mut agent, _) = connect_as(&server, &key, &device, "0.1.0", None).await;
    assert!(next_of(&mut agent, "update", Duration::from_secs(1))
        .await
        .is_none());
    drop(agent);
    // The new build connects: completed.
    let (mut agent, _) = connect_as(&server, &key, &device, "0.2.0", Some("0.1.0")).await;
    let done = wait_update_status(&server, &agent_id, "completed").await;
    assert!(done["completed_at"].is_string());
    let detail = server.get(&format!("/api/agents/{agent_id}")).await;
    assert_eq!(detail["version"], "0.2.0");
    assert_eq!(detail["update"]["status"], "completed");
    let rollout = &server.get("/api/rollouts").await[0];
    assert_eq!(rollout["progress"]["completed"], 1);
    assert_eq!(rollout["progress"]["up_to_date"], 1);
    let versions = server.get("/api/agents/versions").await;
    assert_eq!(versions[0]["version"], "0.2.0");
    assert_eq!(versions[0]["agents"], 1);

    // 0.3.0 fails on the agent: not retried by itself, only by a technician.
    publish(&server, &keys, "0.3.0", b"build three").await;
    let (status, _) = put(&server, path, json!({"version": "0.3.0", "scope": "all"})).await;
    assert_eq!(status, 200);
    let update = next_of(&mut agent, "update", Duration::from_secs(10))
        .await
        .unwrap();
    let failed_id = update["update_id"].as_str().unwrap().to_owned();
    agent
        .send(&status_report(
            &failed_id,
            "0.3.0",
            "failed",
            Some("checksum mismatch"),
        ))
        .await;
    let failed = wait_update_status(&server, &agent_id, "failed").await;
    assert_eq!(failed["reason"], "checksum mismatch");
    drop(agent);
    let (mut agent, _) = connect_as(&server, &key, &device, "0.2.0", None).await;
    assert!(
        next_of(&mut agent, "update", Duration::from_secs(1))
            .await
            .is_none(),
        "a failed version is not retried by itself"
    );
    let retried = server
        .post(&format!("/api/agents/{agent_id}/update/retry"), json!({}))
        .await;
    assert_eq!(retried["to_version"], "0.3.0");
    let update = next_of(&mut agent, "update", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(update["update_id"], retried["id"]);
    agent
        .send(&status_report(
            update["update_id"].as_str().unwrap(),
            "0.3.0",
            "rolled_back",
            Some("the new build exited at once"),
        ))
        .await;
    wait_update_status(&server, &agent_id, "rolled_back").await;

    // A downgrade only when a technician asks, and then with allow_downgrade.
    let (status, body) = server
        .request(
            Method::POST,
            &format!("/api/agents/{agent_id}/update"),
            Some(json!({"version": "0.2.0"})),
        )
        .await;
    assert_eq!(status, 409, "it runs 0.2.0 already: {body}");
    drop(agent);
    let (mut agent, _) = connect_as(&server, &key, &device, "0.3.0", None).await;
    let asked = server
        .post(
            &format!("/api/agents/{agent_id}/update"),
            json!({"version": "0.2.0"}),
        )
        .await;
    assert_eq!(asked["allow_downgrade"], true);
    let update = next_of(&mut agent, "update", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(update["version"], "0.2.0");
    assert_eq!(update["allow_downgrade"], true);
    assert_eq!(
        server
            .state()
            .store
            .audit_count("agent.update")
            .await
            .unwrap(),
        2
    );
    let (status, _) = server
        .request(
            Method::POST,
            &format!("/api/agents/{agent_id}/update/retry"),
            None,
        )
        .await;
    assert_eq!(status, 409, "the last update did not fail");
}

/// A polling (legacy) agent gets its `update` in the heartbeat's answer, reports progress in
/// `update_status`, and the version it then polls with completes the update.
async fn legacy_agents_update_through_the_heartbeat(db: TestDb) {
    let keys = release_keys();
    let server = start(db, &keys).await;
    let (_, _, code) = server.create_site().await;
    publish_for(&server, &keys, "windows", "0.2.0", b"windows build").await;
    let mut reg: Value =
        serde_json::from_str(&gururmm_protocol::fixture("legacy_register")).unwrap();
    reg["site_code"] = json!(code);
    let enrolled: Value = server
        .client
        .post(server.url("/api/agent/register-legacy"))
        .json(&reg)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = enrolled["api_key"].as_str().unwrap().to_owned();
    let agent_id = enrolled["agent_id"].as_str().unwrap().to_owned();
    let heartbeat = |body: Value| {
        let (server, key) = (&server, key.clone());
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
    assert!(heartbeat(json!({"version": "0.1.0"}))
        .await
        .get("update")
        .is_none());
    let (status, _) = put(
        &server,
        "/api/rollouts/windows/x86_64",
        json!({"version": "0.2.0", "scope": "all"}),
    )
    .await;
    assert_eq!(status, 200);
    let answer = heartbeat(json!({"version": "0.1.0"})).await;
    let update = &answer["update"];
    assert_eq!(update["version"], "0.2.0", "{answer}");
    assert!(update["download_url"]
        .as_str()
        .unwrap()
        .ends_with("/downloads/gururmm-agent-windows-x86_64-0.2.0.exe"));
    let update_id = update["update_id"].as_str().unwrap().to_owned();
    let again = heartbeat(json!({
        "version": "0.1.0",
        "update_status": [{"update_id": update_id, "version": "0.2.0", "state": "installed"}]
    }))
    .await;
    assert!(again.get("update").is_none(), "not sent twice: {again}");
    assert_eq!(
        latest_update(&server, &agent_id).await["status"],
        "installed"
    );
    heartbeat(json!({"version": "0.2.0"})).await;
    assert_eq!(
        latest_update(&server, &agent_id).await["status"],
        "completed"
    );
    assert_eq!(
        server.get(&format!("/api/agents/{agent_id}")).await["version"],
        "0.2.0"
    );
}

/// An update the agent never reports on (it died after `update`) is failed after
/// `update_report_timeout_seconds`, and the rollout does not send that version again by itself;
/// a technician's request still waiting for an offline agent is left waiting.
async fn unreported_updates_are_failed_after_the_timeout(db: TestDb) {
    let keys = release_keys();
    let server = start_with(db, &keys, |c| {
        c.update_report_timeout_seconds = 1;
        c.sweep_interval_seconds = 1;
    })
    .await;
    let (_, _, code) = server.create_site().await;
    publish(&server, &keys, "0.2.0", b"build two").await;

    // An offline agent with a technician's request waiting for it.
    let (offline, reply) = SimAgent::enroll(&server.ws_url, &code, &new_device_id()).await;
    let offline_id = reply["agent_id"].as_str().unwrap().to_owned();
    // Online first (presence is written once a second), so "offline" below means the server
    // saw the socket close.
    online_on(&server, &offline_id, true).await;
    drop(offline);
    online_on(&server, &offline_id, false).await;
    let asked = server
        .post(
            &format!("/api/agents/{offline_id}/update"),
            json!({"version": "0.2.0"}),
        )
        .await;
    assert_eq!(asked["status"], "pending", "{asked}");

    let device = new_device_id();
    let (mut agent, reply) = SimAgent::enroll(&server.ws_url, &code, &device).await;
    let key = reply["api_key"].as_str().unwrap().to_owned();
    let agent_id = reply["agent_id"].as_str().unwrap().to_owned();
    let (status, _) = put(
        &server,
        "/api/rollouts/linux/x86_64",
        json!({"version": "0.2.0", "scope": "all"}),
    )
    .await;
    assert_eq!(status, 200);
    let update = next_of(&mut agent, "update", Duration::from_secs(10))
        .await
        .expect("the connected agent gets the update");

    // No report: failed once the timeout passes.
    let failed = wait_update_status(&server, &agent_id, "failed").await;
    assert_eq!(failed["id"], update["update_id"]);
    assert_eq!(
        failed["reason"],
        "no report from the agent within 1 s (update_report_timeout_seconds)"
    );
    assert!(failed["completed_at"].is_string(), "{failed}");
    assert_eq!(
        server.get("/api/rollouts").await[0]["progress"]["failed"],
        1
    );
    // The request never sent is still waiting.
    let waiting = latest_update(&server, &offline_id).await;
    assert_eq!(waiting["status"], "pending", "{waiting}");
    assert_eq!(waiting["id"], asked["id"]);

    // Back with the old version: the failed version is not sent again by itself.
    drop(agent);
    let (mut agent, _) = connect_as(&server, &key, &device, "0.1.0", None).await;
    assert!(
        next_of(&mut agent, "update", Duration::from_secs(2))
            .await
            .is_none(),
        "a swept version is not retried by itself"
    );
    assert_eq!(
        server
            .get(&format!("/api/agents/{agent_id}/updates"))
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // A technician's retry sends it again.
    let retried = server
        .post(&format!("/api/agents/{agent_id}/update/retry"), json!({}))
        .await;
    let again = next_of(&mut agent, "update", Duration::from_secs(10))
        .await
        .expect("retried");
    assert_eq!(again["update_id"], retried["id"]);
}

on_both_databases!(
    unreported_updates_are_failed_after_the_timeout,
    legacy_agents_update_through_the_heartbeat,
    releases_are_listed_and_downloads_resume,
    rollout_input_is_checked,
    updates_move_through_their_states,
);

/// The release CLI: keygen writes an owner-only private key, sign prints a signature, and
/// add refuses a build signed by another key.
#[test]
fn release_command_line() {
    let exe = env!("CARGO_BIN_EXE_gururmm-server");
    let data = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(exe)
            .args(args)
            .env("GURURMM_DATA_DIR", data.path())
            .env_remove("GURURMM_DATABASE_URL")
            .env_remove("DATABASE_URL")
            .output()
            .unwrap()
    };
    let prefix = data.path().join("release");
    let out = run(&["release", "keygen", "--out", prefix.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.path().join("release.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(
        !run(&["release", "keygen", "--out", prefix.to_str().unwrap()])
            .status
            .success(),
        "an existing key is never overwritten"
    );

    let build = data.path().join("agent-bin");
    std::fs::write(&build, b"an agent build").unwrap();
    let key = data.path().join("release.key");
    let sign = run(&[
        "release",
        "sign",
        "--key",
        key.to_str().unwrap(),
        "--file",
        build.to_str().unwrap(),
    ]);
    assert!(sign.status.success());
    let signature = String::from_utf8(sign.stdout).unwrap().trim().to_owned();

    let other = data.path().join("other");
    assert!(
        run(&["release", "keygen", "--out", other.to_str().unwrap()])
            .status
            .success()
    );
    let wrong = run(&[
        "release",
        "sign",
        "--key",
        data.path().join("other.key").to_str().unwrap(),
        "--file",
        build.to_str().unwrap(),
    ]);
    let wrong_signature = String::from_utf8(wrong.stdout).unwrap().trim().to_owned();
    let add = |signature: &str, version: &str| {
        run(&[
            "release",
            "add",
            "--file",
            build.to_str().unwrap(),
            "--version",
            version,
            "--os",
            "linux",
            "--arch",
            "x86_64",
            "--signature",
            signature,
        ])
    };
    let refused = add(&wrong_signature, "0.2.0");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("does not match the release key"),
        "{refused:?}"
    );
    assert!(!data
        .path()
        .join("downloads/gururmm-agent-linux-x86_64-0.2.0")
        .exists());
    let added = add(&signature, "0.2.0");
    assert!(added.status.success(), "{added:?}");
    assert_eq!(
        std::fs::read(data.path().join("downloads/gururmm-agent-linux-x86_64")).unwrap(),
        b"an agent build"
    );
    assert!(
        !add(&signature, "0.2").status.success(),
        "not a semantic version"
    );
}

/// A percentage rollout over 1,000 simulated agents picks the expected share; raising the
/// percentage keeps every agent already in, adds only new ones, and nobody gets a second copy,
/// also after every agent reconnected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn percentage_rollout_over_a_simulated_fleet() {
    use gururmm_fleet_sim::{Fleet, FleetConfig};
    const AGENTS: usize = 1000;
    gururmm_fleet_sim::raise_open_file_limit();
    let keys = release_keys();
    let mut server = start(TestDb::Sqlite, &keys).await;
    let (_, _, code) = server.create_site().await;
    publish(&server, &keys, "0.1.0", b"first release").await;
    let path = "/api/rollouts/linux/x86_64";
    let (status, _) = put(
        &server,
        path,
        json!({"version": "0.1.0", "scope": "percentage", "percent": 20}),
    )
    .await;
    assert_eq!(status, 200);

    let keys_dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::start(FleetConfig {
        servers: vec![server.ws_url.clone()],
        agents: AGENTS,
        site_code: Some(code),
        keys_file: Some(keys_dir.path().join("keys.jsonl")),
        heartbeat: Duration::from_secs(5),
        metrics: Duration::from_secs(3600),
        backoff_min: Duration::from_millis(200),
        backoff_max: Duration::from_secs(2),
        ramp_per_sec: 500.0,
        ..FleetConfig::default()
    })
    .await
    .unwrap();
    assert!(fleet.wait_connected(AGENTS, Duration::from_secs(120)).await);
    let ids = fleet.agent_ids();
    assert_eq!(ids.len(), AGENTS);
    let chosen = |percent: u8| -> HashSet<String> {
        ids.iter()
            .filter(|id| gururmm_server::rollout::bucket(id, "linux", "x86_64") < percent)
            .cloned()
            .collect()
    };

    let twenty = chosen(20);
    assert!(
        (150..=250).contains(&twenty.len()),
        "20% of 1,000: {}",
        twenty.len()
    );
    let first = received(&server, &fleet, twenty.len()).await;
    assert_eq!(first.values().cloned().collect::<HashSet<_>>(), twenty);

    let (status, _) = put(
        &server,
        path,
        json!({"version": "0.1.0", "scope": "percentage", "percent": 50}),
    )
    .await;
    assert_eq!(status, 200);
    let fifty = chosen(50);
    assert!(
        (430..=570).contains(&fifty.len()),
        "50% of 1,000: {}",
        fifty.len()
    );
    let second = received(&server, &fleet, fifty.len()).await;
    assert_eq!(second.values().cloned().collect::<HashSet<_>>(), fifty);
    assert!(
        first.iter().all(|(u, a)| second.get(u) == Some(a)),
        "the first 20% stay in"
    );

    // Every agent reconnects (the server restarts) and is evaluated again: the same set.
    server.restart().await;
    assert!(fleet.wait_connected(AGENTS, Duration::from_secs(120)).await);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let again = received(&server, &fleet, fifty.len()).await;
    assert_eq!(again, second);
    fleet.stop().await;
}

/// Waits until the fleet holds `n` updates; checks each arrived once and names a row of the
/// agent it went to. Returns update id -> agent id.
async fn received(
    server: &TestServer,
    fleet: &gururmm_fleet_sim::Fleet,
    n: usize,
) -> HashMap<String, String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got = fleet.update_receipts();
        if got.len() >= n || tokio::time::Instant::now() > deadline {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let got = fleet.update_receipts();
            assert_eq!(got.len(), n, "updates received");
            assert!(
                got.values().all(|&times| times == 1),
                "each update arrived once"
            );
            let rows = rows_by_id(server).await;
            return got
                .keys()
                .map(|u| (u.clone(), rows.get(u).cloned().expect("a row per update")))
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn rows_by_id(server: &TestServer) -> HashMap<String, String> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&server.config.effective_database_url())
        .await
        .unwrap();
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT id, agent_id FROM agent_updates")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows.into_iter().collect()
}
