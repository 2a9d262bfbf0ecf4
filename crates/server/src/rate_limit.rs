//! Sliding-window counters, in memory, keyed by a string ("login-ip:1.2.3.4", "cmd-user:<id>").

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct RateLimiter {
    hits: Mutex<HashMap<String, VecDeque<Instant>>>,
    /// Per key, the earliest time the next spaced event may happen (see [`Self::take_slot`]).
    slots: Mutex<HashMap<String, Instant>>,
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

    /// Events for `key` within the window.
    pub fn count(&self, key: &str, window: Duration) -> usize {
        let now = Instant::now();
        self.hits
            .lock()
            .expect("rate limiter lock")
            .get(key)
            .map_or(0, |q| {
                q.iter()
                    .filter(|t| now.duration_since(**t) < window)
                    .count()
            })
    }

    /// Takes back the latest event counted for `key` (a reserved attempt that succeeded).
    pub fn release_one(&self, key: &str) {
        if let Some(q) = self.hits.lock().expect("rate limiter lock").get_mut(key) {
            q.pop_back();
        }
    }

    /// Spaces events for `key` at least `interval` apart: returns how long this one must wait
    /// for its turn (its turn is then taken), or refuses when the wait would exceed `max_wait`.
    pub fn take_slot(
        &self,
        key: &str,
        interval: Duration,
        max_wait: Duration,
    ) -> Result<Duration, RetryAfter> {
        let now = Instant::now();
        let mut slots = self.slots.lock().expect("rate limiter lock");
        let next = slots.get(key).copied().unwrap_or(now).max(now);
        let wait = next - now;
        if wait > max_wait {
            return Err(RetryAfter(wait));
        }
        slots.insert(key.to_owned(), next + interval);
        Ok(wait)
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
        self.slots
            .lock()
            .expect("rate limiter lock")
            .retain(|_, next| *next > now);
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
        assert_eq!(rl.count("k", w), 10);
        rl.release_one("k");
        assert_eq!(rl.count("k", w), 9);
    }

    #[test]
    fn slots_space_events_and_refuse_past_the_longest_wait() {
        let rl = RateLimiter::default();
        let (i, max) = (Duration::from_secs(1), Duration::from_millis(2500));
        assert_eq!(rl.take_slot("a", i, max).unwrap(), Duration::ZERO);
        let second = rl.take_slot("a", i, max).unwrap();
        assert!(second > Duration::from_millis(900) && second <= i);
        assert!(rl.take_slot("a", i, max).unwrap() <= 2 * i);
        assert!(rl.take_slot("a", i, max).is_err(), "a 3 s wait is refused");
        assert_eq!(rl.take_slot("b", i, max).unwrap(), Duration::ZERO);
    }
}
