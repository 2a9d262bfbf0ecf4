//! Physical memory in use and installed, in bytes.

use gururmm_protocol::MetricsReport;
use sysinfo::System;

use super::Collector;

pub struct Memory {
    system: System,
}

impl Memory {
    pub fn new() -> Memory {
        Memory {
            system: System::new(),
        }
    }
}

impl Default for Memory {
    fn default() -> Self {
        Memory::new()
    }
}

impl Collector for Memory {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn collect(&mut self, report: &mut MetricsReport) -> Result<(), String> {
        self.system.refresh_memory();
        let total = self.system.total_memory();
        if total == 0 {
            return Err("memory counters not readable".into());
        }
        report.memory_total_bytes = Some(total);
        report.memory_used_bytes = Some(self.system.used_memory().min(total));
        Ok(())
    }
}
