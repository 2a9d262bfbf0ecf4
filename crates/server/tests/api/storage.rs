//! Storage behaviour checked directly on both backends, each test on a fresh database.

use gururmm_protocol::{DiskUsage, MetricsReport, NetworkCounters};
use gururmm_server::auth::Role;
use gururmm_server::db::{Actor, NewAgent, NewCommand, NewSession, Store, StoreError};
use gururmm_server::testing::{fresh_postgres_database, TestDb};

use crate::on_both_databases;

struct Fresh {
    store: Store,
    _dir: tempfile::TempDir,
}

async fn fresh(db: TestDb) -> Fresh {
    let dir = tempfile::tempdir().unwrap();
    let url = match db {
        TestDb::Sqlite => format!(
            "sqlite://{}",
            dir.path().join("nested/folder/s.db").display()
        ),
        TestDb::Postgres => fresh_postgres_database().await,
    };
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.expect("migrating twice is a no-op");
    Fresh { store, _dir: dir }
}

async fn agent(store: &Store) -> String {
    store
        .insert_agent(NewAgent {
            site_id: None,
            hostname: "h",
            device_id: Some(&uuid::Uuid::new_v4().to_string()),
            os_type: Some("linux"),
            os_version: None,
            arch: None,
            version: None,
            api_key_hash: &uuid::Uuid::new_v4().to_string(),
            capabilities: None,
        })
        .await
        .unwrap()
}

async fn network_state_only_on_hash_change(db: TestDb) {
    let f = fresh(db).await;
    let id = agent(&f.store).await;
    assert!(f
        .store
        .store_network_state(&id, "h1", "{\"hash\":\"h1\",\"interfaces\":[]}")
        .await
        .unwrap());
    assert!(!f
        .store
        .store_network_state(&id, "h1", "{\"hash\":\"h1\",\"interfaces\":[]}")
        .await
        .unwrap());
    assert!(f
        .store
        .store_network_state(&id, "h2", "{\"hash\":\"h2\",\"interfaces\":[]}")
        .await
        .unwrap());
    assert_eq!(
        f.store.agent_state(&id).await.unwrap().network.unwrap()["hash"],
        "h2"
    );
}

async fn metrics_retention_prunes_old_rows(db: TestDb) {
    let f = fresh(db).await;
    let id = agent(&f.store).await;
    let now = chrono::Utc::now().timestamp();
    for age_days in [40, 31, 1, 0] {
        let m = MetricsReport {
            timestamp: now - age_days * 86400,
            cpu_percent: Some(age_days as f64),
            memory_used_bytes: Some(u64::MAX), // clamped, not an error
            memory_total_bytes: Some(8),
            disks: vec![DiskUsage {
                mount: "/".into(),
                total_bytes: 10,
                used_bytes: 5,
            }],
            network: Some(NetworkCounters {
                rx_bytes: 1,
                tx_bytes: 2,
            }),
        };
        f.store.insert_metrics(&id, &m).await.unwrap();
    }
    let cutoff = (now - 30 * 86400) * 1000;
    assert_eq!(f.store.prune_metrics(cutoff).await.unwrap(), 2);
    let left = f
        .store
        .metrics_range(&id, 0, (now + 10) * 1000, 1000)
        .await
        .unwrap();
    assert_eq!(left.len(), 2);
    assert_eq!(left[0].memory_used_bytes, Some(i64::MAX));
}

/// A missing value, then a value, in the same column: the first binding must not fix the
/// column's type for the second (sqlx's Any driver sends a NULL f64 as a 4-byte float).
async fn missing_then_present_metrics_values(db: TestDb) {
    let f = fresh(db).await;
    let id = agent(&f.store).await;
    let now = chrono::Utc::now().timestamp();
    // The pool hands out its idle connections in turn: enough of each that every
    // connection prepares the statement with a missing value first.
    let missing = std::iter::repeat_n(None, 20);
    let present = std::iter::repeat_n(Some(99.5), 19).chain([Some(2.220446049250313e-16)]);
    for cpu in missing.chain(present) {
        let m = MetricsReport {
            timestamp: now,
            cpu_percent: cpu,
            memory_used_bytes: cpu.map(|_| 1),
            memory_total_bytes: None,
            disks: vec![],
            network: None,
        };
        f.store.insert_metrics(&id, &m).await.unwrap();
    }
    let points = f
        .store
        .metrics_range(&id, 0, (now + 10) * 1000, 1000)
        .await
        .unwrap();
    assert_eq!(points.len(), 1, "one second, one bucket");
    let avg = points[0].cpu_percent.unwrap();
    let expected = (99.5 * 19.0 + 2.220446049250313e-16) / 20.0;
    assert!((avg - expected).abs() < 1e-9, "{avg}");
}

/// The batched write path: everything queued is stored, each agent's snapshot is its newest
/// report, and a report the database refuses (its agent is gone) costs only itself.
async fn metrics_writer_stores_batches_and_skips_a_refused_report(db: TestDb) {
    use gururmm_server::session::metrics_writer::MetricsWriter;
    let f = fresh(db).await;
    let (a, b) = (agent(&f.store).await, agent(&f.store).await);
    let writer = MetricsWriter::start(f.store.clone(), 20_000);
    let now = chrono::Utc::now().timestamp();
    let report = |age: i64| MetricsReport {
        timestamp: now - age,
        cpu_percent: Some(age as f64),
        memory_used_bytes: None,
        memory_total_bytes: None,
        disks: vec![],
        network: None,
    };
    for age in (0..50).rev() {
        writer.queue(&a, report(age)).await;
        writer.queue("no-such-agent", report(age)).await;
        writer.queue(&b, report(age)).await;
    }
    writer.drain().await;
    for id in [&a, &b] {
        let points = f
            .store
            .metrics_range(id, 0, (now + 10) * 1000, 1000)
            .await
            .unwrap();
        assert_eq!(points.len(), 50, "every report of {id} stored");
        let snapshot = f.store.agent_state(id).await.unwrap().metrics.unwrap();
        assert_eq!(
            snapshot["cpu_percent"], 0.0,
            "the newest report is the snapshot"
        );
    }
    assert!(writer.store("no-such-agent", report(0)).await.is_err());
    assert!(writer.store(&a, report(0)).await.is_ok());
}

/// The sign-in limits are one count for every node: concurrent callers (as on several nodes)
/// never pass a limit together; attempts can be given back; turns are spaced.
async fn shared_limits_hold_for_concurrent_callers(db: TestDb) {
    use gururmm_server::rate_limit::{Limited, SharedLimits};
    use std::time::Duration;
    let f = fresh(db).await;
    let window = Duration::from_secs(60);
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let store = f.store.clone();
            tokio::spawn(async move {
                let limits = SharedLimits::new(&store);
                let mut allowed = 0;
                for _ in 0..10 {
                    if limits.check_and_record("k", 10, window).await.is_ok() {
                        allowed += 1;
                    }
                }
                allowed
            })
        })
        .collect();
    let mut allowed = 0;
    for c in callers {
        allowed += c.await.unwrap();
    }
    assert_eq!(allowed, 10);
    let limits = SharedLimits::new(&f.store);
    match limits.check_and_record("k", 10, window).await {
        Err(Limited::Retry(wait)) => assert!(wait.0 <= window),
        other => panic!("{other:?}"),
    }
    assert!(limits.check_and_record("other", 10, window).await.is_ok());
    assert_eq!(limits.count("k", window).await.unwrap(), 10);
    limits.release_one("k").await.unwrap();
    assert_eq!(limits.count("k", window).await.unwrap(), 9);
    limits.reset("k").await.unwrap();
    assert_eq!(limits.count("k", window).await.unwrap(), 0);

    // Turns 10 s apart, waits up to 25 s: wide enough that slow calls do not matter.
    let (every, longest) = (Duration::from_secs(10), Duration::from_secs(25));
    let first = limits.take_slot("s", every, longest).await.unwrap();
    assert_eq!(first, Duration::ZERO);
    let second = limits.take_slot("s", every, longest).await.unwrap();
    assert!(
        second > Duration::from_secs(5) && second <= every,
        "{second:?}"
    );
    let third = limits.take_slot("s", every, longest).await.unwrap();
    assert!(
        third > Duration::from_secs(15) && third <= 2 * every,
        "{third:?}"
    );
    let fourth = limits.take_slot("s", every, longest).await;
    assert!(fourth.is_err(), "a 30 s wait is refused");
}

async fn command_state_transitions(db: TestDb) {
    let f = fresh(db).await;
    let id = agent(&f.store).await;
    let other = agent(&f.store).await;
    let new = |timeout| NewCommand {
        agent_id: &id,
        command_type: "shell",
        command: "true",
        interpreter: None,
        working_directory: None,
        context_files: None,
        timeout_seconds: timeout,
        elevated: true,
        created_by: None,
    };
    let c = f.store.insert_command(new(0), Actor::SYSTEM).await.unwrap();
    assert_eq!(c.status, "pending");
    assert!(c.elevated);
    let claimed = f.store.claim_pending(&id).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].status, "running");
    assert!(
        f.store.claim_pending(&id).await.unwrap().is_empty(),
        "sent once only"
    );
    assert_eq!(
        f.store
            .store_result(&other, &c.id, "completed", 0, "", "", 1)
            .await
            .unwrap(),
        None,
        "not the other agent's"
    );
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let timed_out = f.store.time_out_overdue(0).await.unwrap();
    assert_eq!(timed_out.len(), 1);
    assert_eq!(timed_out[0].id, c.id);
    assert_eq!(
        f.store.command(&c.id).await.unwrap().unwrap().status,
        "timed_out"
    );

    let long = f
        .store
        .insert_command(new(3600), Actor::SYSTEM)
        .await
        .unwrap();
    assert_eq!(f.store.claim_pending(&id).await.unwrap()[0].id, long.id);
    assert!(
        f.store.time_out_overdue(0).await.unwrap().is_empty(),
        "within its timeout"
    );
    assert!(f
        .store
        .cancel_command(&long.id, Actor::SYSTEM)
        .await
        .unwrap());
    assert_eq!(
        f.store
            .store_result(&id, &long.id, "completed", 0, "out", "", 5)
            .await
            .unwrap()
            .as_deref(),
        Some("cancelled")
    );
    assert_eq!(
        f.store
            .command(&long.id)
            .await
            .unwrap()
            .unwrap()
            .stdout
            .as_deref(),
        Some("out")
    );
    assert!(!f
        .store
        .cancel_command(&long.id, Actor::SYSTEM)
        .await
        .unwrap());
}

async fn site_codes_are_unique(db: TestDb) {
    let f = fresh(db).await;
    let client = f
        .store
        .create_client("c", None, Actor::SYSTEM)
        .await
        .unwrap();
    f.store
        .create_site(&client.id, "a", "AMBER-RIVER-1234", None, Actor::SYSTEM)
        .await
        .unwrap();
    let err = f
        .store
        .create_site(&client.id, "b", "AMBER-RIVER-1234", None, Actor::SYSTEM)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict { field } if field == "site_code"),
        "a conflict naming the field: {err:?}"
    );
    assert!(f
        .store
        .site_by_code("AMBER-RIVER-1234")
        .await
        .unwrap()
        .is_some());
}

fn shell_command<'a>(agent_id: &'a str, command: &'a str) -> NewCommand<'a> {
    NewCommand {
        agent_id,
        command_type: "shell",
        command,
        interpreter: None,
        working_directory: None,
        context_files: None,
        timeout_seconds: 60,
        elevated: false,
        created_by: None,
    }
}

/// A change and its audit row commit together or not at all: with the audit table gone, every
/// audited change fails and leaves nothing behind.
async fn a_failed_audit_write_undoes_the_change(db: TestDb) {
    let f = fresh(db).await;
    let store = &f.store;
    let admin = "00000000-0000-0000-0000-000000000001";
    let by = Actor::user(admin);
    let client = store.create_client("kept", None, by).await.unwrap();
    let site = store
        .create_site(&client.id, "office", "AMBER-RIVER-1111", None, by)
        .await
        .unwrap();
    let agent_id = agent(store).await;
    let queued = store
        .insert_command(shell_command(&agent_id, "true"), by)
        .await
        .unwrap();
    assert_eq!(store.audit_count("client.create").await.unwrap(), 1);

    sqlx::query("DROP TABLE audit_log")
        .execute(store.pool())
        .await
        .unwrap();

    assert!(store.create_client("lost", None, by).await.is_err());
    assert!(store
        .update_client(&client.id, "renamed", None, by)
        .await
        .is_err());
    assert!(store
        .create_site(&client.id, "lost", "AMBER-RIVER-2222", None, by)
        .await
        .is_err());
    assert!(store
        .set_site_code(&site, "AMBER-RIVER-3333", by)
        .await
        .is_err());
    assert!(store.move_agent(&agent_id, Some(&site), by).await.is_err());
    assert!(store
        .insert_command(shell_command(&agent_id, "lost"), by,)
        .await
        .is_err());
    assert!(store.cancel_command(&queued.id, by).await.is_err());
    assert!(store.delete_agent(&agent_id, by).await.is_err());
    assert!(store.delete_client(&client.id, by).await.is_err());

    // None of it happened.
    let clients = store.list_clients().await.unwrap();
    assert_eq!(clients.len(), 1);
    assert_eq!(clients[0].name, "kept");
    let sites = store.list_sites(None).await.unwrap();
    assert_eq!(sites.len(), 1);
    assert_eq!(sites[0].site_code, "AMBER-RIVER-1111");
    let agent = store.agent(&agent_id).await.unwrap().expect("not deleted");
    assert_eq!(agent.site_id, None, "not moved");
    let commands = store
        .list_commands(&gururmm_server::db::CommandFilter {
            agent_id: Some(agent_id.clone()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(commands.len(), 1, "no second command");
    assert_eq!(commands[0].status, "pending", "not cancelled");
}

/// Event-stream tickets live in the database (any node redeems them): each works once, and not
/// after it expired.
async fn event_tickets_are_single_use_and_expire(db: TestDb) {
    let f = fresh(db).await;
    let user = f
        .store
        .create_user("t@example.com", "x", Role::Viewer, Actor::SYSTEM)
        .await
        .unwrap();
    let session = f
        .store
        .create_session(
            &user.id,
            NewSession {
                expires_at: gururmm_server::db::now_ms() + 60_000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let now = gururmm_server::db::now_ms();
    f.store
        .store_event_ticket("live", &session.id, now + 30_000)
        .await
        .unwrap();
    f.store
        .store_event_ticket("stale", &session.id, now - 1)
        .await
        .unwrap();
    assert_eq!(
        f.store
            .redeem_event_ticket("live")
            .await
            .unwrap()
            .as_deref(),
        Some(session.id.as_str())
    );
    assert_eq!(
        f.store.redeem_event_ticket("live").await.unwrap(),
        None,
        "used once"
    );
    assert_eq!(
        f.store.redeem_event_ticket("stale").await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(f.store.redeem_event_ticket("made-up").await.unwrap(), None);
    f.store
        .store_event_ticket("old", &session.id, now - 1)
        .await
        .unwrap();
    assert_eq!(f.store.prune_event_tickets().await.unwrap(), 1);
}

on_both_databases!(
    shared_limits_hold_for_concurrent_callers,
    metrics_writer_stores_batches_and_skips_a_refused_report,
    missing_then_present_metrics_values,
    event_tickets_are_single_use_and_expire,
    a_failed_audit_write_undoes_the_change,
    network_state_only_on_hash_change,
    metrics_retention_prunes_old_rows,
    command_state_transitions,
    site_codes_are_unique
);
