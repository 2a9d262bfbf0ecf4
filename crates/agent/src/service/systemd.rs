//! `gururmm-agent install` / `uninstall` on Linux: writes the unit to
//! /etc/systemd/system/gururmm-agent.service and enables and starts it (and the reverse).

use std::path::Path;

pub const UNIT_NAME: &str = "gururmm-agent.service";
pub const UNIT_PATH: &str = "/etc/systemd/system/gururmm-agent.service";

/// The unit file for an agent binary at `exe` reading `config`.
pub fn unit_text(exe: &Path, config: &Path) -> String {
    format!(
        "[Unit]\n\
         Description=GuruRMM agent\n\
         After=network-online.target\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart=\"{exe}\" run --config \"{config}\"\n\
         Restart=always\n\
         # A self-update exits non-zero so systemd starts the new build.\n\
         Environment=GURURMM_AGENT_UNDER_SYSTEMD=1\n\
         RestartSec=10\n\
         # SIGTERM goes into the agent's shutdown path.\n\
         KillSignal=SIGTERM\n\
         TimeoutStopSec=30\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        exe = exe.display(),
        config = config.display(),
    )
}

#[cfg(unix)]
fn systemctl(args: &[&str]) -> anyhow::Result<()> {
    let status = std::process::Command::new("systemctl")
        .args(args)
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run systemctl {}: {e}", args.join(" ")))?;
    if !status.success() {
        anyhow::bail!("systemctl {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Writes, enables and starts the unit.
#[cfg(unix)]
pub fn install(config: &Path) -> anyhow::Result<()> {
    if !Path::new("/run/systemd/system").exists() {
        anyhow::bail!(
            "systemd is not running on this machine; start `gururmm-agent run --config FILE` from its init system instead"
        );
    }
    let exe = std::env::current_exe()?;
    let config = std::path::absolute(config)?;
    std::fs::write(UNIT_PATH, unit_text(&exe, &config))
        .map_err(|e| anyhow::anyhow!("cannot write {UNIT_PATH} (run as root): {e}"))?;
    systemctl(&["daemon-reload"])?;
    systemctl(&["enable", "--now", UNIT_NAME])?;
    println!("installed and started {UNIT_NAME} ({UNIT_PATH})");
    Ok(())
}

/// Stops, disables and removes the unit.
#[cfg(unix)]
pub fn uninstall() -> anyhow::Result<()> {
    if Path::new(UNIT_PATH).exists() {
        // Not installed as a running unit is fine: keep going.
        let _ = systemctl(&["disable", "--now", UNIT_NAME]);
        std::fs::remove_file(UNIT_PATH)
            .map_err(|e| anyhow::anyhow!("cannot remove {UNIT_PATH} (run as root): {e}"))?;
        systemctl(&["daemon-reload"])?;
        println!("stopped and removed {UNIT_NAME}");
    } else {
        println!("{UNIT_PATH} does not exist; nothing to uninstall");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_runs_the_agent_with_its_config() {
        let text = unit_text(
            Path::new("/usr/local/bin/gururmm-agent"),
            Path::new("/etc/gururmm/agent.toml"),
        );
        assert!(text.contains(
            "ExecStart=\"/usr/local/bin/gururmm-agent\" run --config \"/etc/gururmm/agent.toml\""
        ));
        assert!(text.contains("Restart=always"));
        assert!(text.contains(&format!(
            "Environment={}=1",
            crate::update::install::SYSTEMD_ENV
        )));
        assert!(text.contains("WantedBy=multi-user.target"));
    }

    #[test]
    fn shipped_unit_matches_the_generated_one() {
        let shipped = include_str!("../../dist/gururmm-agent.service");
        let generated = unit_text(
            Path::new("/usr/local/bin/gururmm-agent"),
            Path::new("/etc/gururmm/agent.toml"),
        );
        assert_eq!(shipped, generated);
    }
}
