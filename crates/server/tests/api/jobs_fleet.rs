//! A job on 500 simulated agents (issue 16): the fleet simulator (crates/fleet-sim) run
//! in-process against the test server, each agent a real WebSocket that enrolls with the site
//! code, heartbeats every second and answers every command at once with exit 0.
//!
//! The 500 agents are three fleets on one site, so a part of them can leave and come back
//! (a stopped fleet closes its sockets; a new one started from the same keys file
//! authenticates as the same agents): `steady` (250) stays connected throughout, `back`
//! (150) and `late` (100) leave before the first job, and `late` leaves again before the
//! second (which expires).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use gururmm_fleet_sim::{Fleet, FleetConfig};
use gururmm_server::testing::{TestDb, TestServer};
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::on_both_databases;

const STEADY: usize = 250;
const BACK: usize = 150;
const LATE: usize = 100;
const ALL: usize = STEADY + BACK + LATE;
/// The second job's expiry: long enough for the 400 connected agents to be handed their
/// commands on a loaded machine, short enough to keep the test quick.
const EXPIRES_IN_SECONDS: u64 = 5;
/// Every wait in this test is bounded by this (each typically takes well under a second).
const WAIT: Duration = Duration::from_secs(45);
/// The most the watched agent's `last_seen` may lag behind the clock while a job runs: it
/// heartbeats every second and presence is written once a second, so about 2 s is normal;
/// the rest is slack for a loaded 2-core machine.
const MAX_LAST_SEEN_LAG_MS: i64 = 10_000;

/// A group of simulated agents that can leave (stop) and come back (start again from its
/// keys file, so as the same agents). Commands received are kept across its runs.
struct Group {
    prefix: &'static str,
    size: usize,
    keys: PathBuf,
    fleet: Option<Fleet>,
    /// Command id -> times received, over every run of the group so far.
    receipts: HashMap<String, u32>,
    agent_ids: Vec<String>,
}

impl Group {
    fn new(dir: &std::path::Path, prefix: &'static str, size: usize) -> Group {
        Group {
            prefix,
            size,
            keys: dir.join(format!("{prefix}.keys")),
            fleet: None,
            receipts: HashMap::new(),
            agent_ids: Vec::new(),
        }
    }

    async fn start(&mut self, server: &TestServer, site_code: &str) {
        assert!(self.fleet.is_none(), "{} runs already", self.prefix);
        let fleet = Fleet::start(FleetConfig {
            servers: vec![server.ws_url.clone()],
            agents: self.size,
            site_code: Some(site_code.to_owned()),
            keys_file: Some(self.keys.clone()),
            device_prefix: self.prefix.to_owned(),
            heartbeat: Duration::from_secs(1),
            metrics: Duration::from_secs(3600),
            command_delay: Duration::ZERO,
            ..FleetConfig::default()
        })
        .await
        .expect("start the fleet");
        assert!(
            fleet.wait_connected(self.size, WAIT).await,
            "{}: {} of {} connected; {:?}",
            self.prefix,
            fleet.connected(),
            self.size,
            fleet.snapshot()
        );
        let mut ids = fleet.agent_ids();
        ids.sort();
        if self.agent_ids.is_empty() {
            self.agent_ids = ids;
        } else {
            assert_eq!(
                ids, self.agent_ids,
                "{} came back as the same agents",
                self.prefix
            );
        }
        self.fleet = Some(fleet);
    }

    /// Folds the running fleet's receipts into `receipts` (the fleet's own table counts
    /// from its start, so only the growth since the last fold is added).
    fn receipts_now(&self) -> HashMap<String, u32> {
        let mut all = self.receipts.clone();
        if let Some(fleet) = &self.fleet {
            for (id, n) in fleet.command_receipts() {
                *all.entry(id).or_insert(0) += n;
            }
        }
        all
    }

    async fn stop(&mut self) {
        let fleet = self.fleet.take().expect("running");
        let snapshot = fleet.snapshot();
        for (id, n) in fleet.command_receipts() {
            *self.receipts.entry(id).or_insert(0) += n;
        }
        let end = fleet.stop().await;
        assert_eq!(
            end.commands_received, snapshot.commands_received,
            "{}: a command arrived while it was stopping",
            self.prefix
        );
    }
}

/// Agents of the site the server counts online.
async fn online_on_site(server: &TestServer, site_id: &str) -> usize {
    let agents = server.get(&format!("/api/agents?site_id={site_id}")).await;
    agents
        .as_array()
        .expect("agent list")
        .iter()
        .filter(|a| a["online"] == true)
        .count()
}

async fn wait_online(server: &TestServer, site_id: &str, n: usize) {
    let deadline = Instant::now() + WAIT;
    loop {
        let online = online_on_site(server, site_id).await;
        if online == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{online} agents online on the site, expected {n}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ms(rfc3339: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339.as_str().expect("a time"))
        .expect("RFC 3339")
        .timestamp_millis()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The watched agent's `last_seen` (ms).
async fn last_seen(server: &TestServer, agent_id: &str) -> i64 {
    ms(&server.get(&format!("/api/agents/{agent_id}")).await["last_seen"])
}

/// Polls the job until `done` accepts it (panics after WAIT), reading the watched agent's
/// `last_seen` on every round. Returns the job and the largest lag of `last_seen` behind the
/// clock seen meanwhile.
async fn run_until(
    server: &TestServer,
    job_id: &str,
    watched: &str,
    done: impl Fn(&Value) -> bool,
) -> (Value, i64) {
    let started = Instant::now();
    let mut worst_lag = 0;
    loop {
        let job = server.get(&format!("/api/jobs/{job_id}")).await;
        let seen = last_seen(server, watched).await;
        worst_lag = worst_lag.max(now_ms() - seen);
        if done(&job) {
            return (job, worst_lag);
        }
        assert!(started.elapsed() < WAIT, "job stuck: {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Each agent's command in the job: agent id -> (command id, status).
async fn job_agents(server: &TestServer, job_id: &str) -> HashMap<String, (String, String)> {
    let rows = server.get(&format!("/api/jobs/{job_id}/agents")).await;
    rows.as_array()
        .expect("job agents")
        .iter()
        .map(|r| {
            (
                r["agent_id"].as_str().unwrap().to_owned(),
                (
                    r["command_id"].as_str().unwrap().to_owned(),
                    r["status"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect()
}

/// 500 agents on one site, half of them away: the job completes on the connected half at
/// once and on the others when they come back, each agent given its command exactly once;
/// a job with an expiry expires for the agents still away (and they get nothing when they
/// return); the watched agent's heartbeats keep reaching `last_seen` throughout.
async fn a_job_on_500_simulated_agents(db: TestDb) {
    gururmm_fleet_sim::raise_open_file_limit();
    let server = TestServer::start_with(db, |c| {
        c.enrollments_per_minute_per_address = 100_000;
    })
    .await;
    let (_, site_id, code) = server.create_site().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut steady = Group::new(dir.path(), "steady", STEADY);
    let mut back = Group::new(dir.path(), "back", BACK);
    let mut late = Group::new(dir.path(), "late", LATE);
    for group in [&mut steady, &mut back, &mut late] {
        group.start(&server, &code).await;
    }
    wait_online(&server, &site_id, ALL).await;
    let watched = steady.agent_ids[0].clone();

    // 1. Half the site away; a job for all 500.
    back.stop().await;
    late.stop().await;
    wait_online(&server, &site_id, STEADY).await;
    let seen_before = last_seen(&server, &watched).await;
    let posted_at = now_ms();
    let posted = Instant::now();
    let job = server
        .post(
            "/api/jobs",
            json!({"command": "echo fleet", "target": {"site_id": site_id}}),
        )
        .await;
    let job_id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(job["counts"]["total"], ALL, "{job}");
    let (half, lag_first) = run_until(&server, &job_id, &watched, |j| {
        j["counts"]["completed"] == STEADY
    })
    .await;
    let online_half = posted.elapsed();
    assert_eq!(half["counts"]["queued"], ALL - STEADY, "{half}");
    assert_eq!(half["counts"]["running"], 0, "{half}");
    assert_eq!(half["status"], "running", "{half}");

    // The watched agent's heartbeats kept reaching the database during the burst.
    assert!(
        lag_first <= MAX_LAST_SEEN_LAG_MS,
        "last_seen lagged {lag_first} ms behind the clock while the job ran"
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let seen = last_seen(&server, &watched).await;
        if seen > seen_before && seen >= posted_at {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "last_seen stuck at {seen} (before the job: {seen_before}, posted at {posted_at})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 2. The others come back and get theirs.
    let returned = Instant::now();
    back.start(&server, &code).await;
    late.start(&server, &code).await;
    let (done, lag_second) =
        run_until(&server, &job_id, &watched, |j| j["status"] == "finished").await;
    let away_half = returned.elapsed();
    assert_eq!(done["counts"]["completed"], ALL, "{done}");
    assert_eq!(done["counts"]["total"], ALL, "{done}");
    assert!(
        lag_second <= MAX_LAST_SEEN_LAG_MS,
        "last_seen lagged {lag_second} ms behind the clock while the job ran"
    );

    // Exactly one command per agent of the site, each received exactly once.
    let rows = job_agents(&server, &job_id).await;
    let site_agents: HashSet<&String> = [&steady, &back, &late]
        .iter()
        .flat_map(|g| g.agent_ids.iter())
        .collect();
    assert_eq!(site_agents.len(), ALL);
    assert_eq!(
        rows.keys().collect::<HashSet<_>>(),
        site_agents,
        "one command for each agent of the site"
    );
    for group in [&steady, &back, &late] {
        let receipts = group.receipts_now();
        for agent in &group.agent_ids {
            let (command, status) = &rows[agent];
            assert_eq!(status, "completed", "{agent}");
            assert_eq!(
                receipts.get(command),
                Some(&1),
                "{}: agent {agent} got its command {command} {:?} times",
                group.prefix,
                receipts.get(command)
            );
        }
        assert_eq!(
            receipts.values().sum::<u32>() as usize,
            group.size,
            "{}: no other command was sent",
            group.prefix
        );
    }

    // 3. A job that expires while 100 agents are away.
    late.stop().await;
    wait_online(&server, &site_id, ALL - LATE).await;
    let job = server
        .post(
            "/api/jobs",
            json!({"command": "echo again", "target": {"site_id": site_id},
                   "expires_in_seconds": EXPIRES_IN_SECONDS}),
        )
        .await;
    let expiring_id = job["id"].as_str().unwrap().to_owned();
    let (expired, _) = run_until(&server, &expiring_id, &watched, |j| {
        j["status"] == "finished"
    })
    .await;
    assert_eq!(expired["counts"]["completed"], ALL - LATE, "{expired}");
    assert_eq!(expired["counts"]["expired"], LATE, "{expired}");
    let rows = job_agents(&server, &expiring_id).await;
    for agent in &late.agent_ids {
        assert_eq!(rows[agent].1, "expired", "{agent}");
    }

    // They come back: nothing for them (the site's other agents got theirs once each).
    let before = late.receipts_now().values().sum::<u32>();
    late.start(&server, &code).await;
    wait_online(&server, &site_id, ALL).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        late.receipts_now().values().sum::<u32>(),
        before,
        "an expired command was sent"
    );
    for group in [&steady, &back] {
        let receipts = group.receipts_now();
        for agent in &group.agent_ids {
            assert_eq!(receipts.get(&rows[agent].0), Some(&1), "{agent}");
        }
    }
    let after = server.get(&format!("/api/jobs/{expiring_id}")).await;
    assert_eq!(after["counts"], expired["counts"], "{after}");

    eprintln!(
        "jobs_fleet [{db:?}]: {ALL}-agent job, online half ({STEADY}) completed {:.2} s after \
         the POST; the returning {} completed {:.2} s after they started reconnecting \
         (connect + auth included); last_seen lag at most {} ms",
        online_half.as_secs_f64(),
        ALL - STEADY,
        away_half.as_secs_f64(),
        lag_first.max(lag_second),
    );

    for group in [&mut steady, &mut back, &mut late] {
        group.stop().await;
    }
}

on_both_databases!(a_job_on_500_simulated_agents);
