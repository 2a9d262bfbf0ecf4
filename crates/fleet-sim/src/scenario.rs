//! The scenarios the binary runs: `hold`, `flood`, `commands`, `restart-storm`. Each starts a
//! fleet, waits for it to connect, does its part, stops the fleet and returns a [`Summary`].

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::api::{run_commands, Api, CommandRun};
use crate::counters::Snapshot;
use crate::fleet::{Fleet, FleetConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Connect the fleet and hold it for the duration.
    Hold,
    /// Every agent sends metrics back to back (for the duration, or N each).
    Flood,
    /// Submit commands over the REST API and time each to `completed` on the event stream.
    Commands,
    /// Hold the fleet and time each recovery: first disconnect until all are back.
    RestartStorm,
}

/// How to sign in to the REST API (the `commands` scenario).
#[derive(Debug, Clone)]
pub enum Credentials {
    Token(String),
    Password { email: String, password: String },
}

#[derive(Debug, Clone)]
pub struct ScenarioConfig {
    pub scenario: Scenario,
    pub fleet: FleetConfig,
    /// Hold time once connected (hold, restart-storm; flood without a per-agent count;
    /// commands: how long the fleet stays after the commands).
    pub duration: Duration,
    /// Give up waiting for the whole fleet to connect after this long.
    pub connect_wait: Duration,
    pub reports_per_agent: Option<u64>,
    pub api: Vec<String>,
    pub credentials: Option<Credentials>,
    pub commands: usize,
    pub concurrency: usize,
    pub report_every: Duration,
    /// Written (empty) once the whole fleet is connected: lets a script sample the server
    /// at the right moment.
    pub ready_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FloodSummary {
    pub reports_sent: u64,
    pub secs: f64,
    pub reports_per_sec: f64,
    pub agents_finished: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Storm {
    /// Seconds since the fleet was all connected, when the first agent dropped.
    pub first_disconnect_at_secs: f64,
    /// Fewest connected agents during the storm.
    pub lowest_connected: usize,
    /// From the first disconnect until every agent was connected again; None if it never was.
    pub recovery_secs: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub scenario: Scenario,
    pub agents: usize,
    pub servers: Vec<String>,
    /// From start until every agent was connected; None if they never all were.
    pub all_connected_secs: Option<f64>,
    pub elapsed_secs: f64,
    pub counters: Snapshot,
    /// No command id was received twice.
    pub no_duplicate_commands: bool,
    /// Every command received was answered.
    pub every_command_answered: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flood: Option<FloodSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commands: Option<CommandRun>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storms: Option<Vec<Storm>>,
}

/// Prints the counter line every `every` until the returned handle is aborted.
pub fn spawn_reporter(fleet: &Fleet, every: Duration) -> tokio::task::JoinHandle<()> {
    let counters = fleet.counter_reader();
    let start = fleet.started();
    tokio::spawn(async move {
        if every.is_zero() {
            return;
        }
        let mut tick = tokio::time::interval_at(Instant::now() + every, every);
        loop {
            tick.tick().await;
            eprintln!(
                "[{:>7.1}s] {}",
                start.elapsed().as_secs_f64(),
                counters.snapshot().line()
            );
        }
    })
}

pub async fn run(config: ScenarioConfig) -> anyhow::Result<Summary> {
    let fleet = Fleet::start(config.fleet.clone()).await?;
    let reporter = spawn_reporter(&fleet, config.report_every);
    let n = fleet.size();
    let all_connected = fleet
        .wait_connected(n, config.connect_wait)
        .await
        .then(|| fleet.started().elapsed().as_secs_f64());
    match all_connected {
        Some(s) => eprintln!("all {n} agents connected after {s:.2} s"),
        None => eprintln!(
            "warning: only {} of {n} agents connected within {:?}",
            fleet.connected(),
            config.connect_wait
        ),
    }
    if let Some(path) = &config.ready_file {
        std::fs::write(path, b"")?;
    }

    let mut flood = None;
    let mut commands = None;
    let mut storms = None;
    match config.scenario {
        Scenario::Hold => tokio::time::sleep(config.duration).await,
        Scenario::Flood => flood = Some(run_flood(&fleet, &config).await),
        Scenario::Commands => {
            let api = match &config.credentials {
                Some(Credentials::Token(t)) => Api::with_token(&config.api, t),
                Some(Credentials::Password { email, password }) => {
                    Api::login(&config.api, email, password).await?
                }
                None => anyhow::bail!("the commands scenario needs --token or --email/--password"),
            };
            anyhow::ensure!(!config.api.is_empty(), "the commands scenario needs --api");
            let run = run_commands(
                &api,
                &fleet,
                config.commands,
                config.concurrency,
                Duration::from_secs(30),
            )
            .await?;
            eprintln!(
                "commands: {} submitted, {} completed, {} other final, {} missing, {} refused; \
                 p50 {:.2} ms p95 {:.2} ms p99 {:.2} ms max {:.2} ms",
                run.submitted,
                run.completed,
                run.other_final,
                run.missing,
                run.refused,
                run.p50_ms,
                run.p95_ms,
                run.p99_ms,
                run.max_ms
            );
            commands = Some(run);
            tokio::time::sleep(config.duration).await;
        }
        Scenario::RestartStorm => storms = Some(watch_storms(&fleet, config.duration).await),
    }

    reporter.abort();
    let elapsed = fleet.started().elapsed().as_secs_f64();
    let receipts = fleet.command_receipts();
    let counters = fleet.stop().await;
    eprintln!("final: {}", counters.line());
    Ok(Summary {
        scenario: config.scenario,
        agents: n,
        servers: config.fleet.servers.clone(),
        all_connected_secs: all_connected,
        elapsed_secs: elapsed,
        no_duplicate_commands: receipts.values().all(|&c| c == 1),
        every_command_answered: counters.results_sent == counters.commands_received,
        counters,
        flood,
        commands,
        storms,
    })
}

async fn run_flood(fleet: &Fleet, config: &ScenarioConfig) -> FloodSummary {
    let before = fleet.snapshot().metrics_sent;
    let start = Instant::now();
    // With a per-agent count the duration is only a safety bound.
    let bound = config.duration.max(Duration::from_secs(1));
    fleet.flood(config.reports_per_agent, Some(bound));
    let n = fleet.size();
    let deadline = start + bound;
    loop {
        let done = config.reports_per_agent.is_some() && fleet.flood_finished() >= n;
        if done || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    let sent = fleet.snapshot().metrics_sent - before;
    let summary = FloodSummary {
        reports_sent: sent,
        secs,
        reports_per_sec: sent as f64 / secs.max(1e-9),
        agents_finished: fleet.flood_finished(),
    };
    eprintln!(
        "flood: {} reports in {:.2} s = {:.0} reports/s ({} agents finished their quota)",
        summary.reports_sent, summary.secs, summary.reports_per_sec, summary.agents_finished
    );
    summary
}

/// Samples the connected count every 10 ms for `duration`; a storm starts at the first drop
/// below the full fleet and ends when all are connected again.
async fn watch_storms(fleet: &Fleet, duration: Duration) -> Vec<Storm> {
    let n = fleet.size();
    let start = Instant::now();
    let mut storms = Vec::new();
    let mut current: Option<(Instant, usize)> = None;
    while start.elapsed() < duration {
        let connected = fleet.connected();
        match &mut current {
            None if connected < n => {
                eprintln!(
                    "[storm] agents dropping at {:.2} s",
                    start.elapsed().as_secs_f64()
                );
                current = Some((Instant::now(), connected));
            }
            Some((began, lowest)) => {
                *lowest = (*lowest).min(connected);
                if connected >= n {
                    let recovery = began.elapsed().as_secs_f64();
                    eprintln!("[storm] all {n} back after {recovery:.2} s (lowest {lowest})");
                    storms.push(Storm {
                        first_disconnect_at_secs: (*began - start).as_secs_f64(),
                        lowest_connected: *lowest,
                        recovery_secs: Some(recovery),
                    });
                    current = None;
                }
            }
            None => {}
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if let Some((began, lowest)) = current {
        storms.push(Storm {
            first_disconnect_at_secs: (began - start).as_secs_f64(),
            lowest_connected: lowest,
            recovery_secs: None,
        });
    }
    storms
}
