use serde::Serialize;
use sqlx::Row;

use crate::auth::Role;

use super::{audit, new_id, now_ms, Actor, DbResult, Store};

#[derive(Debug, Clone, Serialize)]
pub struct UserRecord {
    pub id: String,
    pub email: String,
    #[serde(skip)]
    pub password_hash: String,
    pub role: Role,
    #[serde(with = "super::rfc3339")]
    pub created_at: i64,
    /// Whether two-factor sign-in (TOTP) is on.
    pub two_factor: bool,
}

fn from_row(row: &sqlx::any::AnyRow) -> DbResult<UserRecord> {
    Ok(UserRecord {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        password_hash: row.try_get("password_hash")?,
        role: super::parse_column(row, "role")?,
        created_at: row.try_get("created_at")?,
        two_factor: row.try_get::<i64, _>("two_factor")? != 0,
    })
}

const COLUMNS: &str = "id, email, password_hash, role, created_at, \
    CAST(CASE WHEN totp_secret IS NULL THEN 0 ELSE 1 END AS BIGINT) AS two_factor";

impl Store {
    /// Creates a user with the audit row `user.create`. With no user as actor (the operator's
    /// command, a self-registration) the row names the new user.
    pub async fn create_user(
        &self,
        email: &str,
        password_hash: &str,
        role: Role,
        by: Actor<'_>,
    ) -> DbResult<UserRecord> {
        let id = new_id();
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO users (id, email, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
        ))
        .bind(&id)
        .bind(email)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await?;
        let by = by.user_id.map_or(Actor::user(&id), |_| by);
        audit::record(&mut tx, by, "user.create", "user", Some(&id), Some(email)).await?;
        tx.commit().await?;
        from_row(&row)
    }

    /// Resets a user's password and role (the operator's `user add` on an existing email).
    pub async fn set_user_password(
        &self,
        id: &str,
        password_hash: &str,
        role: Role,
        by: Actor<'_>,
    ) -> DbResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE users SET password_hash = $1, role = $2 WHERE id = $3")
            .bind(password_hash)
            .bind(role.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        audit::record(
            &mut tx,
            by,
            "user.reset",
            "user",
            Some(id),
            Some(role.as_str()),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn user_by_email(&self, email: &str) -> DbResult<Option<UserRecord>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE email = $1"))
            .bind(email)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn user_by_id(&self, id: &str) -> DbResult<Option<UserRecord>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn list_users(&self) -> DbResult<Vec<UserRecord>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM users ORDER BY email"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn delete_user(&self, id: &str, by: Actor<'_>) -> DbResult<()> {
        self.audited_delete("user", id, by).await
    }

    pub async fn count_admins(&self) -> DbResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'admin'")
                .fetch_one(&self.pool)
                .await?,
        )
    }
}
