//! Two-factor sign-in state of users: the encrypted TOTP secret (pending while being set up),
//! the last accepted time step, and hashed one-time recovery codes.

use super::{audit, new_id, now_ms, Actor, DbResult, Store, StoreError};

impl Store {
    /// Starts (or restarts) setting up TOTP: keeps the encrypted secret as pending.
    pub async fn set_pending_totp(&self, user_id: &str, encrypted: &str) -> DbResult<()> {
        let done = sqlx::query("UPDATE users SET totp_pending = $1 WHERE id = $2")
            .bind(encrypted)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("user"));
        }
        Ok(())
    }

    /// The pending and the active encrypted secrets of a user.
    pub async fn totp_secrets(&self, user_id: &str) -> DbResult<(Option<String>, Option<String>)> {
        let row: Option<(Option<String>, Option<String>)> =
            sqlx::query_as("SELECT totp_pending, totp_secret FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        row.ok_or(StoreError::NotFound("user"))
    }

    /// Turns TOTP on with the confirmed secret and replaces the recovery codes, with the audit
    /// row, in one transaction. `step` is the time step of the confirming code (used up).
    pub async fn enable_totp(
        &self,
        user_id: &str,
        encrypted: &str,
        step: i64,
        recovery_hashes: &[String],
        by: Actor<'_>,
    ) -> DbResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE users SET totp_secret = $1, totp_pending = NULL, totp_last_step = $2 WHERE id = $3",
        )
        .bind(encrypted)
        .bind(step)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let now = now_ms();
        for hash in recovery_hashes {
            sqlx::query(
                "INSERT INTO recovery_codes (id, user_id, code_hash, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(new_id())
            .bind(user_id)
            .bind(hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        audit::record(
            &mut tx,
            by,
            "user.two_factor_enable",
            "user",
            Some(user_id),
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Turns TOTP off and drops the recovery codes, with the audit row.
    pub async fn disable_totp(&self, user_id: &str, by: Actor<'_>) -> DbResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE users SET totp_secret = NULL, totp_pending = NULL, totp_last_step = NULL WHERE id = $1",
        )
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        audit::record(
            &mut tx,
            by,
            "user.two_factor_disable",
            "user",
            Some(user_id),
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Accepts a code's time step once: true only if it is later than the last one accepted
    /// (a single conditional update, so two sign-ins with the same code cannot both pass).
    pub async fn claim_totp_step(&self, user_id: &str, step: i64) -> DbResult<bool> {
        let done = sqlx::query(
            "UPDATE users SET totp_last_step = $1 WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)",
        )
        .bind(step)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Uses up a recovery code: true only the first time this code is used.
    pub async fn use_recovery_code(&self, user_id: &str, code_hash: &str) -> DbResult<bool> {
        let done = sqlx::query(
            "UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
        )
        .bind(now_ms())
        .bind(user_id)
        .bind(code_hash)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// How many unused recovery codes the user has left.
    pub async fn recovery_codes_left(&self, user_id: &str) -> DbResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind(user_id)
        .fetch_one(&self.pool)
        .await?)
    }
}
