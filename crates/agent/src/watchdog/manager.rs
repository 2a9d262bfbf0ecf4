//! The service manager the watchdog asks, behind a small trait: systemd on Linux, the SCM on
//! Windows, or a pair of configured commands for anything else (and for tests, where CI has
//! no systemd).

use std::process::{Command, Stdio};

use crate::config::WatchedService;

/// Asks about and restarts services. Calls block; the watchdog runs them off the runtime.
pub trait ServiceManager: Send + Sync {
    /// Whether the service is running now.
    fn is_active(&self, service: &str) -> Result<bool, String>;
    /// Starts (or restarts) the service.
    fn restart(&self, service: &str) -> Result<(), String>;
}

/// The manager for one configured service.
pub fn for_service(service: &WatchedService) -> Box<dyn ServiceManager> {
    match (&service.check_command, &service.restart_command) {
        (Some(check), Some(restart)) => Box::new(CommandManager {
            check: check.clone(),
            restart: restart.clone(),
        }),
        _ => system_manager(),
    }
}

#[cfg(windows)]
fn system_manager() -> Box<dyn ServiceManager> {
    Box::new(Scm)
}

#[cfg(not(windows))]
fn system_manager() -> Box<dyn ServiceManager> {
    Box::new(Systemd)
}

fn output_text(out: &std::process::Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    crate::logging::ascii(text.trim())
}

/// systemd through `systemctl`.
pub struct Systemd;

impl ServiceManager for Systemd {
    fn is_active(&self, service: &str) -> Result<bool, String> {
        let out = Command::new("systemctl")
            .args(["is-active", "--quiet", "--", service])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run systemctl: {e}"))?;
        // 0 active; 3 inactive/failed; 4 no such unit.
        match out.status.code() {
            Some(0) => Ok(true),
            Some(3) => Ok(false),
            Some(4) => Err(format!("no such service unit '{service}'")),
            _ => Err(format!("systemctl is-active failed: {}", output_text(&out))),
        }
    }

    fn restart(&self, service: &str) -> Result<(), String> {
        let out = Command::new("systemctl")
            .args(["restart", "--", service])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run systemctl: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("systemctl restart failed: {}", output_text(&out)))
        }
    }
}

/// A service described by two commands: `check` exits 0 while it runs, `restart` starts it.
pub struct CommandManager {
    pub check: String,
    pub restart: String,
}

fn shell(text: &str) -> Command {
    if cfg!(windows) {
        let mut c = Command::new("cmd.exe");
        c.arg("/C").arg(text);
        c
    } else {
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(text);
        c
    }
}

impl ServiceManager for CommandManager {
    fn is_active(&self, _service: &str) -> Result<bool, String> {
        let status = shell(&self.check)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run check_command: {e}"))?;
        Ok(status.success())
    }

    fn restart(&self, _service: &str) -> Result<(), String> {
        // Output goes nowhere: a started daemon must not hold a pipe to the agent.
        let status = shell(&self.restart)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run restart_command: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("restart_command exited with {status}"))
        }
    }
}

/// The Windows Service Control Manager.
#[cfg(windows)]
pub struct Scm;

#[cfg(windows)]
impl ServiceManager for Scm {
    fn is_active(&self, service: &str) -> Result<bool, String> {
        use windows_service::service::{ServiceAccess, ServiceState};
        use windows_service::service_manager::{ServiceManager as WinSm, ServiceManagerAccess};
        let sm = WinSm::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
            .map_err(|e| format!("cannot open the service manager: {e}"))?;
        let svc = sm
            .open_service(service, ServiceAccess::QUERY_STATUS)
            .map_err(|e| format!("cannot open service '{service}': {e}"))?;
        let status = svc
            .query_status()
            .map_err(|e| format!("cannot query service '{service}': {e}"))?;
        Ok(matches!(
            status.current_state,
            ServiceState::Running | ServiceState::StartPending
        ))
    }

    fn restart(&self, service: &str) -> Result<(), String> {
        use windows_service::service::ServiceAccess;
        use windows_service::service_manager::{ServiceManager as WinSm, ServiceManagerAccess};
        let sm = WinSm::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
            .map_err(|e| format!("cannot open the service manager: {e}"))?;
        let svc = sm
            .open_service(service, ServiceAccess::START | ServiceAccess::QUERY_STATUS)
            .map_err(|e| format!("cannot open service '{service}': {e}"))?;
        svc.start(&[] as &[&std::ffi::OsStr])
            .map_err(|e| format!("cannot start service '{service}': {e}"))
    }
}
