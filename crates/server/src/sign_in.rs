//! Parts of user sign-in: single-use event-stream tickets (kept in the database, see
//! `Store::store_event_ticket`, so any server node can redeem them), the "session ended"
//! broadcast that closes this node's open event streams at once (streams on other nodes notice
//! within seconds, when they re-check their session), and a count of password checks (the slow
//! Argon2 step the sign-in limits exist to bound; tests read it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::RngCore;
use tokio::sync::broadcast;

/// How long an event-stream ticket may wait to be used.
pub const TICKET_TTL: Duration = Duration::from_secs(30);

/// Sessions that just ended: one session, or every session of a user.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "scope", content = "id", rename_all = "snake_case")]
pub enum SessionEnded {
    One(String),
    AllOf(String),
}

impl SessionEnded {
    pub fn covers(&self, session_id: &str, user_id: &str) -> bool {
        match self {
            SessionEnded::One(id) => id == session_id,
            SessionEnded::AllOf(user) => user == user_id,
        }
    }
}

pub struct SignIn {
    ended: broadcast::Sender<SessionEnded>,
    password_checks: AtomicU64,
}

impl Default for SignIn {
    fn default() -> Self {
        SignIn {
            ended: broadcast::channel(256).0,
            password_checks: AtomicU64::new(0),
        }
    }
}

/// A new event-stream ticket and the SHA-256 it is stored as.
pub fn new_ticket() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let ticket = hex::encode(bytes);
    let hash = ticket_hash(&ticket);
    (ticket, hash)
}

pub fn ticket_hash(ticket: &str) -> String {
    crate::auth::key_hash(ticket)
}

impl SignIn {
    /// Closes this node's streams of the ended session; [`crate::state::AppState::announce_session_ended`]
    /// tells the other nodes too.
    pub fn announce_ended_local(&self, ended: SessionEnded) {
        let _ = self.ended.send(ended);
    }

    pub fn subscribe_ended(&self) -> broadcast::Receiver<SessionEnded> {
        self.ended.subscribe()
    }

    /// Verifies a password against a hash on the blocking pool, counting the check.
    pub async fn verify_password(&self, password: String, hash: String) -> anyhow::Result<bool> {
        self.password_checks.fetch_add(1, Ordering::Relaxed);
        Ok(
            tokio::task::spawn_blocking(move || crate::auth::verify_password(&password, &hash))
                .await?,
        )
    }

    /// Passwords verified since the server started.
    pub fn password_checks(&self) -> u64 {
        self.password_checks.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ended_covers_the_session_or_the_user() {
        assert!(SessionEnded::One("s".into()).covers("s", "u"));
        assert!(!SessionEnded::One("s".into()).covers("t", "u"));
        assert!(SessionEnded::AllOf("u".into()).covers("t", "u"));
        assert!(!SessionEnded::AllOf("u".into()).covers("t", "v"));
    }
}
