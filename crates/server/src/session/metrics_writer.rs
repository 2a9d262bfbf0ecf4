//! The metrics write path. Reports are queued and written in batches, one transaction each
//! (`Store::insert_metrics_batch`), so a busy fleet costs a few statements per batch instead
//! of a transaction per report.
//!
//! - No deliberate delay: the writer takes whatever queued while the previous batch was being
//!   written, so batches grow with the load and a quiet server writes at once.
//! - Bounded: the queue holds `report_queue_capacity` reports (default 20,000: about a second
//!   at the rate the server is built for, or a few minutes of a thousand agents' reports while
//!   the database is away). A socket never waits on it for long: when it stays full for
//!   `FULL_WAIT` the report is dropped and counted (`dropped()`), so a database outage never
//!   stops the server reading agents' sockets (and answering their pings).
//! - At risk in a crash: what is queued. A legacy agent's poll answers only after its report
//!   is written, so its outbox keeps anything not stored.
//! - A batch the database refuses (say, a report of an agent deleted a moment ago) is retried
//!   report by report, so one bad report costs only itself; while the database is
//!   unreachable the batch waits and is retried.

use std::sync::Arc;
use std::time::Duration;

use gururmm_protocol::MetricsReport;
use tokio::sync::{mpsc, oneshot};

use crate::db::{retry_while_unavailable, DbResult, Store, StoreError};

/// How long a report may wait for room in a full queue before it is dropped.
const FULL_WAIT: Duration = Duration::from_millis(250);
/// Most reports in one batch.
const BATCH_REPORTS: usize = 2_000;

/// A report's fate: stored, or why not.
type Outcome = Result<(), String>;

enum Queued {
    Report {
        agent_id: String,
        report: MetricsReport,
        stored: Option<oneshot::Sender<Outcome>>,
    },
    /// Answers once everything queued before it is written.
    Barrier(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct MetricsWriter {
    tx: mpsc::Sender<Queued>,
    dropped: Arc<super::deferred::DropCounter>,
}

impl MetricsWriter {
    /// Starts the writer task on `store` with room for `capacity` waiting reports.
    pub fn start(store: Store, capacity: usize) -> MetricsWriter {
        let (tx, rx) = mpsc::channel(capacity);
        tokio::spawn(run(store, rx));
        MetricsWriter {
            tx,
            dropped: Arc::default(),
        }
    }

    /// Queues a report; drops it (counted) when the queue stays full for `FULL_WAIT`.
    pub async fn queue(&self, agent_id: &str, report: MetricsReport) {
        let item = Queued::Report {
            agent_id: agent_id.to_owned(),
            report,
            stored: None,
        };
        match self.tx.send_timeout(item, FULL_WAIT).await {
            Ok(()) => {}
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                self.dropped.record("metrics reports");
                crate::telemetry::write_dropped(crate::telemetry::Writer::Metrics, 1);
            }
            Err(mpsc::error::SendTimeoutError::Closed(_)) => {
                tracing::error!(agent_id, "metrics writer stopped; report dropped");
                crate::telemetry::write_dropped(crate::telemetry::Writer::Metrics, 1);
            }
        }
    }

    /// Reports dropped because the queue was full, since the start.
    pub fn dropped(&self) -> u64 {
        self.dropped.total()
    }

    /// Queues a report and waits until it is written.
    pub async fn store(&self, agent_id: &str, report: MetricsReport) -> DbResult<()> {
        let (stored, done) = oneshot::channel();
        let item = Queued::Report {
            agent_id: agent_id.to_owned(),
            report,
            stored: Some(stored),
        };
        let failed = |why: String| StoreError::Other(sqlx::Error::Protocol(why));
        let stopped = || failed("the metrics writer has stopped".into());
        self.tx.send(item).await.map_err(|_| stopped())?;
        done.await.map_err(|_| stopped())?.map_err(failed)
    }

    /// Reports queued, not yet taken by the writer.
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// The most reports the queue holds.
    pub fn capacity(&self) -> usize {
        self.tx.max_capacity()
    }

    /// Waits until every report queued so far is written (a clean shutdown; tests).
    pub async fn drain(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Queued::Barrier(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Queued>) {
    let mut batch: Vec<(String, MetricsReport)> = Vec::new();
    let mut waiting: Vec<(usize, oneshot::Sender<Outcome>)> = Vec::new();
    let mut barriers: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Queued::Report {
                    agent_id,
                    report,
                    stored,
                } => {
                    if let Some(s) = stored {
                        waiting.push((batch.len(), s));
                    }
                    batch.push((agent_id, report));
                }
                Queued::Barrier(b) => barriers.push(b),
            }
            if batch.len() < BATCH_REPORTS {
                next = rx.try_recv().ok();
            }
        }
        let started = std::time::Instant::now();
        let outcomes = write(&store, &batch).await;
        crate::telemetry::write_batch(crate::telemetry::Writer::Metrics, batch.len(), started);
        for (index, stored) in waiting.drain(..) {
            let _ = stored.send(outcomes[index].clone());
        }
        for b in barriers.drain(..) {
            let _ = b.send(());
        }
        batch.clear();
    }
}

/// Writes a batch; returns each report's outcome.
async fn write(store: &Store, batch: &[(String, MetricsReport)]) -> Vec<Outcome> {
    if batch.is_empty() {
        return Vec::new();
    }
    match retry_while_unavailable("metrics reports", || store.insert_metrics_batch(batch)).await {
        Ok(()) => return vec![Ok(()); batch.len()],
        Err(e) => {
            tracing::warn!(reports = batch.len(), error = %e, "a metrics batch was refused; storing its reports one by one")
        }
    }
    let mut outcomes = Vec::with_capacity(batch.len());
    for one in batch.chunks(1) {
        let outcome =
            retry_while_unavailable("metrics reports", || store.insert_metrics_batch(one)).await;
        if let Err(e) = &outcome {
            tracing::warn!(agent_id = %one[0].0, error = %e, "metrics report not stored");
        }
        outcomes.push(outcome.map_err(|e| e.to_string()));
    }
    outcomes
}
