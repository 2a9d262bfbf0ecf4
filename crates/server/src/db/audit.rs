//! The audit log: who did what to which object. Rows are written inside the transaction of the
//! change they record (see the `audited_*` methods), so one never commits without the other.

use sqlx::AnyConnection;

use super::{new_id, now_ms, Actor, DbResult, Store};

/// Writes one audit row on `conn`, which is inside the change's transaction. `details` is a
/// short text summary.
pub(crate) async fn record(
    conn: &mut AnyConnection,
    by: Actor<'_>,
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
    .bind(by.user_id)
    .bind(action)
    .bind(target_kind)
    .bind(target_id)
    .bind(details)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    pub async fn audit_count(&self, action: &str) -> DbResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = $1")
                .bind(action)
                .fetch_one(&self.pool)
                .await?,
        )
    }
}
