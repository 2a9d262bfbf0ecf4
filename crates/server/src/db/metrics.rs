use gururmm_protocol::{MetricsReport, WatchdogEvent};
use serde::Serialize;
use sqlx::Row;

use super::{new_id, now_ms, DbResult, Store};

/// One point of a metrics series; a bucket average when the range is downsampled.
#[derive(Debug, Clone, Serialize)]
pub struct MetricsPoint {
    #[serde(with = "super::rfc3339")]
    pub timestamp: i64,
    pub cpu_percent: Option<f64>,
    pub memory_used_bytes: Option<i64>,
    pub memory_total_bytes: Option<i64>,
    pub disk_used_bytes: Option<i64>,
    pub disk_total_bytes: Option<i64>,
    /// Cumulative counters: the highest value in the bucket.
    pub network_rx_bytes: Option<i64>,
    pub network_tx_bytes: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricsSummary {
    /// Agents with a report in the window.
    pub agents_reporting: i64,
    pub window_seconds: i64,
    pub avg_cpu_percent: Option<f64>,
    pub max_cpu_percent: Option<f64>,
    pub avg_memory_percent: Option<f64>,
    pub max_disk_percent: Option<f64>,
    pub points: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct WatchdogEventRecord {
    pub id: String,
    pub agent_id: String,
    pub service: String,
    pub event: gururmm_protocol::WatchdogEventKind,
    pub message: Option<String>,
    #[serde(with = "super::rfc3339")]
    pub timestamp: i64,
}

/// Rows per multi-row insert: 10 parameters each stays well under both databases' limits.
const SERIES_ROWS_PER_STATEMENT: usize = 500;

fn clamp_u64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Store {
    /// Stores a metrics report: a row of the series and the agent's latest snapshot, in one
    /// transaction.
    pub async fn insert_metrics(&self, agent_id: &str, m: &MetricsReport) -> DbResult<()> {
        self.insert_metrics_batch(&[(agent_id.to_owned(), m.clone())])
            .await
    }

    /// Stores many reports in one transaction: multi-row inserts into the series, and each
    /// agent's newest report as its snapshot. Used by the metrics writer
    /// (`session::metrics_writer`), so a busy fleet costs a few statements a batch.
    pub async fn insert_metrics_batch(&self, reports: &[(String, MetricsReport)]) -> DbResult<()> {
        if reports.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        for chunk in reports.chunks(SERIES_ROWS_PER_STATEMENT) {
            let mut sql = String::from(
                "INSERT INTO metrics (agent_id, ts, cpu_percent, memory_used_bytes, memory_total_bytes, disk_used_bytes, \
                 disk_total_bytes, network_rx_bytes, network_tx_bytes, disks_json) VALUES ",
            );
            for i in 0..chunk.len() {
                let p = i * 10;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!(
                    "(${}, ${}, CAST(${} AS DOUBLE PRECISION), ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5,
                    p + 6,
                    p + 7,
                    p + 8,
                    p + 9,
                    p + 10
                ));
            }
            let mut q = sqlx::query(&sql);
            for (agent_id, m) in chunk {
                // Saturating: sizes are what the agent says (hostile input), and an overflow
                // would take the whole metrics writer down.
                let sum = |f: fn(&gururmm_protocol::DiskUsage) -> u64| {
                    m.disks
                        .iter()
                        .map(|d| clamp_u64(f(d)))
                        .fold(0i64, i64::saturating_add)
                };
                let disk_total: Option<i64> = (!m.disks.is_empty()).then(|| sum(|d| d.total_bytes));
                let disk_used: Option<i64> = (!m.disks.is_empty()).then(|| sum(|d| d.used_bytes));
                // The agent's clock may be off; a timestamp far in the future would hide
                // newer points.
                let ts = (m.timestamp.saturating_mul(1000)).min(now + 60_000);
                q = q
                    .bind(agent_id)
                    .bind(ts)
                    .bind(super::nullable_float(m.cpu_percent))
                    .bind(m.memory_used_bytes.map(clamp_u64))
                    .bind(m.memory_total_bytes.map(clamp_u64))
                    .bind(disk_used)
                    .bind(disk_total)
                    .bind(m.network.as_ref().map(|n| clamp_u64(n.rx_bytes)))
                    .bind(m.network.as_ref().map(|n| clamp_u64(n.tx_bytes)))
                    .bind(serde_json::to_string(&m.disks).unwrap_or_default());
            }
            q.execute(&mut *tx).await?;
        }
        // One snapshot per agent (an upsert may not touch a row twice): its newest report.
        let mut newest: std::collections::HashMap<&str, &MetricsReport> = Default::default();
        for (agent_id, m) in reports {
            newest.insert(agent_id, m);
        }
        let snapshots: Vec<(&str, &MetricsReport)> = newest.into_iter().collect();
        for chunk in snapshots.chunks(SERIES_ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO agent_state (agent_id, metrics_json, metrics_at) VALUES {} \
                 ON CONFLICT (agent_id) DO UPDATE SET metrics_json = excluded.metrics_json, metrics_at = excluded.metrics_at",
                super::value_rows(chunk.len(), 3)
            );
            let mut q = sqlx::query(&sql);
            for (agent_id, m) in chunk {
                q = q
                    .bind(*agent_id)
                    .bind(serde_json::to_string(m).unwrap_or_default())
                    .bind(now);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Points in [from_ms, to_ms), averaged into buckets of `bucket_ms`.
    pub async fn metrics_range(
        &self,
        agent_id: &str,
        from_ms: i64,
        to_ms: i64,
        bucket_ms: i64,
    ) -> DbResult<Vec<MetricsPoint>> {
        let rows = sqlx::query(
            "SELECT (ts / $1) * $1 AS bucket, AVG(cpu_percent) AS cpu, \
             CAST(AVG(memory_used_bytes) AS BIGINT) AS mem_used, CAST(AVG(memory_total_bytes) AS BIGINT) AS mem_total, \
             CAST(AVG(disk_used_bytes) AS BIGINT) AS disk_used, CAST(AVG(disk_total_bytes) AS BIGINT) AS disk_total, \
             MAX(network_rx_bytes) AS rx, MAX(network_tx_bytes) AS tx \
             FROM metrics WHERE agent_id = $2 AND ts >= $3 AND ts < $4 GROUP BY 1 ORDER BY 1",
        )
        .bind(bucket_ms.max(1))
        .bind(agent_id)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MetricsPoint {
                    timestamp: r.try_get("bucket")?,
                    cpu_percent: r.try_get("cpu")?,
                    memory_used_bytes: r.try_get("mem_used")?,
                    memory_total_bytes: r.try_get("mem_total")?,
                    disk_used_bytes: r.try_get("disk_used")?,
                    disk_total_bytes: r.try_get("disk_total")?,
                    network_rx_bytes: r.try_get("rx")?,
                    network_tx_bytes: r.try_get("tx")?,
                })
            })
            .collect()
    }

    pub async fn metrics_summary(&self, window_ms: i64) -> DbResult<MetricsSummary> {
        let row = sqlx::query(
            "SELECT COUNT(DISTINCT agent_id) AS agents, COUNT(*) AS points, AVG(cpu_percent) AS avg_cpu, MAX(cpu_percent) AS max_cpu, \
             AVG(CAST(memory_used_bytes AS DOUBLE PRECISION) * 100.0 / NULLIF(memory_total_bytes, 0)) AS avg_mem, \
             MAX(CAST(disk_used_bytes AS DOUBLE PRECISION) * 100.0 / NULLIF(disk_total_bytes, 0)) AS max_disk \
             FROM metrics WHERE ts >= $1",
        )
        .bind(now_ms() - window_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(MetricsSummary {
            agents_reporting: row.try_get("agents")?,
            window_seconds: window_ms / 1000,
            avg_cpu_percent: row.try_get("avg_cpu")?,
            max_cpu_percent: row.try_get("max_cpu")?,
            avg_memory_percent: row.try_get("avg_mem")?,
            max_disk_percent: row.try_get("max_disk")?,
            points: row.try_get("points")?,
        })
    }

    /// Deletes metrics older than the cutoff; returns how many rows went.
    pub async fn prune_metrics(&self, older_than_ms: i64) -> DbResult<u64> {
        let done = sqlx::query("DELETE FROM metrics WHERE ts < $1")
            .bind(older_than_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn insert_watchdog_event(&self, agent_id: &str, e: &WatchdogEvent) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO watchdog_events (id, agent_id, service, event, message, ts, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(new_id())
        .bind(agent_id)
        .bind(&e.service)
        .bind(&e.event)
        .bind(e.message.as_deref())
        .bind(e.timestamp.saturating_mul(1000))
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn watchdog_events(
        &self,
        agent_id: &str,
        limit: i64,
    ) -> DbResult<Vec<WatchdogEventRecord>> {
        let rows = sqlx::query(
            "SELECT id, agent_id, service, event, message, ts FROM watchdog_events WHERE agent_id = $1 ORDER BY ts DESC, id LIMIT $2",
        )
        .bind(agent_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(WatchdogEventRecord {
                    id: r.try_get("id")?,
                    agent_id: r.try_get("agent_id")?,
                    service: r.try_get("service")?,
                    event: gururmm_protocol::WatchdogEventKind::parse(
                        &r.try_get::<String, _>("event")?,
                    ),
                    message: r.try_get("message")?,
                    timestamp: r.try_get("ts")?,
                })
            })
            .collect()
    }
}
