//! Prometheus metrics: the name of every series the server exports, and one small function per
//! event, so a call site elsewhere is one line (`telemetry::agent_message_out(&msg)`).
//!
//! - Off by default. With `metrics_listen` set, [`start`] installs the recorder and serves
//!   `GET /metrics` (Prometheus text format) on that address only, never on the public port.
//!   Without it no recorder is installed and every function here costs next to nothing (the
//!   `metrics` macros go to a no-op recorder).
//! - Counters and histograms are counted where things happen; gauges of state this node holds
//!   (connected agents, queue depths, the database pool) are read at each scrape.
//! - Label values come only from fixed sets: the protocol's message type names, the command
//!   statuses, route templates (never a path with its ids), HTTP methods and status codes.
//!   Anything an agent reports is hostile input and never becomes a label: an unknown message
//!   type is counted as `unsupported`, an unreadable frame as `malformed`.
//! - docs/OPERATIONS.md lists the series and docs/grafana-dashboard.json reads them; a test
//!   keeps both in step with [`SERIES`].

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use gururmm_protocol::{AgentMessage, CommandStatus, ParseError, ServerMessage};
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

/// Agents connected to this node, by `transport`: `websocket` (a live socket) or `legacy`
/// (an HTTP poll within the idle timeout).
pub const AGENTS_CONNECTED: &str = "gururmm_agents_connected";
/// WebSocket frames received from agents, by `type` (a protocol message type, `unsupported`
/// or `malformed`).
pub const AGENT_MESSAGES_RECEIVED: &str = "gururmm_agent_messages_received_total";
/// WebSocket messages sent to agents, by `type`.
pub const AGENT_MESSAGES_SENT: &str = "gururmm_agent_messages_sent_total";
/// Items waiting in a batch writer's queue, by `writer` (`metrics`, `presence`).
pub const WRITE_QUEUE_DEPTH: &str = "gururmm_write_queue_depth";
/// The most items a batch writer's queue holds, by `writer` (only bounded queues).
pub const WRITE_QUEUE_CAPACITY: &str = "gururmm_write_queue_capacity";
/// Items a batch writer gave up on, by `writer`.
pub const WRITE_DROPPED: &str = "gururmm_write_dropped_total";
/// Items per batch written, by `writer` (histogram).
pub const WRITE_BATCH_ITEMS: &str = "gururmm_write_batch_items";
/// How long one batch took to write, retries included, by `writer` (histogram).
pub const WRITE_BATCH_DURATION: &str = "gururmm_write_batch_duration_seconds";
/// Commands that reached a final status, by `status`.
pub const COMMANDS_FINISHED: &str = "gururmm_commands_finished_total";
/// HTTP requests answered, by `route` (the route template), `method` and `status`.
pub const HTTP_REQUESTS: &str = "gururmm_http_requests_total";
/// How long HTTP requests took until the answer's head, by `route` and `method` (histogram).
pub const HTTP_REQUEST_DURATION: &str = "gururmm_http_request_duration_seconds";
/// Database connections open in the pool.
pub const DB_POOL_CONNECTIONS: &str = "gururmm_db_pool_connections";
/// Open database connections not in use.
pub const DB_POOL_IDLE: &str = "gururmm_db_pool_idle_connections";
/// The most connections the pool opens.
pub const DB_POOL_MAX: &str = "gururmm_db_pool_max_connections";

/// Every series this module exports, as named in the scrape (histograms by their base name).
pub const SERIES: &[&str] = &[
    AGENTS_CONNECTED,
    AGENT_MESSAGES_RECEIVED,
    AGENT_MESSAGES_SENT,
    WRITE_QUEUE_DEPTH,
    WRITE_QUEUE_CAPACITY,
    WRITE_DROPPED,
    WRITE_BATCH_ITEMS,
    WRITE_BATCH_DURATION,
    COMMANDS_FINISHED,
    HTTP_REQUESTS,
    HTTP_REQUEST_DURATION,
    DB_POOL_CONNECTIONS,
    DB_POOL_IDLE,
    DB_POOL_MAX,
];

/// The `type` of a message whose type name is not in the protocol.
pub const UNSUPPORTED: &str = "unsupported";
/// The `type` of a frame that did not parse.
pub const MALFORMED: &str = "malformed";
/// The `route` of a request no route matched (the dashboard, unknown paths).
pub const UNMATCHED: &str = "unmatched";

/// The batch writers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// Agents' metrics reports (`session::metrics_writer`).
    Metrics,
    /// Last-seen times and who holds which socket (`cluster::presence`).
    Presence,
    /// Results, network state and watchdog events, written off the sockets
    /// (`session::deferred`).
    AgentMessages,
}

impl Writer {
    pub const ALL: [Writer; 3] = [Writer::Metrics, Writer::Presence, Writer::AgentMessages];

    pub fn as_str(self) -> &'static str {
        match self {
            Writer::Metrics => "metrics",
            Writer::Presence => "presence",
            Writer::AgentMessages => "agent_messages",
        }
    }
}

/// Seconds: from a millisecond to a minute (a batch waits while the database is away).
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Items: one report up to the largest batch (2,000 reports; presence batches may be larger).
const BATCH_BUCKETS: &[f64] = &[
    1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0, 20000.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

fn builder() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), DURATION_BUCKETS)
        .and_then(|b| {
            b.set_buckets_for_metric(Matcher::Full(WRITE_BATCH_ITEMS.into()), BATCH_BUCKETS)
        })
        .expect("bucket lists are not empty")
}

/// Installs the Prometheus recorder, once per process, and returns its handle. The recorder
/// is global: tests that run several servers in one process share one registry, so their
/// counters add up and a gauge shows whichever server was scraped last.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = builder().build_recorder();
            let handle = recorder.handle();
            if let Err(e) = metrics::set_global_recorder(recorder) {
                tracing::warn!(error = %e, "another metrics recorder is installed; /metrics stays empty");
            }
            describe();
            handle
        })
        .clone()
}

/// Help texts, and the series of fixed label sets at zero, so dashboards and alerts see them
/// before the first event.
fn describe() {
    describe_gauge!(
        AGENTS_CONNECTED,
        "Agents connected to this node, by transport"
    );
    describe_counter!(
        AGENT_MESSAGES_RECEIVED,
        "WebSocket frames received from agents, by message type"
    );
    describe_counter!(
        AGENT_MESSAGES_SENT,
        "WebSocket messages sent to agents, by message type"
    );
    describe_gauge!(WRITE_QUEUE_DEPTH, "Items waiting in a batch writer's queue");
    describe_gauge!(
        WRITE_QUEUE_CAPACITY,
        "The most items a bounded batch writer queue holds"
    );
    describe_counter!(WRITE_DROPPED, "Items a batch writer gave up on");
    describe_histogram!(WRITE_BATCH_ITEMS, "Items per batch written");
    describe_histogram!(
        WRITE_BATCH_DURATION,
        metrics::Unit::Seconds,
        "Time to write one batch, retries included"
    );
    describe_counter!(COMMANDS_FINISHED, "Commands that reached a final status");
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route template, method and status"
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        metrics::Unit::Seconds,
        "HTTP request duration until the answer's head"
    );
    describe_gauge!(DB_POOL_CONNECTIONS, "Database connections open");
    describe_gauge!(DB_POOL_IDLE, "Open database connections not in use");
    describe_gauge!(DB_POOL_MAX, "The most database connections the pool opens");
    for status in CommandStatus::ALL.into_iter().filter(|s| s.is_final()) {
        counter!(COMMANDS_FINISHED, "status" => status.as_str()).increment(0);
    }
    for writer in Writer::ALL {
        counter!(WRITE_DROPPED, "writer" => writer.as_str()).increment(0);
    }
}

/// The name from `names` equal to `name`, or `unsupported`: a label value from a fixed set.
fn known(names: &'static [&'static str], name: &str) -> &'static str {
    names
        .iter()
        .copied()
        .find(|n| *n == name)
        .unwrap_or(UNSUPPORTED)
}

/// Parses a text frame an agent sent (`AgentMessage::from_json`) and counts it by its type.
pub fn agent_message_in(text: &str) -> Result<AgentMessage, ParseError> {
    let parsed = AgentMessage::from_json(text);
    let kind = match &parsed {
        Ok(msg) => known(AgentMessage::TYPES, msg.message_type()),
        Err(_) => MALFORMED,
    };
    counter!(AGENT_MESSAGES_RECEIVED, "type" => kind).increment(1);
    parsed
}

/// Counts a message sent to an agent.
pub fn agent_message_out(msg: &ServerMessage) {
    let kind = known(ServerMessage::TYPES, msg.message_type());
    counter!(AGENT_MESSAGES_SENT, "type" => kind).increment(1);
}

/// A batch writer gave up on `items` items.
pub fn write_dropped(writer: Writer, items: usize) {
    counter!(WRITE_DROPPED, "writer" => writer.as_str()).increment(items as u64);
}

/// A batch of `items` items was written (or given up on), starting at `started`. An empty
/// batch (a flush with nothing to write) is not counted.
pub fn write_batch(writer: Writer, items: usize, started: Instant) {
    if items == 0 {
        return;
    }
    histogram!(WRITE_BATCH_ITEMS, "writer" => writer.as_str()).record(items as f64);
    histogram!(WRITE_BATCH_DURATION, "writer" => writer.as_str())
        .record(started.elapsed().as_secs_f64());
}

/// `count` commands reached the final status `status`.
pub fn commands_finished(status: CommandStatus, count: usize) {
    if status.is_final() {
        counter!(COMMANDS_FINISHED, "status" => status.as_str()).increment(count as u64);
    }
}

/// A command's status as stored became `status` (a name from the database): counted when it
/// is a final status.
pub fn command_finished_as(status: &str) {
    if let Ok(status) = status.parse::<CommandStatus>() {
        commands_finished(status, 1);
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The route template of a matched path; a nested service's hidden tail parameter is cut
/// (`/downloads/{*...}` is `/downloads`).
fn route_label(matched: Option<&MatchedPath>) -> String {
    match matched.map(MatchedPath::as_str) {
        Some(path) => match path.find("/{*__private__axum") {
            Some(cut) => path[..cut].to_owned(),
            None => path.to_owned(),
        },
        None => UNMATCHED.to_owned(),
    }
}

/// Middleware for the public router: counts each request by route template, method and
/// status, and times it.
pub async fn track_http(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = route_label(req.extensions().get::<MatchedPath>());
    let method = method_label(req.method());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    counter!(HTTP_REQUESTS, "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    histogram!(HTTP_REQUEST_DURATION, "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Gauges of what this node holds now, read at each scrape.
fn sample(state: &AppState) {
    let legacy_window = state.config.idle_timeout();
    gauge!(AGENTS_CONNECTED, "transport" => "websocket").set(state.hub.connected_count() as f64);
    gauge!(AGENTS_CONNECTED, "transport" => "legacy")
        .set(state.hub.legacy_online_count(legacy_window) as f64);
    let metrics = Writer::Metrics.as_str();
    gauge!(WRITE_QUEUE_DEPTH, "writer" => metrics).set(state.metrics.queued() as f64);
    gauge!(WRITE_QUEUE_CAPACITY, "writer" => metrics).set(state.metrics.capacity() as f64);
    gauge!(WRITE_QUEUE_DEPTH, "writer" => Writer::Presence.as_str())
        .set(state.cluster.presence.pending_agents() as f64);
    let deferred = Writer::AgentMessages.as_str();
    gauge!(WRITE_QUEUE_DEPTH, "writer" => deferred).set(state.deferred.waiting() as f64);
    gauge!(WRITE_QUEUE_CAPACITY, "writer" => deferred).set(state.deferred.capacity() as f64);
    let pool = state.store.pool();
    gauge!(DB_POOL_CONNECTIONS).set(f64::from(pool.size()));
    gauge!(DB_POOL_IDLE).set(pool.num_idle() as f64);
    gauge!(DB_POOL_MAX).set(f64::from(pool.options().get_max_connections()));
}

#[derive(Clone)]
struct Scrape {
    state: AppState,
    handle: PrometheusHandle,
}

async fn scrape(State(s): State<Scrape>) -> Response {
    sample(&s.state);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.handle.render(),
    )
        .into_response()
}

/// With `metrics_listen` set: installs the recorder and serves `GET /metrics` on that address
/// (nothing else) until the server shuts down. Returns the task, or None when metrics are off.
pub async fn start(state: &AppState) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(addr) = state.config.metrics_listen else {
        return Ok(None);
    };
    let handle = install();
    let listener = crate::listen(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "Prometheus metrics at /metrics");
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .with_state(Scrape {
            state: state.clone(),
            handle: handle.clone(),
        });
    let mut shutdown = state.shutdown.clone();
    Ok(Some(tokio::spawn(async move {
        // Without the exporter's own listener, histograms are drained into their buckets by
        // upkeep (and by each scrape); run it so an unscraped server does not grow.
        let upkeep = async {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                handle.run_upkeep();
            }
        };
        let serve = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        });
        tokio::select! {
            result = serve => if let Err(e) = result {
                tracing::error!(error = %e, "the metrics listener failed");
            },
            () = upkeep => {}
        }
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gururmm_protocol::Ping;

    /// Runs `f` with a recorder of its own (not the global one) and returns the scrape.
    fn scrape_of(f: impl FnOnce()) -> String {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, f);
        handle.render()
    }

    #[test]
    fn agent_text_never_becomes_a_label() {
        let text = scrape_of(|| {
            let hostile = r#"{"type":"evil\"} 1\ngururmm_fake 9","payload":{}}"#;
            assert!(matches!(
                agent_message_in(hostile),
                Ok(AgentMessage::Unsupported(_))
            ));
            assert!(
                agent_message_in(r#"{"type":"metrics_report","payload":{"cpu":"lots"}}"#).is_err()
            );
            assert!(agent_message_in("not json").is_err());
            assert!(matches!(
                agent_message_in(r#"{"type":"heartbeat"}"#),
                Ok(AgentMessage::Heartbeat(_))
            ));
            agent_message_out(&ServerMessage::Ping(Ping::default()));
            command_finished_as("sideways");
            command_finished_as("running");
            command_finished_as("completed");
        });
        for hostile in ["evil", "gururmm_fake", "sideways", "running"] {
            assert!(!text.contains(hostile), "{hostile}: {text}");
        }
        for expected in [
            r#"gururmm_agent_messages_received_total{type="unsupported"} 1"#,
            r#"gururmm_agent_messages_received_total{type="malformed"} 2"#,
            r#"gururmm_agent_messages_received_total{type="heartbeat"} 1"#,
            r#"gururmm_agent_messages_sent_total{type="ping"} 1"#,
            r#"gururmm_commands_finished_total{status="completed"} 1"#,
        ] {
            assert!(text.contains(expected), "{expected}: {text}");
        }
    }

    #[test]
    fn histograms_have_buckets_and_empty_batches_are_not_counted() {
        let text = scrape_of(|| {
            write_batch(Writer::Metrics, 0, Instant::now());
            write_batch(Writer::Metrics, 300, Instant::now());
        });
        assert!(
            text.contains(r#"gururmm_write_batch_items_bucket{writer="metrics",le="500"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"gururmm_write_batch_items_count{writer="metrics"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"gururmm_write_batch_duration_seconds_bucket{writer="metrics",le="+Inf"} 1"#
            ),
            "{text}"
        );
    }

    /// docs/OPERATIONS.md names every series; the Grafana dashboard reads only series this
    /// module exports, and every one of them.
    #[test]
    fn docs_and_dashboard_match_the_series() {
        let ops = include_str!("../../../docs/OPERATIONS.md");
        let dashboard: serde_json::Value =
            serde_json::from_str(include_str!("../../../docs/grafana-dashboard.json"))
                .expect("the dashboard is JSON");
        let mut exprs = Vec::new();
        for panel in dashboard["panels"].as_array().expect("panels") {
            for target in panel["targets"].as_array().into_iter().flatten() {
                exprs.push(target["expr"].as_str().expect("expr").to_owned());
            }
        }
        assert!(!exprs.is_empty());
        let exported = |name: &str| {
            SERIES.iter().any(|s| {
                name == *s
                    || ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|suffix| name == format!("{s}{suffix}"))
            })
        };
        for expr in &exprs {
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("gururmm_") {
                    assert!(
                        exported(word),
                        "the dashboard reads {word}, which is not exported"
                    );
                }
            }
        }
        for series in SERIES {
            assert!(
                ops.contains(&format!("`{series}`")),
                "docs/OPERATIONS.md does not list {series}"
            );
            assert!(
                exprs.iter().any(|e| e.contains(series)),
                "no dashboard panel reads {series}"
            );
        }
    }
}
