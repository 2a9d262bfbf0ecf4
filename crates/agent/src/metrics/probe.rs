//! Trying each collector once in a child process before the agent relies on it.
//!
//! A collector calls into the operating system, and on some machines a system API is missing
//! or broken in a way that does not fail but aborts the whole process (sysinfo's CPU refresh
//! under Wine calls `PdhEnumObjectsW`, which Wine does not implement: the process dies; a
//! damaged PDH registry on a real Windows machine can do the same). `catch_unwind` cannot catch
//! that. So on Windows the agent first runs `gururmm-agent probe-collector NAME` for every
//! enabled collector; a collector whose child dies, fails to collect or hangs is turned off for
//! this run, with a warning in the log, and the others go on.

use std::time::Duration;

use super::CollectorKind;
use crate::config::MetricsSection;

/// The most a collector's trial run may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// Set to a comma-separated list of collector names, it makes their trial run abort the child
/// process as a broken system API would. A test hook (the Wine test uses it); never set it on
/// a managed machine.
pub const ABORT_HOOK_ENV: &str = "GURURMM_TEST_PROBE_ABORT";

/// The child's side: collects twice with only `name` enabled and prints the report.
/// Exit code 0 if the collector worked, 1 if it reported an error, 2 for an unknown name.
pub fn run_probe(name: &str) -> i32 {
    let Some(kind) = CollectorKind::parse(name) else {
        let names: Vec<&str> = CollectorKind::ALL.iter().map(|k| k.as_str()).collect();
        eprintln!(
            "gururmm-agent: unknown collector '{name}' (one of: {})",
            names.join(", ")
        );
        return 2;
    };
    let hooked = |v: String| {
        v.split(',')
            .any(|n| CollectorKind::parse(n.trim()) == Some(kind))
    };
    if std::env::var(ABORT_HOOK_ENV).is_ok_and(hooked) {
        std::process::abort();
    }
    let mut metrics = super::Metrics::from_config(&MetricsSection::only(kind));
    let _ = metrics.collect();
    let report = metrics.collect();
    let json = gururmm_protocol::AgentMessage::MetricsReport(report.clone()).to_json();
    println!("{json}");
    let got = report.cpu_percent.is_some()
        || report.memory_total_bytes.is_some()
        || !report.disks.is_empty()
        || report.network.is_some();
    if got {
        0
    } else {
        1
    }
}

/// The agent's side: every enabled collector is tried in a child process (all at once); the
/// section comes back with those that did not work turned off.
pub async fn usable(section: &MetricsSection) -> MetricsSection {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!("cannot find the agent's own binary to try the collectors: {e}");
            return section.clone();
        }
    };
    let trials = section.collectors.iter().map(|&kind| {
        let exe = exe.clone();
        let name = kind.as_str();
        async move {
            let mut cmd = tokio::process::Command::new(&exe);
            cmd.args(["probe-collector", name])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true);
            #[cfg(windows)]
            {
                const CREATE_NO_WINDOW: u32 = 0x0800_0000;
                cmd.creation_flags(CREATE_NO_WINDOW);
            }
            let outcome = match tokio::time::timeout(PROBE_TIMEOUT, cmd.status()).await {
                Ok(Ok(status)) if status.success() => Ok(()),
                Ok(Ok(status)) => Err(format!("its trial run ended with {status}")),
                Ok(Err(e)) => {
                    // Not the collector's fault: keep it.
                    tracing::warn!("cannot try the {name} collector in a child process: {e}");
                    Ok(())
                }
                Err(_) => Err(format!(
                    "its trial run did not finish within {} s",
                    PROBE_TIMEOUT.as_secs()
                )),
            };
            (kind, outcome)
        }
    });
    let mut result = section.clone();
    for (kind, outcome) in futures_util::future::join_all(trials).await {
        if let Err(why) = outcome {
            let name = kind.as_str();
            tracing::warn!(
                "{name} collector turned off for this run: {why}; the other metrics go on, {name} is sent as null"
            );
            result = result.without(kind);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_without() {
        let all = MetricsSection::default();
        assert_eq!(all.collectors, CollectorKind::ALL);
        let s = all.without(CollectorKind::Cpu);
        assert!(!s.collects(CollectorKind::Cpu) && s.collects(CollectorKind::Disk));
        for kind in CollectorKind::ALL {
            assert_eq!(CollectorKind::parse(kind.as_str()), Some(kind));
        }
    }

    #[test]
    fn probe_of_unknown_name_is_refused() {
        assert_eq!(run_probe("gpu"), 2);
    }
}
