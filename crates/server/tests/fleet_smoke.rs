//! Fleet smoke test: the real server binary with ~300 simulated agents (the fleet simulator
//! run in-process), on SQLite and on PostgreSQL, and three server processes on one PostgreSQL
//! with one of them killed. No timing assertions; it checks that every agent is online, every
//! command is answered exactly once and ends `completed`, and every metrics report the fleet
//! sent is stored. One more run scrapes the Prometheus endpoint during the fleet run.
//!
//! The helpers (start a server process on a given database, data dir and port; create the
//! admin and a site; count stored metrics) are functions so a multi-node test can start
//! several servers on one PostgreSQL database and kill one.

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gururmm_fleet_sim::{run_commands, Api, Fleet, FleetConfig, Snapshot};
use serde_json::json;

const AGENTS: usize = 300;
const COMMANDS: usize = 100;
const ADMIN_EMAIL: &str = "fleet@example.com";
const ADMIN_PASSWORD: &str = "fleet-smoke-password-1";
/// Shared by every node of a test, so a token signed by one is accepted by the others.
const JWT_SECRET: &str = "fleet-smoke-jwt-secret-0123456789abcdef";

/// A server child process; killed (SIGKILL) when dropped.
pub struct ServerProcess {
    child: Child,
    pub port: u16,
    pub base_url: String,
    pub ws_url: String,
}

impl ServerProcess {
    /// SIGKILL, as a crashed node: no graceful shutdown, sockets just vanish.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, as an operator's `systemctl stop` or an orchestrator does; waits (bounded) for
    /// the exit and returns its status.
    pub async fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill -TERM");
        assert!(sent.success(), "SIGTERM sent");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit within {within:?} of SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("server status")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// The server binary with only the given settings: nothing from the caller's environment.
fn server_command(database_url: &str, data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gururmm-server"));
    for (key, _) in std::env::vars() {
        if key == "DATABASE_URL" || key.starts_with("GURURMM_") {
            command.env_remove(key);
        }
    }
    command
        .env("GURURMM_DATABASE_URL", database_url)
        .env("GURURMM_DATA_DIR", data_dir)
        .env("GURURMM_JWT_SECRET", JWT_SECRET)
        .env("GURURMM_LOG", "warn");
    command
}

/// Starts `gururmm-server` on 127.0.0.1:`port` with the database and data dir given, limits
/// raised for a fleet from loopback (enrollments per address, commands per minute), and
/// waits until `/api/health` answers.
pub async fn start_server(database_url: &str, data_dir: &Path, port: u16) -> ServerProcess {
    start_server_with(database_url, data_dir, port, &[]).await
}

/// [`start_server`] with more settings (`GURURMM_...` variables).
pub async fn start_server_with(
    database_url: &str,
    data_dir: &Path,
    port: u16,
    settings: &[(&str, String)],
) -> ServerProcess {
    std::fs::create_dir_all(data_dir).expect("data dir");
    let child = server_command(database_url, data_dir)
        .envs(settings.iter().map(|(k, v)| (k, v)))
        .env("GURURMM_LISTEN", format!("127.0.0.1:{port}"))
        .env("GURURMM_ENROLLMENTS_PER_MINUTE_PER_ADDRESS", "100000")
        .env("GURURMM_COMMANDS_PER_MINUTE_PER_USER", "100000")
        .env("GURURMM_COMMANDS_PER_MINUTE_PER_AGENT", "100000")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start gururmm-server");
    let mut server = ServerProcess {
        child,
        port,
        base_url: format!("http://127.0.0.1:{port}"),
        ws_url: format!("ws://127.0.0.1:{port}/ws"),
    };
    wait_healthy(&mut server, Duration::from_secs(60)).await;
    server
}

pub async fn wait_healthy(server: &mut ServerProcess, timeout: Duration) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(r) = client
            .get(format!("{}/api/health", server.base_url))
            .send()
            .await
        {
            if r.status().is_success() {
                return;
            }
        }
        if let Some(status) = server.exited() {
            panic!("the server exited before answering: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "the server did not answer in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates the administrator the way an operator does: `gururmm-server user add`.
pub fn add_admin(database_url: &str, data_dir: &Path) {
    let out = server_command(database_url, data_dir)
        .args(["user", "add", "--email", ADMIN_EMAIL, "--role", "admin"])
        .args(["--password", ADMIN_PASSWORD])
        .output()
        .expect("user add");
    assert!(out.status.success(), "user add: {out:?}");
}

/// Signs in as the administrator; the fleet simulator's REST client.
pub async fn admin_api(bases: &[String]) -> Api {
    Api::login(bases, ADMIN_EMAIL, ADMIN_PASSWORD)
        .await
        .expect("admin login")
}

/// A client and a site over the REST API; returns the site code.
pub async fn create_site(api: &Api) -> String {
    let (status, client) = api
        .request(
            0,
            reqwest::Method::POST,
            "/api/clients",
            Some(json!({"name": "Fleet Client"})),
        )
        .await
        .unwrap();
    assert!((200..300).contains(&status), "create client: {client}");
    let (status, site) = api
        .request(
            0,
            reqwest::Method::POST,
            "/api/sites",
            Some(json!({"client_id": client["id"], "name": "Fleet Site"})),
        )
        .await
        .unwrap();
    assert!((200..300).contains(&status), "create site: {site}");
    site["site_code"].as_str().expect("site code").to_owned()
}

pub use gururmm_server::testing::count_metrics;

/// Polls until the `metrics` table holds `expected` rows (the server may write in batches);
/// returns the last count.
pub async fn wait_metrics(database_url: &str, expected: i64, timeout: Duration) -> i64 {
    let deadline = Instant::now() + timeout;
    loop {
        let n = count_metrics(database_url).await;
        if n >= expected || Instant::now() >= deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Polls `GET /api/agents` until `n` agents are listed with status online; panics with the
/// counts otherwise.
pub async fn wait_all_online(api: &Api, n: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let (status, agents) = api
            .request(0, reqwest::Method::GET, "/api/agents", None)
            .await
            .unwrap();
        assert_eq!(status, 200, "GET /api/agents: {agents}");
        let list = agents.as_array().expect("agent list");
        let online = list.iter().filter(|a| a["status"] == "online").count();
        if list.len() == n && online == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{online} of {} listed agents online, expected {n}",
            list.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The fleet for these tests: metrics every second so each run sends a few thousand.
pub fn fleet_config(servers: Vec<String>, site_code: &str, keys_file: PathBuf) -> FleetConfig {
    FleetConfig {
        servers,
        agents: AGENTS,
        site_code: Some(site_code.to_owned()),
        keys_file: Some(keys_file),
        heartbeat: Duration::from_secs(5),
        metrics: Duration::from_secs(1),
        command_delay: Duration::from_millis(20),
        backoff_min: Duration::from_millis(200),
        backoff_max: Duration::from_secs(2),
        ramp_per_sec: 1000.0,
        ..FleetConfig::default()
    }
}

/// Waits until the whole fleet is connected and the server shows every agent online.
async fn all_connected_and_online(fleet: &Fleet, api: &Api, when: &str) {
    assert!(
        fleet.wait_connected(AGENTS, Duration::from_secs(60)).await,
        "{when}: only {} of {AGENTS} agents connected: {}",
        fleet.connected(),
        fleet.snapshot().line()
    );
    wait_all_online(api, AGENTS, Duration::from_secs(30)).await;
}

/// Runs `COMMANDS` commands through `api`; each must complete.
async fn all_commands_complete(
    api: &Api,
    fleet: &Fleet,
    when: &str,
) -> gururmm_fleet_sim::CommandRun {
    let run = run_commands(api, fleet, COMMANDS, 4, Duration::from_secs(20))
        .await
        .expect("commands");
    assert_eq!(run.submitted, COMMANDS, "{when}: {run:?}");
    assert_eq!(
        run.completed, COMMANDS,
        "{when}: every command completed on the event stream: {run:?}"
    );
    for id in &run.ids {
        assert_eq!(
            api.command_status(id).await.unwrap(),
            "completed",
            "{when}: command {id}"
        );
    }
    run
}

/// The agents received exactly the commands submitted, each once, and answered each.
fn each_command_received_once(
    ids: &[&String],
    receipts: &HashMap<String, u32>,
    counters: &Snapshot,
) {
    assert_eq!(counters.duplicate_commands, 0, "{}", counters.line());
    assert_eq!(
        counters.commands_received as usize,
        ids.len(),
        "{}",
        counters.line()
    );
    // More when a result was sent again (one a stopping server never acknowledged).
    assert!(
        counters.results_sent as usize >= ids.len(),
        "{}",
        counters.line()
    );
    let submitted: HashSet<&String> = ids.iter().copied().collect();
    let received: HashSet<&String> = receipts.keys().collect();
    assert_eq!(
        submitted, received,
        "the agents got exactly the commands submitted"
    );
    assert!(receipts.values().all(|&n| n == 1), "{receipts:?}");
}

/// One server with `settings`, its administrator and a site, and the whole fleet connected
/// to it and online.
async fn one_node_with_fleet(
    database_url: &str,
    data_dir: &Path,
    settings: &[(&str, String)],
) -> (ServerProcess, Api, Fleet) {
    let server = start_server_with(database_url, data_dir, free_port(), settings).await;
    add_admin(database_url, data_dir);
    let api = admin_api(std::slice::from_ref(&server.base_url)).await;
    let code = create_site(&api).await;
    let fleet = Fleet::start(fleet_config(
        vec![server.ws_url.clone()],
        &code,
        data_dir.join("keys.jsonl"),
    ))
    .await
    .expect("start the fleet");
    all_connected_and_online(&fleet, &api, "start").await;
    (server, api, fleet)
}

/// Everything a single-node run checks, on the database given.
async fn fleet_smoke(database_url: String, data: tempfile::TempDir) {
    let (server, api, fleet) = one_node_with_fleet(&database_url, data.path(), &[]).await;
    let run = all_commands_complete(&api, &fleet, "one node").await;
    // A little more traffic after the commands, then a graceful stop: each agent closes and
    // waits for the server's close, so everything it sent reached the server.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let receipts = fleet.command_receipts();
    let counters = fleet.stop().await;

    eprintln!("fleet counters: {}", counters.line());
    assert_eq!(counters.enrolled as usize, AGENTS, "{}", counters.line());
    assert_eq!(counters.auth_failures, 0, "{}", counters.line());
    each_command_received_once(&run.ids.iter().collect::<Vec<_>>(), &receipts, &counters);

    assert!(counters.metrics_sent > 0);
    let stored = wait_metrics(
        &database_url,
        counters.metrics_sent as i64,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(
        stored, counters.metrics_sent as i64,
        "metrics rows stored vs reports sent"
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_on_sqlite() {
    let data = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", data.path().join("gururmm.db").display());
    fleet_smoke(url, data).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_on_postgres() {
    let data = tempfile::tempdir().unwrap();
    let url = gururmm_server::testing::fresh_postgres_database().await;
    fleet_smoke(url, data).await;
}

/// Three nodes on one PostgreSQL. The fleet is spread over them (a reconnect tries the next
/// one, as behind a load balancer); commands and the event stream go through node 0 only, so
/// two thirds of the commands reach agents held by the other nodes and their results come back
/// as events from there. Then node 1 is killed with SIGKILL: its agents reconnect to the others,
/// all show online again, and commands still reach every agent exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_one_postgres_one_killed() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let url = gururmm_server::testing::fresh_postgres_database().await;
    let mut nodes = vec![start_server(&url, dirs[0].path(), free_port()).await];
    add_admin(&url, dirs[0].path());
    for dir in &dirs[1..] {
        nodes.push(start_server(&url, dir.path(), free_port()).await);
    }
    let api = admin_api(std::slice::from_ref(&nodes[0].base_url)).await;
    let code = create_site(&api).await;
    let fleet = Fleet::start(fleet_config(
        nodes.iter().map(|n| n.ws_url.clone()).collect(),
        &code,
        dirs[0].path().join("keys.jsonl"),
    ))
    .await
    .expect("start the fleet");
    all_connected_and_online(&fleet, &api, "start").await;
    let before = all_commands_complete(&api, &fleet, "before the kill").await;

    // Node 1 dies; its agents reconnect to nodes 2 and 0.
    nodes[1].kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    all_connected_and_online(&fleet, &api, "after the kill").await;
    let after = all_commands_complete(&api, &fleet, "after the kill").await;

    tokio::time::sleep(Duration::from_secs(2)).await;
    let receipts = fleet.command_receipts();
    let counters = fleet.stop().await;
    eprintln!("fleet counters: {}", counters.line());
    let ids: Vec<&String> = before.ids.iter().chain(&after.ids).collect();
    each_command_received_once(&ids, &receipts, &counters);

    // Metrics: what the killed node had queued (at most about a second of its agents'
    // reports, as documented) may be lost; nothing else.
    let sent = counters.metrics_sent as i64;
    let stored = wait_metrics(&url, sent, Duration::from_secs(20)).await;
    let at_risk = 2 * (AGENTS as i64 / 3);
    assert!(
        stored <= sent && sent - stored <= at_risk,
        "{stored} of {sent} metrics reports stored (at most {at_risk} may be lost with the killed node)"
    );
}

/// A graceful stop. Two nodes on one PostgreSQL share the fleet; commands that take 2 s each
/// are running on both when node 0 gets SIGTERM. It closes its agents' sockets with 1012
/// ("restarting": reconnect soon), finishes what it holds and exits cleanly; its agents are
/// all connected to node 1 within their reconnect jitter window (at most 2 s here), and every
/// command completes, each received once: no command lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hands_the_fleet_to_another_node() {
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let url = gururmm_server::testing::fresh_postgres_database().await;
    let mut stopping = start_server(&url, dirs[0].path(), free_port()).await;
    add_admin(&url, dirs[0].path());
    let staying = start_server(&url, dirs[1].path(), free_port()).await;
    let api = admin_api(std::slice::from_ref(&staying.base_url)).await;
    let code = create_site(&api).await;
    let config = FleetConfig {
        command_delay: Duration::from_secs(2),
        ..fleet_config(
            vec![stopping.ws_url.clone(), staying.ws_url.clone()],
            &code,
            dirs[0].path().join("keys.jsonl"),
        )
    };
    let jitter_window = config.backoff_max;
    let fleet = Fleet::start(config).await.expect("start the fleet");
    all_connected_and_online(&fleet, &api, "start").await;

    let commands = run_commands(&api, &fleet, COMMANDS, 40, Duration::from_secs(60));
    let stop = async {
        // Let commands be running on both nodes, then stop node 0.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let before = fleet.snapshot();
        let status = stopping.terminate(Duration::from_secs(30)).await;
        assert!(status.success(), "a clean exit on SIGTERM: {status}");
        let stopped = Instant::now();
        assert!(
            fleet.wait_connected(AGENTS, Duration::from_secs(30)).await,
            "{}",
            fleet.snapshot().line()
        );
        let took = stopped.elapsed();
        let after = fleet.snapshot();
        (before, after, took)
    };
    let (run, (before, after, took)) = tokio::join!(commands, stop);
    let run = run.expect("commands");
    eprintln!(
        "reconnected in {took:?}: before {} / after {}",
        before.line(),
        after.line()
    );
    assert!(
        after.reconnects > before.reconnects,
        "node 0's agents reconnected"
    );
    // The jitter window, plus a connect and sign-in each (generous on a 2-core machine).
    assert!(
        took <= jitter_window + Duration::from_secs(5),
        "every agent back within its jitter window: {took:?}"
    );
    wait_all_online(&api, AGENTS, Duration::from_secs(30)).await;
    assert_eq!(run.submitted, COMMANDS, "{run:?}");
    assert_eq!(run.completed, COMMANDS, "no command lost: {run:?}");
    for id in &run.ids {
        assert_eq!(api.command_status(id).await.unwrap(), "completed", "{id}");
    }
    let receipts = fleet.command_receipts();
    let counters = fleet.stop().await;
    each_command_received_once(&run.ids.iter().collect::<Vec<_>>(), &receipts, &counters);
}

/// `gururmm-server backup --out FILE` for the server on `database_url`, run as an operator
/// does while the server serves; returns the process output.
async fn run_backup(database_url: &str, data_dir: &Path, out: &Path) -> std::process::Output {
    let mut command = server_command(database_url, data_dir);
    command.arg("backup").arg("--out").arg(out);
    tokio::task::spawn_blocking(move || command.output().expect("gururmm-server backup"))
        .await
        .expect("backup task")
}

/// A backup taken while ~300 agents send metrics and answer commands restores to a database
/// that opens and holds every command completed before the backup started, as completed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_the_fleet_writes_restores_every_completed_command() {
    let data = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", data.path().join("gururmm.db").display());
    let (server, api, fleet) = one_node_with_fleet(&url, data.path(), &[]).await;
    let before = all_commands_complete(&api, &fleet, "before the backup").await;

    // The backup runs while more commands go out and every agent keeps reporting metrics.
    let out = data.path().join("backup.db");
    let (during, backup) = tokio::join!(
        run_commands(&api, &fleet, COMMANDS, 4, Duration::from_secs(20)),
        async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let metrics_at_start = count_metrics(&url).await;
            (metrics_at_start, run_backup(&url, data.path(), &out).await)
        }
    );
    let (metrics_at_start, backup) = backup;
    assert!(backup.status.success(), "backup: {backup:?}");
    let during = during.expect("commands during the backup");
    assert!(during.completed > 0, "the fleet kept working: {during:?}");
    let counters = fleet.stop().await;
    eprintln!("fleet counters: {}", counters.line());
    drop(server);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the backup is owner-only");
    }

    // Restored into a fresh data folder, the way an operator moves to a new machine.
    let fresh = tempfile::tempdir().unwrap();
    let fresh_url = format!("sqlite://{}", fresh.path().join("gururmm.db").display());
    let restored = server_command(&fresh_url, fresh.path())
        .arg("restore")
        .arg("--from")
        .arg(&out)
        .output()
        .expect("gururmm-server restore");
    assert!(restored.status.success(), "restore: {restored:?}");

    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&fresh_url)
        .await
        .expect("the restored database opens");
    for id in &before.ids {
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM commands WHERE id = $1")
                .bind(id)
                .fetch_optional(&pool)
                .await
                .unwrap();
        assert_eq!(
            status.as_deref(),
            Some("completed"),
            "command {id}, completed before the backup started"
        );
    }
    let metrics: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM metrics")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        metrics >= metrics_at_start,
        "{metrics} metrics rows restored, {metrics_at_start} were stored before the backup"
    );
    pool.close().await;
}

/// A Prometheus scrape: the text of `GET /metrics`.
struct Scrape(String);

impl Scrape {
    async fn of(url: &str) -> Scrape {
        let r = reqwest::get(url).await.expect("scrape");
        assert_eq!(r.status(), 200, "GET {url}");
        Scrape(r.text().await.expect("scrape body"))
    }

    /// The sum of the samples of `name` whose labels include every `(label, value)` given;
    /// None when there is no such sample.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut total = None;
        for line in self.0.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let (series_name, series_labels) = match series.find('{') {
                Some(brace) => series.split_at(brace),
                None => (series, ""),
            };
            let wanted = labels.iter().all(|(k, v)| {
                let pair = format!("{k}=\"{v}\"");
                series_labels.contains(&format!("{{{pair}"))
                    || series_labels.contains(&format!(",{pair}"))
            });
            if series_name == name && wanted {
                *total.get_or_insert(0.0) += value.parse::<f64>().expect("sample value");
            }
        }
        total
    }

    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.sum(name, labels)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in the scrape:\n{}", self.0))
    }
}

/// Scrapes until `ready` holds (the server counts a moment after it answers); panics with
/// the last scrape otherwise.
async fn scrape_until(url: &str, what: &str, ready: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let scrape = Scrape::of(url).await;
        if ready(&scrape) {
            return scrape;
        }
        assert!(Instant::now() < deadline, "{what}:\n{}", scrape.0);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The Prometheus endpoint on its own address, scraped while a fleet runs (PostgreSQL): every
/// agent counted as connected, the API calls counted under their route templates (no id in any
/// label), every command's outcome, the pool within its bounds; after the fleet stops, at least
/// every message it sent counted by type. The public port does not serve the series, and the
/// metrics address serves nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_metrics_during_a_fleet_run() {
    use gururmm_server::telemetry::*;

    let data = tempfile::tempdir().unwrap();
    let url = gururmm_server::testing::fresh_postgres_database().await;
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let metrics_url = format!("http://{metrics_addr}/metrics");
    let settings = [("GURURMM_METRICS_LISTEN", metrics_addr.clone())];
    let (server, api, fleet) = one_node_with_fleet(&url, data.path(), &settings).await;
    let run = all_commands_complete(&api, &fleet, "metrics run").await;
    let n = COMMANDS as f64;

    let during = Scrape::of(&metrics_url).await;
    assert_eq!(
        during.get(AGENTS_CONNECTED, &[("transport", "websocket")]),
        AGENTS as f64
    );
    assert_eq!(
        during.get(AGENTS_CONNECTED, &[("transport", "legacy")]),
        0.0
    );
    // Each command: submitted once under its route template, read back once, completed.
    let submit = [("route", "/api/agents/{id}/command"), ("method", "POST")];
    assert_eq!(
        during.get(HTTP_REQUESTS, &[submit[0], submit[1], ("status", "201")]),
        n
    );
    assert_eq!(
        during.get(&format!("{HTTP_REQUEST_DURATION}_count"), &submit),
        n
    );
    let read_back = [
        ("route", "/api/commands/{id}"),
        ("method", "GET"),
        ("status", "200"),
    ];
    assert!(during.get(HTTP_REQUESTS, &read_back) >= n);
    for id in run.ids.iter().chain(&fleet.agent_ids()) {
        assert!(!during.0.contains(id.as_str()), "an id in a label: {id}");
    }
    assert_eq!(during.get(COMMANDS_FINISHED, &[("status", "completed")]), n);
    for status in ["failed", "timed_out", "cancelled"] {
        assert_eq!(
            during.get(COMMANDS_FINISHED, &[("status", status)]),
            0.0,
            "{status}"
        );
    }
    assert!(during.get(AGENT_MESSAGES_SENT, &[("type", "command")]) >= n);
    assert!(during.get(AGENT_MESSAGES_SENT, &[("type", "auth_response")]) >= AGENTS as f64);
    let (open, idle, max) = (
        during.get(DB_POOL_CONNECTIONS, &[]),
        during.get(DB_POOL_IDLE, &[]),
        during.get(DB_POOL_MAX, &[]),
    );
    assert!(
        max >= 1.0 && open >= 1.0 && open <= max && idle <= open,
        "pool {open} open, {idle} idle, {max} max"
    );
    let capacity = during.get(WRITE_QUEUE_CAPACITY, &[("writer", "metrics")]);
    assert!(capacity > 0.0 && during.get(WRITE_QUEUE_DEPTH, &[("writer", "metrics")]) <= capacity);
    assert!(during.get(WRITE_QUEUE_DEPTH, &[("writer", "presence")]) >= 0.0);
    assert!(
        during.get(
            &format!("{WRITE_BATCH_ITEMS}_count"),
            &[("writer", "presence")]
        ) >= 1.0
    );

    // The public port does not serve the series (its dashboard fallback may answer the path),
    // and the metrics address serves nothing but /metrics.
    let public = reqwest::get(format!("{}/metrics", server.base_url))
        .await
        .unwrap();
    let public = public.text().await.unwrap();
    for series in SERIES {
        assert!(!public.contains(series), "the public port serves {series}");
    }
    let other = reqwest::get(format!("http://{metrics_addr}/api/health"))
        .await
        .unwrap();
    assert_eq!(other.status(), 404);

    // A graceful stop: each agent's frames all reached the server before its close.
    let counters = fleet.stop().await;
    eprintln!("fleet counters: {}", counters.line());
    let sent = counters.metrics_sent;
    assert!(sent > 0);
    wait_metrics(&url, sent as i64, Duration::from_secs(20)).await;
    let after = scrape_until(
        &metrics_url,
        "every report written, every agent gone",
        |s| {
            s.sum(
                &format!("{WRITE_BATCH_ITEMS}_sum"),
                &[("writer", "metrics")],
            ) >= Some(sent as f64)
                && s.sum(AGENTS_CONNECTED, &[("transport", "websocket")]) == Some(0.0)
        },
    )
    .await;
    let received = |kind: &str| {
        after
            .sum(AGENT_MESSAGES_RECEIVED, &[("type", kind)])
            .unwrap_or(0.0)
    };
    assert!(
        received("metrics_report") >= sent as f64,
        "{}",
        counters.line()
    );
    assert!(
        received("heartbeat") >= counters.heartbeats as f64,
        "{}",
        counters.line()
    );
    assert!(received("command_result") >= counters.results_sent as f64);
    assert!(received("auth") >= counters.connects as f64);
    assert_eq!(received(UNSUPPORTED) + received(MALFORMED), 0.0);
    assert_eq!(after.get(WRITE_DROPPED, &[("writer", "metrics")]), 0.0);
    drop(server);
}
