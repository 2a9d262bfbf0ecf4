//! Policies: CRUD, assignment to scopes, the merge by precedence with where each setting came
//! from, delivery to connected agents (on change, after auth, with a legacy heartbeat), the
//! agent's answer shown as applied, refused or pending, bad input and roles.

use std::time::Duration;

use gururmm_server::testing::{TestDb, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

use crate::agent_sim::{auth_frame, new_device_id, SimAgent};
use crate::on_both_databases;

/// The next `policy` frame the agent gets (other frames skipped).
async fn next_policy(agent: &mut SimAgent) -> Value {
    loop {
        let msg = agent
            .recv_json(Duration::from_secs(10))
            .await
            .expect("a policy within 10 s");
        if msg["type"] == "policy" {
            return msg["payload"].clone();
        }
    }
}

/// Whether any `policy` frame arrives within `within`.
async fn policy_within(agent: &mut SimAgent, within: Duration) -> bool {
    while let Some(msg) = agent.recv_json(within).await {
        if msg["type"] == "policy" {
            return true;
        }
    }
    false
}

async fn answer(agent: &mut SimAgent, revision: &Value, error: Option<&str>) {
    let mut status = json!({"revision": revision, "applied": error.is_none()});
    if let Some(e) = error {
        status["error"] = json!(e);
    }
    agent
        .send(&json!({"type": "policy_status", "payload": status}))
        .await;
}

async fn create_policy(server: &TestServer, name: &str, settings: Value) -> String {
    let p = server
        .post("/api/policies", json!({"name": name, "settings": settings}))
        .await;
    assert_eq!(p["version"], 1, "{p}");
    p["id"].as_str().unwrap().to_owned()
}

async fn assign(server: &TestServer, policy_id: &str, scope: Value) -> String {
    let a = server
        .post(
            "/api/policy-assignments",
            json!({"policy_id": policy_id, "scope": scope}),
        )
        .await;
    assert_eq!(a["policy_id"], policy_id, "{a}");
    a["id"].as_str().unwrap().to_owned()
}

async fn merge_deliver_and_status(db: TestDb) {
    let server = TestServer::start(db).await;
    let (client_id, site_id, code) = server.create_site().await;
    let (mut agent, reply) = SimAgent::enroll(&server.ws_url, &code, &new_device_id()).await;
    let agent_id = reply["agent_id"].as_str().unwrap().to_owned();
    let agent_key = reply["api_key"].as_str().unwrap().to_owned();
    let policy_path = format!("/api/agents/{agent_id}/policy");

    // Nothing assigned: an empty policy, applied (agent.toml rules), and nothing is sent.
    let eff = server.get(&policy_path).await;
    assert_eq!(
        (eff["settings"].clone(), eff["status"].clone()),
        (json!({}), json!("applied"))
    );

    let fleet = create_policy(
        &server,
        "Fleet defaults",
        json!({"metrics_interval_seconds": 60, "heartbeat_interval_seconds": 30, "cpu_alert_percent": 90}),
    )
    .await;
    let client = create_policy(&server, "Client", json!({"memory_alert_percent": 80})).await;
    let site = create_policy(
        &server,
        "Site",
        json!({"metrics_interval_seconds": 20, "watchdog_services": [{"name": "spooler", "max_restarts": 2}]}),
    )
    .await;
    assign(&server, &fleet, json!({"kind": "fleet"})).await;
    let first = next_policy(&mut agent).await;
    assert_eq!(first["settings"]["metrics_interval_seconds"], 60);
    assign(&server, &client, json!({"kind": "client", "id": client_id})).await;
    next_policy(&mut agent).await;
    let site_assignment = assign(&server, &site, json!({"kind": "site", "id": site_id})).await;
    let sent = next_policy(&mut agent).await;
    assert_eq!(
        sent["settings"],
        json!({"metrics_interval_seconds": 20, "heartbeat_interval_seconds": 30,
               "watchdog_services": [{"name": "spooler", "max_restarts": 2}],
               "cpu_alert_percent": 90, "memory_alert_percent": 80})
    );

    // The merge with where each setting came from; pending until the agent answers.
    let eff = server.get(&policy_path).await;
    assert_eq!(eff["revision"], sent["revision"]);
    assert_eq!(eff["settings"], sent["settings"]);
    assert_eq!(eff["status"], "pending");
    let source = |eff: &Value, field: &str| {
        let s = &eff["sources"][field];
        (s["policy_name"].clone(), s["scope"]["kind"].clone())
    };
    assert_eq!(
        source(&eff, "metrics_interval_seconds"),
        (json!("Site"), json!("site"))
    );
    assert_eq!(
        source(&eff, "heartbeat_interval_seconds"),
        (json!("Fleet defaults"), json!("fleet"))
    );
    assert_eq!(
        source(&eff, "memory_alert_percent"),
        (json!("Client"), json!("client"))
    );
    assert_eq!(
        eff["sources"]["metrics_interval_seconds"]["scope"]["id"],
        site_id.as_str()
    );
    assert!(eff["sources"].get("collectors").is_none());

    answer(&mut agent, &sent["revision"], None).await;
    server
        .wait_for(&policy_path, Duration::from_secs(10), |e| {
            e["status"] == "applied"
        })
        .await;

    // A change: the version goes up, the agent gets the new revision at once.
    let (status, updated) = server
        .request(
            Method::PUT,
            &format!("/api/policies/{site}"),
            Some(json!({"name": "Site", "description": "front desk",
                        "settings": {"metrics_interval_seconds": 5}})),
        )
        .await;
    assert_eq!(
        (status, updated["version"].clone()),
        (200, json!(2)),
        "{updated}"
    );
    let changed = next_policy(&mut agent).await;
    assert_eq!(changed["settings"]["metrics_interval_seconds"], 5);
    assert!(changed["settings"].get("watchdog_services").is_none());
    let eff = server.get(&policy_path).await;
    assert_eq!(eff["status"], "pending");
    assert_eq!(
        eff["sources"]["metrics_interval_seconds"]["policy_version"],
        2
    );

    // The agent refuses it: shown with its reason.
    let reason = "config key metrics.interval_seconds = 5 is out of range: allowed 10..=3600";
    answer(&mut agent, &changed["revision"], Some(reason)).await;
    let eff = server
        .wait_for(&policy_path, Duration::from_secs(10), |e| {
            e["status"] == "refused"
        })
        .await;
    assert_eq!(eff["error"], reason);

    // After auth, only an agent with another revision gets its policy.
    drop(agent);
    let with_revision = |revision: &Value| {
        let mut auth: Value = serde_json::from_str(&auth_frame(&agent_key, "ignored")).unwrap();
        auth["payload"]["policy_revision"] = revision.clone();
        auth.to_string()
    };
    let mut again = SimAgent::connect(&server.ws_url).await;
    again.send_text(&with_revision(&changed["revision"])).await;
    assert!(!policy_within(&mut again, Duration::from_millis(1500)).await);
    drop(again);
    let mut again = SimAgent::connect(&server.ws_url).await;
    again.send_text(&with_revision(&first["revision"])).await;
    assert_eq!(
        next_policy(&mut again).await["revision"],
        changed["revision"]
    );

    // A legacy heartbeat carries it too, with the agent's answer.
    let heartbeat = |body: Value| {
        let (server, key) = (&server, &agent_key);
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
    let resp = heartbeat(json!({"policy_revision": first["revision"]})).await;
    assert_eq!(resp["policy"]["revision"], changed["revision"]);
    let resp = heartbeat(json!({"policy_revision": changed["revision"],
        "policy_status": {"revision": changed["revision"], "applied": true}}))
    .await;
    assert!(resp.get("policy").is_none(), "{resp}");
    assert_eq!(server.get(&policy_path).await["status"], "applied");

    // Removing the site's assignment: the agent goes back to the less specific policies.
    let (status, _) = server
        .request(
            Method::DELETE,
            &format!("/api/policy-assignments/{site_assignment}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let back = next_policy(&mut again).await;
    assert_eq!(back["settings"]["metrics_interval_seconds"], 60);
    let (status, _) = server
        .request(Method::DELETE, &format!("/api/policies/{fleet}"), None)
        .await;
    assert_eq!(status, 204);
    let assignments = server.get("/api/policy-assignments").await;
    assert_eq!(assignments.as_array().unwrap().len(), 1, "{assignments}");
    assert_eq!(assignments[0]["policy_name"], "Client");
    assert_eq!(
        server.get("/api/policies").await.as_array().unwrap().len(),
        2
    );
}

async fn bad_input_and_roles(db: TestDb) {
    let server = TestServer::start(db).await;
    let (_, site_id, _) = server.create_site().await;
    let id = create_policy(&server, "Base", json!({})).await;
    let refused = |body: Value, path: &'static str| {
        let server = &server;
        async move {
            let (status, resp) = server.request(Method::POST, path, Some(body)).await;
            assert_eq!(status, 400, "{resp}");
            resp["error"].as_str().unwrap().to_owned()
        }
    };
    for (body, field) in [
        (json!({"name": " "}), "name"),
        (
            json!({"name": "x", "settings": {"metrics_interval_seconds": 0}}),
            "settings.metrics_interval_seconds",
        ),
        (
            json!({"name": "x", "settings": {"collectors": ["gpu"]}}),
            "collectors",
        ),
        (
            json!({"name": "x", "settings": {"cpu_alert_percent": 101}}),
            "cpu_alert_percent",
        ),
        (
            json!({"name": "x", "settings": {"watchdog_services": [{"name": ""}]}}),
            "watchdog_services[0].name",
        ),
        (
            json!({"name": "x", "settings": {"watchdog_services": [{"name": "a", "action": "explode"}]}}),
            "watchdog_services[0].action",
        ),
        (
            json!({"name": "x", "settings": {"metrics_every": 3}}),
            "metrics_every",
        ),
    ] {
        let err = refused(body, "/api/policies").await;
        assert!(err.contains(field), "{field}: {err}");
    }
    for (body, field) in [
        (
            json!({"policy_id": id, "scope": {"kind": "site"}}),
            "scope.id",
        ),
        (
            json!({"policy_id": id, "scope": {"kind": "fleet", "id": "x"}}),
            "scope.id",
        ),
        (
            json!({"policy_id": id, "scope": {"kind": "site", "id": "no-such-site"}}),
            "scope.id",
        ),
        (
            json!({"policy_id": "no-such-policy", "scope": {"kind": "fleet"}}),
            "policy_id",
        ),
        (
            json!({"policy_id": id, "scope": {"kind": "galaxy"}}),
            "galaxy",
        ),
    ] {
        let err = refused(body, "/api/policy-assignments").await;
        assert!(err.contains(field), "{field}: {err}");
    }
    // One policy per scope; a taken name.
    assign(&server, &id, json!({"kind": "site", "id": site_id})).await;
    let (status, _) = server
        .request(
            Method::POST,
            "/api/policy-assignments",
            Some(json!({"policy_id": id, "scope": {"kind": "site", "id": site_id}})),
        )
        .await;
    assert_eq!(status, 409);
    let (status, _) = server
        .request(Method::POST, "/api/policies", Some(json!({"name": "Base"})))
        .await;
    assert_eq!(status, 409);
    for path in ["/api/policies/nope", "/api/agents/nope/policy"] {
        let (status, _) = server.request(Method::GET, path, None).await;
        assert_eq!(status, 404, "{path}");
    }

    // Viewers read; technicians change.
    for (role, can_change) in [("viewer", false), ("technician", true)] {
        let email = format!("{role}@example.com");
        server
            .post(
                "/api/users",
                json!({"email": email, "password": "policy-pass-1", "role": role}),
            )
            .await;
        let token = server.login(&email, "policy-pass-1").await.unwrap();
        let call = |method: Method, path: &str, body: Option<Value>| {
            let mut req = server
                .client
                .request(method, server.url(path))
                .bearer_auth(&token);
            if let Some(b) = body {
                req = req.json(&b);
            }
            async move { req.send().await.unwrap().status().as_u16() }
        };
        assert_eq!(call(Method::GET, "/api/policies", None).await, 200);
        assert_eq!(
            call(Method::GET, "/api/policy-assignments", None).await,
            200
        );
        let status = call(Method::POST, "/api/policies", Some(json!({"name": role}))).await;
        assert_eq!(status, if can_change { 201 } else { 403 }, "{role}");
        let status = call(
            Method::PUT,
            &format!("/api/policies/{id}"),
            Some(json!({"name": "Base"})),
        )
        .await;
        assert_eq!(status, if can_change { 200 } else { 403 }, "{role}");
    }
    assert_eq!(
        server.get(&format!("/api/policies/{id}")).await["version"],
        2
    );
}

/// A connected agent moved to another site gets that site's policy at once; deleting a site
/// takes the assignments, maintenance windows and notification routes bound to it along.
async fn moved_agents_and_deleted_sites(db: TestDb) {
    let server = TestServer::start(db).await;
    let (_, first_site, code) = server.create_site().await;
    let (_, second_site, _) = server.create_site().await;
    let (mut agent, reply) = SimAgent::enroll(&server.ws_url, &code, &new_device_id()).await;
    let agent_id = reply["agent_id"].as_str().unwrap().to_owned();
    let first = create_policy(&server, "First", json!({"metrics_interval_seconds": 30})).await;
    let second = create_policy(&server, "Second", json!({"metrics_interval_seconds": 90})).await;
    assign(&server, &first, json!({"kind": "site", "id": first_site})).await;
    let sent = next_policy(&mut agent).await;
    assert_eq!(sent["settings"]["metrics_interval_seconds"], 30);
    // Applied, as the agent says: nothing is re-sent until its effective policy changes.
    answer(&mut agent, &sent["revision"], None).await;
    server
        .wait_for(
            &format!("/api/agents/{agent_id}/policy"),
            Duration::from_secs(10),
            |p| p["status"] == "applied",
        )
        .await;
    assign(&server, &second, json!({"kind": "site", "id": second_site})).await;
    let channel = server
        .post(
            "/api/notification-channels",
            json!({"name": "Hook", "kind": "webhook", "url": "http://127.0.0.1:9/hook",
                   "secret": "a-long-shared-secret"}),
        )
        .await;
    server
        .post(
            "/api/notification-routes",
            json!({"channel_id": channel["id"], "min_severity": "info",
                   "scope": {"kind": "site", "id": second_site}}),
        )
        .await;
    server
        .post(
            "/api/maintenance-windows",
            json!({"name": "Nightly", "scope": {"kind": "site", "id": second_site},
                   "weekly": {"weekdays": [1, 2, 3], "start": "02:00", "duration_minutes": 60}}),
        )
        .await;

    let (status, body) = server
        .request(
            Method::POST,
            &format!("/api/agents/{agent_id}/move"),
            Some(json!({"site_id": second_site})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let sent = next_policy(&mut agent).await;
    assert_eq!(
        sent["settings"]["metrics_interval_seconds"], 90,
        "the new site's policy, at once"
    );
    answer(&mut agent, &sent["revision"], None).await;

    let (status, _) = server
        .request(Method::DELETE, &format!("/api/sites/{second_site}"), None)
        .await;
    assert_eq!(status, 204);
    let bound_to = |list: Value| {
        list.as_array()
            .unwrap()
            .iter()
            .filter(|row| row["scope"]["id"] == second_site.as_str())
            .count()
    };
    assert_eq!(bound_to(server.get("/api/policy-assignments").await), 0);
    assert_eq!(bound_to(server.get("/api/notification-routes").await), 0);
    assert_eq!(bound_to(server.get("/api/maintenance-windows").await), 0);
    assert_eq!(
        server
            .get("/api/policy-assignments")
            .await
            .as_array()
            .unwrap()
            .len(),
        1,
        "the other site's assignment stays"
    );
    // The agent, now without a site, is sent the policy that is left for it: none.
    let sent = next_policy(&mut agent).await;
    assert_eq!(sent["settings"], json!({}));
}

on_both_databases!(
    merge_deliver_and_status,
    bad_input_and_roles,
    moved_agents_and_deleted_sites
);

/// A change made on one node reaches an agent whose socket is on another, at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_node_reaches_agents_on_another() {
    let a = TestServer::start(TestDb::Postgres).await;
    let b = a.another_node().await;
    let (_, _, code) = a.create_site().await;
    let (mut agent, auth) = SimAgent::enroll(&b.ws_url, &code, &new_device_id()).await;
    let id = auth["agent_id"].as_str().unwrap().to_owned();
    crate::cluster::online_on(&a, &id, true).await;
    let policy = create_policy(&a, "Everyone", json!({"heartbeat_interval_seconds": 20})).await;
    assign(&a, &policy, json!({"kind": "agent", "id": id})).await;
    let sent = next_policy(&mut agent).await;
    assert_eq!(sent["settings"]["heartbeat_interval_seconds"], 20);
    assert_eq!(
        a.get(&format!("/api/agents/{id}/policy")).await["revision"],
        sent["revision"]
    );
}
