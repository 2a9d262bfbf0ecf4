//! Policies with the real agent binary and the real server, on SQLite and PostgreSQL: a policy
//! assigned to the agent's site changes its metrics interval (seen in the report cadence) and
//! its watched services (seen in a watchdog event) without a restart, survives a restart, and
//! a value out of agent.toml's range is refused by the agent and shown as refused.

mod common;

use std::time::Duration;

use common::{processes_with, wait_for, Agent};
use gururmm_server::testing::{TestDb, TestServer};
use serde_json::{json, Value};

fn points(v: &Value) -> usize {
    v["points"].as_array().map_or(0, Vec::len)
}

async fn site_policy_reaches_the_running_agent(db: TestDb, legacy: bool) {
    let server = TestServer::start(db).await;
    let (_, site_id, code) = server.create_site().await;
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("svc.pid");
    let marker = format!("sleep 7{}", std::process::id() % 1000);
    let restart = format!("{marker} & echo $! > {}", pidfile.display());
    // agent.toml: metrics once an hour, the watchdog off; it knows how to check and restart
    // fake-svc on this machine (CI has no systemd), which the policy then asks it to watch.
    let mut extra = format!(
        "[watchdog]\nenabled = false\ncheck_interval_seconds = 1\n\n[[watchdog.services]]\n\
name = \"fake-svc\"\nmax_restarts = 5\nrestart_cooldown_seconds = 1\n\
check_command = \"test -s {pid} && kill -0 $(cat {pid})\"\nrestart_command = \"{restart}\"\n",
        pid = pidfile.display(),
    );
    let url = if legacy {
        extra.push_str("[agent]\nmode = \"legacy\"\n");
        &server.base_url
    } else {
        &server.ws_url
    };
    let mut agent = Agent::new(url, &code, &extra);
    let text = std::fs::read_to_string(agent.config_path())
        .unwrap()
        .replace("interval_seconds = 10\n", "interval_seconds = 3600\n");
    std::fs::write(agent.config_path(), text).unwrap();
    agent.start();

    let list = server
        .wait_for("/api/agents", Duration::from_secs(20), |v| {
            v.as_array()
                .is_some_and(|a| a.len() == 1 && a[0]["online"] == json!(true))
        })
        .await;
    let id = list[0]["id"].as_str().unwrap().to_owned();
    let metrics = format!("/api/agents/{id}/metrics");
    let events = format!("/api/agents/{id}/watchdog-events");
    let policy = format!("/api/agents/{id}/policy");
    // The report on connecting; the next would be in an hour.
    server
        .wait_for(&metrics, Duration::from_secs(20), |v| points(v) == 1)
        .await;

    let created = server
        .post(
            "/api/policies",
            json!({"name": "Front desk", "settings": {
                "metrics_interval_seconds": 10,
                "watchdog_services": [{"name": "fake-svc", "max_restarts": 1, "restart_cooldown_seconds": 0}]
            }}),
        )
        .await;
    let policy_id = created["id"].as_str().unwrap().to_owned();
    server
        .post(
            "/api/policy-assignments",
            json!({"policy_id": policy_id, "scope": {"kind": "site", "id": site_id}}),
        )
        .await;
    let applied = server
        .wait_for(&policy, Duration::from_secs(20), |v| {
            v["status"] == "applied"
        })
        .await;
    assert_eq!(
        applied["sources"]["metrics_interval_seconds"]["scope"]["kind"],
        "site"
    );

    // Reports every 10 s now, on the same connection.
    server
        .wait_for(&metrics, Duration::from_secs(35), |v| points(v) >= 3)
        .await;
    // fake-svc is watched now: found stopped, restarted once (the policy's max_restarts).
    let seen = server
        .wait_for(&events, Duration::from_secs(20), |v| {
            v.as_array().is_some_and(|a| {
                a.iter()
                    .any(|e| e["service"] == "fake-svc" && e["event"] == "restarted")
            })
        })
        .await;
    let restarted = seen
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "restarted")
        .unwrap();
    assert!(
        restarted["message"].as_str().unwrap().contains("of 1"),
        "{seen}"
    );
    assert_eq!(
        agent.log_text().matches(" starting: ").count(),
        1,
        "all of it without a restart"
    );

    // A restart keeps the policy: no new policy is needed, and the cadence stays.
    agent.stop();
    assert!(agent.state_dir().join("policy.json").exists());
    let before = points(&server.get(&metrics).await);
    agent.start();
    wait_for(20, "the kept policy in use", || async {
        agent
            .log_text()
            .contains("running with the kept policy")
            .then_some(())
    })
    .await;
    server
        .wait_for(&metrics, Duration::from_secs(35), |v| {
            points(v) >= before + 3
        })
        .await;
    assert_eq!(server.get(&policy).await["status"], "applied");

    // Out of agent.toml's range (10..=3600): refused by the agent, shown with its reason.
    let (status, _) = server
        .request(
            reqwest::Method::PUT,
            &format!("/api/policies/{policy_id}"),
            Some(json!({"name": "Front desk", "settings": {"metrics_interval_seconds": 5}})),
        )
        .await;
    assert_eq!(status, 200);
    let refused = server
        .wait_for(&policy, Duration::from_secs(20), |v| {
            v["status"] == "refused"
        })
        .await;
    let error = refused["error"].as_str().unwrap();
    assert!(error.contains("metrics.interval_seconds"), "{error}");
    assert!(error.contains("10..=3600"), "{error}");

    agent.stop();
    for pid in processes_with(&marker) {
        let _ = std::process::Command::new("kill")
            .arg(pid.to_string())
            .status();
    }
}

#[tokio::test]
async fn site_policy_reaches_the_running_agent_sqlite() {
    site_policy_reaches_the_running_agent(TestDb::Sqlite, false).await;
}

/// A polling agent gets it with a heartbeat's answer and answers with the next heartbeat.
#[tokio::test]
async fn site_policy_reaches_the_running_agent_legacy_sqlite() {
    site_policy_reaches_the_running_agent(TestDb::Sqlite, true).await;
}

#[tokio::test]
async fn site_policy_reaches_the_running_agent_postgres() {
    site_policy_reaches_the_running_agent(TestDb::Postgres, false).await;
}
