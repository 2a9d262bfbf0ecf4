//! Notifications end to end: real receivers on 127.0.0.1 started by each test (HTTP for the
//! webhook, Slack and Teams formats; a small SMTP server for email), alert notices queued
//! through `notify::enqueue_alert_notice` as alerting queues them.

use std::time::Duration;

use gururmm_server::alerting::Severity;
use gururmm_server::notify::{enqueue_alert_notice, AlertNotice, AlertTransition};
use gururmm_server::testing::receivers::{smtp_server, Received, WebhookReceiver as Receiver};
use gururmm_server::testing::{TestDb, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

use crate::on_both_databases;

const SECRET: &str = "receiver-shared-secret";

fn notice(severity: Severity, site: Option<(&str, &str)>) -> AlertNotice {
    AlertNotice {
        alert_id: uuid::Uuid::new_v4().to_string(),
        rule_id: Some("rule-1".into()),
        rule_name: "CPU above 90%".into(),
        agent_id: uuid::Uuid::new_v4().to_string(),
        hostname: "web-01".into(),
        client_id: site.map(|(c, _)| c.to_owned()),
        site_id: site.map(|(_, s)| s.to_owned()),
        severity,
        transition: AlertTransition::Opened,
        message: "CPU at 97% for 5 minutes".into(),
        at: 1_700_000_000_000,
    }
}

/// Queues the notice as alerting does: in a transaction, then a wake after the commit.
async fn enqueue(server: &TestServer, notice: &AlertNotice) {
    let state = server.state();
    let mut tx = state.store.begin_write().await.unwrap();
    enqueue_alert_notice(&mut tx, notice).await.unwrap();
    tx.commit().await.unwrap();
    gururmm_server::notify::wake(&state);
}

async fn channel(server: &TestServer, body: Value) -> String {
    let c = server.post("/api/notification-channels", body).await;
    c["id"].as_str().unwrap().to_owned()
}

async fn route(server: &TestServer, channel_id: &str, min: &str, scope: Value) {
    server
        .post(
            "/api/notification-routes",
            json!({"channel_id": channel_id, "min_severity": min, "scope": scope}),
        )
        .await;
}

fn webhook(name: &str, url: &str) -> Value {
    json!({"name": name, "kind": "webhook", "url": url, "secret": SECRET})
}

/// The deliveries of one alert, by channel id.
async fn deliveries_of(server: &TestServer, alert_id: &str) -> Vec<Value> {
    let list = server
        .get(&format!("/api/notification-deliveries?alert_id={alert_id}"))
        .await;
    list.as_array().unwrap().clone()
}

fn verify(r: &Received) {
    assert!(r.signed_with(SECRET), "bad signature: {:?}", r.headers);
}

async fn webhook_signed_and_retried_until_accepted(db: TestDb) {
    let server = TestServer::start_with(db, |c| c.notification_retry_base_seconds = 1).await;
    let receiver = Receiver::start(3, false).await;
    let id = channel(&server, webhook("Flaky receiver", &receiver.url)).await;
    let listed = server.get("/api/notification-channels").await;
    assert_eq!(listed[0]["has_secret"], true);
    assert!(!listed.to_string().contains(SECRET), "{listed}");
    route(&server, &id, "info", json!({"kind": "fleet"})).await;

    let n = notice(Severity::Critical, None);
    enqueue(&server, &n).await;
    let path = format!("/api/notification-deliveries?alert_id={}", n.alert_id);
    let list = server
        .wait_for(&path, Duration::from_secs(30), |l| {
            l[0]["status"] == "delivered"
        })
        .await;
    let delivery = &list[0];
    assert_eq!(delivery["attempt_count"], 4);
    let codes: Vec<i64> = delivery["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [500, 500, 500, 200]);
    assert_eq!(delivery["attempts"][0]["response"], "try later");

    // The receiver accepted it once; every try carried the same delivery id and a signature
    // it can check with the shared secret.
    let got = receiver.received();
    assert_eq!(got.len(), 4);
    for r in &got {
        verify(r);
        assert_eq!(
            r.headers["x-gururmm-delivery"],
            delivery["id"].as_str().unwrap()
        );
    }
    let body: Value = serde_json::from_str(&got[3].body).unwrap();
    assert_eq!(body["event"], "alert.opened");
    assert_eq!(body["alert_id"], n.alert_id.as_str());
    assert_eq!(body["severity"], "critical");
    assert_eq!(body["hostname"], "web-01");
    assert_eq!(body["delivery_id"], delivery["id"]);

    // Finished deliveries go with their attempts once past retention, not before.
    let store = &server.state().store;
    let now = gururmm_server::db::now_ms();
    assert_eq!(store.prune_deliveries(now - 60_000).await.unwrap(), 0);
    assert_eq!(store.prune_deliveries(now + 1_000).await.unwrap(), 1);
    assert_eq!(server.get(&path).await, json!([]));
}

async fn given_up_after_max_attempts(db: TestDb) {
    let server = TestServer::start_with(db, |c| {
        c.notification_retry_base_seconds = 1;
        c.notification_max_attempts = 2;
    })
    .await;
    let receiver = Receiver::start(usize::MAX, false).await;
    let id = channel(&server, webhook("Always down", &receiver.url)).await;
    route(&server, &id, "info", json!({"kind": "fleet"})).await;
    let n = notice(Severity::Warning, None);
    enqueue(&server, &n).await;
    let path = format!(
        "/api/notification-deliveries?alert_id={}&status=failed",
        n.alert_id
    );
    let failed = server
        .wait_for(&path, Duration::from_secs(20), |l| {
            l.as_array().unwrap().len() == 1
        })
        .await;
    assert_eq!(failed[0]["attempt_count"], 2);
    assert_eq!(failed[0]["attempts"].as_array().unwrap().len(), 2);
    let error = failed[0]["last_error"].as_str().unwrap();
    assert!(error.contains("500"), "{error}");
    assert_eq!(receiver.received().len(), 2);
}

async fn hanging_channel_does_not_delay_another(db: TestDb) {
    let server = TestServer::start(db).await;
    let hanging = Receiver::start(0, true).await;
    let quick = Receiver::start(0, false).await;
    let slow_id = channel(&server, webhook("Hangs", &hanging.url)).await;
    let quick_id = channel(&server, webhook("Quick", &quick.url)).await;
    for id in [&slow_id, &quick_id] {
        route(&server, id, "warning", json!({"kind": "fleet"})).await;
    }
    // Several at once, so the hanging channel holds what slots it can.
    let notices: Vec<AlertNotice> = (0..6).map(|_| notice(Severity::Warning, None)).collect();
    for n in &notices {
        enqueue(&server, n).await;
    }
    let started = std::time::Instant::now();
    let path = format!("/api/notification-deliveries?channel_id={quick_id}&status=delivered");
    server
        .wait_for(&path, Duration::from_secs(30), |l| {
            l.as_array().unwrap().len() == notices.len()
        })
        .await;
    // The hanging channel's attempts time out after 10 s; the quick one did not wait for them.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let slow = server
        .get(&format!(
            "/api/notification-deliveries?channel_id={slow_id}"
        ))
        .await;
    assert_eq!(slow.as_array().unwrap().len(), notices.len());
    assert!(slow
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["status"] == "pending" && d["attempt_count"] == 0));
    assert_eq!(quick.received().len(), notices.len());
}

async fn slack_teams_and_email_formats(db: TestDb) {
    let (smtp_port, mut mail) = smtp_server().await;
    let server = TestServer::start_with(db, |c| {
        c.smtp_host = "127.0.0.1".into();
        c.smtp_port = smtp_port;
        c.smtp_security = gururmm_server::config::SmtpSecurity::None;
        c.smtp_from = "GuruRMM <rmm@example.com>".into();
    })
    .await;
    let slack = Receiver::start(0, false).await;
    let teams = Receiver::start(0, false).await;
    let ids = [
        channel(
            &server,
            json!({"name": "Slack", "kind": "slack", "url": slack.url}),
        )
        .await,
        channel(
            &server,
            json!({"name": "Teams", "kind": "teams", "url": teams.url}),
        )
        .await,
        channel(
            &server,
            json!({"name": "On call", "kind": "email", "email_to": ["oncall@example.com"]}),
        )
        .await,
    ];
    for id in &ids {
        route(&server, id, "critical", json!({"kind": "fleet"})).await;
    }
    let n = notice(Severity::Critical, None);
    enqueue(&server, &n).await;
    let path = format!("/api/notification-deliveries?alert_id={}", n.alert_id);
    let list = server
        .wait_for(&path, Duration::from_secs(30), |l| {
            l.as_array().unwrap().len() == 3
                && l.as_array()
                    .unwrap()
                    .iter()
                    .all(|d| d["status"] == "delivered")
        })
        .await;

    let slack_body: Value = serde_json::from_str(&slack.received()[0].body).unwrap();
    let text = slack_body["text"].as_str().unwrap();
    assert!(
        text.contains("[critical] CPU above 90% opened on web-01"),
        "{text}"
    );
    assert!(text.contains("CPU at 97%"), "{text}");

    let card: Value = serde_json::from_str(&teams.received()[0].body).unwrap();
    assert_eq!(card["@type"], "MessageCard");
    assert_eq!(card["text"], "CPU at 97% for 5 minutes");
    assert!(card["title"].as_str().unwrap().contains("web-01"));

    let message = tokio::time::timeout(Duration::from_secs(10), mail.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(message.contains("To: oncall@example.com"), "{message}");
    assert!(
        message.contains("Subject: [critical] CPU above 90% opened on web-01"),
        "{message}"
    );
    assert!(message.contains("CPU at 97% for 5 minutes"), "{message}");
    let email = list
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["channel_id"] == ids[2].as_str())
        .unwrap();
    assert_eq!(email["attempts"][0]["status_code"], 250);
}

async fn routes_filter_by_severity_and_scope(db: TestDb) {
    let server = TestServer::start(db).await;
    let (client_id, site_id, _) = server.create_site().await;
    let sink = Receiver::start(0, false).await;
    let fleet_warnings = channel(&server, webhook("Fleet warnings", &sink.url)).await;
    let site_all = channel(&server, webhook("Site, everything", &sink.url)).await;
    let disabled = channel(&server, webhook("Off", &sink.url)).await;
    route(
        &server,
        &fleet_warnings,
        "warning",
        json!({"kind": "fleet"}),
    )
    .await;
    route(
        &server,
        &site_all,
        "info",
        json!({"kind": "site", "id": site_id}),
    )
    .await;
    route(&server, &disabled, "info", json!({"kind": "fleet"})).await;
    let (status, _) = server
        .request(
            Method::PUT,
            &format!("/api/notification-channels/{disabled}"),
            Some(json!({"name": "Off", "kind": "webhook", "url": sink.url, "enabled": false})),
        )
        .await;
    assert_eq!(status, 200);

    let here = Some((client_id.as_str(), site_id.as_str()));
    let elsewhere = Some((client_id.as_str(), "another-site"));
    let cases = [
        (notice(Severity::Info, elsewhere), vec![]),
        (notice(Severity::Warning, elsewhere), vec![&fleet_warnings]),
        (notice(Severity::Info, here), vec![&site_all]),
        (
            notice(Severity::Critical, here),
            vec![&fleet_warnings, &site_all],
        ),
    ];
    for (n, _) in &cases {
        enqueue(&server, n).await;
    }
    for (n, expected) in &cases {
        let mut got: Vec<String> = deliveries_of(&server, &n.alert_id)
            .await
            .iter()
            .map(|d| d["channel_id"].as_str().unwrap().to_owned())
            .collect();
        got.sort();
        let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        expected.sort();
        assert_eq!(got, expected, "{:?} {:?}", n.severity, n.site_id);
    }

    // A route changed to the client, then deleted.
    let routes = server.get("/api/notification-routes").await;
    let id = routes[0]["id"].as_str().unwrap();
    let path = format!("/api/notification-routes/{id}");
    let scope = json!({"kind": "client", "id": client_id});
    let body = json!({"channel_id": site_all, "min_severity": "critical", "scope": scope});
    let (status, changed) = server.request(Method::PUT, &path, Some(body)).await;
    assert_eq!((status, &changed["scope"]), (200, &scope));
    let (status, _) = server.request(Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    let (status, _) = server.request(Method::GET, &path, None).await;
    assert_eq!(status, 404);
}

async fn send_test_and_bad_input(db: TestDb) {
    let server = TestServer::start(db).await;
    let receiver = Receiver::start(0, false).await;
    let id = channel(&server, webhook("Test me", &receiver.url)).await;
    let queued = server
        .post(&format!("/api/notification-channels/{id}/test"), json!({}))
        .await;
    let delivery = server
        .wait_for(
            &format!(
                "/api/notification-deliveries/{}",
                queued["id"].as_str().unwrap()
            ),
            Duration::from_secs(15),
            |d| d["status"] == "delivered",
        )
        .await;
    assert_eq!(delivery["payload"]["event"], "test");
    verify(&receiver.received()[0]);

    // A change without the secret keeps it.
    let (status, changed) = server
        .request(
            Method::PUT,
            &format!("/api/notification-channels/{id}"),
            Some(json!({"name": "Renamed", "kind": "webhook", "url": receiver.url})),
        )
        .await;
    assert_eq!((status, changed["has_secret"].clone()), (200, json!(true)));

    let bad_channels = [
        (
            json!({"name": "x", "kind": "webhook", "url": "ftp://example.com/", "secret": SECRET}),
            "url",
        ),
        (
            json!({"name": "x", "kind": "webhook", "url": "file:///etc/passwd", "secret": SECRET}),
            "url",
        ),
        (
            json!({"name": "x", "kind": "webhook", "url": "http://127.0.0.1:9/"}),
            "secret",
        ),
        (
            json!({"name": "x", "kind": "webhook", "url": "http://127.0.0.1:9/", "secret": "short"}),
            "secret",
        ),
        (
            json!({"name": "x", "kind": "slack", "url": "http://127.0.0.1:9/", "secret": SECRET}),
            "secret",
        ),
        (
            json!({"name": "", "kind": "slack", "url": "http://127.0.0.1:9/"}),
            "name",
        ),
        (json!({"name": "x", "kind": "slack"}), "url"),
        (
            json!({"name": "x", "kind": "email", "email_to": ["a@example.com"]}),
            "smtp_host",
        ),
        (
            json!({"name": "x", "kind": "pager", "url": "http://127.0.0.1:9/"}),
            "pager",
        ),
    ];
    for (body, field) in bad_channels {
        let (status, answer) = server
            .request(
                Method::POST,
                "/api/notification-channels",
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(field),
            "{body}: {answer}"
        );
    }
    let bad_routes = [
        (
            json!({"channel_id": "nope", "min_severity": "info", "scope": {"kind": "fleet"}}),
            "channel_id",
        ),
        (
            json!({"channel_id": id, "min_severity": "loud", "scope": {"kind": "fleet"}}),
            "loud",
        ),
        (
            json!({"channel_id": id, "min_severity": "info", "scope": {"kind": "site"}}),
            "scope.id",
        ),
        (
            json!({"channel_id": id, "min_severity": "info", "scope": {"kind": "site", "id": "nope"}}),
            "scope.id",
        ),
    ];
    for (body, field) in bad_routes {
        let (status, answer) = server
            .request(Method::POST, "/api/notification-routes", Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(field),
            "{body}: {answer}"
        );
    }
    for query in ["limit=0", "status=lost"] {
        let (status, _) = server
            .request(
                Method::GET,
                &format!("/api/notification-deliveries?{query}"),
                None,
            )
            .await;
        assert_eq!(status, 400, "{query}");
    }
    // A technician sees the channel without its URL's path (a Slack or Teams URL is a
    // secret), may send a test, and may not change channels.
    server
        .post(
            "/api/users",
            json!({"email": "tech@example.com", "password": "tech-password-1", "role": "technician"}),
        )
        .await;
    let tech = server
        .login("tech@example.com", "tech-password-1")
        .await
        .unwrap();
    let as_tech = |method: Method, path: String| {
        server
            .client
            .request(method, server.url(&path))
            .bearer_auth(&tech)
            .json(&json!({}))
            .send()
    };
    let seen: Value = as_tech(Method::GET, format!("/api/notification-channels/{id}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let host = receiver.url.trim_end_matches("/hook");
    assert_eq!(seen["url"], format!("{host}/…"));
    let test = as_tech(
        Method::POST,
        format!("/api/notification-channels/{id}/test"),
    );
    assert_eq!(test.await.unwrap().status(), 201);
    let change = as_tech(Method::DELETE, format!("/api/notification-channels/{id}"));
    assert_eq!(change.await.unwrap().status(), 403);

    let state = server.state();
    assert_eq!(
        state
            .store
            .audit_count("notification_channel.create")
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        state
            .store
            .audit_count("notification_channel.test")
            .await
            .unwrap(),
        2
    );

    // Deleting the channel takes its deliveries.
    let (status, _) = server
        .request(
            Method::DELETE,
            &format!("/api/notification-channels/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = server
        .request(
            Method::GET,
            &format!(
                "/api/notification-deliveries/{}",
                queued["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(status, 404);
}

on_both_databases!(
    webhook_signed_and_retried_until_accepted,
    given_up_after_max_attempts,
    hanging_channel_does_not_delay_another,
    slack_teams_and_email_formats,
    routes_filter_by_severity_and_scope,
    send_test_and_bad_input,
);

/// Two nodes on one PostgreSQL database both run a delivery worker: every notice reaches the
/// receiver exactly once (the lease lets only one node send each delivery).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_never_send_the_same_delivery() {
    let a = TestServer::start(TestDb::Postgres).await;
    let b = a.another_node().await;
    let receiver = Receiver::start(0, false).await;
    let id = channel(&a, webhook("Shared", &receiver.url)).await;
    route(&a, &id, "info", json!({"kind": "fleet"})).await;
    let notices: Vec<AlertNotice> = (0..30).map(|_| notice(Severity::Info, None)).collect();
    for (i, n) in notices.iter().enumerate() {
        // Queued on both nodes, each waking its own worker.
        enqueue(if i % 2 == 0 { &a } else { &b }, n).await;
    }
    let path = format!("/api/notification-deliveries?channel_id={id}&status=delivered");
    a.wait_for(&path, Duration::from_secs(30), |l| {
        l.as_array().unwrap().len() == notices.len()
    })
    .await;
    let mut ids: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.headers["x-gururmm-delivery"].to_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), notices.len());
    assert_eq!(receiver.received().len(), notices.len());
}
