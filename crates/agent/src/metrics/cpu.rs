//! CPU usage of the whole machine, in percent, measured between two collections.

use gururmm_protocol::MetricsReport;
use sysinfo::System;

use super::Collector;

pub struct Cpu {
    system: System,
}

impl Cpu {
    pub fn new() -> Cpu {
        // Only the CPU part is loaded: `System::new_all()` reads everything (and aborts under
        // Wine), so it is never used.
        let mut system = System::new();
        system.refresh_cpu_usage();
        Cpu { system }
    }
}

impl Default for Cpu {
    fn default() -> Self {
        Cpu::new()
    }
}

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
