//! Sliding-window counters keyed by a string ("login-ip:1.2.3.4", "cmd-user:<id>").
//!
//! - [`SharedLimits`]: sign-in and enrollment limits, the ones that stop guessing. Counted in
//!   the database, so they hold across every server node.
//! - [`RateLimiter`]: in this node's memory, for limits where a per-node count is acceptable
//!   (commands per technician and per agent) and for log throttling.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Limits counted in the database (keys stored as SHA-256), shared by every node.
pub struct SharedLimits<'a> {
    store: &'a crate::db::Store,
}

/// A shared limit refused the attempt, or the database could not be asked.
#[derive(Debug)]
pub enum Limited {
    Retry(RetryAfter),
    Store(crate::db::StoreError),
}

impl From<crate::db::StoreError> for Limited {
    fn from(e: crate::db::StoreError) -> Limited {
        Limited::Store(e)
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn retry(ms: i64) -> RetryAfter {
    RetryAfter(Duration::from_millis(ms.max(0) as u64))
}

impl<'a> SharedLimits<'a> {
    pub fn new(store: &'a crate::db::Store) -> SharedLimits<'a> {
        SharedLimits { store }
    }

    fn key(key: &str) -> String {
        crate::auth::key_hash(key)
    }

    /// Counts one event for `key` unless `limit` events already fall in the window; check and
    /// count are one step for every node.
    pub async fn check_and_record(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<(), Limited> {
        self.store
            .rate_check_and_record(&Self::key(key), limit, ms(window))
            .await?
            .map_err(|wait| Limited::Retry(retry(wait)))
    }

    pub async fn count(&self, key: &str, window: Duration) -> crate::db::DbResult<usize> {
        let n = self.store.rate_count(&Self::key(key), ms(window)).await?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    pub async fn record(&self, key: &str) -> crate::db::DbResult<()> {
        self.store.rate_record(&Self::key(key)).await
    }

    /// Takes back the latest event counted for `key` (a reserved attempt that succeeded).
    pub async fn release_one(&self, key: &str) -> crate::db::DbResult<()> {
        self.store.rate_release_one(&Self::key(key)).await
    }

    pub async fn reset(&self, key: &str) -> crate::db::DbResult<()> {
        self.store.rate_reset(&Self::key(key)).await
    }

    /// Spaces events for `key` at least `interval` apart: how long this one must wait for its
    /// turn, or refused when the wait would exceed `max_wait`.
    pub async fn take_slot(
        &self,
        key: &str,
        interval: Duration,
        max_wait: Duration,
    ) -> Result<Duration, Limited> {
        self.store
            .rate_take_slot(&Self::key(key), ms(interval), ms(max_wait))
            .await?
            .map(|wait| Duration::from_millis(wait.max(0) as u64))
            .map_err(|wait| Limited::Retry(retry(wait)))
    }
}

#[derive(Default)]
pub struct RateLimiter {
    hits: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// Refused: try again after this long.
#[derive(Debug, Clone, Copy)]
pub struct RetryAfter(pub Duration);

impl RateLimiter {
    /// Counts one event for `key` unless `limit` events already fall in the window: check and
    /// count happen under one lock, so concurrent callers can never exceed the limit.
    pub fn check_and_record(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<(), RetryAfter> {
        let now = Instant::now();
        let mut hits = self.hits.lock().expect("rate limiter lock");
        let q = hits.entry(key.to_owned()).or_default();
        within_limit(q, now, limit, window)?;
        q.push_back(now);
        Ok(())
    }

    /// Whether another event would be allowed, without counting one.
    pub fn check(&self, key: &str, limit: u32, window: Duration) -> Result<(), RetryAfter> {
        let now = Instant::now();
        let mut hits = self.hits.lock().expect("rate limiter lock");
        let Some(q) = hits.get_mut(key) else {
            return Ok(());
        };
        within_limit(q, now, limit, window)?;
        Ok(())
    }

    pub fn record(&self, key: &str) {
        self.hits
            .lock()
            .expect("rate limiter lock")
            .entry(key.to_owned())
            .or_default()
            .push_back(Instant::now());
    }

    /// Drops keys with no event in `max_window`, so memory stays bounded.
    pub fn prune(&self, max_window: Duration) {
        let now = Instant::now();
        self.hits.lock().expect("rate limiter lock").retain(|_, q| {
            q.back()
                .is_some_and(|t| now.duration_since(*t) < max_window)
        });
    }
}

/// Drops events that left the window; refuses when `limit` remain.
fn within_limit(
    q: &mut VecDeque<Instant>,
    now: Instant,
    limit: u32,
    window: Duration,
) -> Result<(), RetryAfter> {
    while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
        q.pop_front();
    }
    match q.front() {
        Some(oldest) if q.len() >= limit as usize => Err(RetryAfter(
            window.saturating_sub(now.duration_since(*oldest)),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_within_window_and_frees_after() {
        let rl = RateLimiter::default();
        let w = Duration::from_millis(100);
        assert!(rl.check_and_record("k", 2, w).is_ok());
        assert!(rl.check_and_record("k", 2, w).is_ok());
        let RetryAfter(wait) = rl.check_and_record("k", 2, w).unwrap_err();
        assert!(wait <= w);
        assert!(rl.check_and_record("other", 2, w).is_ok());
        std::thread::sleep(w);
        assert!(rl.check_and_record("k", 2, w).is_ok());
        rl.prune(Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(2));
        rl.prune(Duration::from_millis(1));
        assert!(rl.hits.lock().unwrap().is_empty());
    }

    #[test]
    fn concurrent_callers_never_exceed_the_limit() {
        let rl = std::sync::Arc::new(RateLimiter::default());
        let w = Duration::from_secs(60);
        let allowed: usize = (0..8)
            .map(|_| {
                let rl = rl.clone();
                std::thread::spawn(move || {
                    (0..50)
                        .filter(|_| rl.check_and_record("k", 10, w).is_ok())
                        .count()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(allowed, 10);
    }
}
