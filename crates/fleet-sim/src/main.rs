//! `gururmm-fleet-sim`: runs a scenario with N simulated agents and prints what it saw:
//! a counter line on stderr every `--report-every-secs` and at the end, and one JSON summary
//! on stdout (the only thing written to stdout, so scripts can parse it).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use gururmm_fleet_sim::{Credentials, FleetConfig, Scenario, ScenarioConfig};

#[derive(Parser, Debug)]
#[command(
    name = "gururmm-fleet-sim",
    about = "Simulates a fleet of GuruRMM agents"
)]
struct Args {
    /// Agent WebSocket URL(s), e.g. ws://127.0.0.1:3001/ws; comma separated or repeated.
    /// Agents are spread over them and a reconnect tries the next one.
    #[arg(long = "server", required = true, value_delimiter = ',')]
    servers: Vec<String>,
    #[arg(long, default_value_t = 100)]
    agents: usize,
    #[arg(long, value_enum, default_value_t = Scenario::Hold)]
    scenario: Scenario,
    /// Site code to enroll devices that have no key yet.
    #[arg(long)]
    site_code: Option<String>,
    /// Keys of enrolled devices (JSON lines); read at start, appended as devices enroll.
    #[arg(long)]
    keys_file: Option<PathBuf>,
    /// Device ids and hostnames are PREFIX-000000, PREFIX-000001, ...
    #[arg(long, default_value = "sim")]
    device_prefix: String,
    #[arg(long, default_value_t = 30.0)]
    heartbeat_secs: f64,
    #[arg(long, default_value_t = 60.0)]
    metrics_secs: f64,
    /// Simulated run time of each command before its result is sent.
    #[arg(long, default_value_t = 0)]
    command_delay_ms: u64,
    #[arg(long, default_value_t = 500)]
    backoff_min_ms: u64,
    #[arg(long, default_value_t = 10_000)]
    backoff_max_ms: u64,
    /// Agents started per second (0: all at once).
    #[arg(long, default_value_t = 500.0)]
    ramp_per_sec: f64,
    /// Do not bind sockets to 127.0.0.2..251 (only applies to loopback servers anyway).
    #[arg(long)]
    no_spread_source: bool,
    /// Hold time once connected (hold, restart-storm, flood without --reports-per-agent,
    /// and after the commands in the commands scenario).
    #[arg(long, default_value_t = 10.0)]
    duration_secs: f64,
    /// Give up waiting for the whole fleet to connect after this long.
    #[arg(long, default_value_t = 120.0)]
    connect_wait_secs: f64,
    /// flood: reports each agent sends (else: as many as it can for --duration-secs).
    #[arg(long)]
    reports_per_agent: Option<u64>,
    /// REST base URL(s) for the commands scenario, e.g. http://127.0.0.1:3001.
    #[arg(long, value_delimiter = ',')]
    api: Vec<String>,
    #[arg(long, env = "GURURMM_SIM_TOKEN")]
    token: Option<String>,
    #[arg(long)]
    email: Option<String>,
    #[arg(long, env = "GURURMM_SIM_PASSWORD")]
    password: Option<String>,
    #[arg(long, default_value_t = 100)]
    commands: usize,
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    #[arg(long, default_value_t = 5.0)]
    report_every_secs: f64,
    /// Created (empty) once every agent is connected.
    #[arg(long)]
    ready_file: Option<PathBuf>,
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let limit = gururmm_fleet_sim::raise_open_file_limit();
    if limit > 0 && (limit as usize) < args.agents + 256 {
        eprintln!(
            "warning: open-file limit {limit} is close to or below {} agents",
            args.agents
        );
    }
    let credentials = match (args.token, args.email, args.password) {
        (Some(t), _, _) => Some(Credentials::Token(t)),
        (None, Some(email), Some(password)) => Some(Credentials::Password { email, password }),
        _ => None,
    };
    let config = ScenarioConfig {
        scenario: args.scenario,
        fleet: FleetConfig {
            servers: args.servers,
            agents: args.agents,
            site_code: args.site_code,
            keys_file: args.keys_file,
            device_prefix: args.device_prefix,
            heartbeat: secs(args.heartbeat_secs),
            metrics: secs(args.metrics_secs),
            command_delay: Duration::from_millis(args.command_delay_ms),
            backoff_min: Duration::from_millis(args.backoff_min_ms),
            backoff_max: Duration::from_millis(args.backoff_max_ms),
            ramp_per_sec: args.ramp_per_sec,
            spread_source_addresses: !args.no_spread_source,
            ..FleetConfig::default()
        },
        duration: secs(args.duration_secs),
        connect_wait: secs(args.connect_wait_secs),
        reports_per_agent: args.reports_per_agent,
        api: args.api,
        credentials,
        commands: args.commands,
        concurrency: args.concurrency,
        report_every: secs(args.report_every_secs),
        ready_file: args.ready_file,
    };
    let summary = gururmm_fleet_sim::scenario::run(config).await?;
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}
