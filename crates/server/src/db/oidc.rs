//! Single sign-on storage: sign-ins in flight to the provider (state, nonce, PKCE verifier),
//! the matching or creation of the local user, and the one-time hand-off code the dashboard
//! exchanges for a session. In the database, so any server node can finish a sign-in.

use sqlx::Row;

use crate::auth::Role;

use super::users::{user_from_row, U_COLUMNS};
use super::{audit, new_id, now_ms, Actor, DbResult, Store, UserRecord};

/// A sign-in sent to the provider, as the callback finds it.
#[derive(Debug)]
pub struct OidcLogin {
    pub nonce: String,
    pub pkce_verifier: String,
    pub created_at: i64,
}

/// Who the provider says signed in, and what the configuration makes of them.
#[derive(Debug)]
pub struct SsoIdentity<'a> {
    /// Verified, lower-case.
    pub email: &'a str,
    /// The role for a user created now; `None` refuses unknown users.
    pub new_user_role: Option<Role>,
    /// The role the provider's groups map to, when a mapping is configured; it replaces the
    /// user's role at each sign-in.
    pub group_role: Option<Role>,
    /// SHA-256 (hex) of the one-time hand-off code.
    pub handoff_hash: &'a str,
}

#[derive(Debug)]
pub enum SsoOutcome {
    SignedIn {
        user: UserRecord,
        created: bool,
        /// The groups changed the role: the user's other sessions ended.
        role_changed: bool,
    },
    /// No local user with this email, and unknown users are refused.
    Unknown,
    Disabled,
}

/// Marks a user created by single sign-on: not an argon2 hash, so no password matches it
/// until an admin sets one.
pub const NO_PASSWORD: &str = "!sso";

impl Store {
    /// Records a sign-in sent to the provider, and drops sign-ins and hand-offs older than
    /// `ttl_ms` (a hand-off lives far shorter), so abandoned ones do not pile up.
    pub async fn save_oidc_login(
        &self,
        state: &str,
        nonce: &str,
        pkce_verifier: &str,
        ttl_ms: i64,
    ) -> DbResult<()> {
        let now = now_ms();
        for table in ["oidc_logins", "oidc_handoffs"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE created_at < $1"))
                .bind(now - ttl_ms)
                .execute(&self.pool)
                .await?;
        }
        sqlx::query(
            "INSERT INTO oidc_logins (state, nonce, pkce_verifier, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(state)
        .bind(nonce)
        .bind(pkce_verifier)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes the sign-in with this state: it can be taken once, on any node.
    pub async fn take_oidc_login(&self, state: &str) -> DbResult<Option<OidcLogin>> {
        let row = sqlx::query(
            "DELETE FROM oidc_logins WHERE state = $1 RETURNING nonce, pkce_verifier, created_at",
        )
        .bind(state)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(OidcLogin {
                nonce: r.try_get("nonce")?,
                pkce_verifier: r.try_get("pkce_verifier")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    /// Matches the provider's user to a local one by email, or creates it (`user.sso_create`);
    /// applies the group role; stores the hand-off code; audits `user.sso_login`. One
    /// transaction. A role change ends the user's other sessions, as an admin's change does.
    pub async fn sso_sign_in(&self, who: SsoIdentity<'_>) -> DbResult<SsoOutcome> {
        let mut tx = self.begin_write().await?;
        let now = now_ms();
        let found = sqlx::query(&format!(
            "SELECT {U_COLUMNS} FROM users u WHERE u.email = $1"
        ))
        .bind(who.email)
        .fetch_optional(&mut *tx)
        .await?;
        let (mut user, created) = match found {
            Some(row) => (user_from_row(&row)?, false),
            None => {
                let Some(role) = who.group_role.or(who.new_user_role) else {
                    return Ok(SsoOutcome::Unknown);
                };
                let id = new_id();
                sqlx::query(
                    "INSERT INTO users (id, email, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&id)
                .bind(who.email)
                .bind(NO_PASSWORD)
                .bind(role.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
                audit::record(
                    &mut tx,
                    Actor::user(&id),
                    "user.sso_create",
                    "user",
                    Some(&id),
                    Some(role.as_str()),
                )
                .await?;
                let user = UserRecord {
                    id,
                    email: who.email.to_owned(),
                    password_hash: NO_PASSWORD.to_owned(),
                    role,
                    disabled: false,
                    created_at: now,
                    two_factor: false,
                };
                (user, true)
            }
        };
        if user.disabled {
            return Ok(SsoOutcome::Disabled);
        }
        let mut details = user.role.as_str().to_owned();
        let mut role_changed = false;
        if let Some(role) = who.group_role.filter(|r| *r != user.role) {
            sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
                .bind(role.as_str())
                .bind(&user.id)
                .execute(&mut *tx)
                .await?;
            super::sessions::end_all(&mut tx, &user.id).await?;
            details = format!("role={role} (was {})", user.role);
            user.role = role;
            role_changed = true;
        }
        sqlx::query(
            "INSERT INTO oidc_handoffs (code_hash, user_id, created_at) VALUES ($1, $2, $3)",
        )
        .bind(who.handoff_hash)
        .bind(&user.id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        audit::record(
            &mut tx,
            Actor::user(&user.id),
            "user.sso_login",
            "user",
            Some(&user.id),
            Some(&details),
        )
        .await?;
        tx.commit().await?;
        Ok(SsoOutcome::SignedIn {
            user,
            created,
            role_changed,
        })
    }

    /// Takes the hand-off with this code hash if it is younger than `ttl_ms`: its user, once.
    pub async fn take_oidc_handoff(
        &self,
        code_hash: &str,
        ttl_ms: i64,
    ) -> DbResult<Option<String>> {
        let row = sqlx::query(
            "DELETE FROM oidc_handoffs WHERE code_hash = $1 RETURNING user_id, created_at",
        )
        .bind(code_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let created_at: i64 = row.try_get("created_at")?;
        if now_ms() - created_at > ttl_ms {
            return Ok(None);
        }
        Ok(Some(row.try_get("user_id")?))
    }
}
