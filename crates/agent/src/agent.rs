//! The running agent: identity, state folder, command executor, watchdog and the transport
//! picked by the config, all stopped by one shutdown channel (Ctrl-C, SIGTERM or the Windows
//! service's Stop).

use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use gururmm_protocol::{CommandOutput, MetricsReport, OsInfo, WatchdogEvent};
use tokio::sync::{mpsc, watch};

use crate::commands::claude::{AiExecutor, ClaudeSettings};
use crate::commands::{live, Executor, Finished, RunSettings};
use crate::config::{Config, Mode};
use crate::metrics::Metrics;
use crate::state::StateDir;

/// What both transports need.
pub struct Ctx {
    pub config: Config,
    pub state: Arc<StateDir>,
    pub executor: Executor,
    pub device_id: String,
    pub hostname: String,
    pub os_info: OsInfo,
    pub version: &'static str,
    pub(crate) metrics: Arc<Mutex<Metrics>>,
    /// The config file (a new build on trial is started with it).
    pub config_path: std::path::PathBuf,
    /// Running as `update-trial`: stop after the first successful connection.
    pub trial: bool,
    /// The version this build replaced, sent in `auth` until a connection succeeded.
    pub previous_version: Mutex<Option<String>>,
    /// The settings a policy changes, as now applied (agent.toml's until a policy came).
    pub live: watch::Sender<crate::policy::Live>,
}

impl Ctx {
    /// The key to authenticate with: the saved `grmm_` key, else the configured one.
    pub fn api_key(&self, prefer_config: bool) -> String {
        if !prefer_config {
            if let Some(k) = self.state.agent_key() {
                return k;
            }
        }
        self.config.server.api_key.clone()
    }

    /// Collects one metrics report off the async runtime.
    pub async fn collect_metrics(&self) -> Option<MetricsReport> {
        let m = self.metrics.clone();
        tokio::task::spawn_blocking(move || m.lock().unwrap_or_else(|e| e.into_inner()).collect())
            .await
            .ok()
    }
}

/// Channels the session drains.
pub struct Inbox {
    pub finished: mpsc::UnboundedReceiver<Finished>,
    pub events: mpsc::Receiver<WatchdogEvent>,
    /// Live output of running commands, and the switch that lets it flow (on only while a
    /// WebSocket is connected).
    pub output: mpsc::Receiver<CommandOutput>,
    pub live: live::Sink,
}

/// Live output pieces waiting for the session at most (about 1 MB); more are dropped.
pub const LIVE_OUTPUT_BACKLOG: usize = 256;

/// The agent's version: `GURURMM_AGENT_VERSION` at build time, else the crate's version.
pub const VERSION: &str = match option_env!("GURURMM_AGENT_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};

/// Test builds only: set at build time, `run` fails at once (a build that cannot start, to
/// show that an update to it is rolled back).
const EXIT_AT_START: bool = option_env!("GURURMM_AGENT_EXIT_AT_START").is_some();

/// How [`run`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// Shutdown was asked for (or a trial confirmed).
    Stopped,
    /// A new build was installed at this path and confirmed: start it in this process's place.
    Updated(std::path::PathBuf),
}

/// How this process was started.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub config_path: std::path::PathBuf,
    /// `update-trial`: connect once, confirm, stop.
    pub trial: bool,
    pub previous_version: Option<String>,
}

/// Runs the agent until `shutdown` turns true.
pub async fn run(
    config: Config,
    options: RunOptions,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Exit> {
    if EXIT_AT_START {
        anyhow::bail!("this test build exits at start (built with GURURMM_AGENT_EXIT_AT_START)");
    }
    let state = Arc::new(StateDir::open(&config.agent.state_dir).with_context(|| {
        format!(
            "cannot use state folder {} (agent.state_dir)",
            config.agent.state_dir.display()
        )
    })?);
    let device_id = crate::identity::device_id(&state).context("cannot determine a device id")?;
    let settings = RunSettings {
        default_timeout: std::time::Duration::from_secs(config.agent.command_timeout_seconds),
        max_timeout: std::time::Duration::from_secs(config.agent.command_max_timeout_seconds),
        output_cap: config.agent.output_cap_bytes,
        script_interpreter: config.agent.script_interpreter.clone(),
        temp_dir: config.agent.state_dir.join("tmp"),
    };
    let (executor, finished) = Executor::new(state.clone(), settings);
    let (live_sink, output) = live::channel(LIVE_OUTPUT_BACKLOG);
    let claude = ClaudeSettings::from_config(&config.claude);
    if let Some(c) = &claude {
        tracing::info!(
            "AI task executor enabled: {} in {}",
            crate::logging::ascii(&c.cli_path),
            crate::logging::ascii(&c.working_root.display().to_string())
        );
    }
    let executor = executor
        .with_claude(AiExecutor::new(claude))
        .with_live_output(live_sink.clone());
    let (events_tx, events) = mpsc::channel(256);
    // agent.toml with the policy kept from the last run laid over it.
    let (effective, live) = crate::policy::startup(&config, &state);
    let (live, live_rx) = watch::channel(live);
    // A build on trial only connects: the previous build still owns the commands it runs
    // and the services it watches.
    let watchdog = if options.trial {
        None
    } else {
        executor.recover_interrupted();
        Some(tokio::spawn(crate::watchdog::run(
            live_rx,
            events_tx,
            shutdown.clone(),
        )))
    };
    // Windows: a collector that would abort the process is found in a child process first.
    #[cfg(windows)]
    let metrics_section = crate::metrics::probe::usable(&effective.metrics).await;
    #[cfg(not(windows))]
    let metrics_section = effective.metrics.clone();
    let metrics = Arc::new(Mutex::new(Metrics::from_config(&metrics_section)));
    // A build just installed names the one it replaced until it has connected once.
    let previous_version = options
        .previous_version
        .clone()
        .or_else(|| state.update_applied());
    let ctx = Ctx {
        config_path: options.config_path,
        trial: options.trial,
        previous_version: Mutex::new(previous_version),
        state,
        executor,
        device_id,
        hostname: crate::identity::hostname(),
        os_info: crate::identity::os_info(),
        version: VERSION,
        metrics,
        config,
        live,
    };
    tracing::info!(
        "gururmm-agent {}{} starting: {:?} mode, server {}, device {}",
        VERSION,
        if ctx.trial { " (update trial)" } else { "" },
        ctx.config.agent.mode,
        crate::logging::ascii(&ctx.config.server.url),
        &ctx.device_id[..16.min(ctx.device_id.len())]
    );
    let mut inbox = Inbox {
        finished,
        events,
        output,
        live: live_sink,
    };
    let result = match ctx.config.agent.mode {
        Mode::Websocket => {
            let ws = crate::transport::ws::Ws::new(&ctx)?;
            crate::session::run(&ctx, &mut inbox, ws, shutdown).await
        }
        Mode::Legacy => {
            let legacy = crate::transport::legacy::Legacy::new(&ctx)?;
            crate::session::run(&ctx, &mut inbox, legacy, shutdown).await
        }
    };
    if let Some(w) = watchdog {
        w.abort();
    }
    if ctx.executor.running() > 0 {
        tracing::info!(
            "stopping with {} command(s) running; they are reported as interrupted on the next start",
            ctx.executor.running()
        );
    }
    tracing::info!("gururmm-agent stopped");
    result
}
