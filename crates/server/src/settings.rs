//! Settings administrators change at run time (stored in `server_settings`, shared by every
//! node). Read on every request, so they are cached here and reloaded after a few seconds:
//! a change made on this node applies at once, one made on another node within
//! [`RELOAD_AFTER`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::db::{DbResult, Store};

pub const RELOAD_AFTER: Duration = Duration::from_secs(5);
pub const REQUIRE_TWO_FACTOR: &str = "require_two_factor";

#[derive(Default)]
pub struct RuntimeSettings {
    require_two_factor: AtomicBool,
    loaded_at: Mutex<Option<Instant>>,
}

impl RuntimeSettings {
    /// Whether administrators require two-factor sign-in of every user (the operator's
    /// `require_two_factor` config setting requires it too, whatever this says).
    pub async fn require_two_factor(&self, store: &Store) -> DbResult<bool> {
        let stale = self
            .loaded_at
            .lock()
            .expect("settings lock")
            .is_none_or(|at| at.elapsed() >= RELOAD_AFTER);
        if stale {
            let value = store.setting(REQUIRE_TWO_FACTOR).await?;
            self.require_two_factor
                .store(value.as_deref() == Some("true"), Ordering::Relaxed);
            *self.loaded_at.lock().expect("settings lock") = Some(Instant::now());
        }
        Ok(self.require_two_factor.load(Ordering::Relaxed))
    }

    /// After this node changed it: the new value applies here at once.
    pub fn set_require_two_factor(&self, on: bool) {
        self.require_two_factor.store(on, Ordering::Relaxed);
        *self.loaded_at.lock().expect("settings lock") = Some(Instant::now());
    }
}
