//! Settings administrators change in the dashboard, one row per name.

use super::{audit, now_ms, Actor, DbResult, Store};

impl Store {
    pub async fn setting(&self, name: &str) -> DbResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM server_settings WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Sets a setting with its audit row (`settings.update`), in one transaction.
    pub async fn set_setting(&self, name: &str, value: &str, by: Actor<'_>) -> DbResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO server_settings (name, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET value = $2, updated_at = $3",
        )
        .bind(name)
        .bind(value)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        let details = format!("{name} = {value}");
        audit::record(
            &mut tx,
            by,
            "settings.update",
            "settings",
            Some(name),
            Some(&details),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
