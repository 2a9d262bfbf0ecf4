//! Issue 10: enrollment proves nothing about identity, so it never takes an agent over. A site
//! code (or token) plus a known device id gets a pending record; only approval moves the
//! identity. Enrollment is rate limited per address, refusals are audited, tokens expire and
//! run out, viewers never see codes.

use std::time::Duration;

use gururmm_protocol::fixture;
use gururmm_server::db::Store;
use gururmm_server::testing::{TestDb, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

use crate::agent_sim::{new_device_id, SimAgent};
use crate::on_both_databases;

const WAIT: Duration = Duration::from_secs(10);

async fn store(server: &TestServer) -> Store {
    Store::connect(&server.config.database_url).await.unwrap()
}

fn str_of(v: &Value, field: &str) -> String {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {v}"))
        .to_owned()
}

/// POST register-legacy with this code (or token) and device id: (status, body, headers).
async fn register_legacy(
    server: &TestServer,
    code: &str,
    device: &str,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut reg: Value = serde_json::from_str(&fixture("legacy_register")).unwrap();
    reg["site_code"] = json!(code);
    reg["device_id"] = json!(device);
    let r = server
        .client
        .post(server.url("/api/agent/register-legacy"))
        .json(&reg)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, r.json().await.unwrap_or(Value::Null), headers)
}

/// A legacy heartbeat with one metrics report: (status, body).
async fn legacy_heartbeat(server: &TestServer, key: &str) -> (u16, Value) {
    let metrics: Value = serde_json::from_str(&fixture("metrics_report")).unwrap();
    let mut payload = metrics["payload"].clone();
    payload["timestamp"] = json!(chrono::Utc::now().timestamp());
    let r = server
        .client
        .post(server.url("/api/agent/heartbeat"))
        .bearer_auth(key)
        .json(&json!({"metrics": payload}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn metric_points(server: &TestServer, agent_id: &str) -> usize {
    let now = chrono::Utc::now().timestamp();
    server
        .get(&format!(
            "/api/agents/{agent_id}/metrics?from={}&to={}",
            now - 3600,
            now + 60
        ))
        .await["points"]
        .as_array()
        .unwrap()
        .len()
}

/// The takeover through /ws: the attacker (any site's code + the real device id) gets a
/// pending record; no command reaches it, its result and metrics land nowhere near the real
/// agent, the real agent keeps working. Approval then moves the identity: the old key is
/// refused, the new key is the old agent id.
async fn takeover_through_ws_gets_a_pending_record(db: TestDb) {
    let server = TestServer::start(db).await;
    let (_, home_site, code) = server.create_site().await;
    let (_, _, other_code) = server.create_site().await;
    let device = new_device_id();
    let (real, auth) = SimAgent::enroll(&server.ws_url, &code, &device).await;
    drop(real);
    let real_id = str_of(&auth, "agent_id");
    let real_key = str_of(&auth, "api_key");
    let (mut real, _) = SimAgent::enroll(&server.ws_url, &real_key, &device).await;

    let (mut attacker, stolen) = SimAgent::enroll(&server.ws_url, &other_code, &device).await;
    assert_eq!(stolen["success"], true, "{stolen}");
    let pending_id = str_of(&stolen, "agent_id");
    assert_ne!(pending_id, real_id, "never the real agent's id");
    assert!(str_of(&stolen, "message").contains("approval"), "{stolen}");
    let pending = server.get(&format!("/api/agents/{pending_id}")).await;
    assert_eq!(pending["approval"], "pending");
    assert_eq!(pending["claims_agent_id"], real_id.as_str());
    let real_shown = server.get(&format!("/api/agents/{real_id}")).await;
    assert_eq!(real_shown["approval"], "approved");
    assert_eq!(real_shown["site_id"], home_site.as_str(), "not moved");
    let stats = server.get("/api/agents/stats").await;
    assert_eq!(
        stats["total"], 1,
        "a pending record is not in the fleet: {stats}"
    );
    assert_eq!(stats["online"], 1, "{stats}");
    let listed = server.get("/api/agents?approval=pending").await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], pending_id.as_str());

    // Commands: refused for the pending record; the real agent's go to the real agent only.
    let (status, body) = server
        .request(
            Method::POST,
            &format!("/api/agents/{pending_id}/command"),
            Some(json!({"command_type": "shell", "command": "id"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("approval"));
    let cmd = server
        .post(
            &format!("/api/agents/{real_id}/command"),
            json!({"command_type": "shell", "command": "hostname"}),
        )
        .await;
    let frame = real.recv_json(WAIT).await.expect("the real agent gets it");
    assert_eq!(frame["payload"]["id"], cmd["id"]);

    // The attacker forges a result for it and reports metrics: none of it reaches the real
    // agent's history.
    attacker
        .answer(cmd["id"].as_str().unwrap(), 0, "forged")
        .await;
    let mut m: Value = serde_json::from_str(&fixture("metrics_report")).unwrap();
    m["payload"]["timestamp"] = json!(chrono::Utc::now().timestamp());
    attacker.send(&m).await;
    assert!(
        attacker
            .recv_json(Duration::from_millis(500))
            .await
            .is_none(),
        "no command reaches the pending record"
    );
    server
        .wait_for(&format!("/api/agents/{pending_id}/metrics"), WAIT, |v| {
            v["points"].as_array().is_some_and(|p| !p.is_empty())
        })
        .await;
    let command = server
        .get(&format!("/api/commands/{}", cmd["id"].as_str().unwrap()))
        .await;
    assert_eq!(
        command["status"], "running",
        "the forged result was not stored"
    );
    assert_eq!(metric_points(&server, &real_id).await, 0);
    real.answer(cmd["id"].as_str().unwrap(), 0, "real\n").await;
    server
        .wait_for(
            &format!("/api/commands/{}", cmd["id"].as_str().unwrap()),
            WAIT,
            |c| c["stdout"] == "real\n",
        )
        .await;

    // Approval: the pending record takes the real agent's place; both sockets are closed.
    let approved = server
        .post(&format!("/api/agents/{pending_id}/approve"), json!({}))
        .await;
    assert_eq!(approved["id"], real_id.as_str());
    assert_eq!(approved["approval"], "approved");
    assert!(
        real.closed_within(WAIT).await,
        "the old key's socket closed"
    );
    assert!(attacker.closed_within(WAIT).await, "told to reconnect");
    let (status, _) = server
        .request(Method::GET, &format!("/api/agents/{pending_id}"), None)
        .await;
    assert_eq!(status, 404, "the pending record is gone");
    let history = server
        .get(&format!("/api/commands?agent_id={real_id}"))
        .await;
    assert_eq!(
        history.as_array().unwrap().len(),
        1,
        "history kept: {history}"
    );
    let (_r, refused) = SimAgent::enroll(&server.ws_url, &real_key, &device).await;
    assert_eq!(refused["success"], false, "the old key is refused");
    let (_n, now) = SimAgent::enroll(&server.ws_url, &str_of(&stolen, "api_key"), &device).await;
    assert_eq!(now["success"], true);
    assert_eq!(now["agent_id"], real_id.as_str());
    assert_eq!(
        store(&server)
            .await
            .audit_count("agent.approve")
            .await
            .unwrap(),
        1
    );
}

/// The takeover through register-legacy: a pending record whose heartbeats bring it nothing
/// and whose metrics stay its own; reject removes it and its key dies.
async fn takeover_through_legacy_then_reject(db: TestDb) {
    let server = TestServer::start(db).await;
    let (_, _, code) = server.create_site().await;
    let device = new_device_id();
    let (status, real, _) = register_legacy(&server, &code, &device).await;
    assert_eq!(status, 201);
    let real_id = str_of(&real, "agent_id");
    let real_key = str_of(&real, "api_key");
    let queued = server
        .post(
            &format!("/api/agents/{real_id}/command"),
            json!({"command_type": "shell", "command": "whoami"}),
        )
        .await;
    assert_eq!(queued["status"], "pending");

    let (status, stolen, _) = register_legacy(&server, &code.to_lowercase(), &device).await;
    assert_eq!(status, 201, "{stolen}");
    let pending_id = str_of(&stolen, "agent_id");
    assert_ne!(pending_id, real_id);
    let stolen_key = str_of(&stolen, "api_key");
    let (status, hb) = legacy_heartbeat(&server, &stolen_key).await;
    assert_eq!(status, 200, "{hb}");
    assert_eq!(
        hb["commands"],
        json!([]),
        "the queued command does not go to it"
    );
    assert_eq!(metric_points(&server, &real_id).await, 0);
    assert_eq!(metric_points(&server, &pending_id).await, 1);

    // The real agent keeps working with its key and gets its command.
    let (status, hb) = legacy_heartbeat(&server, &real_key).await;
    assert_eq!(status, 200);
    assert_eq!(hb["commands"][0]["id"], queued["id"]);
    assert_eq!(metric_points(&server, &real_id).await, 1);

    let (status, body) = server
        .request(Method::POST, &format!("/api/agents/{real_id}/reject"), None)
        .await;
    assert_eq!(status, 409, "only a pending record is rejected: {body}");
    server
        .post(&format!("/api/agents/{pending_id}/reject"), json!({}))
        .await;
    let (status, _) = server
        .request(Method::GET, &format!("/api/agents/{pending_id}"), None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = legacy_heartbeat(&server, &stolen_key).await;
    assert_eq!(status, 401, "the rejected key dies");
    let (status, _) = legacy_heartbeat(&server, &real_key).await;
    assert_eq!(status, 200);
    assert_eq!(
        store(&server)
            .await
            .audit_count("agent.reject")
            .await
            .unwrap(),
        1
    );
}

/// Guessing site codes: after the per-address limit, 429 with Retry-After on register-legacy
/// and a refused auth_response on the socket (one budget for both). Each refusal is audited
/// with the address and never the code in full.
async fn site_code_guessing_is_limited_and_audited(db: TestDb) {
    let server = TestServer::start_with(db, |c| c.enrollments_per_minute_per_address = 3).await;
    let (_, _, code) = server.create_site().await;
    for i in 0..2 {
        let (status, body, _) = register_legacy(
            &server,
            &format!("WRONG-GUESS-{}", 1000 + i),
            &new_device_id(),
        )
        .await;
        assert_eq!(status, 401, "{body}");
    }
    let (_ws, refused) =
        SimAgent::enroll(&server.ws_url, "WRONG-GUESS-2000", &new_device_id()).await;
    assert_eq!(refused["success"], false);
    let (status, body, headers) = register_legacy(&server, &code, &new_device_id()).await;
    assert_eq!(status, 429, "even the right code, past the limit: {body}");
    assert!(body["error"].is_string());
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=61).contains(&retry), "{retry}");
    let (_ws, limited) = SimAgent::enroll(&server.ws_url, &code, &new_device_id()).await;
    assert_eq!(limited["success"], false);
    assert!(
        str_of(&limited, "message").contains("too many"),
        "{limited}"
    );

    let store = store(&server).await;
    assert_eq!(store.audit_count("agent.enroll_failed").await.unwrap(), 3);
    let details: Vec<String> =
        sqlx::query_scalar("SELECT details FROM audit_log WHERE action = 'agent.enroll_failed'")
            .fetch_all(store.pool())
            .await
            .unwrap();
    for d in &details {
        assert!(d.contains("127.0.0.1"), "{d}");
        assert!(
            !d.contains("GUESS-1000") && !d.contains("GUESS-2000"),
            "{d}"
        );
    }
}

/// Tokens: a valid one enrolls (both transports) and counts a use; used up, expired and
/// revoked ones are refused and audited; the secret is shown once and never listed.
async fn enrollment_tokens(db: TestDb) {
    let server = TestServer::start(db).await;
    let (_, site_id, _) = server.create_site().await;
    let created = server
        .post(
            &format!("/api/sites/{site_id}/tokens"),
            json!({"expires_in_hours": 24, "max_uses": 2}),
        )
        .await;
    let secret = str_of(&created, "secret");
    assert!(secret.starts_with("grmt_"));
    let token_id = str_of(&created["token"], "id");

    let (_a, auth) = SimAgent::enroll(&server.ws_url, &secret, &new_device_id()).await;
    assert_eq!(auth["success"], true, "{auth}");
    let agent = server
        .get(&format!("/api/agents/{}", str_of(&auth, "agent_id")))
        .await;
    assert_eq!(agent["site_id"], site_id.as_str());
    assert_eq!(agent["approval"], "approved");
    let (status, body, _) = register_legacy(&server, &secret, &new_device_id()).await;
    assert_eq!(status, 201, "{body}");
    let listed = server.get(&format!("/api/sites/{site_id}/tokens")).await;
    assert_eq!(listed[0]["uses"], 2);
    assert_eq!(listed[0]["usable"], false);
    assert!(!listed.to_string().contains(&secret), "never the secret");
    let (status, body, _) = register_legacy(&server, &secret, &new_device_id()).await;
    assert_eq!(status, 401, "used up: {body}");
    assert!(body["error"].as_str().unwrap().contains("used up"));

    // Expired.
    let expiring = server
        .post(&format!("/api/sites/{site_id}/tokens"), json!({}))
        .await;
    let store = store(&server).await;
    sqlx::query("UPDATE registration_tokens SET expires_at = 1 WHERE id = $1")
        .bind(str_of(&expiring["token"], "id"))
        .execute(store.pool())
        .await
        .unwrap();
    let (_b, expired) = SimAgent::enroll(
        &server.ws_url,
        &str_of(&expiring, "secret"),
        &new_device_id(),
    )
    .await;
    assert_eq!(expired["success"], false);
    assert!(str_of(&expired, "message").contains("expired"), "{expired}");

    // Revoked.
    let revoking = server
        .post(
            &format!("/api/sites/{site_id}/tokens"),
            json!({"max_uses": 5}),
        )
        .await;
    let (status, _) = server
        .request(
            Method::DELETE,
            &format!(
                "/api/sites/{site_id}/tokens/{}",
                str_of(&revoking["token"], "id")
            ),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, body, _) =
        register_legacy(&server, &str_of(&revoking, "secret"), &new_device_id()).await;
    assert_eq!(status, 401);
    assert!(body["error"].as_str().unwrap().contains("revoked"));
    assert_eq!(store.audit_count("agent.enroll_failed").await.unwrap(), 3);
    let (status, _) = server
        .request(
            Method::POST,
            &format!("/api/sites/{site_id}/tokens"),
            Some(json!({"max_uses": 0})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = server
        .request(
            Method::DELETE,
            &format!("/api/sites/{site_id}/tokens/no-such-token"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    assert_ne!(token_id, "");
}

/// A site that requires approval: every new machine waits, with no claimed agent; approving
/// admits the record itself.
async fn site_requiring_approval(db: TestDb) {
    let server = TestServer::start(db).await;
    let (client_id, _, _) = server.create_site().await;
    let site = server
        .post(
            "/api/sites",
            json!({"client_id": client_id, "name": "Locked", "require_approval": true}),
        )
        .await;
    assert_eq!(site["require_approval"], true);
    let (mut agent, auth) = SimAgent::enroll(
        &server.ws_url,
        &str_of(&site, "site_code"),
        &new_device_id(),
    )
    .await;
    let id = str_of(&auth, "agent_id");
    let shown = server.get(&format!("/api/agents/{id}")).await;
    assert_eq!(shown["approval"], "pending");
    assert_eq!(shown["claims_agent_id"], Value::Null);
    let approved = server
        .post(&format!("/api/agents/{id}/approve"), json!({}))
        .await;
    assert_eq!(approved["id"], id.as_str());
    assert_eq!(approved["approval"], "approved");
    assert!(agent.closed_within(WAIT).await);
    let (_again, auth) = SimAgent::enroll(&server.ws_url, &str_of(&auth, "api_key"), "any").await;
    assert_eq!(auth["success"], true);
    assert!(auth.get("message").is_none_or(Value::is_null), "{auth}");

    let updated = server
        .request(
            Method::PUT,
            &format!("/api/sites/{}", str_of(&site, "id")),
            Some(json!({"name": "Locked", "require_approval": false})),
        )
        .await;
    assert_eq!(updated.1["require_approval"], false);
}

/// Viewers never see a site code (nor tokens); technicians do.
async fn viewers_see_masked_codes(db: TestDb) {
    let server = TestServer::start(db).await;
    let (client_id, site_id, code) = server.create_site().await;
    server
        .post(
            "/api/users",
            json!({"email": "v@example.com", "password": "viewer-pass-1", "role": "viewer"}),
        )
        .await;
    let viewer = server
        .login("v@example.com", "viewer-pass-1")
        .await
        .unwrap();
    let as_viewer = |path: String| {
        let req = server.client.get(server.url(&path)).bearer_auth(&viewer);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    for path in [
        "/api/sites".to_owned(),
        format!("/api/sites/{site_id}"),
        format!("/api/clients/{client_id}/sites"),
    ] {
        let (status, body) = as_viewer(path.clone()).await;
        assert_eq!(status, 200, "{path}");
        assert!(!body.contains(&code), "{path}: {body}");
        assert!(body.contains("*****-*****-****"), "{path}: {body}");
    }
    let (status, _) = as_viewer(format!("/api/sites/{site_id}/tokens")).await;
    assert_eq!(status, 403);
    assert_eq!(
        server.get(&format!("/api/sites/{site_id}")).await["site_code"],
        code.as_str()
    );
}

on_both_databases!(
    takeover_through_ws_gets_a_pending_record,
    takeover_through_legacy_then_reject,
    site_code_guessing_is_limited_and_audited,
    enrollment_tokens,
    site_requiring_approval,
    viewers_see_masked_codes
);
