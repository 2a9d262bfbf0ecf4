//! What server nodes share through the database: their beats, which node holds each agent's
//! socket, when legacy agents last polled, and the leases that make background work run once
//! per cluster.

use sqlx::Row;

use super::{now_ms, placeholders, value_rows, DbResult, Store};

/// Rows per multi-row statement: well under both databases' parameter limits.
const CHUNK: usize = 500;

/// Presence changes gathered over a moment, written in one transaction.
#[derive(Debug, Default)]
pub struct PresenceBatch {
    /// Agents heard from, with when.
    pub seen: Vec<(String, i64)>,
    /// Agents whose socket this node now holds.
    pub connected: Vec<String>,
    /// Agents whose socket on this node closed (cleared only if no other node took them).
    pub disconnected: Vec<String>,
    /// Legacy agents that polled, with when.
    pub polled: Vec<(String, i64)>,
}

impl PresenceBatch {
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
            && self.connected.is_empty()
            && self.disconnected.is_empty()
            && self.polled.is_empty()
    }
}

impl Store {
    /// Records that `node` is alive (and when it started, the first time).
    pub async fn node_beat(&self, node: &str, started_at: i64) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO server_nodes (id, started_at, last_beat) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET last_beat = excluded.last_beat",
        )
        .bind(node)
        .bind(started_at)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Nodes that beat since `since_ms`.
    pub async fn live_nodes(&self, since_ms: i64) -> DbResult<Vec<String>> {
        let rows = sqlx::query("SELECT id FROM server_nodes WHERE last_beat >= $1")
            .bind(since_ms)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("id")?))
            .collect()
    }

    /// A node stopping cleanly: its agents are offline now, not when its beat goes stale.
    /// Nodes dead for long are forgotten too.
    pub async fn leave_cluster(&self, node: &str) -> DbResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE agents SET connected_node = NULL WHERE connected_node = $1")
            .bind(node)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM server_nodes WHERE id = $1 OR last_beat < $2")
            .bind(node)
            .bind(now_ms() - 86_400_000)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes or renews the lease `name` for `holder` until now + `ttl_ms`. True when `holder`
    /// has it: it was free, expired, or already its own.
    pub async fn take_lease(&self, name: &str, holder: &str, ttl_ms: i64) -> DbResult<bool> {
        let now = now_ms();
        let done = sqlx::query(
            "INSERT INTO cluster_leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE cluster_leases.holder = excluded.holder OR cluster_leases.expires_at < $4",
        )
        .bind(name)
        .bind(holder)
        .bind(now + ttl_ms)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Writes a presence batch of `node` in one transaction, a few statements whatever its
    /// size.
    pub async fn write_presence(&self, node: &str, batch: &PresenceBatch) -> DbResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for (column, rows) in [
            ("last_seen", &batch.seen),
            ("legacy_poll_at", &batch.polled),
        ] {
            for chunk in rows.chunks(CHUNK) {
                // Both databases name a VALUES list's columns column1, column2.
                let sql = format!(
                    "UPDATE agents SET {column} = v.column2 FROM (VALUES {}) AS v WHERE agents.id = v.column1",
                    value_rows(chunk.len(), 2)
                );
                let mut q = sqlx::query(&sql);
                for (id, at) in chunk {
                    q = q.bind(id).bind(*at);
                }
                q.execute(&mut *tx).await?;
            }
        }
        // Taken: this node holds the socket. Released: only if no other node took it since.
        let holders = [
            (
                "UPDATE agents SET connected_node = $1 WHERE id IN",
                &batch.connected,
            ),
            (
                "UPDATE agents SET connected_node = NULL WHERE connected_node = $1 AND id IN",
                &batch.disconnected,
            ),
        ];
        for (update, ids) in holders {
            for chunk in ids.chunks(CHUNK) {
                let sql = format!("{update} ({})", placeholders(2, chunk.len()));
                let mut q = sqlx::query(&sql).bind(node);
                for id in chunk {
                    q = q.bind(id);
                }
                q.execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Agents with a command that has waited since before `before_ms` (and after
    /// `after_ms`): a node re-offers these to the agents it holds, in case a dispatch notice
    /// was lost.
    pub async fn agents_with_waiting_commands(
        &self,
        after_ms: i64,
        before_ms: i64,
    ) -> DbResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT DISTINCT agent_id FROM commands WHERE status = 'pending' AND created_at > $1 AND created_at < $2",
        )
        .bind(after_ms)
        .bind(before_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("agent_id")?))
            .collect()
    }
}

impl Store {
    /// `NOTIFY channel, payload` for each payload, in order, in one statement (PostgreSQL).
    pub async fn notify(&self, channel: &str, payloads: &[String]) -> DbResult<()> {
        if payloads.is_empty() {
            return Ok(());
        }
        let calls = (0..payloads.len())
            .map(|i| format!("pg_notify($1, ${})", i + 2))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("SELECT {calls}");
        let mut q = sqlx::query(&sql).bind(channel);
        for p in payloads {
            q = q.bind(p);
        }
        q.execute(&self.pool).await?;
        Ok(())
    }
}
