//! A fleet: N simulated agents in this process, one tokio task each, started at a given rate.
//! [`Fleet::start`] returns at once; the handle reads counters, orders a flood and stops
//! the fleet.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::counters::{Counters, Snapshot};
use crate::keys::{KeyEntry, KeyWriter};

/// How the fleet behaves. [`FleetConfig::default`] is a small, gentle fleet.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// WebSocket URLs (`ws://host:port/ws`); agent i starts on `servers[i % n]` and a
    /// reconnect tries the next one, as behind a load balancer.
    pub servers: Vec<String>,
    pub agents: usize,
    /// Used to enroll devices that have no key (and again when a key is refused).
    pub site_code: Option<String>,
    pub keys_file: Option<PathBuf>,
    /// Device i is `{device_prefix}-{i:06}` (its hostname too).
    pub device_prefix: String,
    pub heartbeat: Duration,
    pub metrics: Duration,
    /// How long a simulated command "runs" before its result is sent.
    pub command_delay: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Agents started per second; 0 starts them all at once.
    pub ramp_per_sec: f64,
    /// Bind each socket to 127.0.0.(2 + i % 250) when the server is on loopback, so one
    /// source address does not run out of ephemeral ports.
    pub spread_source_addresses: bool,
    /// Connect + handshake + auth_response, each attempt.
    pub connect_timeout: Duration,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            servers: Vec::new(),
            agents: 10,
            site_code: None,
            keys_file: None,
            device_prefix: "sim".into(),
            heartbeat: Duration::from_secs(30),
            metrics: Duration::from_secs(60),
            command_delay: Duration::ZERO,
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(10),
            ramp_per_sec: 0.0,
            spread_source_addresses: true,
            connect_timeout: Duration::from_secs(30),
        }
    }
}

/// One server the fleet talks to, resolved once at start.
pub(crate) struct Target {
    pub url: String,
    pub addr: SocketAddr,
}

/// What one simulated device knows about itself.
pub(crate) struct Slot {
    pub device_id: String,
    pub identity: Mutex<Identity>,
    pub connected: std::sync::atomic::AtomicBool,
}

#[derive(Default, Clone)]
pub(crate) struct Identity {
    pub agent_id: Option<String>,
    pub api_key: Option<String>,
}

/// A flood order: every agent sends `metrics_report`s back to back until it has sent
/// `per_agent` of them (counted from the order) or `until` has passed.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FloodOrder {
    pub generation: u64,
    pub per_agent: Option<u64>,
    pub until: Option<Instant>,
}

pub(crate) struct Shared {
    pub config: FleetConfig,
    pub targets: Vec<Target>,
    pub counters: Counters,
    pub slots: Vec<Slot>,
    pub keys: Option<KeyWriter>,
    pub ws_config: WebSocketConfig,
}

impl Shared {
    /// The source address agent `index` binds, if any.
    pub fn source_for(&self, index: usize, target: &SocketAddr) -> Option<SocketAddr> {
        let loopback_v4 = matches!(target, SocketAddr::V4(a) if a.ip().is_loopback());
        (self.config.spread_source_addresses && loopback_v4).then(|| {
            let last = 2 + (index % 250) as u8;
            SocketAddr::new(Ipv4Addr::new(127, 0, 0, last).into(), 0)
        })
    }

    pub fn remember_key(&self, index: usize, agent_id: &str, api_key: &str) {
        let slot = &self.slots[index];
        {
            let mut id = slot.identity.lock().expect("identity");
            id.agent_id = Some(agent_id.to_owned());
            id.api_key = Some(api_key.to_owned());
        }
        if let Some(keys) = &self.keys {
            keys.append(&KeyEntry {
                device_id: slot.device_id.clone(),
                agent_id: agent_id.to_owned(),
                api_key: api_key.to_owned(),
            });
        }
    }

    /// A random time in [min, cap] where cap doubles with each failure up to the maximum:
    /// spreads a whole fleet's reconnects instead of having them arrive at once.
    pub fn backoff(&self, failures: u32) -> Duration {
        let min = self.config.backoff_min;
        let max = self.config.backoff_max.max(min);
        let cap = min
            .saturating_mul(2u32.saturating_pow(failures.min(16) + 1))
            .min(max);
        if cap <= min {
            return min;
        }
        rand::thread_rng().gen_range(min..=cap)
    }
}

/// Reads a running fleet's counters from another task.
#[derive(Clone)]
pub struct CounterReader(Arc<Shared>);

impl CounterReader {
    pub fn snapshot(&self) -> Snapshot {
        self.0.counters.snapshot()
    }
}

/// A running fleet.
pub struct Fleet {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    flood: watch::Sender<FloodOrder>,
    started: Instant,
    launcher: Option<JoinHandle<Vec<JoinHandle<()>>>>,
}

/// The small buffers that keep 20,000 sockets affordable: tungstenite's defaults
/// (128 KiB read buffer) would cost gigabytes.
pub fn small_ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(1024 * 1024)
        .max_message_size(Some(8 * 1024 * 1024))
        .max_frame_size(Some(8 * 1024 * 1024))
}

async fn resolve(url: &str) -> anyhow::Result<SocketAddr> {
    let uri: Uri = url
        .parse()
        .map_err(|e| anyhow::anyhow!("server URL {url}: {e}"))?;
    let host = uri
        .host()
        .ok_or_else(|| anyhow::anyhow!("server URL {url} has no host"))?
        .trim_matches(|c| c == '[' || c == ']')
        .to_owned();
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("wss") {
            443
        } else {
            80
        });
    if uri.scheme_str() == Some("wss") {
        anyhow::bail!("{url}: wss:// is not supported by the simulator (use ws:// on loopback)");
    }
    let first = tokio::net::lookup_host((host.as_str(), port)).await?.next();
    first.ok_or_else(|| anyhow::anyhow!("server URL {url}: host does not resolve"))
}

impl Fleet {
    /// Resolves the servers, reads the keys file and starts the agents at the configured
    /// rate. Returns at once.
    pub async fn start(config: FleetConfig) -> anyhow::Result<Fleet> {
        anyhow::ensure!(!config.servers.is_empty(), "no server URL given");
        let mut targets = Vec::new();
        for url in &config.servers {
            targets.push(Target {
                url: url.clone(),
                addr: resolve(url).await?,
            });
        }
        let known = match &config.keys_file {
            Some(p) => crate::keys::load(p)?,
            None => HashMap::new(),
        };
        let keys = match &config.keys_file {
            Some(p) => Some(KeyWriter::open(p)?),
            None => None,
        };
        let slots = (0..config.agents)
            .map(|i| {
                let device_id = format!("{}-{i:06}", config.device_prefix);
                let identity = known
                    .get(&device_id)
                    .map(|k| Identity {
                        agent_id: Some(k.agent_id.clone()),
                        api_key: Some(k.api_key.clone()),
                    })
                    .unwrap_or_default();
                Slot {
                    device_id,
                    identity: Mutex::new(identity),
                    connected: Default::default(),
                }
            })
            .collect();
        let shared = Arc::new(Shared {
            config,
            targets,
            counters: Counters::default(),
            slots,
            keys,
            ws_config: small_ws_config(),
        });
        let (stop, stop_rx) = watch::channel(false);
        let (flood, flood_rx) = watch::channel(FloodOrder::default());
        let launcher = tokio::spawn(launch(shared.clone(), stop_rx, flood_rx));
        Ok(Fleet {
            shared,
            stop,
            flood,
            started: Instant::now(),
            launcher: Some(launcher),
        })
    }

    pub fn size(&self) -> usize {
        self.shared.slots.len()
    }

    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    pub fn snapshot(&self) -> Snapshot {
        self.shared.counters.snapshot()
    }

    /// A handle that reads the counters from another task (a periodic reporter).
    pub fn counter_reader(&self) -> CounterReader {
        CounterReader(self.shared.clone())
    }

    pub fn connected(&self) -> usize {
        self.shared
            .counters
            .connected
            .load(Ordering::Relaxed)
            .max(0) as usize
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    /// Waits until at least `n` agents are connected; false on timeout.
    pub async fn wait_connected(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.connected() < n {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// The agent ids of the agents connected right now.
    pub fn connected_agent_ids(&self) -> Vec<String> {
        self.shared
            .slots
            .iter()
            .filter(|s| s.connected.load(Ordering::Relaxed))
            .filter_map(|s| s.identity.lock().expect("identity").agent_id.clone())
            .collect()
    }

    /// Every agent id known (connected or not).
    pub fn agent_ids(&self) -> Vec<String> {
        self.shared
            .slots
            .iter()
            .filter_map(|s| s.identity.lock().expect("identity").agent_id.clone())
            .collect()
    }

    /// A random connected agent's id (a few random probes, then a scan).
    pub fn random_connected_agent(&self) -> Option<String> {
        let slots = &self.shared.slots;
        if slots.is_empty() {
            return None;
        }
        let id_of = |s: &Slot| {
            s.connected
                .load(Ordering::Relaxed)
                .then(|| s.identity.lock().expect("identity").agent_id.clone())
                .flatten()
        };
        let mut rng = rand::thread_rng();
        for _ in 0..32 {
            if let Some(id) = id_of(&slots[rng.gen_range(0..slots.len())]) {
                return Some(id);
            }
        }
        slots.iter().find_map(id_of)
    }

    /// Orders every agent to send `metrics_report`s back to back, `per_agent` each and/or
    /// until `duration` has passed. Resets the finished count.
    pub fn flood(&self, per_agent: Option<u64>, duration: Option<Duration>) {
        self.shared
            .counters
            .flood_finished
            .store(0, Ordering::Relaxed);
        let generation = self.flood.borrow().generation + 1;
        self.flood.send_replace(FloodOrder {
            generation,
            per_agent,
            until: duration.map(|d| Instant::now() + d),
        });
    }

    /// Agents that sent their whole flood quota.
    pub fn flood_finished(&self) -> usize {
        self.shared.counters.flood_finished.load(Ordering::Relaxed) as usize
    }

    /// Every command id received so far, with how many times.
    pub fn command_receipts(&self) -> HashMap<String, u32> {
        self.shared.counters.command_receipts()
    }

    /// Every `update` received so far, by update id, with how many times.
    pub fn update_receipts(&self) -> HashMap<String, u32> {
        self.shared.counters.update_receipts()
    }

    /// Stops every agent: each sends a close frame and waits (briefly) for the server's, so
    /// everything sent before reached the server. Returns the final counters.
    pub async fn stop(mut self) -> Snapshot {
        self.stop.send_replace(true);
        if let Some(launcher) = self.launcher.take() {
            if let Ok(tasks) = launcher.await {
                for t in tasks {
                    let _ = t.await;
                }
            }
        }
        self.snapshot()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // A fleet dropped without stop() (a failed test) must not keep sockets open.
        self.stop.send_replace(true);
    }
}

/// Resolves once `stop` turns true (or its sender is gone). Returns nothing, so it can sit
/// in a `select!` inside a spawned task (the watch guard is not Send).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Starts the agents at `ramp_per_sec`, stopping early if the fleet is stopped.
async fn launch(
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
    flood: watch::Receiver<FloodOrder>,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::with_capacity(shared.slots.len());
    let start = Instant::now();
    let rate = shared.config.ramp_per_sec;
    for index in 0..shared.slots.len() {
        if *stop.borrow() {
            break;
        }
        if rate > 0.0 {
            let due = start + Duration::from_secs_f64(index as f64 / rate);
            if due > Instant::now() {
                let mut stop = stop.clone();
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => {}
                    _ = crate::fleet::stopped(&mut stop) => break,
                }
            }
        }
        tasks.push(tokio::spawn(crate::agent::run(
            index,
            shared.clone(),
            stop.clone(),
            flood.clone(),
        )));
    }
    tasks
}
