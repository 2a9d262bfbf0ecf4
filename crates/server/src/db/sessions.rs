//! Sign-in sessions. Every JWT names one (`sid`); the access layer looks it up with its user on
//! each request, so a session ended here stops working at once.

use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::users::{user_from_row, U_COLUMNS};
use super::{audit, new_id, now_ms, Actor, DbResult, Store, StoreError, UserRecord};

#[derive(Debug, Clone, Serialize)]
pub struct SessionRecord {
    pub id: String,
    pub user_id: String,
    pub created_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
    pub ended_at: Option<i64>,
    pub user_agent: Option<String>,
    pub source_address: Option<String>,
    /// Started by single sign-on (the provider did the second factor).
    pub via_sso: bool,
}

/// Where a sign-in came from, shown in the user's session list.
#[derive(Debug, Default)]
pub struct NewSession<'a> {
    pub user_agent: Option<&'a str>,
    pub source_address: Option<&'a str>,
    /// Unix ms.
    pub expires_at: i64,
    /// Started by single sign-on.
    pub via_sso: bool,
}

const COLUMNS: &str = "s.id AS sid, s.user_id AS s_user_id, s.created_at AS s_created_at, \
     s.last_used_at, s.expires_at, s.ended_at, s.user_agent, s.source_address, s.via_sso";

fn from_row(row: &sqlx::any::AnyRow) -> DbResult<SessionRecord> {
    Ok(SessionRecord {
        id: row.try_get("sid")?,
        user_id: row.try_get("s_user_id")?,
        created_at: row.try_get("s_created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        expires_at: row.try_get("expires_at")?,
        ended_at: row.try_get("ended_at")?,
        user_agent: row.try_get("user_agent")?,
        source_address: row.try_get("source_address")?,
        via_sso: row.try_get::<i64, _>("via_sso")? != 0,
    })
}

/// Ends every live session of `user_id`, inside the caller's transaction.
pub(super) async fn end_all(conn: &mut AnyConnection, user_id: &str) -> DbResult<u64> {
    let done =
        sqlx::query("UPDATE sessions SET ended_at = $1 WHERE user_id = $2 AND ended_at IS NULL")
            .bind(now_ms())
            .bind(user_id)
            .execute(conn)
            .await?;
    Ok(done.rows_affected())
}

/// `last_used_at` is written at most this often, so a busy dashboard does not write on every
/// request.
const TOUCH_EVERY_MS: i64 = 60_000;

impl Store {
    /// A new session for a user who just proved who they are, with the audit row `user.login`.
    pub async fn create_session(
        &self,
        user_id: &str,
        new: NewSession<'_>,
    ) -> DbResult<SessionRecord> {
        let id = new_id();
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, user_agent, source_address, via_sso) \
             VALUES ($1, $2, $3, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(user_id)
        .bind(now)
        .bind(new.expires_at)
        .bind(new.user_agent.map(|ua| truncate(ua, 300)))
        .bind(new.source_address)
        .bind(i64::from(new.via_sso))
        .execute(&mut *tx)
        .await?;
        audit::record(
            &mut tx,
            Actor::user(user_id),
            "user.login",
            "session",
            Some(&id),
            new.source_address,
        )
        .await?;
        tx.commit().await?;
        Ok(SessionRecord {
            id,
            user_id: user_id.to_owned(),
            created_at: now,
            last_used_at: now,
            expires_at: new.expires_at,
            ended_at: None,
            user_agent: new.user_agent.map(|ua| truncate(ua, 300).to_owned()),
            source_address: new.source_address.map(str::to_owned),
            via_sso: new.via_sso,
        })
    }

    /// The session `id` and its user, if the session is live (not ended, not expired) and the
    /// user is not disabled. One indexed lookup; `last_used_at` is refreshed now and then.
    pub async fn live_session(&self, id: &str) -> DbResult<Option<(SessionRecord, UserRecord)>> {
        let now = now_ms();
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS}, {U_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id = $1 AND s.ended_at IS NULL AND s.expires_at > $2 AND u.disabled = 0"
        ))
        .bind(id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let session = from_row(&row)?;
        let user = user_from_row(&row)?;
        if now - session.last_used_at > TOUCH_EVERY_MS {
            sqlx::query("UPDATE sessions SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?;
        }
        Ok(Some((session, user)))
    }

    /// The user's live sessions, most recently used first.
    pub async fn list_sessions(&self, user_id: &str) -> DbResult<Vec<SessionRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM sessions s WHERE s.user_id = $1 AND s.ended_at IS NULL \
             AND s.expires_at > $2 ORDER BY s.last_used_at DESC, s.created_at DESC"
        ))
        .bind(user_id)
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Ends one of `user_id`'s own live sessions (audit row `session.end`); NotFound when it
    /// is not theirs or already over.
    pub async fn end_session(&self, user_id: &str, id: &str) -> DbResult<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE sessions SET ended_at = $1 WHERE id = $2 AND user_id = $3 AND ended_at IS NULL",
        )
        .bind(now_ms())
        .bind(id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("session"));
        }
        audit::record(
            &mut tx,
            Actor::user(user_id),
            "session.end",
            "session",
            Some(id),
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether the user ever signed in from this address (within what the table keeps): such
    /// an address is not slowed down when the account is under attack from elsewhere.
    pub async fn has_signed_in_from(&self, user_id: &str, address: &str) -> DbResult<bool> {
        let found: Option<String> = sqlx::query_scalar(
            "SELECT id FROM sessions WHERE user_id = $1 AND source_address = $2 LIMIT 1",
        )
        .bind(user_id)
        .bind(address)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    /// Drops sessions that expired or ended more than `keep_ms` ago.
    pub async fn prune_sessions(&self, keep_ms: i64) -> DbResult<u64> {
        let before = now_ms() - keep_ms;
        let done = sqlx::query(
            "DELETE FROM sessions WHERE expires_at < $1 OR (ended_at IS NOT NULL AND ended_at < $1)",
        )
        .bind(before)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

impl Store {
    /// Keeps an event-stream ticket (its SHA-256) for `session_id` until `expires_at` (Unix ms).
    pub async fn store_event_ticket(
        &self,
        ticket_hash: &str,
        session_id: &str,
        expires_at: i64,
    ) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO event_tickets (ticket_hash, session_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(ticket_hash)
        .bind(session_id)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The session an unexpired ticket was issued for. The ticket is gone afterwards: one
    /// statement deletes and answers, so two requests cannot both use it.
    pub async fn redeem_event_ticket(&self, ticket_hash: &str) -> DbResult<Option<String>> {
        let session: Option<(String, i64)> = sqlx::query_as(
            "DELETE FROM event_tickets WHERE ticket_hash = $1 RETURNING session_id, expires_at",
        )
        .bind(ticket_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(session
            .filter(|(_, expires)| *expires > now_ms())
            .map(|(s, _)| s))
    }

    /// Drops tickets that expired unused.
    pub async fn prune_event_tickets(&self) -> DbResult<u64> {
        let done = sqlx::query("DELETE FROM event_tickets WHERE expires_at <= $1")
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
