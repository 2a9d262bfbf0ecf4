//! Fleet load benchmark: `cargo bench -p gururmm-server --bench fleet`.
//!
//! Starts the real server in-process on 127.0.0.1 (SQLite, then PostgreSQL), enrolls a fleet
//! of simulated agents over real WebSockets, and measures:
//! - metrics ingest: reports per second stored, all agents sending at once;
//! - command round trip: REST submit -> agent receives -> result -> `completed` seen on the
//!   dashboard's event stream, p50/p95;
//! - the baseline in the same run: `GET /api/health` round trip, p50/p95.
//!
//! Bounded: FLEET agents, REPORTS each, COMMANDS commands; loopback only.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use gururmm_server::testing::{TestDb, TestServer};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const FLEET: usize = 200;
const REPORTS: usize = 25;
const COMMANDS: usize = 200;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn run(db: TestDb) {
    let server = TestServer::start_with(db, |c| {
        c.commands_per_minute_per_user = 100_000;
        c.commands_per_minute_per_agent = 100_000;
    })
    .await;
    let (_, _, code) = server.create_site().await;

    // Enroll the fleet; each agent runs a task that answers commands at once.
    let mut senders = Vec::new();
    let mut agent_ids = Vec::new();
    let enroll_start = Instant::now();
    for n in 0..FLEET {
        let (mut ws, _) = tokio_tungstenite::connect_async(&server.ws_url)
            .await
            .unwrap();
        let auth = json!({"type": "auth", "payload": {"api_key": code, "device_id": format!("bench-{n}"), "hostname": format!("bench-{n}"),
            "os_info": {"os_type": "linux", "os_version": "bench", "arch": "x86_64"}, "version": "0.0.0"}});
        ws.send(Message::text(auth.to_string())).await.unwrap();
        let reply: Value = loop {
            if let Some(Ok(Message::Text(t))) = ws.next().await {
                break serde_json::from_str(&t).unwrap();
            }
        };
        agent_ids.push(reply["payload"]["agent_id"].as_str().unwrap().to_owned());
        let (tx, mut rx) = mpsc::channel::<String>(64);
        senders.push(tx);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    out = rx.recv() => match out {
                        Some(text) => { if ws.send(Message::text(text)).await.is_err() { return; } }
                        None => return,
                    },
                    incoming = ws.next() => match incoming {
                        Some(Ok(Message::Text(t))) => {
                            let v: Value = serde_json::from_str(&t).unwrap();
                            if v["type"] == "command" {
                                let result = json!({"type": "command_result", "payload": {"id": v["payload"]["id"], "exit_code": 0, "stdout": "ok\n", "stderr": "", "duration_ms": 1}});
                                if ws.send(Message::text(result.to_string())).await.is_err() { return; }
                            }
                        }
                        Some(Ok(_)) => {}
                        _ => return,
                    }
                }
            }
        });
    }
    let enroll = enroll_start.elapsed();

    // Metrics ingest: every agent sends REPORTS reports at once.
    let now = chrono::Utc::now().timestamp();
    let ingest_start = Instant::now();
    for (n, tx) in senders.iter().enumerate() {
        for r in 0..REPORTS {
            let m = json!({"type": "metrics_report", "payload": {"timestamp": now - (REPORTS - r) as i64, "cpu_percent": (n % 100) as f64,
                "memory_used_bytes": 1u64 << 30, "memory_total_bytes": 1u64 << 33, "disks": [{"mount": "/", "total_bytes": 1u64 << 36, "used_bytes": 1u64 << 35}],
                "network": {"rx_bytes": r * 1000, "tx_bytes": r * 500}}});
            tx.send(m.to_string()).await.unwrap();
        }
    }
    let total = (FLEET * REPORTS) as i64;
    loop {
        let s = server.get("/api/metrics/summary").await;
        if s["points"].as_i64().unwrap() >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ingest = ingest_start.elapsed();

    // Baseline: the cheapest authenticated-free round trip.
    let mut health = Vec::new();
    for _ in 0..COMMANDS {
        let t = Instant::now();
        let r = server
            .client
            .get(server.url("/api/health"))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        health.push(t.elapsed());
    }

    // Command round trips, observed on the event stream as the dashboard would.
    let ticket = server.post("/api/auth/event-ticket", json!({})).await;
    let events = server
        .events_with_ticket(ticket["ticket"].as_str().unwrap())
        .await;
    assert!(events.status().is_success());
    let mut stream = events.bytes_stream();
    let mut round_trips = Vec::new();
    let mut buffer = String::new();
    for i in 0..COMMANDS {
        let agent = &agent_ids[i % FLEET];
        let t = Instant::now();
        let c = server
            .post(
                &format!("/api/agents/{agent}/command"),
                json!({"command_type": "shell", "command": "true"}),
            )
            .await;
        let needle = format!(
            "\"id\":\"{}\",\"agent_id\":\"{agent}\",\"status\":\"completed\"",
            c["id"].as_str().unwrap()
        );
        while !buffer.contains(&needle) {
            let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next())
                .await
                .expect("event")
                .unwrap()
                .unwrap();
            buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
        round_trips.push(t.elapsed());
        buffer.clear();
    }
    health.sort();
    round_trips.sort();
    let (h50, c50) = (percentile(&health, 0.5), percentile(&round_trips, 0.5));
    println!("== {db:?}: {FLEET} agents, {REPORTS} reports each, {COMMANDS} commands");
    println!(
        "enroll (sequential)       {:>10}  ({:.0} agents/s)",
        ms(enroll),
        FLEET as f64 / enroll.as_secs_f64()
    );
    println!(
        "metrics ingest            {:>10}  ({:.0} reports/s)",
        ms(ingest),
        total as f64 / ingest.as_secs_f64()
    );
    println!(
        "health GET (baseline)     p50 {:>10}  p95 {:>10}",
        ms(h50),
        ms(percentile(&health, 0.95))
    );
    println!(
        "command round trip        p50 {:>10}  p95 {:>10}",
        ms(c50),
        ms(percentile(&round_trips, 0.95))
    );
    println!(
        "round trip / baseline     p50 {:.1}x",
        c50.as_secs_f64() / h50.as_secs_f64()
    );
    drop(senders);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo test --benches` runs this binary with --bench absent; keep that cheap.
    if !std::env::args().any(|a| a == "--bench") {
        println!("fleet benchmark: run with `cargo bench -p gururmm-server --bench fleet`");
        return;
    }
    run(TestDb::Sqlite).await;
    run(TestDb::Postgres).await;
}
