//! CPU usage of the whole machine, in percent, measured between two collections.
//!
//! Unix: sysinfo. Windows: `GetSystemTimes` (idle, kernel and user time of all CPUs), never
//! sysinfo's CPU refresh, which goes through the Performance Data Helper (PDH): PDH is missing
//! or broken on some machines (Wine has no `PdhEnumObjectsW` and the process aborts), and
//! `GetSystemTimes` is a plain kernel32 call present on every Windows since XP.

use gururmm_protocol::MetricsReport;

use super::Collector;

/// The busy share of `total` time, in percent, one decimal.
pub fn percent(busy: u64, total: u64) -> Option<f64> {
    if total == 0 {
        return None;
    }
    let p = (busy.min(total) as f64) * 100.0 / (total as f64);
    Some((p.clamp(0.0, 100.0) * 10.0).round() / 10.0)
}

#[cfg(not(windows))]
pub struct Cpu {
    system: sysinfo::System,
}

#[cfg(not(windows))]
impl Cpu {
    pub fn new() -> Cpu {
        // Only the CPU part is loaded: `System::new_all()` reads everything.
        let mut system = sysinfo::System::new();
        system.refresh_cpu_usage();
        Cpu { system }
    }
}

#[cfg(not(windows))]
impl Collector for Cpu {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn collect(&mut self, report: &mut MetricsReport) -> Result<(), String> {
        self.system.refresh_cpu_usage();
        if self.system.cpus().is_empty() {
            return Err("no CPU counters readable".into());
        }
        let usage = f64::from(self.system.global_cpu_usage());
        if !usage.is_finite() {
            return Err("CPU usage is not a number".into());
        }
        report.cpu_percent = Some((usage.clamp(0.0, 100.0) * 10.0).round() / 10.0);
        Ok(())
    }
}

/// Idle, kernel (which includes idle) and user time of all CPUs, in 100 ns units.
#[cfg(windows)]
#[derive(Debug, Clone, Copy)]
pub struct SystemTimes {
    pub idle: u64,
    pub kernel: u64,
    pub user: u64,
}

#[cfg(windows)]
impl SystemTimes {
    /// Busy and total time from `earlier` to `self`.
    pub fn since(&self, earlier: &SystemTimes) -> (u64, u64) {
        let idle = self.idle.saturating_sub(earlier.idle);
        let total = self
            .kernel
            .saturating_sub(earlier.kernel)
            .saturating_add(self.user.saturating_sub(earlier.user));
        (total.saturating_sub(idle), total)
    }
}

#[cfg(windows)]
#[allow(unsafe_code)]
pub fn system_times() -> Result<SystemTimes, String> {
    use windows::Win32::Foundation::FILETIME;
    use windows::Win32::System::Threading::GetSystemTimes;
    let mut idle = FILETIME::default();
    let mut kernel = FILETIME::default();
    let mut user = FILETIME::default();
    // SAFETY: three valid, writable FILETIME structures owned by this frame.
    unsafe { GetSystemTimes(Some(&mut idle), Some(&mut kernel), Some(&mut user)) }
        .map_err(|e| format!("GetSystemTimes failed: {e}"))?;
    let join = |t: FILETIME| (u64::from(t.dwHighDateTime) << 32) | u64::from(t.dwLowDateTime);
    Ok(SystemTimes {
        idle: join(idle),
        kernel: join(kernel),
        user: join(user),
    })
}

#[cfg(windows)]
pub struct Cpu {
    last: Option<SystemTimes>,
}

#[cfg(windows)]
impl Cpu {
    pub fn new() -> Cpu {
        Cpu {
            last: system_times().ok(),
        }
    }
}

#[cfg(windows)]
impl Collector for Cpu {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn collect(&mut self, report: &mut MetricsReport) -> Result<(), String> {
        let mut last = match self.last {
            Some(t) => t,
            None => system_times()?,
        };
        let mut now = system_times()?;
        // Right after start (or two calls in a row) too little time has passed to measure:
        // sample again over a quarter of a second. Collection runs off the async runtime.
        if now.since(&last).1 == 0 {
            last = now;
            std::thread::sleep(std::time::Duration::from_millis(250));
            now = system_times()?;
        }
        self.last = Some(now);
        let (busy, total) = now.since(&last);
        report.cpu_percent = Some(percent(busy, total).ok_or("no CPU time passed")?);
        Ok(())
    }
}

impl Default for Cpu {
    fn default() -> Self {
        Cpu::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_of_busy_time() {
        assert_eq!(percent(0, 0), None);
        assert_eq!(percent(1, 4), Some(25.0));
        assert_eq!(percent(1, 3), Some(33.3));
        assert_eq!(percent(9, 4), Some(100.0));
    }
}
