use super::{new_id, now_ms, DbResult, Store};

impl Store {
    /// Records who did what to which object. `details` is a short JSON or text summary.
    pub async fn audit(
        &self,
        user_id: Option<&str>,
        action: &str,
        target_kind: &str,
        target_id: Option<&str>,
        details: Option<&str>,
    ) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO audit_log (id, user_id, action, target_kind, target_id, details, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(new_id())
        .bind(user_id)
        .bind(action)
        .bind(target_kind)
        .bind(target_id)
        .bind(details)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn audit_count(&self, action: &str) -> DbResult<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = $1")
            .bind(action)
            .fetch_one(&self.pool)
            .await
    }
}
