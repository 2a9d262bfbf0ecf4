//! One simulated agent: a task that connects, authenticates (enrolling once), then sends
//! heartbeats and metrics, answers pings and commands, and reconnects with backoff when the
//! socket drops. State kept across reconnects: its key, and results not yet sent.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use gururmm_protocol::{
    AgentMessage, Auth, CommandResult, DiskUsage, Heartbeat, MetricsReport, NetworkCounters,
    OsInfo, ServerMessage,
};
use rand::Rng;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::time::{timeout, Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::counters::Counters;
use crate::fleet::{FloodOrder, Shared};

type Ws = WebSocketStream<TcpStream>;

/// The version simulated agents report.
pub const SIM_VERSION: &str = "0.0.0-sim";

/// What an agent keeps between sessions.
#[derive(Default)]
struct AgentState {
    /// Results waiting for their simulated run time to pass (FIFO: one fixed delay), kept
    /// across a reconnect like the real agent's outbox.
    pending_results: VecDeque<(Instant, String)>,
    /// Results sent and not yet acknowledged (`result_ack`): sent again on the next socket,
    /// as the real agent does, so a result the server could not store is not lost.
    unacked: Vec<String>,
    /// Successful sessions so far (a later one is a reconnect).
    sessions: u64,
    /// Failed attempts since the last successful auth (drives the backoff).
    failures: u32,
    /// Progress on the current flood order.
    flood_generation: u64,
    flood_sent: u64,
    flood_done: bool,
    /// Cumulative network counters reported in metrics.
    net_bytes: u64,
}

enum End {
    Stopped,
    Dropped,
}

pub(crate) async fn run(
    index: usize,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    mut flood: watch::Receiver<FloodOrder>,
) {
    let mut state = AgentState::default();
    let mut target = index % shared.targets.len();
    loop {
        if *stop.borrow() {
            return;
        }
        match session(index, target, &shared, &mut state, &mut stop, &mut flood).await {
            End::Stopped => return,
            End::Dropped => {}
        }
        // The next attempt goes to the next server, as a load balancer would route it
        // away from a dead node.
        target = (target + 1) % shared.targets.len();
        let wait = shared.backoff(state.failures);
        state.failures = state.failures.saturating_add(1);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = crate::fleet::stopped(&mut stop) => return,
        }
    }
}

async fn connect(index: usize, target: usize, shared: &Shared) -> Result<Ws, String> {
    let t = &shared.targets[target];
    let socket = if t.addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| format!("socket: {e}"))?;
    if let Some(source) = shared.source_for(index, &t.addr) {
        socket
            .bind(source)
            .map_err(|e| format!("bind {source}: {e}"))?;
    }
    let stream = socket
        .connect(t.addr)
        .await
        .map_err(|e| format!("connect {}: {e}", t.addr))?;
    let _ = stream.set_nodelay(true);
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(t.url.as_str(), stream, Some(shared.ws_config))
            .await
            .map_err(|e| format!("handshake {}: {e}", t.url))?;
    Ok(ws)
}

/// A random first delay in [0, period), so a fleet started at once does not send in lockstep.
fn staggered(period: Duration) -> tokio::time::Interval {
    let offset = period.mul_f64(rand::thread_rng().gen_range(0.0..1.0));
    let mut i = tokio::time::interval_at(Instant::now() + offset, period);
    i.set_missed_tick_behavior(MissedTickBehavior::Delay);
    i
}

async fn send(ws: &mut Ws, msg: AgentMessage) -> Result<(), ()> {
    ws.send(Message::text(msg.to_json())).await.map_err(|_| ())
}

fn metrics(state: &mut AgentState, index: usize) -> AgentMessage {
    state.net_bytes += 1500;
    AgentMessage::MetricsReport(MetricsReport {
        timestamp: now_unix(),
        cpu_percent: Some((index % 100) as f64),
        memory_used_bytes: Some(4 << 30),
        memory_total_bytes: Some(16 << 30),
        disks: vec![DiskUsage {
            mount: "/".into(),
            total_bytes: 512 << 30,
            used_bytes: 128 << 30,
        }],
        network: Some(NetworkCounters {
            rx_bytes: state.net_bytes,
            tx_bytes: state.net_bytes / 2,
        }),
    })
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Whether the agent should send its next flood report now; updates progress bookkeeping.
fn flooding(state: &mut AgentState, order: &FloodOrder, counters: &Counters) -> bool {
    if order.generation == 0 {
        return false;
    }
    if state.flood_generation != order.generation {
        state.flood_generation = order.generation;
        state.flood_sent = 0;
        state.flood_done = false;
    }
    if state.flood_done {
        return false;
    }
    let quota_met = order.per_agent.is_some_and(|n| state.flood_sent >= n);
    let expired = order.until.is_some_and(|u| Instant::now() >= u);
    if quota_met || expired {
        state.flood_done = true;
        if quota_met {
            Counters::add(&counters.flood_finished);
        }
        return false;
    }
    true
}

async fn session(
    index: usize,
    target: usize,
    shared: &Shared,
    state: &mut AgentState,
    stop: &mut watch::Receiver<bool>,
    flood: &mut watch::Receiver<FloodOrder>,
) -> End {
    let counters = &shared.counters;
    let config = &shared.config;
    let slot = &shared.slots[index];
    let deadline = config.connect_timeout;

    let mut ws = match timeout(deadline, connect(index, target, shared)).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(_)) | Err(_) => {
            Counters::add(&counters.connect_errors);
            return End::Dropped;
        }
    };

    // Authenticate with the key when there is one, else enroll with the site code.
    let key = slot.identity.lock().expect("identity").api_key.clone();
    let enrolling = key.is_none();
    let Some(api_key) = key.or_else(|| config.site_code.clone()) else {
        Counters::add(&counters.auth_failures);
        return End::Dropped;
    };
    let auth = AgentMessage::Auth(Auth {
        api_key,
        device_id: slot.device_id.clone(),
        hostname: slot.device_id.clone(),
        os_info: OsInfo {
            os_type: "linux".into(),
            os_version: "fleet-sim".into(),
            arch: "x86_64".into(),
        },
        version: SIM_VERSION.into(),
        previous_version: None,
        policy_revision: None,
        capabilities: Vec::new(),
    });
    if send(&mut ws, auth).await.is_err() {
        Counters::add(&counters.connect_errors);
        return End::Dropped;
    }
    let reply = timeout(deadline, async {
        while let Some(Ok(frame)) = ws.next().await {
            if let Message::Text(text) = frame {
                return Some(ServerMessage::from_json(&text));
            }
        }
        None
    })
    .await;
    let reply = match reply {
        Ok(Some(Ok(ServerMessage::AuthResponse(r)))) => r,
        _ => {
            Counters::add(&counters.connect_errors);
            return End::Dropped;
        }
    };
    if !reply.success {
        Counters::add(&counters.auth_failures);
        if !enrolling && config.site_code.is_some() {
            // Like the real agent: a refused key with a site code configured enrolls again.
            slot.identity.lock().expect("identity").api_key = None;
        }
        return End::Dropped;
    }
    match (&reply.agent_id, &reply.api_key) {
        (Some(agent_id), Some(issued)) => {
            shared.remember_key(index, agent_id, issued);
            Counters::add(&counters.enrolled);
        }
        (Some(agent_id), None) => {
            slot.identity.lock().expect("identity").agent_id = Some(agent_id.clone());
        }
        _ => {}
    }

    // Connected. Results the last server never acknowledged go first.
    let now = Instant::now();
    for id in state.unacked.drain(..).rev() {
        state.pending_results.push_front((now, id));
    }
    state.failures = 0;
    state.sessions += 1;
    Counters::add(&counters.connects);
    if state.sessions > 1 {
        Counters::add(&counters.reconnects);
    }
    counters.connected.fetch_add(1, Ordering::Relaxed);
    slot.connected.store(true, Ordering::Relaxed);
    let end = connected_loop(index, shared, state, &mut ws, stop, flood).await;
    slot.connected.store(false, Ordering::Relaxed);
    counters.connected.fetch_sub(1, Ordering::Relaxed);
    match end {
        End::Stopped => {
            // Close and wait briefly for the server's close, so every frame sent before
            // reached it (tests count stored metrics against what was sent).
            let _ = ws.close(None).await;
            let _ = timeout(Duration::from_secs(5), async {
                while let Some(Ok(_)) = ws.next().await {}
            })
            .await;
        }
        End::Dropped => Counters::add(&counters.disconnects),
    }
    end
}

async fn connected_loop(
    index: usize,
    shared: &Shared,
    state: &mut AgentState,
    ws: &mut Ws,
    stop: &mut watch::Receiver<bool>,
    flood: &mut watch::Receiver<FloodOrder>,
) -> End {
    let counters = &shared.counters;
    let config = &shared.config;
    let mut heartbeat = staggered(config.heartbeat);
    let mut metrics_tick = staggered(config.metrics);
    loop {
        if *stop.borrow() {
            return End::Stopped;
        }
        let order = *flood.borrow();
        let flood_now = flooding(state, &order, counters);
        let next_result = state.pending_results.front().map(|(due, _)| *due);
        let sent = tokio::select! {
            _ = stop.changed() => return End::Stopped,
            // A new order: loop to pick it up.
            _ = flood.changed() => Ok(()),
            _ = heartbeat.tick() => {
                Counters::add(&counters.heartbeats);
                send(ws, AgentMessage::Heartbeat(Heartbeat { timestamp: Some(now_unix()) })).await
            }
            _ = metrics_tick.tick(), if !flood_now => {
                let m = metrics(state, index);
                let r = send(ws, m).await;
                if r.is_ok() {
                    Counters::add(&counters.metrics_sent);
                }
                r
            }
            // Flooding: always ready; select! still polls the socket between sends.
            _ = std::future::ready(()), if flood_now => {
                let m = metrics(state, index);
                let r = send(ws, m).await;
                if r.is_ok() {
                    Counters::add(&counters.metrics_sent);
                    state.flood_sent += 1;
                }
                r
            }
            _ = tokio::time::sleep_until(next_result.unwrap_or_else(Instant::now)), if next_result.is_some() => {
                let (_, id) = state.pending_results.front().cloned().expect("checked");
                let result = AgentMessage::CommandResult(CommandResult {
                    id,
                    exit_code: 0,
                    stdout: "fleet-sim ok\n".into(),
                    stderr: String::new(),
                    duration_ms: config.command_delay.as_millis() as u64,
                    timed_out: false,
                });
                let r = send(ws, result).await;
                // Only a written result leaves the queue; otherwise it goes on the next socket.
                if r.is_ok() {
                    if let Some((_, id)) = state.pending_results.pop_front() {
                        state.unacked.push(id);
                    }
                    Counters::add(&counters.results_sent);
                }
                r
            }
            incoming = ws.next() => match incoming {
                Some(Ok(Message::Text(text))) => handle(&text, shared, state, ws).await,
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => Err(()),
                // WebSocket pings are answered by tungstenite itself.
                Some(Ok(_)) => Ok(()),
            },
        };
        if sent.is_err() {
            return End::Dropped;
        }
    }
}

async fn handle(
    text: &str,
    shared: &Shared,
    state: &mut AgentState,
    ws: &mut Ws,
) -> Result<(), ()> {
    let counters = &shared.counters;
    match ServerMessage::from_json(text) {
        Ok(ServerMessage::Command(cmd)) => {
            // A duplicate is counted but answered like any command: the counters, not the
            // simulator, decide whether the server kept its "exactly once" promise.
            counters.command_received(&cmd.id);
            let due = Instant::now() + shared.config.command_delay;
            state.pending_results.push_back((due, cmd.id));
            Ok(())
        }
        // The real agent answers a protocol ping with a heartbeat.
        Ok(ServerMessage::Ping(_)) => {
            Counters::add(&counters.pings);
            Counters::add(&counters.heartbeats);
            send(
                ws,
                AgentMessage::Heartbeat(Heartbeat {
                    timestamp: Some(now_unix()),
                }),
            )
            .await
        }
        Ok(ServerMessage::Update(update)) => {
            counters.update_received(update.update_id.as_deref().unwrap_or(""));
            Ok(())
        }
        Ok(ServerMessage::ResultAck(ack)) => {
            if let Some(at) = state.unacked.iter().position(|id| *id == ack.id) {
                state.unacked.swap_remove(at);
                Counters::add(&counters.results_acked);
            }
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(_) => {
            Counters::add(&counters.unreadable_frames);
            Ok(())
        }
    }
}
