//! Alerts: rules (CRUD and bad input), the lifecycle of an alert from a simulated agent's
//! reports (open once, acknowledge, resolve by itself and by hand), filters, maintenance
//! windows, offline agents, watchdog and command alerts.

use std::time::Duration;

use gururmm_protocol::fixture;
use gururmm_server::testing::{TestDb, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

use crate::agent_sim::{new_device_id, SimAgent};
use crate::on_both_databases;

const WAIT: Duration = Duration::from_secs(15);

fn metrics(cpu: f64) -> Value {
    let mut m: Value = serde_json::from_str(&fixture("metrics_report")).unwrap();
    m["payload"]["cpu_percent"] = json!(cpu);
    m
}

fn alerts_of(body: &Value) -> &Vec<Value> {
    body.as_array().expect("a list")
}

async fn agent_on_site(server: &TestServer) -> (SimAgent, String, String, String, String) {
    let (client_id, site_id, code) = server.create_site().await;
    let device = new_device_id();
    let (agent, auth) = SimAgent::enroll(&server.ws_url, &code, &device).await;
    let id = auth["agent_id"].as_str().unwrap().to_owned();
    let key = auth["api_key"].as_str().unwrap().to_owned();
    (agent, id, client_id, site_id, format!("{key} {device}"))
}

/// Sends reports until the agent's latest stored metrics show `cpu`: every report before it
/// was judged (judging happens before storing).
async fn report(server: &TestServer, agent: &mut SimAgent, id: &str, cpu: f64) {
    agent.send(&metrics(cpu)).await;
    server
        .wait_for(&format!("/api/agents/{id}/state"), WAIT, |s| {
            s["metrics"]["cpu_percent"] == json!(cpu)
        })
        .await;
}

/// Reports `cpu` until an open alert of the agent shows (each report is judged before the
/// next is sent); returns it.
async fn report_until_open(server: &TestServer, agent: &mut SimAgent, id: &str, cpu: f64) -> Value {
    for _ in 0..50 {
        report(server, agent, id, cpu).await;
        let open = server
            .get(&format!("/api/alerts?agent_id={id}&status=open"))
            .await;
        if let Some(a) = alerts_of(&open).first() {
            return a.clone();
        }
    }
    panic!("no alert opened for agent {id}");
}

/// Each body POSTed to `path` is refused with 400 naming its field.
async fn refused_naming_the_field(server: &TestServer, path: &str, cases: &[(Value, &str)]) {
    for (body, field) in cases {
        let (status, answer) = server.request(Method::POST, path, Some(body.clone())).await;
        assert_eq!(status, 400, "{body} -> {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(field),
            "{body} -> {answer} should name {field}"
        );
    }
}

async fn rules_crud_and_bad_input(db: TestDb) {
    let server = TestServer::start(db).await;
    let (_, site_id, _) = server.create_site().await;
    let created = server
        .post(
            "/api/alert-rules",
            json!({"name": "Hot CPU", "kind": "cpu", "threshold": 90, "duration_seconds": 60,
                   "severity": "critical", "scope": {"kind": "site", "id": site_id}}),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["threshold"], 90.0);
    assert_eq!(created["enabled"], true);
    assert_eq!(created["scope"]["id"], site_id.as_str());
    let listed = server.get("/api/alert-rules").await;
    assert_eq!(alerts_of(&listed).len(), 1);

    let (status, updated) = server
        .request(
            Method::PUT,
            &format!("/api/alert-rules/{id}"),
            Some(
                json!({"name": "Offline", "kind": "offline", "duration_seconds": 600,
                        "severity": "warning", "scope": {"kind": "fleet"}}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["kind"], "offline");
    assert_eq!(updated["threshold"], Value::Null);

    let bad = [
        (
            json!({"name": "x", "kind": "cpu", "severity": "info", "scope": {"kind": "fleet"}}),
            "threshold",
        ),
        (
            json!({"name": "x", "kind": "disk", "threshold": 150, "severity": "info", "scope": {"kind": "fleet"}}),
            "threshold",
        ),
        (
            json!({"name": "x", "kind": "offline", "duration_seconds": 0, "severity": "info", "scope": {"kind": "fleet"}}),
            "duration_seconds",
        ),
        (
            json!({"name": "x", "kind": "offline", "duration_seconds": 99999999, "severity": "info", "scope": {"kind": "fleet"}}),
            "duration_seconds",
        ),
        (
            json!({"name": "x", "kind": "watchdog_gave_up", "threshold": 5, "severity": "info", "scope": {"kind": "fleet"}}),
            "threshold",
        ),
        (
            json!({"name": "x", "kind": "offline", "include_timeouts": true, "severity": "info", "scope": {"kind": "fleet"}}),
            "include_timeouts",
        ),
        (
            json!({"name": "", "kind": "offline", "severity": "info", "scope": {"kind": "fleet"}}),
            "name",
        ),
        (
            json!({"name": "x", "kind": "offline", "severity": "info", "scope": {"kind": "site"}}),
            "scope.id",
        ),
        (
            json!({"name": "x", "kind": "offline", "severity": "info", "scope": {"kind": "site", "id": "nope"}}),
            "scope.id",
        ),
        (
            json!({"name": "x", "kind": "fan_speed", "severity": "info", "scope": {"kind": "fleet"}}),
            "kind",
        ),
        (
            json!({"name": "x", "kind": "offline", "severity": "loud", "scope": {"kind": "fleet"}}),
            "severity",
        ),
    ];
    refused_naming_the_field(&server, "/api/alert-rules", &bad).await;

    let windows_bad = [
        (
            json!({"name": "w", "scope": {"kind": "fleet"}, "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2026-01-02T00:00:00Z"}),
            "scope.kind",
        ),
        (
            json!({"name": "w", "scope": {"kind": "site", "id": site_id}, "starts_at": "2026-01-02T00:00:00Z", "ends_at": "2026-01-01T00:00:00Z"}),
            "ends_at",
        ),
        (
            json!({"name": "w", "scope": {"kind": "site", "id": site_id}, "weekly": {"weekdays": [1], "start": "09:00", "duration_minutes": 60}, "time_zone": "Mars/Olympus"}),
            "time_zone",
        ),
        (
            json!({"name": "w", "scope": {"kind": "site", "id": site_id}, "weekly": {"weekdays": [0], "start": "09:00", "duration_minutes": 60}}),
            "weekly.weekdays",
        ),
        (
            json!({"name": "w", "scope": {"kind": "site", "id": site_id}}),
            "weekly",
        ),
    ];
    refused_naming_the_field(&server, "/api/maintenance-windows", &windows_bad).await;
    let weekly = server
        .post(
            "/api/maintenance-windows",
            json!({"name": "Patch night", "scope": {"kind": "site", "id": site_id},
                   "weekly": {"weekdays": [6, 3], "start": "22:30", "duration_minutes": 120},
                   "time_zone": "Europe/Berlin"}),
        )
        .await;
    assert_eq!(weekly["weekly"]["weekdays"], json!([3, 6]));
    assert_eq!(weekly["weekly"]["start"], "22:30");
    let wid = weekly["id"].as_str().unwrap();
    let (status, _) = server
        .request(
            Method::DELETE,
            &format!("/api/maintenance-windows/{wid}"),
            None,
        )
        .await;
    assert_eq!(status, 204);

    let (status, _) = server
        .request(Method::DELETE, &format!("/api/alert-rules/{id}"), None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = server
        .request(Method::GET, &format!("/api/alert-rules/{id}"), None)
        .await;
    assert_eq!(status, 404);
}

async fn lifecycle_open_ack_resolve_and_filters(db: TestDb) {
    let server = TestServer::start(db).await;
    let (mut agent, id, client_id, site_id, _) = agent_on_site(&server).await;
    // The agent's first report places it for the evaluator.
    report(&server, &mut agent, &id, 1.0).await;
    let rule = server
        .post(
            "/api/alert-rules",
            json!({"name": "Busy", "kind": "cpu", "threshold": 80, "duration_seconds": 0,
                   "severity": "critical", "scope": {"kind": "client", "id": client_id}}),
        )
        .await;
    let rule_id = rule["id"].as_str().unwrap().to_owned();
    let opened = report_until_open(&server, &mut agent, &id, 90.0).await;
    assert_eq!(opened["kind"], "cpu", "{opened}");
    assert_eq!(opened["severity"], "critical");
    assert_eq!(opened["site_id"], site_id.as_str());
    assert_eq!(opened["resolved_by"], Value::Null);
    let alert_id = opened["id"].as_str().unwrap().to_owned();
    // Still hot: no second alert (no storm).
    for cpu in [91.0, 92.0, 93.0] {
        report(&server, &mut agent, &id, cpu).await;
    }
    assert_eq!(
        server.get(&format!("/api/agents/{id}")).await["alert_severity"],
        "critical"
    );
    let summary = server.get("/api/alerts/summary").await;
    assert_eq!(summary["critical"], 1, "{summary}");
    assert_eq!(summary["highest"], "critical");

    let acked = server
        .post(
            &format!("/api/alerts/{alert_id}/acknowledge"),
            json!({"note": "looking into it"}),
        )
        .await;
    assert_eq!(acked["status"], "acknowledged");
    assert_eq!(acked["acknowledged_note"], "looking into it");
    assert!(acked["acknowledged_by"].is_string());
    assert_eq!(
        acked["acknowledged_by_email"],
        gururmm_server::testing::ADMIN_EMAIL
    );
    assert!(acked["acknowledged_at"].is_string());
    let (status, _) = server
        .request(
            Method::POST,
            &format!("/api/alerts/{alert_id}/acknowledge"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 409, "acknowledged once");
    assert_eq!(server.get("/api/alerts/summary").await["acknowledged"], 1);

    // The condition clears: resolved by itself.
    report(&server, &mut agent, &id, 5.0).await;
    let resolved = server
        .wait_for(&format!("/api/alerts/{alert_id}"), WAIT, |a| {
            a["status"] == "resolved"
        })
        .await;
    assert_eq!(resolved["resolved_by"], Value::Null, "automatic");
    let all = server.get(&format!("/api/alerts?agent_id={id}")).await;
    assert_eq!(alerts_of(&all).len(), 1, "one alert for one episode: {all}");
    assert_eq!(
        server.get(&format!("/api/agents/{id}")).await["alert_severity"],
        Value::Null
    );

    // A second episode, resolved by hand.
    let second = report_until_open(&server, &mut agent, &id, 95.0).await;
    let second_id = second["id"].as_str().expect("a second alert").to_owned();
    assert_ne!(second_id, alert_id);
    let done = server
        .post(
            &format!("/api/alerts/{second_id}/resolve"),
            json!({"note": "rebooted"}),
        )
        .await;
    assert_eq!(done["status"], "resolved");
    assert_eq!(done["resolved_note"], "rebooted");
    assert!(done["resolved_by"].is_string(), "by hand: {done}");
    assert_eq!(
        done["resolved_by_email"],
        gururmm_server::testing::ADMIN_EMAIL
    );
    let (status, _) = server
        .request(
            Method::POST,
            &format!("/api/alerts/{second_id}/resolve"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 409);
    let (status, body) = server
        .request(
            Method::POST,
            &format!("/api/alerts/{second_id}/resolve"),
            Some(json!({"note": "x".repeat(2001)})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = server
        .request(Method::GET, "/api/alerts/no-such-alert", None)
        .await;
    assert_eq!(status, 404);

    // Filters and paging.
    let count = |q: String| {
        let server = &server;
        async move { alerts_of(&server.get(&format!("/api/alerts?{q}")).await).len() }
    };
    assert_eq!(count(format!("status=resolved&agent_id={id}")).await, 2);
    assert_eq!(
        count(format!("severity=critical&client_id={client_id}")).await,
        2
    );
    assert_eq!(count(format!("severity=warning&agent_id={id}")).await, 0);
    assert_eq!(
        count(format!("site_id={site_id}&rule_id={rule_id}")).await,
        2
    );
    assert_eq!(count("client_id=another".into()).await, 0);
    assert_eq!(count("since=2100-01-01T00:00:00Z".into()).await, 0);
    assert_eq!(count("until=2000-01-01T00:00:00Z".into()).await, 0);
    let first = server.get("/api/alerts?limit=1").await;
    let next = server.get("/api/alerts?limit=1&offset=1").await;
    assert_eq!(alerts_of(&first).len(), 1);
    assert_ne!(alerts_of(&first)[0]["id"], alerts_of(&next)[0]["id"]);
    assert_eq!(first[0]["id"], second_id.as_str(), "newest first");
    for q in ["limit=0", "offset=-1", "status=shouting", "since=yesterday"] {
        let (status, body) = server
            .request(Method::GET, &format!("/api/alerts?{q}"), None)
            .await;
        assert_eq!(status, 400, "{q}: {body}");
    }
}

async fn maintenance_window_silences(db: TestDb) {
    let server = TestServer::start(db).await;
    let (mut agent, id, _, _, _) = agent_on_site(&server).await;
    report(&server, &mut agent, &id, 1.0).await;
    let now = chrono::Utc::now();
    let window = server
        .post(
            "/api/maintenance-windows",
            json!({"name": "Upgrade", "scope": {"kind": "agent", "id": id},
                   "starts_at": (now - chrono::Duration::hours(1)).to_rfc3339(),
                   "ends_at": (now + chrono::Duration::hours(1)).to_rfc3339()}),
        )
        .await;
    server
        .post(
            "/api/alert-rules",
            json!({"name": "Busy", "kind": "cpu", "threshold": 50, "duration_seconds": 0,
                   "severity": "warning", "scope": {"kind": "agent", "id": id}}),
        )
        .await;
    for _ in 0..5 {
        report(&server, &mut agent, &id, 99.0).await;
    }
    let lifted_at = chrono::Utc::now();
    let wid = window["id"].as_str().unwrap();
    let (status, _) = server
        .request(
            Method::DELETE,
            &format!("/api/maintenance-windows/{wid}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let opened = report_until_open(&server, &mut agent, &id, 99.0).await;
    let at = chrono::DateTime::parse_from_rfc3339(opened["opened_at"].as_str().expect("opened"))
        .unwrap();
    assert!(
        at >= lifted_at,
        "nothing opened during the window: {opened}"
    );
}

async fn offline_watchdog_and_command_alerts(db: TestDb) {
    let server = TestServer::start(db).await;
    let (mut agent, id, _, _, device) = agent_on_site(&server).await;
    for (kind, extra) in [
        ("offline", json!({"duration_seconds": 1})),
        ("watchdog_gave_up", json!({})),
        ("command_failed", json!({})),
    ] {
        let mut body = json!({"name": kind, "kind": kind, "severity": "warning",
                              "scope": {"kind": "agent", "id": id}});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        server.post("/api/alert-rules", body).await;
    }
    // The watchdog gave up on a service: one alert, named after it.
    let mut event: Value = serde_json::from_str(&fixture("watchdog_event")).unwrap();
    event["payload"]["event"] = json!("gave_up");
    agent.send(&event).await;
    agent.send(&event).await;
    let watchdog = server
        .wait_for(&format!("/api/alerts?agent_id={id}"), WAIT, |l| {
            alerts_of(l).iter().any(|a| a["kind"] == "watchdog_gave_up")
        })
        .await;
    let w = alerts_of(&watchdog)
        .iter()
        .find(|a| a["kind"] == "watchdog_gave_up")
        .unwrap();
    assert_eq!(w["subject"], "Spooler");

    // A command fails.
    let c = server
        .post(
            &format!("/api/agents/{id}/command"),
            json!({"command_type": "shell", "command": "false"}),
        )
        .await;
    let frame = agent.recv_json(WAIT).await.expect("command");
    assert_eq!(frame["payload"]["id"], c["id"]);
    agent.answer(c["id"].as_str().unwrap(), 2, "").await;
    server
        .wait_for(&format!("/api/alerts?agent_id={id}"), WAIT, |l| {
            alerts_of(l).iter().any(|a| {
                a["kind"] == "command_failed"
                    && a["message"].as_str().unwrap().contains("exit code 2")
            })
        })
        .await;

    // Offline after its duration; resolved when it is back.
    drop(agent);
    let offline = server
        .wait_for(&format!("/api/alerts?agent_id={id}"), WAIT, |l| {
            alerts_of(l)
                .iter()
                .any(|a| a["kind"] == "offline" && a["status"] == "open")
        })
        .await;
    let offline_id = alerts_of(&offline)
        .iter()
        .find(|a| a["kind"] == "offline")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (key, device) = device.split_once(' ').unwrap();
    let (_agent, _) = SimAgent::enroll(&server.ws_url, key, device).await;
    server
        .wait_for(&format!("/api/alerts/{offline_id}"), WAIT, |a| {
            a["status"] == "resolved"
        })
        .await;
}

on_both_databases!(
    rules_crud_and_bad_input,
    lifecycle_open_ack_resolve_and_filters,
    maintenance_window_silences,
    offline_watchdog_and_command_alerts,
);
