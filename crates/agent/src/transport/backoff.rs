//! Reconnect delays: exponential from the configured delay, capped, with random jitter so a
//! fleet does not reconnect in lockstep after a server restart.

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

    /// The delay before the next attempt: `min(base * 2^failures, max)`, less up to 25 %.
    pub fn next_delay(&mut self) -> Duration {
        let factor = 2u32.saturating_pow(self.failures.min(20));
        let full = self.base.saturating_mul(factor).min(self.max);
        self.failures = self.failures.saturating_add(1);
        let jitter: f64 = rand::thread_rng().gen_range(0.75..=1.0);
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
        assert!(d[0] >= Duration::from_millis(7500) && d[0] <= Duration::from_secs(10));
        assert!(d[1] >= Duration::from_secs(15) && d[1] <= Duration::from_secs(20));
        assert!(d[2] >= Duration::from_secs(30) && d[2] <= Duration::from_secs(40));
        for x in &d[3..] {
            assert!(*x >= Duration::from_secs(45) && *x <= Duration::from_secs(60));
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_secs(10));
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
