//! Sliding-window counters and spaced slots in the database (see `rate_limit::SharedLimits`).
//! Each check-and-count runs in one write transaction that first serialises on its key (an
//! advisory lock on PostgreSQL; SQLite's write lock), so concurrent callers on any node can
//! never pass a limit together.

use sqlx::Row;

use super::{new_id, now_ms, Backend, DbResult, Store};

/// Refused: retry after this many milliseconds.
pub type RetryAfterMs = i64;

impl Store {
    async fn lock_key(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        key: &str,
    ) -> DbResult<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind(key)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Counts one event for `key` unless `limit` already fall within `window_ms`.
    pub async fn rate_check_and_record(
        &self,
        key: &str,
        limit: u32,
        window_ms: i64,
    ) -> DbResult<Result<(), RetryAfterMs>> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        self.lock_key(&mut tx, key).await?;
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(at) AS oldest FROM rate_events WHERE key = $1 AND at > $2",
        )
        .bind(key)
        .bind(now - window_ms)
        .fetch_one(&mut *tx)
        .await?;
        let n: i64 = row.try_get("n")?;
        if n >= i64::from(limit) {
            let oldest: Option<i64> = row.try_get("oldest")?;
            let retry = window_ms - (now - oldest.unwrap_or(now));
            return Ok(Err(retry.max(0)));
        }
        insert_event(&mut tx, key, now).await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Events for `key` within `window_ms`.
    pub async fn rate_count(&self, key: &str, window_ms: i64) -> DbResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM rate_events WHERE key = $1 AND at > $2")
                .bind(key)
                .bind(now_ms() - window_ms)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    pub async fn rate_record(&self, key: &str) -> DbResult<()> {
        let mut tx = self.begin_write().await?;
        insert_event(&mut tx, key, now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes back the latest event counted for `key`.
    pub async fn rate_release_one(&self, key: &str) -> DbResult<()> {
        sqlx::query(
            "DELETE FROM rate_events WHERE id = \
             (SELECT id FROM rate_events WHERE key = $1 ORDER BY at DESC, id LIMIT 1)",
        )
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn rate_reset(&self, key: &str) -> DbResult<()> {
        sqlx::query("DELETE FROM rate_events WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Spaces events for `key` at least `interval_ms` apart: the wait for this one (its turn
    /// is then taken), or refused when the wait would exceed `max_wait_ms`.
    pub async fn rate_take_slot(
        &self,
        key: &str,
        interval_ms: i64,
        max_wait_ms: i64,
    ) -> DbResult<Result<i64, RetryAfterMs>> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        self.lock_key(&mut tx, key).await?;
        let next: Option<i64> = sqlx::query_scalar("SELECT next_at FROM rate_slots WHERE key = $1")
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
        let turn = next.unwrap_or(now).max(now);
        let wait = turn - now;
        if wait > max_wait_ms {
            return Ok(Err(wait));
        }
        sqlx::query(
            "INSERT INTO rate_slots (key, next_at) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET next_at = excluded.next_at",
        )
        .bind(key)
        .bind(turn + interval_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(wait))
    }

    /// Forgets events older than `max_window_ms` and slots in the past.
    pub async fn rate_prune(&self, max_window_ms: i64) -> DbResult<u64> {
        let now = now_ms();
        let events = sqlx::query("DELETE FROM rate_events WHERE at < $1")
            .bind(now - max_window_ms)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM rate_slots WHERE next_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(events.rows_affected())
    }
}

async fn insert_event(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    key: &str,
    at: i64,
) -> DbResult<()> {
    sqlx::query("INSERT INTO rate_events (id, key, at) VALUES ($1, $2, $3)")
        .bind(new_id())
        .bind(key)
        .bind(at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
