//! Reconnect delays: exponential from the configured delay, capped, and spread at random over
//! 10-100 % of that, so a fleet that lost its server at the same moment comes back over the
//! whole delay instead of in a burst at its end (with the default 10 s: 1 to 10 s).

use std::time::Duration;

use rand::Rng;

pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            base,
            max: max.max(base),
            failures: 0,
        }
    }

    /// The delay before the next attempt: `min(base * 2^failures, max)`, times a random
    /// factor in 0.1..=1.
    pub fn next_delay(&mut self) -> Duration {
        let factor = 2u32.saturating_pow(self.failures.min(20));
        let full = self.base.saturating_mul(factor).min(self.max);
        self.failures = self.failures.saturating_add(1);
        let jitter: f64 = rand::thread_rng().gen_range(0.1..=1.0);
        full.mul_f64(jitter)
    }

    /// After a connection that worked, start again from the base delay.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_is_capped_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(10), Duration::from_secs(60));
        let d: Vec<Duration> = (0..6).map(|_| b.next_delay()).collect();
        assert!(d[0] >= Duration::from_secs(1) && d[0] <= Duration::from_secs(10));
        assert!(d[1] >= Duration::from_secs(2) && d[1] <= Duration::from_secs(20));
        assert!(d[2] >= Duration::from_secs(4) && d[2] <= Duration::from_secs(40));
        for x in &d[3..] {
            assert!(*x >= Duration::from_secs(6) && *x <= Duration::from_secs(60));
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_secs(10));
    }

    #[test]
    fn a_fleet_spreads_over_the_whole_first_delay() {
        // 1,000 agents losing the server together: no second of the 10 s takes much more
        // than its share, so the server never sees the whole fleet in one burst.
        let mut per_second = [0u32; 10];
        for _ in 0..1000 {
            let mut b = Backoff::new(Duration::from_secs(10), Duration::from_secs(300));
            let d = b.next_delay();
            per_second[(d.as_secs() as usize).min(9)] += 1;
        }
        assert_eq!(per_second[0], 0, "none sooner than a tenth of the delay");
        assert!(
            per_second.iter().skip(1).all(|n| *n >= 60 && *n <= 170),
            "{per_second:?}"
        );
    }

    #[test]
    fn jitter_varies() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20 {
            let mut b = Backoff::new(Duration::from_secs(10), Duration::from_secs(10));
            seen.insert(b.next_delay().as_millis());
        }
        assert!(seen.len() > 1);
    }
}
