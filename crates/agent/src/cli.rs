//! The command line: `run`, `install`, `uninstall` (and `service` for the Windows SCM).

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use tokio::sync::watch;

use crate::config::{default_config_path, Config};

#[derive(Debug, Parser)]
#[command(name = "gururmm-agent", version = crate::agent::VERSION, about = "GuruRMM agent")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Runs the agent in the foreground until Ctrl-C or SIGTERM.
    Run {
        #[arg(long, default_value_os_t = default_config_path())]
        config: PathBuf,
    },
    /// Checks a config file and prints what is wrong with it.
    CheckConfig {
        #[arg(long, default_value_os_t = default_config_path())]
        config: PathBuf,
    },
    /// Registers and starts the agent as a service (systemd unit on Linux, "GuruRMM" on Windows).
    Install {
        #[arg(long, default_value_os_t = default_config_path())]
        config: PathBuf,
    },
    /// Stops and removes the service.
    Uninstall,
    /// Collects one metric kind (cpu, memory, disk, network) and prints it: the agent runs this
    /// in a child process to find collectors that would crash it.
    #[command(hide = true)]
    ProbeCollector { name: String },
    /// A new build on trial after a self-update: runs the agent until its first successful
    /// connection (sending `previous_version`), confirms in the state folder and exits 0.
    #[command(hide = true)]
    UpdateTrial {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        previous_version: String,
        #[arg(long)]
        update_id: Option<String>,
    },
    /// Started by the Windows service after a confirmed self-update, just before it stops:
    /// waits until the service has stopped and starts it again (now the new build). The
    /// service manager's restart-on-failure is not relied on: a clean stop does not trigger
    /// it, and Wine's service manager has none.
    #[command(hide = true)]
    RestartService,
    /// The entry point the Windows service manager starts.
    #[command(hide = true)]
    Service {
        #[arg(long, default_value_os_t = default_config_path())]
        config: PathBuf,
    },
}

fn load(path: &Path) -> Result<Config, i32> {
    Config::load(path).map_err(|e| {
        eprintln!("gururmm-agent: {}", crate::logging::ascii(&e.to_string()));
        2
    })
}

/// Loads the config, sets up logs and runs the agent until `shutdown`; returns the exit code.
/// Shared by `run`, `update-trial` and the Windows service (`as_service`). After a confirmed
/// self-update it restarts into the new build (see
/// [`crate::update::install::restart_into_new_build`]).
pub fn run_agent(config_path: &Path, shutdown: watch::Receiver<bool>, as_service: bool) -> i32 {
    run_agent_with(
        crate::agent::RunOptions {
            config_path: config_path.to_owned(),
            ..Default::default()
        },
        shutdown,
        as_service,
    )
}

fn run_agent_with(
    options: crate::agent::RunOptions,
    shutdown: watch::Receiver<bool>,
    as_service: bool,
) -> i32 {
    let config_path = options.config_path.clone();
    let config_path = config_path.as_path();
    let config = match load(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let _guard = crate::logging::init(
        &config.agent.log_level,
        Some(&config.agent.log_dir),
        config.agent.log_files_kept,
    );
    if let Some(host) = config.server.insecure_remote_host() {
        tracing::warn!(
            host,
            "server.url is plain ws:// or http:// to a remote host (allowed by allow_insecure = true): \
             anyone on the network path can read the agent key and send this machine commands"
        );
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gururmm-agent: cannot start the runtime: {e}");
            return 1;
        }
    };
    let exit = runtime.block_on(async move {
        match crate::agent::run(config, options, shutdown).await {
            Ok(exit) => Ok(exit),
            Err(e) => {
                tracing::error!("{}", crate::logging::ascii(&format!("{e:#}")));
                Err(1)
            }
        }
    });
    // Running commands are not waited for: they are killed with their tasks and reported as
    // interrupted on the next start.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match exit {
        Ok(crate::agent::Exit::Stopped) => 0,
        Ok(crate::agent::Exit::Updated(exe)) => {
            tracing::info!("starting the new build");
            if as_service {
                // The service hands its restart to a helper and exits: logged as it goes.
                return crate::update::install::restart_into_new_build(&exe, true);
            }
            // Flush the log before this process is replaced.
            drop(_guard);
            crate::update::install::restart_into_new_build(&exe, false)
        }
        Err(code) => code,
    }
}

/// Ctrl-C and SIGTERM into the shutdown channel.
fn spawn_signal_listener(tx: watch::Sender<bool>) {
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{signal, SignalKind};
                let mut term = match signal(SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                        let _ = tx.send(true);
                        return;
                    }
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            #[cfg(windows)]
            {
                // Ctrl-C, Ctrl-Break, and the console window closing.
                use tokio::signal::windows::{ctrl_break, ctrl_close};
                match (ctrl_break(), ctrl_close()) {
                    (Ok(mut brk), Ok(mut close)) => {
                        tokio::select! {
                            _ = tokio::signal::ctrl_c() => {}
                            _ = brk.recv() => {}
                            _ = close.recv() => {}
                        }
                    }
                    _ => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            }
            #[cfg(not(any(unix, windows)))]
            {
                let _ = tokio::signal::ctrl_c().await;
            }
            tracing::info!("shutdown requested");
            let _ = tx.send(true);
        });
    });
}

pub fn main_with(cli: Cli) -> i32 {
    match cli.command {
        Cmd::Run { config } => {
            let (tx, rx) = watch::channel(false);
            spawn_signal_listener(tx);
            run_agent(&config, rx, false)
        }
        Cmd::UpdateTrial {
            config,
            previous_version,
            update_id,
        } => {
            let (tx, rx) = watch::channel(false);
            spawn_signal_listener(tx);
            eprintln!(
                "gururmm-agent: update trial{}",
                update_id
                    .map(|id| format!(" of update {}", crate::logging::ascii(&id)))
                    .unwrap_or_default()
            );
            run_agent_with(
                crate::agent::RunOptions {
                    config_path: config,
                    trial: true,
                    previous_version: Some(previous_version),
                },
                rx,
                false,
            )
        }
        Cmd::CheckConfig { config } => match load(&config) {
            Ok(_) => {
                println!("{}: ok", config.display());
                0
            }
            Err(code) => code,
        },
        Cmd::Install { config } => {
            if let Err(code) = load(&config) {
                return code;
            }
            report(install(&config))
        }
        Cmd::Uninstall => report(uninstall()),
        Cmd::ProbeCollector { name } => crate::metrics::probe::run_probe(&name),
        Cmd::RestartService => {
            #[cfg(windows)]
            {
                report(crate::service::windows::start_once_stopped())
            }
            #[cfg(not(windows))]
            {
                eprintln!("gururmm-agent: 'restart-service' is for the Windows service");
                2
            }
        }
        Cmd::Service { config } => {
            #[cfg(windows)]
            {
                report(crate::service::windows::run_as_service(config))
            }
            #[cfg(not(windows))]
            {
                let _ = config;
                eprintln!("gururmm-agent: 'service' is for the Windows service manager; use 'run'");
                2
            }
        }
    }
}

fn report(r: anyhow::Result<()>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!(
                "gururmm-agent: {}",
                crate::logging::ascii(&format!("{e:#}"))
            );
            1
        }
    }
}

#[cfg(windows)]
fn install(config: &Path) -> anyhow::Result<()> {
    crate::service::windows::install(config)
}
#[cfg(windows)]
fn uninstall() -> anyhow::Result<()> {
    crate::service::windows::uninstall()
}
#[cfg(unix)]
fn install(config: &Path) -> anyhow::Result<()> {
    crate::service::systemd::install(config)
}
#[cfg(unix)]
fn uninstall() -> anyhow::Result<()> {
    crate::service::systemd::uninstall()
}
#[cfg(not(any(unix, windows)))]
fn install(_: &Path) -> anyhow::Result<()> {
    anyhow::bail!("install is not supported on this OS")
}
#[cfg(not(any(unix, windows)))]
fn uninstall() -> anyhow::Result<()> {
    anyhow::bail!("uninstall is not supported on this OS")
}
