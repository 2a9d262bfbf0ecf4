//! The Windows service "GuruRMM" through the SCM: `install` / `uninstall`, and the `service`
//! entry point the SCM starts. The SCM's Stop and Shutdown go into the same shutdown channel as
//! Ctrl-C, so the agent stops along one code path.
//!
//! `install` copies the running binary to `C:\Program Files\GuruRMM\gururmm-agent.exe` (unless
//! it already runs from there), registers that copy as an auto-start LocalSystem service that
//! the SCM restarts when it fails, and starts it. Run again with a newer binary it is the
//! upgrade: the service is stopped, the copy replaced, the registration updated, the service
//! started again.

// `define_windows_service!` expands to the `extern "system"` entry point the SCM calls.
#![allow(unsafe_code)]

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use windows_service::service::{
    Service, ServiceAccess, ServiceAction, ServiceActionType, ServiceControl, ServiceControlAccept,
    ServiceErrorControl, ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{
    self, ServiceControlHandlerResult, ServiceStatusHandle,
};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

pub const SERVICE_NAME: &str = "GuruRMM";
const DISPLAY_NAME: &str = "GuruRMM Agent";
const EXE_NAME: &str = "gururmm-agent.exe";
/// How long the SCM is told a stop may take (the agent needs about 2 s).
const STOP_WAIT_HINT: Duration = Duration::from_secs(30);

static CONFIG_PATH: OnceLock<PathBuf> = OnceLock::new();

define_windows_service!(ffi_service_main, service_main);

/// Called by `gururmm-agent service --config ...` when the SCM starts the service.
pub fn run_as_service(config: PathBuf) -> anyhow::Result<()> {
    let _ = CONFIG_PATH.set(config);
    service_dispatcher::start(SERVICE_NAME, ffi_service_main)
        .map_err(|e| anyhow::anyhow!("not started by the service manager: {e}"))
}

fn status(state: ServiceState, code: u32) -> ServiceStatus {
    ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted: if state == ServiceState::Running {
            ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN
        } else {
            ServiceControlAccept::empty()
        },
        exit_code: ServiceExitCode::Win32(code),
        checkpoint: 0,
        wait_hint: if state == ServiceState::StopPending {
            STOP_WAIT_HINT
        } else {
            Duration::ZERO
        },
        process_id: None,
    }
}

fn service_main(_arguments: Vec<OsString>) {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let handle_cell: Arc<OnceLock<ServiceStatusHandle>> = Arc::new(OnceLock::new());
    let cell = handle_cell.clone();
    let handler = move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            tracing::info!("shutdown requested by the service manager");
            if let Some(h) = cell.get() {
                let _ = h.set_service_status(status(ServiceState::StopPending, 0));
            }
            let _ = tx.send(true);
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let Ok(handle) = service_control_handler::register(SERVICE_NAME, handler) else {
        return;
    };
    let _ = handle_cell.set(handle);
    let _ = handle.set_service_status(status(ServiceState::Running, 0));
    let config = CONFIG_PATH
        .get()
        .cloned()
        .unwrap_or_else(crate::config::default_config_path);
    let code = crate::cli::run_agent(&config, rx, true);
    // A non-zero exit code counts as a failure: the SCM applies the restart actions. After a
    // self-update the code is 0 and `restart-service` starts the new build.
    let _ = handle.set_service_status(status(ServiceState::Stopped, code as u32));
}

fn open_manager(access: ServiceManagerAccess) -> anyhow::Result<ServiceManager> {
    ServiceManager::local_computer(None::<&str>, access)
        .map_err(|e| anyhow::anyhow!("cannot open the service manager (run as Administrator): {e}"))
}

/// Asks the service to stop and waits (up to 30 s) until it has.
fn stop_and_wait(service: &Service) {
    let Ok(s) = service.query_status() else {
        return;
    };
    if s.current_state == ServiceState::Stopped {
        return;
    }
    let _ = service.stop();
    for _ in 0..60 {
        std::thread::sleep(Duration::from_millis(500));
        match service.query_status() {
            Ok(s) if s.current_state == ServiceState::Stopped => return,
            Err(_) => return,
            _ => {}
        }
    }
    eprintln!("gururmm-agent: service {SERVICE_NAME} did not stop within 30 s");
}

/// `restart-service`: waits (up to 60 s) until the service has stopped, then starts it; a
/// start refused while the service manager is still settling is tried again.
pub fn start_once_stopped() -> anyhow::Result<()> {
    let manager = open_manager(ServiceManagerAccess::CONNECT)?;
    let service = manager
        .open_service(
            SERVICE_NAME,
            ServiceAccess::QUERY_STATUS | ServiceAccess::START,
        )
        .map_err(|e| anyhow::anyhow!("cannot open service {SERVICE_NAME}: {e}"))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let state = service
            .query_status()
            .map_err(|e| anyhow::anyhow!("cannot query service {SERVICE_NAME}: {e}"))?
            .current_state;
        match state {
            ServiceState::Running | ServiceState::StartPending => return Ok(()),
            ServiceState::Stopped => match service.start(&[] as &[&OsStr]) {
                Ok(()) => return Ok(()),
                Err(e) if std::time::Instant::now() >= deadline => {
                    anyhow::bail!("cannot start service {SERVICE_NAME}: {e}")
                }
                Err(_) => {}
            },
            _ if std::time::Instant::now() >= deadline => {
                anyhow::bail!("service {SERVICE_NAME} did not stop within 60 s")
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Puts this binary at `dir\gururmm-agent.exe` (unless it already is that file); returns the path.
fn place_binary(dir: &Path) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let dest = dir.join(EXE_NAME);
    let same = match (std::fs::canonicalize(&me), std::fs::canonicalize(&dest)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !same {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        std::fs::copy(&me, &dest)
            .map_err(|e| anyhow::anyhow!("cannot copy the agent to {}: {e}", dest.display()))?;
        println!("copied the agent to {}", dest.display());
    }
    Ok(dest)
}

/// Restart 10 s, 30 s, then 60 s after a failure; the count resets after a day without one.
fn failure_actions() -> ServiceFailureActions {
    let restart = |secs| ServiceAction {
        action_type: ServiceActionType::Restart,
        delay: Duration::from_secs(secs),
    };
    ServiceFailureActions {
        reset_period: ServiceFailureResetPeriod::After(Duration::from_secs(86_400)),
        reboot_msg: None,
        command: None,
        actions: Some(vec![restart(10), restart(30), restart(60)]),
    }
}

pub fn install(config: &Path) -> anyhow::Result<()> {
    let config = std::path::absolute(config)?;
    let manager =
        open_manager(ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE)?;
    let access = ServiceAccess::QUERY_STATUS
        | ServiceAccess::STOP
        | ServiceAccess::START
        | ServiceAccess::CHANGE_CONFIG;
    // Installed already: this is an upgrade or a reinstall. Stop it so its binary can be replaced.
    let existing = manager.open_service(SERVICE_NAME, access).ok();
    if let Some(s) = &existing {
        stop_and_wait(s);
    }
    let exe = place_binary(&crate::config::default_install_dir())?;
    let info = ServiceInfo {
        name: OsString::from(SERVICE_NAME),
        display_name: OsString::from(DISPLAY_NAME),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: exe,
        launch_arguments: vec![
            OsString::from("service"),
            OsString::from("--config"),
            config.into_os_string(),
        ],
        dependencies: vec![],
        account_name: None, // LocalSystem
        account_password: None,
    };
    let service = match existing {
        Some(s) => {
            s.change_config(&info)
                .map_err(|e| anyhow::anyhow!("cannot update service {SERVICE_NAME}: {e}"))?;
            s
        }
        None => manager
            .create_service(&info, access)
            .map_err(|e| anyhow::anyhow!("cannot create service {SERVICE_NAME}: {e}"))?,
    };
    let _ = service.set_description("GuruRMM remote monitoring and management agent");
    // Restart on failure: when the process dies, and when it stops with a non-zero exit code.
    if let Err(e) = service.update_failure_actions(failure_actions()) {
        eprintln!("gururmm-agent: warning: cannot set restart on failure: {e}");
    }
    if let Err(e) = service.set_failure_actions_on_non_crash_failures(true) {
        eprintln!("gururmm-agent: warning: cannot set restart on non-crash failures: {e}");
    }
    service
        .start(&[] as &[&OsStr])
        .map_err(|e| anyhow::anyhow!("service registered but not started: {e}"))?;
    println!("installed and started service {SERVICE_NAME}");
    Ok(())
}

pub fn uninstall() -> anyhow::Result<()> {
    let manager = open_manager(ServiceManagerAccess::CONNECT)?;
    let service = manager
        .open_service(
            SERVICE_NAME,
            ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE,
        )
        .map_err(|e| anyhow::anyhow!("cannot open service {SERVICE_NAME}: {e}"))?;
    stop_and_wait(&service);
    service
        .delete()
        .map_err(|e| anyhow::anyhow!("cannot delete service {SERVICE_NAME}: {e}"))?;
    println!("removed service {SERVICE_NAME}");
    Ok(())
}
