//! Putting a verified build in place, trying it, and putting the previous one back.
//!
//! The new build is staged next to the running executable (`<exe>.new`, same folder, so the
//! renames stay on one file system), the running one is kept as `<exe>.previous`, and the new
//! one takes its name: on Unix with one atomic rename over it (the previous one kept through a
//! hard link first); on Windows, where a running `.exe` can be renamed but not overwritten, by
//! renaming the running one away first and then moving the new one in.
//!
//! The trial: the new build is started as `update-trial`, which runs the normal agent until
//! its first successful `auth` (carrying `previous_version`), writes `update_confirmed` in the
//! state folder and exits 0. A trial that exits before that, fails, or does not confirm within
//! `[update] confirm_timeout_seconds` is killed and the previous build is put back.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use crate::agent::Ctx;

/// A swapped-in build: `exe` is the new one, `previous` the one that was running.
#[derive(Debug)]
pub struct Swapped {
    pub exe: PathBuf,
    pub previous: PathBuf,
}

/// `<exe><suffix>` in the same folder.
fn sibling(exe: &Path, suffix: &str) -> PathBuf {
    let mut name = exe.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    exe.with_file_name(name)
}

/// Puts the verified build at `verified` in place of the running executable.
pub fn swap(verified: &Path) -> Result<Swapped, String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find the running executable: {e}"))?;
    swap_at(&exe, verified)
}

pub fn swap_at(exe: &Path, verified: &Path) -> Result<Swapped, String> {
    let previous = sibling(exe, ".previous");
    let staged = sibling(exe, ".new");
    let _ = std::fs::remove_file(&staged);
    std::fs::copy(verified, &staged).map_err(|e| {
        let _ = std::fs::remove_file(&staged);
        format!("cannot stage the new build next to {}: {e}", exe.display())
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("cannot make the new build executable: {e}"))?;
    }
    if let Ok(f) = std::fs::File::open(&staged) {
        let _ = f.sync_all();
    }
    let _ = std::fs::remove_file(&previous);
    #[cfg(unix)]
    {
        if std::fs::hard_link(exe, &previous).is_err() {
            std::fs::copy(exe, &previous)
                .map_err(|e| format!("cannot keep the previous build: {e}"))?;
        }
        std::fs::rename(&staged, exe)
            .map_err(|e| format!("cannot move the new build into place: {e}"))?;
    }
    #[cfg(not(unix))]
    {
        std::fs::rename(exe, &previous)
            .map_err(|e| format!("cannot move the running build aside: {e}"))?;
        if let Err(e) = std::fs::rename(&staged, exe) {
            let _ = std::fs::rename(&previous, exe);
            return Err(format!("cannot move the new build into place: {e}"));
        }
    }
    let _ = std::fs::remove_file(verified);
    Ok(Swapped {
        exe: exe.to_owned(),
        previous,
    })
}

/// Puts the previous build back.
pub fn rollback(s: &Swapped) -> Result<(), String> {
    #[cfg(not(unix))]
    {
        // The failed build is not running any more; Windows cannot rename over a file.
        let failed = sibling(&s.exe, ".failed");
        let _ = std::fs::remove_file(&failed);
        if s.exe.exists() {
            std::fs::rename(&s.exe, &failed)
                .map_err(|e| format!("cannot move the failed build aside: {e}"))?;
        }
    }
    std::fs::rename(&s.previous, &s.exe)
        .map_err(|e| format!("cannot put the previous build back: {e}"))
}

/// Starts the new build on trial and waits until it confirms, exits or times out.
pub async fn trial(ctx: &Ctx, s: &Swapped, update_id: Option<&str>) -> Result<(), String> {
    let confirmed = ctx.state.update_confirmed_path();
    let _ = std::fs::remove_file(&confirmed);
    let mut cmd = tokio::process::Command::new(&s.exe);
    cmd.arg("update-trial")
        .arg("--config")
        .arg(&ctx.config_path)
        .arg("--previous-version")
        .arg(ctx.version);
    if let Some(id) = update_id {
        cmd.arg("--update-id").arg(id);
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("the new build did not start: {e}"))?;
    let limit = ctx.config.confirm_timeout();
    let deadline = Instant::now() + limit;
    loop {
        if confirmed.exists() {
            // It exits by itself right after confirming.
            if tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
            let _ = std::fs::remove_file(&confirmed);
            return Ok(());
        }
        match child.try_wait() {
            Ok(Some(status)) => {
                if confirmed.exists() {
                    continue;
                }
                return Err(format!(
                    "the new build exited ({status}) before connecting to the server"
                ));
            }
            Ok(None) => {}
            Err(e) => return Err(format!("cannot watch the new build: {e}")),
        }
        if Instant::now() >= deadline {
            let _ = child.kill().await;
            return Err(format!(
                "the new build did not connect within {} s (update.confirm_timeout_seconds)",
                limit.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Set in the systemd unit: the agent runs as a service.
pub const SYSTEMD_ENV: &str = "GURURMM_AGENT_UNDER_SYSTEMD";

/// The exit code that asks the service manager to start the (new) binary again.
pub const RESTART_EXIT_CODE: i32 = 75;

/// After a confirmed update: starts the new build in this process's place.
///
/// - Under systemd: exits with [`RESTART_EXIT_CODE`]; the unit restarts on failure.
/// - As the Windows service: starts `restart-service` (the new build, detached), which waits
///   for this service to stop and starts it again, then stops cleanly (exit 0). If that helper
///   cannot start, the service stops with [`RESTART_EXIT_CODE`] so the service manager's
///   restart-on-failure (set by `install`) is the fallback.
/// - In the foreground: Unix executes the new binary with the same arguments; Windows starts
///   it and exits.
///
/// `exe` is where the new build was put (the running process's own path may read as deleted).
pub fn restart_into_new_build(exe: &Path, as_service: bool) -> i32 {
    if as_service {
        return restart_windows_service(exe);
    }
    if std::env::var_os(SYSTEMD_ENV).is_some() {
        eprintln!(
            "gururmm-agent: exiting with code {RESTART_EXIT_CODE} so the service manager starts the new build"
        );
        return RESTART_EXIT_CODE;
    }
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let e = std::process::Command::new(exe).args(&args).exec();
        eprintln!("gururmm-agent: cannot start the new build: {e}");
        1
    }
    #[cfg(not(unix))]
    {
        match std::process::Command::new(exe).args(&args).spawn() {
            Ok(_) => 0,
            Err(e) => {
                eprintln!("gururmm-agent: cannot start the new build: {e}");
                1
            }
        }
    }
}

/// The Windows service's restart: see [`restart_into_new_build`].
fn restart_windows_service(exe: &Path) -> i32 {
    let mut helper = std::process::Command::new(exe);
    helper
        .arg("restart-service")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    #[cfg(windows)]
    {
        use std::os::windows::process::CommandExt;
        // Outlives this process: no console, its own process group.
        const DETACHED_PROCESS: u32 = 0x0000_0008;
        const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
        helper.creation_flags(DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP);
    }
    match helper.spawn() {
        Ok(_) => {
            tracing::info!("service restart handed to the new build; stopping");
            0
        }
        Err(e) => {
            tracing::error!(
                "cannot start the service restart helper ({e}); stopping with code \
                 {RESTART_EXIT_CODE} so the service manager restarts the service"
            );
            RESTART_EXIT_CODE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_keeps_the_previous_build_and_rollback_puts_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("agent");
        std::fs::write(&exe, b"old").unwrap();
        let new = dir.path().join("download.part");
        std::fs::write(&new, b"new").unwrap();
        let s = swap_at(&exe, &new).unwrap();
        assert_eq!(std::fs::read(&exe).unwrap(), b"new");
        assert_eq!(std::fs::read(&s.previous).unwrap(), b"old");
        assert!(!new.exists());
        assert!(!sibling(&exe, ".new").exists());
        rollback(&s).unwrap();
        assert_eq!(std::fs::read(&exe).unwrap(), b"old");
    }
}
