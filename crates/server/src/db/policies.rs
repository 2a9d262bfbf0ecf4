//! Policies, their assignments to scopes, and what each agent said about its policy.

use std::collections::HashMap;

use gururmm_protocol::{PolicySettings, PolicyStatus};
use sqlx::Row;

use super::{audit, new_id, now_ms, Actor, DbResult, Store, StoreError};
use crate::scope::Scope;

#[derive(Debug, Clone)]
pub struct PolicyRecord {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub settings: PolicySettings,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An assignment with what the merge needs of its policy.
#[derive(Debug, Clone)]
pub struct AssignmentRecord {
    pub id: String,
    pub policy_id: String,
    pub policy_name: String,
    pub policy_version: i64,
    pub settings: PolicySettings,
    pub scope: Scope,
    pub created_at: i64,
}

/// The agent's last `policy_status`.
#[derive(Debug, Clone)]
pub struct PolicyStatusRecord {
    pub revision: String,
    pub applied: bool,
    pub error: Option<String>,
    pub reported_at: i64,
}

/// Stored settings were written by this server from checked input; a row that no longer
/// reads (a downgrade) is an error, not an empty policy.
fn settings_from(json: &str) -> DbResult<PolicySettings> {
    serde_json::from_str(json).map_err(|e| {
        StoreError::Other(sqlx::Error::Decode(
            format!("stored policy settings: {e}").into(),
        ))
    })
}

fn policy_from_row(row: &sqlx::any::AnyRow) -> DbResult<PolicyRecord> {
    Ok(PolicyRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        settings: settings_from(&row.try_get::<String, _>("settings_json")?)?,
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const POLICY_SELECT: &str = "SELECT id, name, description, settings_json, version, created_at, \
    updated_at FROM policies";

const ASSIGNMENT_SELECT: &str = "SELECT t.id, t.policy_id, p.name AS policy_name, \
    p.version AS policy_version, p.settings_json, t.scope_kind, t.scope_id, t.created_at \
    FROM policy_assignments t JOIN policies p ON p.id = t.policy_id";

fn assignment_from_row(row: &sqlx::any::AnyRow) -> DbResult<AssignmentRecord> {
    Ok(AssignmentRecord {
        id: row.try_get("id")?,
        policy_id: row.try_get("policy_id")?,
        policy_name: row.try_get("policy_name")?,
        policy_version: row.try_get("policy_version")?,
        settings: settings_from(&row.try_get::<String, _>("settings_json")?)?,
        scope: Scope::from_columns(
            &row.try_get::<String, _>("scope_kind")?,
            row.try_get("scope_id")?,
        )?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    pub async fn create_policy(
        &self,
        name: &str,
        description: Option<&str>,
        settings: &PolicySettings,
        by: Actor<'_>,
    ) -> DbResult<PolicyRecord> {
        let id = new_id();
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO policies (id, name, description, settings_json, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 1, $5, $5)",
        )
        .bind(&id)
        .bind(name)
        .bind(description)
        .bind(settings.canonical_json())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        audit::record(
            &mut tx,
            by,
            "policy.create",
            "policy",
            Some(&id),
            Some(name),
        )
        .await?;
        tx.commit().await?;
        Ok(PolicyRecord {
            id,
            name: name.to_owned(),
            description: description.map(str::to_owned),
            settings: settings.clone(),
            version: 1,
            created_at: now,
            updated_at: now,
        })
    }

    pub async fn list_policies(&self) -> DbResult<Vec<PolicyRecord>> {
        let rows = sqlx::query(&format!("{POLICY_SELECT} ORDER BY name, id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(policy_from_row).collect()
    }

    pub async fn policy(&self, id: &str) -> DbResult<Option<PolicyRecord>> {
        let row = sqlx::query(&format!("{POLICY_SELECT} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(policy_from_row).transpose()
    }

    /// Replaces a policy's name, description and settings; its version goes up by one.
    pub async fn update_policy(
        &self,
        id: &str,
        name: &str,
        description: Option<&str>,
        settings: &PolicySettings,
        by: Actor<'_>,
    ) -> DbResult<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE policies SET name = $1, description = $2, settings_json = $3, \
             version = version + 1, updated_at = $4 WHERE id = $5",
        )
        .bind(name)
        .bind(description)
        .bind(settings.canonical_json())
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("policy"));
        }
        audit::record(&mut tx, by, "policy.update", "policy", Some(id), Some(name)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a policy with its assignments.
    pub async fn delete_policy(&self, id: &str, by: Actor<'_>) -> DbResult<()> {
        let mut tx = self.begin_write().await?;
        // Explicit: SQLite cascades only with foreign keys on.
        sqlx::query("DELETE FROM policy_assignments WHERE policy_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM policies WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("policy"));
        }
        audit::record(&mut tx, by, "policy.delete", "policy", Some(id), None).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_policy_assignments(&self) -> DbResult<Vec<AssignmentRecord>> {
        let rows = sqlx::query(&format!(
            "{ASSIGNMENT_SELECT} ORDER BY t.scope_kind, t.scope_id, t.id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(assignment_from_row).collect()
    }

    pub async fn policy_assignment(&self, id: &str) -> DbResult<Option<AssignmentRecord>> {
        let row = sqlx::query(&format!("{ASSIGNMENT_SELECT} WHERE t.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(assignment_from_row).transpose()
    }

    /// Assigns a policy to a scope; a scope holds one policy (Conflict `scope` otherwise).
    pub async fn create_policy_assignment(
        &self,
        policy_id: &str,
        scope: &Scope,
        by: Actor<'_>,
    ) -> DbResult<String> {
        let id = new_id();
        let mut tx = self.begin_write().await?;
        let exists = sqlx::query("SELECT 1 FROM policies WHERE id = $1")
            .bind(policy_id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound("policy"));
        }
        let taken = sqlx::query(
            "SELECT 1 FROM policy_assignments WHERE scope_kind = $1 \
             AND COALESCE(scope_id, '') = COALESCE($2, '')",
        )
        .bind(scope.kind.as_str())
        .bind(scope.id.as_deref())
        .fetch_optional(&mut *tx)
        .await?;
        if taken.is_some() {
            return Err(StoreError::Conflict {
                field: "scope".into(),
            });
        }
        sqlx::query(
            "INSERT INTO policy_assignments (id, policy_id, scope_kind, scope_id, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&id)
        .bind(policy_id)
        .bind(scope.kind.as_str())
        .bind(scope.id.as_deref())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        let details = format!(
            "policy {policy_id} -> {} {}",
            scope.kind.as_str(),
            scope.id.as_deref().unwrap_or("")
        );
        audit::record(
            &mut tx,
            by,
            "policy.assign",
            "policy_assignment",
            Some(&id),
            Some(details.trim_end()),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn delete_policy_assignment(&self, id: &str, by: Actor<'_>) -> DbResult<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM policy_assignments WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("policy assignment"));
        }
        audit::record(
            &mut tx,
            by,
            "policy.unassign",
            "policy_assignment",
            Some(id),
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records the agent's `policy_status` (the newest replaces the one before).
    pub async fn set_policy_status(&self, agent_id: &str, status: &PolicyStatus) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO agent_policy_status (agent_id, revision, applied, error, reported_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (agent_id) DO UPDATE SET \
             revision = excluded.revision, applied = excluded.applied, error = excluded.error, \
             reported_at = excluded.reported_at",
        )
        .bind(agent_id)
        .bind(&status.revision)
        .bind(i64::from(status.applied))
        .bind(status.error.as_deref())
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn policy_statuses(&self) -> DbResult<HashMap<String, PolicyStatusRecord>> {
        let rows = sqlx::query(
            "SELECT agent_id, revision, applied, error, reported_at FROM agent_policy_status",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("agent_id")?, status_from_row(row)?)))
            .collect()
    }

    pub async fn policy_status(&self, agent_id: &str) -> DbResult<Option<PolicyStatusRecord>> {
        let row = sqlx::query(
            "SELECT revision, applied, error, reported_at FROM agent_policy_status \
             WHERE agent_id = $1",
        )
        .bind(agent_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(status_from_row).transpose()
    }
}

fn status_from_row(row: &sqlx::any::AnyRow) -> DbResult<PolicyStatusRecord> {
    Ok(PolicyStatusRecord {
        revision: row.try_get("revision")?,
        applied: row.try_get::<i64, _>("applied")? != 0,
        error: row.try_get("error")?,
        reported_at: row.try_get("reported_at")?,
    })
}
