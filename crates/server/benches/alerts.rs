//! Alert evaluation benchmark: `cargo bench -p gururmm-server --bench alerts`.
//!
//! 1. Cost per report: judging one metrics report against the rules (in memory) next to
//!    parsing the same report from its JSON frame, each timed over many rounds.
//! 2. A fleet: 1,000 simulated agents on real WebSockets against the real server (SQLite, then
//!    PostgreSQL) all report a CPU above a fleet rule at once; timed until every alert is open,
//!    then all report below it, timed until every alert is resolved.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use gururmm_protocol::{fixture, AgentMessage};
use gururmm_server::alerting::evaluate::{evaluate_metrics, AgentMemory, Snapshot};
use gururmm_server::alerting::rules::{AlertRule, RuleKind};
use gururmm_server::alerting::Severity;
use gururmm_server::scope::{Placement, Scope, ScopeKind};
use gururmm_server::testing::{TestDb, TestServer};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const ROUNDS: u32 = 200_000;
const FLEET: usize = 1_000;

fn rule(n: usize, kind: RuleKind, scope: Scope) -> AlertRule {
    AlertRule {
        id: format!("rule-{n}"),
        name: format!("rule {n}"),
        kind,
        threshold: Some(90.0),
        duration_seconds: 300,
        include_timeouts: false,
        severity: Severity::Warning,
        scope,
        enabled: true,
        created_at: 0,
        updated_at: 0,
    }
}

fn per_op(total: Duration, rounds: u32) -> String {
    format!("{:.0} ns", total.as_nanos() as f64 / f64::from(rounds))
}

fn evaluation_cost() {
    let frame = fixture("metrics_report");
    let start = Instant::now();
    let mut parsed = None;
    for _ in 0..ROUNDS {
        parsed = Some(std::hint::black_box(
            AgentMessage::from_json(&frame).unwrap(),
        ));
    }
    let parse = start.elapsed();
    let Some(AgentMessage::MetricsReport(report)) = parsed else {
        panic!("the fixture is a metrics report");
    };
    // Ten rules: cpu, memory and disk for the fleet, the agent's client and site, and one for
    // another site (not covering it).
    let site = |id: &str| Scope {
        kind: ScopeKind::Site,
        id: Some(id.into()),
    };
    let client = Scope {
        kind: ScopeKind::Client,
        id: Some("c1".into()),
    };
    let mut rules = Vec::new();
    for (n, kind) in [RuleKind::Cpu, RuleKind::Memory, RuleKind::Disk]
        .into_iter()
        .enumerate()
    {
        rules.push(rule(n * 3, kind, Scope::fleet()));
        rules.push(rule(n * 3 + 1, kind, client.clone()));
        rules.push(rule(n * 3 + 2, kind, site("s1")));
    }
    rules.push(rule(9, RuleKind::Cpu, site("s2")));
    let snapshot = Snapshot::new(rules, Vec::new());
    let placement = Placement {
        agent_id: "a1".into(),
        site_id: Some("s1".into()),
        client_id: Some("c1".into()),
    };
    let mut memory = AgentMemory::new();
    let mut changes = Vec::new();
    let start = Instant::now();
    for n in 0..ROUNDS {
        evaluate_metrics(
            &snapshot,
            &placement,
            std::hint::black_box(&report),
            i64::from(n),
            &mut memory,
            &mut changes,
        );
        changes.clear();
    }
    let evaluate = start.elapsed();
    println!("== per report ({ROUNDS} rounds, 10 rules, 9 covering the agent)");
    println!("parse metrics_report frame  {}", per_op(parse, ROUNDS));
    println!("evaluate against the rules  {}", per_op(evaluate, ROUNDS));
    println!(
        "evaluate / parse            {:.2}",
        evaluate.as_secs_f64() / parse.as_secs_f64()
    );
}

async fn fleet(db: TestDb) {
    let label = format!("{db:?}");
    let server =
        TestServer::start_with(db, |c| c.enrollments_per_minute_per_address = 100_000).await;
    let (_, _, code) = server.create_site().await;
    server
        .post(
            "/api/alert-rules",
            json!({"name": "Busy", "kind": "cpu", "threshold": 50, "duration_seconds": 0,
                   "severity": "warning", "scope": {"kind": "fleet"}}),
        )
        .await;
    let mut senders = Vec::new();
    for n in 0..FLEET {
        let (mut ws, _) = tokio_tungstenite::connect_async(&server.ws_url)
            .await
            .unwrap();
        let auth = json!({"type": "auth", "payload": {"api_key": code, "device_id": format!("alert-bench-{n}"), "hostname": format!("alert-bench-{n}"),
            "os_info": {"os_type": "linux", "os_version": "bench", "arch": "x86_64"}, "version": "0.0.0"}});
        ws.send(Message::text(auth.to_string())).await.unwrap();
        loop {
            if let Some(Ok(Message::Text(_))) = ws.next().await {
                break;
            }
        }
        let (tx, mut rx) = mpsc::channel::<String>(8);
        senders.push(tx);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    out = rx.recv() => match out {
                        Some(text) => { if ws.send(Message::text(text)).await.is_err() { return; } }
                        None => return,
                    },
                    incoming = ws.next() => if !matches!(incoming, Some(Ok(_))) { return; },
                }
            }
        });
    }
    // Every agent is placed (read at connect) before the clock starts.
    server
        .state()
        .alerting
        .reload(&server.state())
        .await
        .unwrap();
    let report = |cpu: f64| {
        json!({"type": "metrics_report", "payload": {"timestamp": 0, "cpu_percent": cpu,
            "memory_used_bytes": 1u64 << 30, "memory_total_bytes": 1u64 << 33, "disks": []}})
        .to_string()
    };
    let until = |check: fn(&Value) -> bool| {
        let server = &server;
        async move {
            loop {
                let s = server.get("/api/alerts/summary").await;
                if check(&s) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let start = Instant::now();
    for tx in &senders {
        tx.send(report(95.0)).await.unwrap();
    }
    until(|s| s["warning"].as_i64() == Some(FLEET as i64)).await;
    let open = start.elapsed();
    let start = Instant::now();
    for tx in &senders {
        tx.send(report(5.0)).await.unwrap();
    }
    until(|s| s["open"].as_i64() == Some(0)).await;
    let resolve = start.elapsed();
    println!("== {label}: {FLEET} agents report at once");
    println!(
        "all alerts open      {:.2} s ({:.2} ms per alert)",
        open.as_secs_f64(),
        open.as_secs_f64() * 1000.0 / FLEET as f64
    );
    println!(
        "all alerts resolved  {:.2} s ({:.2} ms per alert)",
        resolve.as_secs_f64(),
        resolve.as_secs_f64() * 1000.0 / FLEET as f64
    );
    let dropped = server.state().alerting.dropped();
    assert_eq!(dropped, 0, "no decision dropped");
    drop(senders);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo test --benches` runs this binary with --bench absent; keep that cheap.
    if !std::env::args().any(|a| a == "--bench") {
        println!("alerts benchmark: run with `cargo bench -p gururmm-server --bench alerts`");
        return;
    }
    evaluation_cost();
    fleet(TestDb::Sqlite).await;
    fleet(TestDb::Postgres).await;
}
