//! Writes an agent's socket hands off so it never waits on the database.
//!
//! A WebSocket's task reads frames, answers pings and sends commands; if it also waited for
//! each write, a database outage would stop all of that and the fleet would drop off after
//! its idle timeout, then come back as a storm. So the messages that need the database
//! (command results, network state, watchdog events) are written here, each in its own task
//! that waits out an outage (`retry_while_unavailable`) and then writes.
//!
//! - Bounded: at most `capacity` writes wait at once. Past that a message is dropped and
//!   counted. A command result is never lost that way: the agent keeps it until the server
//!   acknowledges it (`result_ack`) and sends it again.
//! - A clean stop waits (bounded) for what is in flight.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

/// Messages dropped because a queue was full: counted, and logged once per thousand so a long
/// outage does not flood the log.
#[derive(Default)]
pub struct DropCounter(AtomicU64);

impl DropCounter {
    pub fn record(&self, what: &'static str) {
        let before = self.0.fetch_add(1, Ordering::Relaxed);
        if before.is_multiple_of(1000) {
            tracing::warn!(
                dropped = before + 1,
                "{what} dropped: too many wait for the database (logged every 1000)"
            );
        }
    }

    pub fn total(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

pub struct DeferredWrites {
    permits: Arc<Semaphore>,
    capacity: usize,
    dropped: DropCounter,
}

impl DeferredWrites {
    pub fn new(capacity: usize) -> DeferredWrites {
        DeferredWrites {
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
            dropped: DropCounter::default(),
        }
    }

    /// Runs `write` in its own task; false (and counted) when `capacity` writes already wait.
    pub fn spawn(&self, write: impl Future<Output = ()> + Send + 'static) -> bool {
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(async move {
                    write.await;
                    drop(permit);
                });
                true
            }
            Err(_) => {
                self.dropped.record("agent messages");
                crate::telemetry::write_dropped(crate::telemetry::Writer::AgentMessages, 1);
                false
            }
        }
    }

    /// The most writes that may wait at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Writes waiting or in progress.
    pub fn waiting(&self) -> usize {
        self.capacity - self.permits.available_permits()
    }

    /// Messages dropped because too many waited, since the start.
    pub fn dropped(&self) -> u64 {
        self.dropped.total()
    }

    /// Waits until nothing is in flight, or `within` has passed (the database may be away);
    /// returns how many were still waiting.
    pub async fn drain(&self, within: Duration) -> usize {
        let all = u32::try_from(self.capacity).unwrap_or(u32::MAX);
        match tokio::time::timeout(within, self.permits.acquire_many(all)).await {
            Ok(Ok(permits)) => {
                drop(permits);
                0
            }
            _ => self.waiting(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_counted_and_drained() {
        let writes = DeferredWrites::new(2);
        let (release, wait) = tokio::sync::watch::channel(false);
        for _ in 0..2 {
            let mut wait = wait.clone();
            assert!(writes.spawn(async move {
                let _ = wait.wait_for(|go| *go).await;
            }));
        }
        assert!(!writes.spawn(async {}), "a third write is over the bound");
        assert_eq!(writes.dropped(), 1);
        assert_eq!(writes.waiting(), 2);
        assert_eq!(writes.drain(Duration::from_millis(50)).await, 2);
        release.send(true).unwrap();
        assert_eq!(writes.drain(Duration::from_secs(5)).await, 0);
        assert_eq!(writes.waiting(), 0);
    }
}
