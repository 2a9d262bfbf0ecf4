//! In-memory parts of user sign-in: single-use event-stream tickets, the "session ended"
//! broadcast that closes open event streams, and a count of password checks (the slow Argon2
//! step the sign-in limits exist to bound; tests read it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;
use tokio::sync::broadcast;

/// How long an event-stream ticket may wait to be used.
pub const TICKET_TTL: Duration = Duration::from_secs(30);

/// Sessions that just ended: one session, or every session of a user.
#[derive(Debug, Clone)]
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
    /// ticket -> (session id, issued at).
    tickets: Mutex<HashMap<String, (String, Instant)>>,
    ticket_ttl: Duration,
    ended: broadcast::Sender<SessionEnded>,
    password_checks: AtomicU64,
}

impl Default for SignIn {
    fn default() -> Self {
        SignIn {
            tickets: Mutex::default(),
            ticket_ttl: TICKET_TTL,
            ended: broadcast::channel(256).0,
            password_checks: AtomicU64::new(0),
        }
    }
}

impl SignIn {
    /// A new ticket for `session_id`, usable once within [`TICKET_TTL`].
    pub fn issue_ticket(&self, session_id: &str) -> String {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let ticket = hex::encode(bytes);
        let mut tickets = self.tickets.lock().expect("tickets lock");
        tickets.retain(|_, (_, at)| at.elapsed() < self.ticket_ttl);
        tickets.insert(ticket.clone(), (session_id.to_owned(), Instant::now()));
        ticket
    }

    /// The session a ticket was issued for; the ticket is gone afterwards, used or expired.
    pub fn redeem_ticket(&self, ticket: &str) -> Option<String> {
        let (session, at) = self.tickets.lock().expect("tickets lock").remove(ticket)?;
        (at.elapsed() < self.ticket_ttl).then_some(session)
    }

    pub fn announce_ended(&self, ended: SessionEnded) {
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
    fn tickets_are_single_use() {
        let s = SignIn::default();
        let t = s.issue_ticket("sid");
        assert_eq!(t.len(), 64);
        assert_eq!(s.redeem_ticket(&t).as_deref(), Some("sid"));
        assert_eq!(s.redeem_ticket(&t), None);
        assert_eq!(s.redeem_ticket("made-up"), None);
    }

    #[test]
    fn tickets_expire() {
        let s = SignIn {
            ticket_ttl: Duration::from_millis(20),
            ..SignIn::default()
        };
        let t = s.issue_ticket("sid");
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(s.redeem_ticket(&t), None);
    }

    #[test]
    fn ended_covers_the_session_or_the_user() {
        assert!(SessionEnded::One("s".into()).covers("s", "u"));
        assert!(!SessionEnded::One("s".into()).covers("t", "u"));
        assert!(SessionEnded::AllOf("u".into()).covers("t", "u"));
        assert!(!SessionEnded::AllOf("u".into()).covers("t", "v"));
    }
}
