//! The Windows service "GuruRMM" through the SCM: `install` / `uninstall`, and the `service`
//! entry point the SCM starts. The SCM's Stop and Shutdown go into the same shutdown channel as
//! Ctrl-C, so the agent stops along one code path.

// `define_windows_service!` expands to the `extern "system"` entry point the SCM calls.
#![allow(unsafe_code)]

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use windows_service::service::{
    ServiceAccess, ServiceControl, ServiceControlAccept, ServiceErrorControl, ServiceExitCode,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

pub const SERVICE_NAME: &str = "GuruRMM";
const DISPLAY_NAME: &str = "GuruRMM Agent";

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
        wait_hint: Duration::from_secs(if state == ServiceState::StopPending {
            30
        } else {
            0
        }),
        process_id: None,
    }
}

fn service_main(_arguments: Vec<OsString>) {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let handler = move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            let _ = tx.send(true);
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let Ok(handle) = service_control_handler::register(SERVICE_NAME, handler) else {
        return;
    };
    let _ = handle.set_service_status(status(ServiceState::Running, 0));
    let config = CONFIG_PATH
        .get()
        .cloned()
        .unwrap_or_else(crate::config::default_config_path);
    let code = crate::cli::run_agent(&config, rx);
    let _ = handle.set_service_status(status(ServiceState::Stopped, code as u32));
}

pub fn install(config: &Path) -> anyhow::Result<()> {
    let manager = ServiceManager::local_computer(
        None::<&str>,
        ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
    )
    .map_err(|e| anyhow::anyhow!("cannot open the service manager (run as Administrator): {e}"))?;
    let info = ServiceInfo {
        name: OsString::from(SERVICE_NAME),
        display_name: OsString::from(DISPLAY_NAME),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: std::env::current_exe()?,
        launch_arguments: vec![
            OsString::from("service"),
            OsString::from("--config"),
            std::path::absolute(config)?.into_os_string(),
        ],
        dependencies: vec![],
        account_name: None, // LocalSystem
        account_password: None,
    };
    let service = manager
        .create_service(&info, ServiceAccess::CHANGE_CONFIG | ServiceAccess::START)
        .map_err(|e| anyhow::anyhow!("cannot create service {SERVICE_NAME}: {e}"))?;
    let _ = service.set_description("GuruRMM remote monitoring and management agent");
    service
        .start(&[] as &[&OsStr])
        .map_err(|e| anyhow::anyhow!("service created but not started: {e}"))?;
    println!("installed and started service {SERVICE_NAME}");
    Ok(())
}

pub fn uninstall() -> anyhow::Result<()> {
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
        .map_err(|e| {
            anyhow::anyhow!("cannot open the service manager (run as Administrator): {e}")
        })?;
    let service = manager
        .open_service(
            SERVICE_NAME,
            ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE,
        )
        .map_err(|e| anyhow::anyhow!("cannot open service {SERVICE_NAME}: {e}"))?;
    if let Ok(s) = service.query_status() {
        if s.current_state != ServiceState::Stopped {
            let _ = service.stop();
            for _ in 0..30 {
                std::thread::sleep(Duration::from_secs(1));
                match service.query_status() {
                    Ok(s) if s.current_state == ServiceState::Stopped => break,
                    Err(_) => break,
                    _ => {}
                }
            }
        }
    }
    service
        .delete()
        .map_err(|e| anyhow::anyhow!("cannot delete service {SERVICE_NAME}: {e}"))?;
    println!("removed service {SERVICE_NAME}");
    Ok(())
}
