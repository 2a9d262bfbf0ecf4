use serde::Serialize;
use sqlx::Row;

use crate::auth::Role;

use super::{audit, new_id, now_ms, Actor, DbResult, Store, StoreError};

#[derive(Debug, Clone, Serialize)]
pub struct UserRecord {
    pub id: String,
    pub email: String,
    #[serde(skip)]
    pub password_hash: String,
    pub role: Role,
    /// A disabled user cannot sign in; disabling ends their sessions.
    pub disabled: bool,
    #[serde(with = "super::rfc3339")]
    pub created_at: i64,
    /// Whether two-factor sign-in (TOTP) is on.
    pub two_factor: bool,
}

/// An admin's change to a user; `None` leaves that part as it is.
#[derive(Debug, Default)]
pub struct UserChange<'a> {
    pub role: Option<Role>,
    pub password_hash: Option<&'a str>,
    pub disabled: Option<bool>,
}

fn from_row(row: &sqlx::any::AnyRow) -> DbResult<UserRecord> {
    Ok(UserRecord {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        password_hash: row.try_get("password_hash")?,
        role: super::parse_column(row, "role")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        created_at: row.try_get("created_at")?,
        two_factor: row.try_get::<i64, _>("two_factor")? != 0,
    })
}

const COLUMNS: &str = "id, email, password_hash, role, disabled, created_at, \
    CAST(CASE WHEN totp_secret IS NULL THEN 0 ELSE 1 END AS BIGINT) AS two_factor";

/// The same columns of `users` aliased `u`, for joins.
pub(super) const U_COLUMNS: &str = "u.id, u.email, u.password_hash, u.role, u.disabled, \
    u.created_at, CAST(CASE WHEN u.totp_secret IS NULL THEN 0 ELSE 1 END AS BIGINT) AS two_factor";

pub(super) fn user_from_row(row: &sqlx::any::AnyRow) -> DbResult<UserRecord> {
    from_row(row)
}

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
        let mut tx = self.begin_write().await?;
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

    /// Resets a user's password and role and enables them (the operator's `user add` on an
    /// existing email); their sessions end.
    pub async fn set_user_password(
        &self,
        id: &str,
        password_hash: &str,
        role: Role,
        by: Actor<'_>,
    ) -> DbResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE users SET password_hash = $1, role = $2, disabled = 0 WHERE id = $3")
            .bind(password_hash)
            .bind(role.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        super::sessions::end_all(&mut tx, id).await?;
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

    /// Deletes a user; their sessions go with the row (ON DELETE CASCADE), in the same
    /// transaction as the audit row.
    pub async fn delete_user(&self, id: &str, by: Actor<'_>) -> DbResult<()> {
        self.audited_delete("user", id, by).await
    }

    /// Changes role, password and/or the disabled flag, ending every session of the user in
    /// the same transaction as the change and its audit row (`user.update`, naming what
    /// changed). NotFound when there is no such user.
    pub async fn update_user(
        &self,
        id: &str,
        change: UserChange<'_>,
        by: Actor<'_>,
    ) -> DbResult<UserRecord> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "UPDATE users SET role = COALESCE($1, role), password_hash = COALESCE($2, password_hash), \
             disabled = COALESCE($3, disabled) WHERE id = $4 RETURNING {COLUMNS}"
        ))
        .bind(change.role.map(Role::as_str))
        .bind(change.password_hash)
        .bind(change.disabled.map(i64::from))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound("user"))?;
        super::sessions::end_all(&mut tx, id).await?;
        let mut what = Vec::new();
        if let Some(role) = change.role {
            what.push(format!("role={role}"));
        }
        if change.password_hash.is_some() {
            what.push("password".to_owned());
        }
        if let Some(disabled) = change.disabled {
            what.push(format!("disabled={disabled}"));
        }
        audit::record(
            &mut tx,
            by,
            "user.update",
            "user",
            Some(id),
            Some(&what.join(",")),
        )
        .await?;
        tx.commit().await?;
        from_row(&row)
    }

    /// The signed-in user's own password change; ends all their sessions with it.
    pub async fn change_own_password(&self, id: &str, password_hash: &str) -> DbResult<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("user"));
        }
        super::sessions::end_all(&mut tx, id).await?;
        audit::record(
            &mut tx,
            Actor::user(id),
            "user.password",
            "user",
            Some(id),
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn count_users(&self) -> DbResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?)
    }

    pub async fn count_admins(&self) -> DbResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'admin'")
                .fetch_one(&self.pool)
                .await?,
        )
    }
}
