//! Sliding-window counters, in memory, keyed by a string ("login-ip:1.2.3.4", "cmd-user:<id>").

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct RateLimiter {
    hits: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// Refused: try again after this long.
#[derive(Debug, Clone, Copy)]
pub struct RetryAfter(pub Duration);

impl RateLimiter {
    /// Counts one event for `key` unless `limit` events already fall in the window.
    pub fn check_and_record(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<(), RetryAfter> {
        self.check(key, limit, window)?;
        self.record(key);
        Ok(())
    }

    /// Whether another event would be allowed, without counting one.
    pub fn check(&self, key: &str, limit: u32, window: Duration) -> Result<(), RetryAfter> {
        let now = Instant::now();
        let mut hits = self.hits.lock().expect("rate limiter lock");
        let Some(q) = hits.get_mut(key) else {
            return Ok(());
        };
        while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
            q.pop_front();
        }
        if q.len() >= limit as usize {
            let oldest = *q.front().expect("non-empty");
            return Err(RetryAfter(
                window.saturating_sub(now.duration_since(oldest)),
            ));
        }
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

    pub fn reset(&self, key: &str) {
        self.hits.lock().expect("rate limiter lock").remove(key);
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
}
