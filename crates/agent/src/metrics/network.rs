//! Bytes received and sent since boot over all interfaces except loopback.

use gururmm_protocol::{MetricsReport, NetworkCounters};
use sysinfo::Networks;

use super::Collector;

pub struct Network {
    networks: Networks,
}

impl Network {
    pub fn new() -> Network {
        Network {
            networks: Networks::new_with_refreshed_list(),
        }
    }
}

impl Default for Network {
    fn default() -> Self {
        Network::new()
    }
}

pub fn is_loopback(name: &str) -> bool {
    name == "lo" || name.starts_with("lo0") || name.to_ascii_lowercase().contains("loopback")
}

impl Collector for Network {
    fn name(&self) -> &'static str {
        "network"
    }

    fn collect(&mut self, report: &mut MetricsReport) -> Result<(), String> {
        self.networks.refresh(true);
        let mut counters = NetworkCounters::default();
        for (name, data) in self.networks.list() {
            if is_loopback(name) {
                continue;
            }
            counters.rx_bytes = counters.rx_bytes.saturating_add(data.total_received());
            counters.tx_bytes = counters.tx_bytes.saturating_add(data.total_transmitted());
        }
        report.network = Some(counters);
        Ok(())
    }
}
