//! Schedules: checks, the next slot in a time zone, a missed slot run once, a one-minute cron
//! run once per slot across a restart, and once per slot with two server processes.

use std::time::Duration;

use gururmm_server::testing::{TestDb, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

use crate::on_both_databases;

/// An approved agent (registered by a technician; it never connects, so its commands wait).
async fn quiet_agent(server: &TestServer) -> String {
    let reg = server
        .post("/api/agents", json!({"hostname": "scheduled-host"}))
        .await;
    reg["agent"]["id"].as_str().unwrap().to_owned()
}

fn on_cron(cron: &str, agent_id: &str) -> Value {
    json!({"name": format!("On {cron}"), "cron": cron,
           "job": {"command": "uptime", "target": {"agent_ids": [agent_id]}}})
}

fn every_minute(agent_id: &str) -> Value {
    on_cron("* * * * *", agent_id)
}

/// A slot that never comes during a test: the tests make it due by hand.
const YEARLY: &str = "0 0 1 1 *";

async fn runs(server: &TestServer, schedule_id: &str) -> Vec<Value> {
    let jobs = server
        .get(&format!("/api/jobs?schedule_id={schedule_id}"))
        .await;
    jobs.as_array().unwrap().clone()
}

/// Waits until the schedule has started `count` jobs (panics after `within`).
async fn wait_runs(
    server: &TestServer,
    schedule_id: &str,
    count: usize,
    within: Duration,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let jobs = runs(server, schedule_id).await;
        if jobs.len() >= count {
            return jobs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} runs after {within:?}, waited for {count}",
            jobs.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn minute_of(job: &Value) -> String {
    job["created_at"].as_str().unwrap()[..16].to_owned()
}

/// Bad schedules say what is wrong; a nightly cron's next run is in its time zone; pausing
/// is an edit; viewers read only; every change is audited.
async fn schedules_are_checked(db: TestDb) {
    let server = TestServer::start(db).await;
    let agent = quiet_agent(&server).await;
    let job = json!({"command": "uptime", "target": {"agent_ids": [agent]}});
    for (body, status, says) in [
        (
            json!({"name": "x", "job": job, "cron": "* * * *"}),
            400,
            "five fields",
        ),
        (
            json!({"name": "x", "job": job, "cron": "99 * * * *"}),
            400,
            "cron",
        ),
        (
            json!({"name": "x", "job": job, "cron": "0 2 * * *", "time_zone": "Mars/Base"}),
            400,
            "time_zone",
        ),
        (json!({"name": "x", "job": job}), 400, "either cron"),
        (
            json!({"name": "x", "job": job, "cron": "0 2 * * *", "run_at": "2030-01-01T00:00:00Z"}),
            400,
            "either cron",
        ),
        (
            json!({"name": "x", "job": job, "run_at": "2001-01-01T00:00:00Z"}),
            400,
            "future",
        ),
        (
            json!({"name": "x", "job": {"script_id": "nope", "target": {"all": true}}, "cron": "0 2 * * *"}),
            404,
            "script",
        ),
        (
            json!({"name": "", "job": job, "cron": "0 2 * * *"}),
            400,
            "name",
        ),
    ] {
        let (got, answer) = server
            .request(Method::POST, "/api/schedules", Some(body.clone()))
            .await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(says),
            "{body}: {answer}"
        );
    }

    let nightly = server
        .post(
            "/api/schedules",
            json!({"name": "Nightly", "job": job, "cron": "0 2 * * *", "time_zone": "Asia/Tokyo"}),
        )
        .await;
    // 02:00 in Tokyo is 17:00 UTC (no daylight saving there).
    let next = nightly["next_run_at"].as_str().unwrap();
    assert!(next.contains("T17:00:00"), "{next}");
    let id = nightly["id"].as_str().unwrap();
    let (status, paused) = server
        .request(
            Method::PUT,
            &format!("/api/schedules/{id}"),
            Some(json!({"name": "Nightly", "job": job, "cron": "0 2 * * *", "time_zone": "Asia/Tokyo", "paused": true})),
        )
        .await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(paused["paused"], true);
    let store = server.state().store.clone();
    assert_eq!(store.audit_count("schedule.create").await.unwrap(), 1);
    assert_eq!(store.audit_count("schedule.update").await.unwrap(), 1);
    let (status, _) = server
        .request(Method::DELETE, &format!("/api/schedules/{id}"), None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(store.audit_count("schedule.delete").await.unwrap(), 1);
}

/// A schedule whose slot passed long ago (the server was down over several slots) runs once,
/// not once per missed slot, and moves on to a slot in the future; a paused one runs nothing.
async fn a_missed_slot_runs_once(db: TestDb) {
    let server = TestServer::start(db).await;
    let agent = quiet_agent(&server).await;
    let paused = server
        .post("/api/schedules", {
            let mut b = on_cron(YEARLY, &agent);
            b["paused"] = json!(true);
            b["name"] = json!("Paused");
            b
        })
        .await;
    let schedule = server.post("/api/schedules", on_cron(YEARLY, &agent)).await;
    let id = schedule["id"].as_str().unwrap().to_owned();
    let store = server.state().store.clone();
    let ten_minutes_ago = gururmm_server::db::now_ms() - 10 * 60_000;
    sqlx::query("UPDATE schedules SET next_run_at = $1")
        .bind(ten_minutes_ago)
        .execute(store.pool())
        .await
        .unwrap();
    let jobs = wait_runs(&server, &id, 1, Duration::from_secs(10)).await;
    assert_eq!(jobs[0]["counts"]["total"], 1);
    assert_eq!(jobs[0]["schedule_id"], id.as_str());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let now = chrono::Utc::now();
    assert_eq!(
        runs(&server, &id).await.len(),
        1,
        "once, not once per missed slot"
    );
    let shown = server.get(&format!("/api/schedules/{id}")).await;
    let next =
        chrono::DateTime::parse_from_rfc3339(shown["next_run_at"].as_str().unwrap()).unwrap();
    assert!(next > now, "the next slot is ahead: {next}");
    assert!(
        runs(&server, paused["id"].as_str().unwrap())
            .await
            .is_empty(),
        "a paused schedule ran"
    );
}

/// A one-minute cron: one job per slot, across a restart of the server.
async fn a_minute_cron_runs_once_per_slot_across_a_restart(db: TestDb) {
    let mut server = TestServer::start(db).await;
    let agent = quiet_agent(&server).await;
    let schedule = server.post("/api/schedules", every_minute(&agent)).await;
    let id = schedule["id"].as_str().unwrap().to_owned();
    let first = wait_runs(&server, &id, 1, Duration::from_secs(75)).await;
    server.restart().await;
    let both = wait_runs(&server, &id, 2, Duration::from_secs(75)).await;
    assert_eq!(both.len(), 2, "{both:?}");
    assert_ne!(
        minute_of(&both[0]),
        minute_of(&both[1]),
        "two runs in one slot"
    );
    assert_eq!(
        both[1]["id"], first[0]["id"],
        "the first run is the older one"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = runs(&server, &id).await;
    assert!(
        later.len() == 2 || minute_of(&later[0]) != minute_of(&both[0]),
        "a slot ran twice: {later:?}"
    );
}

/// Two server processes on one PostgreSQL: a due slot is run once, however many try at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_run_a_slot_once() {
    let a = TestServer::start(TestDb::Postgres).await;
    let b = a.another_node().await;
    let agent = quiet_agent(&a).await;
    let schedule = a.post("/api/schedules", on_cron(YEARLY, &agent)).await;
    let id = schedule["id"].as_str().unwrap().to_owned();
    // Both nodes run the due slots at the same moment (besides their own upkeep).
    for round in 1..=3 {
        sqlx::query("UPDATE schedules SET next_run_at = $1")
            .bind(gururmm_server::db::now_ms() - 1000)
            .execute(a.state().store.pool())
            .await
            .unwrap();
        let (sa, sb) = (a.state(), b.state());
        tokio::join!(
            gururmm_server::schedules::run_due(&sa),
            gururmm_server::schedules::run_due(&sb)
        );
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(runs(&b, &id).await.len(), round, "one job per slot");
    }
}

on_both_databases!(
    schedules_are_checked,
    a_missed_slot_runs_once,
    a_minute_cron_runs_once_per_slot_across_a_restart,
);
