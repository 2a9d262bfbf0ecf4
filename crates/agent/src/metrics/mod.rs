//! Metrics: one collector per kind (cpu, memory, disk, network), each in its own module,
//! each writing its part of one [`MetricsReport`]. A collector that fails (or panics) is
//! logged and its value stays `null`; the rest of the report still goes out.

pub mod cpu;
pub mod disk;
pub mod memory;
pub mod network;
pub mod network_state;
pub mod probe;

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use gururmm_protocol::MetricsReport;

use crate::config::MetricsSection;
use crate::logging::ascii;

/// The kinds of metric: `collect_NAME` in the config, `probe-collector NAME` on the command
/// line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CollectorKind {
    Cpu,
    Memory,
    Disk,
    Network,
}

impl CollectorKind {
    pub const ALL: [CollectorKind; 4] = [
        CollectorKind::Cpu,
        CollectorKind::Memory,
        CollectorKind::Disk,
        CollectorKind::Network,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CollectorKind::Cpu => "cpu",
            CollectorKind::Memory => "memory",
            CollectorKind::Disk => "disk",
            CollectorKind::Network => "network",
        }
    }

    /// The kind named `name`, if any.
    pub fn parse(name: &str) -> Option<CollectorKind> {
        CollectorKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    fn build(self) -> Box<dyn Collector> {
        match self {
            CollectorKind::Cpu => Box::new(cpu::Cpu::new()),
            CollectorKind::Memory => Box::new(memory::Memory::new()),
            CollectorKind::Disk => Box::new(disk::Disk::new()),
            CollectorKind::Network => Box::new(network::Network::new()),
        }
    }
}

/// One kind of metric.
pub trait Collector: Send {
    fn name(&self) -> &'static str;
    /// Fills this collector's fields of `report`, or says why it cannot.
    fn collect(&mut self, report: &mut MetricsReport) -> Result<(), String>;
}

/// The enabled collectors, with per-collector failure bookkeeping for rate-limited logs.
pub struct Metrics {
    collectors: Vec<Box<dyn Collector>>,
    failures: HashMap<&'static str, u64>,
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn empty_report() -> MetricsReport {
    MetricsReport {
        timestamp: now_unix(),
        cpu_percent: None,
        memory_used_bytes: None,
        memory_total_bytes: None,
        disks: Vec::new(),
        network: None,
    }
}

impl Metrics {
    /// The collectors the config enables, and only those.
    pub fn from_config(section: &MetricsSection) -> Metrics {
        Metrics::with_collectors(section.collectors.iter().map(|k| k.build()).collect())
    }

    pub fn with_collectors(collectors: Vec<Box<dyn Collector>>) -> Metrics {
        Metrics {
            collectors,
            failures: HashMap::new(),
        }
    }

    /// Runs every collector; failures leave their fields `null`.
    pub fn collect(&mut self) -> MetricsReport {
        let mut report = empty_report();
        for c in &mut self.collectors {
            let name = c.name();
            let mut part = empty_report();
            let outcome = catch_unwind(AssertUnwindSafe(|| c.collect(&mut part)))
                .unwrap_or_else(|_| Err("collector panicked".to_owned()));
            match outcome {
                Ok(()) => {
                    merge(&mut report, part);
                    self.failures.remove(name);
                }
                Err(e) => {
                    let n = self.failures.entry(name).or_insert(0);
                    *n += 1;
                    // The first failure, then every 60th, so a broken collector cannot flood the log.
                    if *n == 1 || (*n).is_multiple_of(60) {
                        tracing::warn!(
                            "{name} collector failed ({n} times in a row): {}; sending null",
                            ascii(&e)
                        );
                    }
                }
            }
        }
        report
    }
}

fn merge(into: &mut MetricsReport, part: MetricsReport) {
    if part.cpu_percent.is_some() {
        into.cpu_percent = part.cpu_percent;
    }
    if part.memory_used_bytes.is_some() {
        into.memory_used_bytes = part.memory_used_bytes;
    }
    if part.memory_total_bytes.is_some() {
        into.memory_total_bytes = part.memory_total_bytes;
    }
    if !part.disks.is_empty() {
        into.disks = part.disks;
    }
    if part.network.is_some() {
        into.network = part.network;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Broken;
    impl Collector for Broken {
        fn name(&self) -> &'static str {
            "broken"
        }
        fn collect(&mut self, report: &mut MetricsReport) -> Result<(), String> {
            report.cpu_percent = Some(99.0);
            Err("no such counter".into())
        }
    }

    struct Panics;
    impl Collector for Panics {
        fn name(&self) -> &'static str {
            "panics"
        }
        fn collect(&mut self, _: &mut MetricsReport) -> Result<(), String> {
            panic!("boom")
        }
    }

    #[test]
    fn failing_collector_is_null_and_rest_goes_out() {
        let mut m = Metrics::with_collectors(vec![
            Box::new(Broken),
            Box::new(Panics),
            Box::new(memory::Memory::new()),
        ]);
        let r = m.collect();
        assert_eq!(
            r.cpu_percent, None,
            "a failed collector's half-written value is dropped"
        );
        assert!(r.memory_total_bytes.unwrap() > 0);
        let json = gururmm_protocol::AgentMessage::MetricsReport(r).to_json();
        assert!(json.contains("\"cpu_percent\":null"), "{json}");
    }

    #[test]
    fn only_enabled_collectors_run() {
        let section = MetricsSection::only(CollectorKind::Memory);
        let r = Metrics::from_config(&section).collect();
        assert!(r.cpu_percent.is_none() && r.network.is_none() && r.disks.is_empty());
        assert!(r.memory_used_bytes.is_some());
    }

    #[test]
    fn all_collectors_work_on_linux() {
        let mut m = Metrics::from_config(&MetricsSection::default());
        let _ = m.collect();
        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        let r = m.collect();
        let cpu = r.cpu_percent.expect("cpu");
        assert!((0.0..=100.0).contains(&cpu));
        assert!(r.memory_used_bytes.unwrap() <= r.memory_total_bytes.unwrap());
        assert!(r.network.is_some());
    }
}
