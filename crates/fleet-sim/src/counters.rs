//! What the simulated fleet saw, shared by every agent task. Plain atomics: 20,000 agents
//! bump them concurrently and a reporter reads them without stopping anyone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

#[derive(Default)]
pub struct Counters {
    /// Agents with an authenticated socket right now.
    pub connected: AtomicI64,
    /// Site-code enrollments that returned a key.
    pub enrolled: AtomicU64,
    /// `auth_response` with `success: false`.
    pub auth_failures: AtomicU64,
    /// TCP connect or WebSocket handshake failures (before any auth).
    pub connect_errors: AtomicU64,
    /// Successful authentications (first connects and reconnects).
    pub connects: AtomicU64,
    /// Successful authentications of an agent that had been connected before.
    pub reconnects: AtomicU64,
    /// Authenticated sockets that ended for any reason other than the simulator stopping.
    pub disconnects: AtomicU64,
    pub heartbeats: AtomicU64,
    /// Server `ping` messages answered (each with a heartbeat, as the real agent does).
    pub pings: AtomicU64,
    pub metrics_sent: AtomicU64,
    pub commands_received: AtomicU64,
    /// Command frames whose id this fleet had already received.
    pub duplicate_commands: AtomicU64,
    pub results_sent: AtomicU64,
    /// `result_ack`s received: results the server says it stored.
    pub results_acked: AtomicU64,
    /// Server frames that did not parse as a `ServerMessage`.
    pub unreadable_frames: AtomicU64,
    /// Agents that finished their flood quota (`--reports-per-agent`).
    pub flood_finished: AtomicU64,
    /// Every command id received, with how many times.
    command_ids: Mutex<HashMap<String, u32>>,
    /// Every `update` received, by its update id, with how many times (the simulator does
    /// not install anything: it only counts).
    update_ids: Mutex<HashMap<String, u32>>,
}

/// A copy of the counters at one moment, for printing and for JSON.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Snapshot {
    pub connected: i64,
    pub enrolled: u64,
    pub auth_failures: u64,
    pub connect_errors: u64,
    pub connects: u64,
    pub reconnects: u64,
    pub disconnects: u64,
    pub heartbeats: u64,
    pub pings: u64,
    pub metrics_sent: u64,
    pub commands_received: u64,
    pub duplicate_commands: u64,
    pub results_sent: u64,
    pub results_acked: u64,
    pub unreadable_frames: u64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a received command id; returns true when it was seen before.
    pub(crate) fn command_received(&self, id: &str) -> bool {
        Self::add(&self.commands_received);
        let mut ids = self.command_ids.lock().expect("command id table");
        let count = ids.entry(id.to_owned()).or_insert(0);
        *count += 1;
        if *count > 1 {
            Self::add(&self.duplicate_commands);
            true
        } else {
            false
        }
    }

    /// Records a received `update` by its update id.
    pub(crate) fn update_received(&self, update_id: &str) {
        let mut ids = self.update_ids.lock().expect("update id table");
        *ids.entry(update_id.to_owned()).or_insert(0) += 1;
    }

    /// Every `update` received so far, by update id, with how many times it arrived.
    pub fn update_receipts(&self) -> HashMap<String, u32> {
        self.update_ids.lock().expect("update id table").clone()
    }

    /// Every command id received so far, with how many times it arrived.
    pub fn command_receipts(&self) -> HashMap<String, u32> {
        self.command_ids.lock().expect("command id table").clone()
    }

    pub fn snapshot(&self) -> Snapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            connected: self.connected.load(Ordering::Relaxed),
            enrolled: get(&self.enrolled),
            auth_failures: get(&self.auth_failures),
            connect_errors: get(&self.connect_errors),
            connects: get(&self.connects),
            reconnects: get(&self.reconnects),
            disconnects: get(&self.disconnects),
            heartbeats: get(&self.heartbeats),
            pings: get(&self.pings),
            metrics_sent: get(&self.metrics_sent),
            commands_received: get(&self.commands_received),
            duplicate_commands: get(&self.duplicate_commands),
            results_sent: get(&self.results_sent),
            results_acked: get(&self.results_acked),
            unreadable_frames: get(&self.unreadable_frames),
        }
    }
}

impl Snapshot {
    /// One line, ASCII, fixed order: what the periodic report prints.
    pub fn line(&self) -> String {
        format!(
            "connected={} enrolled={} auth_failures={} connect_errors={} connects={} reconnects={} \
             disconnects={} heartbeats={} pings={} metrics_sent={} commands_received={} \
             duplicate_commands={} results_sent={} results_acked={}",
            self.connected,
            self.enrolled,
            self.auth_failures,
            self.connect_errors,
            self.connects,
            self.reconnects,
            self.disconnects,
            self.heartbeats,
            self.pings,
            self.metrics_sent,
            self.commands_received,
            self.duplicate_commands,
            self.results_sent,
            self.results_acked
        )
    }
}
