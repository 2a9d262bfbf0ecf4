//! Alerts with the real agent binary and the real server, on SQLite and PostgreSQL: a CPU
//! rule the machine exceeds opens an alert (a signed webhook and an email reach real
//! receivers in the test) and resolves when the rule is raised above the load; the agent
//! stopped opens an offline alert that resolves when it reconnects, and during a maintenance
//! window on its site opens nothing and sends nothing.

mod common;

use std::time::Duration;

use common::Agent;
use gururmm_server::testing::receivers::{smtp_server, WebhookReceiver};
use gururmm_server::testing::{TestDb, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

const SECRET: &str = "alert-test-shared-secret";

/// Metrics come every 10 s (the agent's least interval): a few reports' worth.
const WAIT: Duration = Duration::from_secs(45);

async fn agent_alert(server: &TestServer, agent_id: &str, kind: &str, status: &str) -> Value {
    let list = server
        .wait_for(&format!("/api/alerts?agent_id={agent_id}"), WAIT, |l| {
            l.as_array()
                .unwrap()
                .iter()
                .any(|a| a["kind"] == kind && a["status"] == status)
        })
        .await;
    list.as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == kind && a["status"] == status)
        .unwrap()
        .clone()
}

async fn cpu_rule_opens_and_resolves_when_raised(db: TestDb) {
    let (smtp_port, mut mail) = smtp_server().await;
    let server = TestServer::start_with(db, |c| {
        c.smtp_host = "127.0.0.1".into();
        c.smtp_port = smtp_port;
        c.smtp_security = gururmm_server::config::SmtpSecurity::None;
        c.smtp_from = "GuruRMM <rmm@example.com>".into();
    })
    .await;
    let hook = WebhookReceiver::start(0, false).await;
    for body in [
        json!({"name": "Hook", "kind": "webhook", "url": hook.url, "secret": SECRET}),
        json!({"name": "On call", "kind": "email", "email_to": ["oncall@example.com"]}),
    ] {
        let channel = server.post("/api/notification-channels", body).await;
        server
            .post(
                "/api/notification-routes",
                json!({"channel_id": channel["id"], "min_severity": "warning", "scope": {"kind": "fleet"}}),
            )
            .await;
    }
    let (client_id, _, code) = server.create_site().await;
    // Any load is above 0% (the agent itself uses some).
    let rule = server
        .post(
            "/api/alert-rules",
            json!({"name": "CPU", "kind": "cpu", "threshold": 0, "duration_seconds": 5,
                   "severity": "warning", "scope": {"kind": "client", "id": client_id}}),
        )
        .await;
    let rule_id = rule["id"].as_str().unwrap().to_owned();
    let _agent = Agent::start_new(&server.ws_url, &code, "");
    let list = server
        .wait_for("/api/agents", WAIT, |l| l.as_array().unwrap().len() == 1)
        .await;
    let id = list[0]["id"].as_str().unwrap().to_owned();

    let opened = agent_alert(&server, &id, "cpu", "open").await;
    assert_eq!(opened["rule_id"], rule_id.as_str());
    assert!(
        opened["message"].as_str().unwrap().contains("CPU use at"),
        "{opened}"
    );
    let alert_id = opened["id"].as_str().unwrap().to_owned();
    // Told: a webhook signed with the channel's secret, and an email.
    common::wait_for(30, "the signed webhook", || async {
        hook.received()
            .into_iter()
            .find(|r| r.body.contains(&alert_id))
    })
    .await;
    assert!(hook.received().iter().all(|r| r.signed_with(SECRET)));
    let email = tokio::time::timeout(Duration::from_secs(30), mail.recv())
        .await
        .expect("an email within 30 s")
        .unwrap();
    assert!(email.contains("oncall@example.com"), "{email}");

    let (status, body) = server
        .request(
            Method::PUT,
            &format!("/api/alert-rules/{rule_id}"),
            Some(
                json!({"name": "CPU", "kind": "cpu", "threshold": 100, "duration_seconds": 5,
                        "severity": "warning", "scope": {"kind": "client", "id": client_id}}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let resolved = server
        .wait_for(
            &format!("/api/alerts/{}", opened["id"].as_str().unwrap()),
            WAIT,
            |a| a["status"] == "resolved",
        )
        .await;
    assert_eq!(resolved["resolved_by"], Value::Null, "resolved by itself");
}

async fn stopped_agent_goes_offline_and_back(db: TestDb) {
    let server = TestServer::start(db).await;
    let hook = WebhookReceiver::start(0, false).await;
    let channel = server
        .post(
            "/api/notification-channels",
            json!({"name": "Hook", "kind": "webhook", "url": hook.url, "secret": SECRET}),
        )
        .await;
    server
        .post(
            "/api/notification-routes",
            json!({"channel_id": channel["id"], "min_severity": "warning", "scope": {"kind": "fleet"}}),
        )
        .await;
    let (_, site_id, code) = server.create_site().await;
    server
        .post(
            "/api/alert-rules",
            json!({"name": "Offline", "kind": "offline", "duration_seconds": 2,
                   "severity": "critical", "scope": {"kind": "site", "id": site_id}}),
        )
        .await;
    let mut agent = Agent::start_new(&server.ws_url, &code, "");
    let list = server
        .wait_for("/api/agents", WAIT, |l| {
            l.as_array()
                .is_some_and(|a| a.len() == 1 && a[0]["online"] == true)
        })
        .await;
    let id = list[0]["id"].as_str().unwrap().to_owned();
    // Wait for the saved key, so the restarted agent reconnects as itself.
    common::saved_key(&agent).await;

    agent.stop();
    let opened = agent_alert(&server, &id, "offline", "open").await;
    assert_eq!(opened["severity"], "critical");
    assert_eq!(
        server.get(&format!("/api/agents/{id}")).await["alert_severity"],
        "critical"
    );

    agent.start();
    server
        .wait_for(
            &format!("/api/alerts/{}", opened["id"].as_str().unwrap()),
            WAIT,
            |a| a["status"] == "resolved",
        )
        .await;
    // Both changes were told: opened, then resolved.
    let first_id = opened["id"].as_str().unwrap().to_owned();
    common::wait_for(30, "the opened and resolved notices", || async {
        let told = hook.received();
        (told.iter().filter(|r| r.body.contains(&first_id)).count() >= 2).then_some(())
    })
    .await;
    let told_before = hook.received().len();

    // A maintenance window on the site: the agent stopped again opens nothing, sends nothing.
    let now = gururmm_server::db::now_ms();
    let at = gururmm_server::db::rfc3339::format;
    let window = server
        .post(
            "/api/maintenance-windows",
            json!({"name": "Patching", "scope": {"kind": "site", "id": site_id},
                   "starts_at": at(now - 60_000), "ends_at": at(now + 3_600_000)}),
        )
        .await;
    server
        .wait_for(&format!("/api/agents/{id}"), WAIT, |a| a["online"] == true)
        .await;
    agent.stop();
    server
        .wait_for(&format!("/api/agents/{id}"), WAIT, |a| a["online"] == false)
        .await;
    // The rule's 2 s and several upkeep ticks (1 s in tests) pass.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let alerts = server.get(&format!("/api/alerts?agent_id={id}")).await;
    assert!(
        alerts
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["status"] == "resolved"),
        "no alert opens during the window: {alerts}"
    );
    assert_eq!(
        hook.received().len(),
        told_before,
        "nothing is sent during the window"
    );

    // The window removed, the same silence opens the alert: the wait above was long enough.
    let (status, _) = server
        .request(
            Method::DELETE,
            &format!(
                "/api/maintenance-windows/{}",
                window["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let second = agent_alert(&server, &id, "offline", "open").await;
    let second_id = second["id"].as_str().unwrap().to_owned();
    assert_ne!(second_id, first_id);
    common::wait_for(30, "the notice of the alert after the window", || async {
        hook.received()
            .into_iter()
            .find(|r| r.body.contains(&second_id))
    })
    .await;
}

#[tokio::test]
async fn cpu_rule_opens_and_resolves_when_raised_sqlite() {
    cpu_rule_opens_and_resolves_when_raised(TestDb::Sqlite).await;
}

#[tokio::test]
async fn cpu_rule_opens_and_resolves_when_raised_postgres() {
    cpu_rule_opens_and_resolves_when_raised(TestDb::Postgres).await;
}

#[tokio::test]
async fn stopped_agent_goes_offline_and_back_sqlite() {
    stopped_agent_goes_offline_and_back(TestDb::Sqlite).await;
}

#[tokio::test]
async fn stopped_agent_goes_offline_and_back_postgres() {
    stopped_agent_goes_offline_and_back(TestDb::Postgres).await;
}
