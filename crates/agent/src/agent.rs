//! The running agent: identity, state folder, command executor, watchdog and the transport
//! picked by the config, all stopped by one shutdown channel (Ctrl-C, SIGTERM or the Windows
//! service's Stop).

use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use gururmm_protocol::{MetricsReport, OsInfo, WatchdogEvent};
use tokio::sync::{mpsc, watch};

use crate::commands::{Executor, Finished, RunSettings};
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
}

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Runs the agent until `shutdown` turns true.
pub async fn run(config: Config, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
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
    executor.recover_interrupted();
    let (events_tx, events) = mpsc::channel(256);
    let watchdog = tokio::spawn(crate::watchdog::run(
        config.watchdog.clone(),
        events_tx,
        shutdown.clone(),
    ));
    // Windows: a collector that would abort the process is found in a child process first.
    #[cfg(windows)]
    let metrics_section = crate::metrics::probe::usable(&config.metrics).await;
    #[cfg(not(windows))]
    let metrics_section = config.metrics.clone();
    let metrics = Arc::new(Mutex::new(Metrics::from_config(&metrics_section)));
    let ctx = Ctx {
        state,
        executor,
        device_id,
        hostname: crate::identity::hostname(),
        os_info: crate::identity::os_info(),
        version: VERSION,
        metrics,
        config,
    };
    tracing::info!(
        "gururmm-agent {} starting: {:?} mode, server {}, device {}",
        VERSION,
        ctx.config.agent.mode,
        crate::logging::ascii(&ctx.config.server.url),
        &ctx.device_id[..16.min(ctx.device_id.len())]
    );
    let mut inbox = Inbox { finished, events };
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
    watchdog.abort();
    if ctx.executor.running() > 0 {
        tracing::info!(
            "stopping with {} command(s) running; they are reported as interrupted on the next start",
            ctx.executor.running()
        );
    }
    tracing::info!("gururmm-agent stopped");
    result
}
