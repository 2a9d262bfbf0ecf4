//! The real agent binary (a child process) against the real server (`gururmm-server`'s
//! `TestServer`, in this process, on 127.0.0.1), on SQLite and on PostgreSQL.
//! Intervals are configured small so the suite stays quick.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{processes_with, wait_for, Agent};
use gururmm_server::testing::{TestDb, TestServer};
use serde_json::{json, Value};

const TERMINAL: [&str; 4] = ["completed", "failed", "timed_out", "cancelled"];

/// Waits until the server lists exactly one agent and it is online; returns it.
async fn online_agent(server: &TestServer) -> Value {
    let list = server
        .wait_for("/api/agents", Duration::from_secs(20), |v| {
            v.as_array()
                .is_some_and(|a| a.len() == 1 && a[0]["online"] == json!(true))
        })
        .await;
    list[0].clone()
}

/// Waits until the agent is shown offline.
async fn offline(server: &TestServer, agent_id: &str) {
    server
        .wait_for(
            &format!("/api/agents/{agent_id}"),
            Duration::from_secs(20),
            |v| v["online"] == json!(false),
        )
        .await;
}

async fn send_command(server: &TestServer, agent_id: &str, body: Value) -> String {
    let record = server
        .post(&format!("/api/agents/{agent_id}/command"), body)
        .await;
    record["id"].as_str().expect("command id").to_owned()
}

async fn shell(server: &TestServer, agent_id: &str, text: &str, timeout: u64) -> String {
    send_command(
        server,
        agent_id,
        json!({"command_type": "shell", "command": text, "timeout_seconds": timeout, "elevated": false}),
    )
    .await
}

async fn finished(server: &TestServer, command_id: &str, secs: u64) -> Value {
    server
        .wait_for(
            &format!("/api/commands/{command_id}"),
            Duration::from_secs(secs),
            |c| TERMINAL.contains(&c["status"].as_str().unwrap_or("")),
        )
        .await
}

async fn status_is(server: &TestServer, command_id: &str, status: &str, secs: u64) {
    server
        .wait_for(
            &format!("/api/commands/{command_id}"),
            Duration::from_secs(secs),
            |c| c["status"] == json!(status),
        )
        .await;
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// A server with one site, and an agent enrolled in it and online: (server, agent, agent id).
async fn enrolled(db: TestDb, extra: &str) -> (TestServer, Agent, String) {
    let server = TestServer::start(db).await;
    let (_, _, code) = server.create_site().await;
    let url = if extra.contains("mode = \"legacy\"") {
        server.base_url.clone()
    } else {
        server.ws_url.clone()
    };
    let agent = Agent::start_new(&url, &code, extra);
    let id = online_agent(&server).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (server, agent, id)
}

/// The key the agent saved after enrolling (the server may show it online a moment before).
async fn saved_key(agent: &Agent) -> String {
    let path = agent.state_dir().join("agent_key");
    wait_for(10, "the saved agent key", || async {
        std::fs::read_to_string(&path).ok()
    })
    .await
}

/// Starts a shell command that appends a line to a counter file first, then runs `rest`.
async fn counted(
    server: &TestServer,
    agent: &Agent,
    id: &str,
    rest: &str,
) -> (String, std::path::PathBuf) {
    let counter = agent.dir.path().join("runs");
    let c = shell(
        server,
        id,
        &format!("echo run >> {}; {rest}", counter.display()),
        60,
    )
    .await;
    (c, counter)
}

async fn enroll_and_report(db: TestDb) {
    let server = TestServer::start(db).await;
    let (_, site_id, site_code) = server.create_site().await;
    let agent = Agent::start_new(&server.ws_url, &site_code, "");

    let listed = online_agent(&server).await;
    assert_eq!(listed["site_id"], json!(site_id));
    assert_eq!(listed["status"], json!("online"));
    assert_eq!(listed["os_type"], json!("linux"));
    assert_eq!(listed["version"], json!(env!("CARGO_PKG_VERSION")));
    assert_eq!(listed["device_id"].as_str().unwrap().len(), 64);
    let id = listed["id"].as_str().unwrap().to_owned();

    // The issued key replaced the site code for later connections.
    let key = saved_key(&agent).await;
    assert!(key.starts_with("grmm_"), "{key}");

    let state = server
        .wait_for(
            &format!("/api/agents/{id}/state"),
            Duration::from_secs(20),
            |s| !s["network"].is_null() && !s["metrics"].is_null(),
        )
        .await;
    assert_eq!(state["network"]["hash"].as_str().unwrap().len(), 64);
    assert!(state["network"]["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["name"] == json!("lo")));
    assert!(state["metrics"]["memory_total_bytes"].as_u64().unwrap() > 0);
    assert!(state["metrics"]["cpu_percent"].is_number(), "{state}");
    assert!(
        !state["metrics"]["disks"].as_array().unwrap().is_empty(),
        "{state}"
    );
    assert!(state["metrics"]["network"]["rx_bytes"].is_u64(), "{state}");
    let points = server.get(&format!("/api/agents/{id}/metrics")).await;
    assert!(!points["points"].as_array().unwrap().is_empty());

    let c = shell(&server, &id, "echo hi", 20).await;
    let done = finished(&server, &c, 20).await;
    assert_eq!(done["status"], json!("completed"));
    assert_eq!(done["stdout"], json!("hi\n"));
}

#[tokio::test]
async fn enrolls_with_site_code_and_reports_sqlite() {
    enroll_and_report(TestDb::Sqlite).await;
}

#[tokio::test]
async fn enrolls_with_site_code_and_reports_postgres() {
    enroll_and_report(TestDb::Postgres).await;
}

#[tokio::test]
async fn shell_python_and_script_round_trip() {
    let (server, _agent, id) = enrolled(
        TestDb::Sqlite,
        "[agent]\nscript_interpreter = \"python3 -u\"\n",
    )
    .await;

    let sh = shell(&server, &id, "echo out; echo err >&2; exit 3", 20).await;
    let py = send_command(
        &server,
        &id,
        json!({"command_type": "python", "command": "import sys; print(6 * 7); print('caf\u{e9}')", "timeout_seconds": 20, "elevated": false}),
    )
    .await;
    // No interpreter in the payload: the configured one (python3) runs the script file.
    let script = send_command(
        &server,
        &id,
        json!({"command_type": "script", "command": "import sys\nprint('script via', sys.argv[0].endswith('.py'))\n", "timeout_seconds": 20, "elevated": false, "interpreter": null}),
    )
    .await;

    let r = finished(&server, &sh, 20).await;
    assert_eq!(r["status"], json!("failed"));
    assert_eq!(r["exit_code"], json!(3));
    assert_eq!(r["stdout"], json!("out\n"));
    assert_eq!(r["stderr"], json!("err\n"));
    assert!(r["duration_ms"].as_u64().is_some());

    let r = finished(&server, &py, 20).await;
    assert_eq!(r["status"], json!("completed"), "{r}");
    // Command output goes to the server as the process wrote it (UTF-8), not ASCII-folded.
    assert_eq!(r["stdout"], json!("42\ncaf\u{e9}\n"));

    let r = finished(&server, &script, 20).await;
    assert_eq!(r["status"], json!("completed"), "{r}");
    assert_eq!(r["stdout"], json!("script via True\n"));
}

#[tokio::test]
async fn timeout_kills_the_process_tree() {
    let (server, _agent, id) = enrolled(TestDb::Sqlite, "").await;

    // A shell with a child and a grandchild, all sleeping far past the timeout.
    let c = shell(
        &server,
        &id,
        "sh -c 'sleep 417; true' & sleep 418; echo never",
        2,
    )
    .await;
    wait_for(10, "the command's processes", || async {
        (!processes_with("sleep 417").is_empty()).then_some(())
    })
    .await;
    let r = finished(&server, &c, 20).await;
    assert_eq!(r["status"], json!("timed_out"), "{r}");
    // The agent's own result arrives (the server's sweep would leave exit_code empty).
    let r = server
        .wait_for(
            &format!("/api/commands/{c}"),
            Duration::from_secs(10),
            |c| !c["exit_code"].is_null(),
        )
        .await;
    assert_eq!(r["exit_code"], json!(124));
    assert!(
        r["stderr"]
            .as_str()
            .unwrap()
            .contains("process tree killed"),
        "{r}"
    );
    // SIGKILL is delivered at once, but an exit may take a moment to show in /proc.
    wait_for(3, "no process of the command left", || async {
        (processes_with("sleep 417").is_empty() && processes_with("sleep 418").is_empty())
            .then_some(())
    })
    .await;
}

/// The `[agent]` lines of a legacy (HTTP polling) agent: the outbox and inbox tests below run
/// through both transports, since both go through the same session code.
const LEGACY: &str = "[agent]\nmode = \"legacy\"\n";

#[tokio::test]
async fn result_arrives_after_server_restart_mid_command() {
    result_arrives_after_server_restart(TestDb::Sqlite, "").await;
}

#[tokio::test]
async fn result_arrives_after_server_restart_mid_command_legacy() {
    result_arrives_after_server_restart(TestDb::Sqlite, LEGACY).await;
}

async fn result_arrives_after_server_restart(db: TestDb, extra: &str) {
    let (mut server, agent, id) = enrolled(db, extra).await;

    let c = shell(&server, &id, "sleep 3; echo survived", 60).await;
    status_is(&server, &c, "running", 10).await;
    server.restart().await;
    let r = finished(&server, &c, 30).await;
    assert_eq!(r["status"], json!("completed"), "{r}");
    assert_eq!(r["stdout"], json!("survived\n"));
    online_agent(&server).await;
    assert!(
        agent.outbox_files().is_empty(),
        "delivered results leave the outbox"
    );
}

#[tokio::test]
async fn command_queued_while_agent_is_down_runs_exactly_once() {
    let (server, mut agent, id) = enrolled(TestDb::Sqlite, "").await;
    agent.stop();
    offline(&server, &id).await;

    let (c, counter) = counted(&server, &agent, &id, "true").await;
    assert_eq!(
        server.get(&format!("/api/commands/{c}")).await["status"],
        json!("pending")
    );
    agent.start();
    let r = finished(&server, &c, 20).await;
    assert_eq!(r["status"], json!("completed"));
    // Restarting the agent does not run it again.
    agent.stop();
    agent.start();
    online_agent(&server).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(lines(&counter), 1);
}

#[tokio::test]
async fn agent_killed_after_running_before_reporting_delivers_once() {
    killed_before_reporting_delivers_once("").await;
}

#[tokio::test]
async fn agent_killed_after_running_before_reporting_delivers_once_legacy() {
    killed_before_reporting_delivers_once(LEGACY).await;
}

async fn killed_before_reporting_delivers_once(extra: &str) {
    let (mut server, mut agent, id) = enrolled(TestDb::Sqlite, extra).await;

    let (c, counter) = counted(&server, &agent, &id, "sleep 2; echo finished").await;
    status_is(&server, &c, "running", 10).await;
    // The server goes away; the command finishes with nobody to report to, so its result
    // waits in the outbox. Then the agent is killed without any chance to clean up.
    server.stop().await;
    wait_for(15, "the result in the outbox", || async {
        (!agent.outbox_files().is_empty()).then_some(())
    })
    .await;
    agent.kill9();

    server.restart().await;
    agent.start();
    let r = finished(&server, &c, 30).await;
    assert_eq!(r["status"], json!("completed"), "{r}");
    assert_eq!(r["stdout"], json!("finished\n"));
    wait_for(10, "the outbox to empty", || async {
        agent.outbox_files().is_empty().then_some(())
    })
    .await;
    assert_eq!(lines(&counter), 1, "the command ran more than once");
}

#[tokio::test]
async fn agent_killed_mid_command_reports_it_interrupted_and_never_reruns_it() {
    killed_mid_command_is_reported_interrupted(&unique_sleep(427), "").await;
}

#[tokio::test]
async fn agent_killed_mid_command_reports_it_interrupted_and_never_reruns_it_legacy() {
    killed_mid_command_is_reported_interrupted(&unique_sleep(428), LEGACY).await;
}

/// A long sleep whose command line no other run shares, so a process left by an earlier failed
/// run cannot be mistaken for this run's.
fn unique_sleep(secs: u32) -> String {
    format!("sleep {secs}.{}", std::process::id())
}

async fn killed_mid_command_is_reported_interrupted(sleep: &str, extra: &str) {
    let (server, mut agent, id) = enrolled(TestDb::Sqlite, extra).await;

    let (c, counter) = counted(&server, &agent, &id, sleep).await;
    wait_for(10, "the command to start", || async {
        (lines(&counter) == 1).then_some(())
    })
    .await;
    // The agent records the command's process group just after starting it; a crash inside
    // that moment leaves nothing to clean up by. Give it the moment, as a busy CI machine may
    // need, so this test is about the crash after it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    agent.kill9();
    agent.start();
    let r = finished(&server, &c, 20).await;
    assert_eq!(r["status"], json!("failed"), "{r}");
    assert!(
        r["stderr"].as_str().unwrap().contains("agent stopped"),
        "{r}"
    );
    // The restarted agent ended what the killed one left running.
    wait_for(
        3,
        "the interrupted command's processes to be gone",
        || async { processes_with(sleep).is_empty().then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(lines(&counter), 1);
}

#[tokio::test]
async fn legacy_mode_round_trip_over_http() {
    let server = TestServer::start(TestDb::Sqlite).await;
    let (_, site_id, code) = server.create_site().await;
    // A service whose check always fails, so the watchdog has events to report over HTTP.
    let extra = "[agent]\nmode = \"legacy\"\n\n[watchdog]\nenabled = true\ncheck_interval_seconds = 1\n\n\
[[watchdog.services]]\nname = \"legacy-svc\"\naction = \"restart\"\nmax_restarts = 1\nrestart_cooldown_seconds = 1\n\
check_command = \"false\"\nrestart_command = \"true\"\n";
    let agent = Agent::start_new(&server.base_url, &code, extra);
    let listed = online_agent(&server).await;
    assert_eq!(listed["site_id"], json!(site_id));
    let id = listed["id"].as_str().unwrap().to_owned();
    assert!(saved_key(&agent).await.starts_with("grmm_"));

    let c = shell(&server, &id, "echo over http", 20).await;
    let r = finished(&server, &c, 20).await;
    assert_eq!(r["status"], json!("completed"), "{r}");
    assert_eq!(r["stdout"], json!("over http\n"));
    server
        .wait_for(
            &format!("/api/agents/{id}/state"),
            Duration::from_secs(15),
            |s| !s["metrics"].is_null() && !s["network"]["interfaces"].is_null(),
        )
        .await;
    // Watchdog events travel with the heartbeats, none lost.
    let events = server
        .wait_for(
            &format!("/api/agents/{id}/watchdog-events"),
            Duration::from_secs(20),
            |e| {
                e.as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["event"] == json!("gave_up"))
            },
        )
        .await;
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert!(
        kinds.contains(&"stopped") && kinds.contains(&"restarted"),
        "{events}"
    );
    assert!(events
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["service"] == json!("legacy-svc")));
}

#[tokio::test]
async fn legacy_mode_on_postgres() {
    let (server, _agent, id) = enrolled(TestDb::Postgres, "[agent]\nmode = \"legacy\"\n").await;
    let c = send_command(
        &server,
        &id,
        json!({"command_type": "python", "command": "print('pg')", "timeout_seconds": 20, "elevated": false}),
    )
    .await;
    let r = finished(&server, &c, 20).await;
    assert_eq!(r["stdout"], json!("pg\n"), "{r}");
}

/// PostgreSQL text refuses NUL: the agent replaces it (with U+FFFD) in what it sends, so a
/// command whose output holds one finishes, and a watchdog event naming a service with one
/// arrives.
async fn nul_from_the_machine_is_replaced(db: TestDb, legacy: bool) {
    let mode = if legacy { "mode = \"legacy\"\n" } else { "" };
    let extra = format!(
        "[agent]\n{mode}\n[watchdog]\nenabled = true\ncheck_interval_seconds = 1\n\n\
[[watchdog.services]]\nname = \"nul\\u0000svc\"\naction = \"alert\"\n\
check_command = \"false\"\nrestart_command = \"true\"\n"
    );
    let (server, _agent, id) = enrolled(db, &extra).await;
    let c = shell(&server, &id, r"printf 'a\000b'; printf 'c\000' >&2", 20).await;
    let r = finished(&server, &c, 20).await;
    assert_eq!(r["status"], json!("completed"), "{r}");
    assert_eq!(r["stdout"], json!("a\u{FFFD}b"), "{r}");
    assert_eq!(r["stderr"], json!("c\u{FFFD}"), "{r}");
    server
        .wait_for(
            &format!("/api/agents/{id}/watchdog-events"),
            Duration::from_secs(15),
            |e| {
                e.as_array().unwrap().iter().any(|e| {
                    e["service"] == json!("nul\u{FFFD}svc") && e["event"] == json!("stopped")
                })
            },
        )
        .await;
}

#[tokio::test]
async fn nul_in_output_is_replaced_sqlite() {
    nul_from_the_machine_is_replaced(TestDb::Sqlite, false).await;
}

#[tokio::test]
async fn nul_in_output_is_replaced_postgres() {
    nul_from_the_machine_is_replaced(TestDb::Postgres, false).await;
}

#[tokio::test]
async fn nul_in_output_is_replaced_legacy_postgres() {
    nul_from_the_machine_is_replaced(TestDb::Postgres, true).await;
}

/// CI has no systemd, so a real process stands in for the service: the watchdog's
/// `check_command` asks whether the process in a pid file is alive (and not a zombie) and its
/// `restart_command` starts a new one.
#[tokio::test]
async fn watchdog_restarts_a_stopped_service_then_gives_up() {
    let server = TestServer::start(TestDb::Sqlite).await;
    let (_, _, code) = server.create_site().await;
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("svc.pid");
    let marker = format!("sleep 6{}", std::process::id() % 1000);
    let restart = format!("{marker} & echo $! > {}", pidfile.display());
    std::process::Command::new("/bin/sh")
        .args(["-c", &restart])
        .status()
        .unwrap();
    let extra = format!(
        "[watchdog]\nenabled = true\ncheck_interval_seconds = 1\n\n[[watchdog.services]]\n\
name = \"fake-svc\"\naction = \"restart\"\nmax_restarts = 2\nrestart_cooldown_seconds = 1\n\
check_command = \"grep -Eqs '^State:[[:space:]]+[^Z[:space:]]' /proc/$(cat {pid})/status\"\n\
restart_command = \"{restart}\"\n",
        pid = pidfile.display(),
    );
    let _agent = Agent::start_new(&server.ws_url, &code, &extra);
    let id = online_agent(&server).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/agents/{id}/watchdog-events");
    let kill_service = || {
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        std::process::Command::new("kill")
            .arg(pid.trim())
            .status()
            .unwrap();
    };
    let count = |v: &Value, kind: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == json!(kind) && e["service"] == json!("fake-svc"))
            .count()
    };

    kill_service();
    server
        .wait_for(&path, Duration::from_secs(15), |v| {
            count(v, "restarted") == 1
        })
        .await;
    kill_service();
    server
        .wait_for(&path, Duration::from_secs(15), |v| {
            count(v, "restarted") == 2
        })
        .await;
    kill_service();
    let events = server
        .wait_for(&path, Duration::from_secs(15), |v| count(v, "gave_up") == 1)
        .await;
    assert_eq!(count(&events, "stopped"), 3, "{events}");
    assert_eq!(count(&events, "restarted"), 2, "{events}");
    let restarted = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == json!("restarted"))
        .unwrap();
    assert!(
        restarted["message"].as_str().unwrap().contains("of 2"),
        "{events}"
    );
    // Given up: no further restart.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(processes_with(&marker).is_empty());
}
