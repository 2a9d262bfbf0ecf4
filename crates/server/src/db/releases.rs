//! Releases (published agent builds), rollout targets, and each agent's updates.

use sqlx::Row;

use super::{audit, new_id, now_ms, placeholders, Actor, DbResult, Store, StoreError};
use crate::rollout::{self, status, Rollout};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRecord {
    pub id: String,
    pub version: String,
    pub os: String,
    pub arch: String,
    pub file_name: String,
    pub sha256: String,
    pub size: i64,
    pub signature: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentUpdateRecord {
    pub id: String,
    pub agent_id: String,
    pub from_version: Option<String>,
    pub to_version: String,
    pub status: String,
    pub reason: Option<String>,
    pub allow_downgrade: bool,
    pub requested_by: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    pub updated_at: Option<i64>,
    pub completed_at: Option<i64>,
}

/// Agents of one version, os and arch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionCount {
    pub version: Option<String>,
    pub os: Option<String>,
    pub arch: Option<String>,
    pub agents: i64,
}

fn release_from_row(row: &sqlx::any::AnyRow) -> DbResult<ReleaseRecord> {
    Ok(ReleaseRecord {
        id: row.try_get("id")?,
        version: row.try_get("version")?,
        os: row.try_get("os")?,
        arch: row.try_get("arch")?,
        file_name: row.try_get("file_name")?,
        sha256: row.try_get("sha256")?,
        size: row.try_get("size")?,
        signature: row.try_get("signature")?,
        created_at: row.try_get("created_at")?,
    })
}

const UPDATE_COLUMNS: &str = "id, agent_id, from_version, to_version, status, reason, \
     allow_downgrade, requested_by, created_at, sent_at, updated_at, completed_at";

fn update_from_row(row: &sqlx::any::AnyRow) -> DbResult<AgentUpdateRecord> {
    Ok(AgentUpdateRecord {
        id: row.try_get("id")?,
        agent_id: row.try_get("agent_id")?,
        from_version: row.try_get("from_version")?,
        to_version: row.try_get("to_version")?,
        status: row.try_get("status")?,
        reason: row.try_get("reason")?,
        allow_downgrade: row.try_get::<i64, _>("allow_downgrade")? != 0,
        requested_by: row.try_get("requested_by")?,
        created_at: row.try_get("created_at")?,
        sent_at: row.try_get("sent_at")?,
        updated_at: row.try_get("updated_at")?,
        completed_at: row.try_get("completed_at")?,
    })
}

fn rollout_from_row(row: &sqlx::any::AnyRow) -> DbResult<Rollout> {
    let ids = |column: &str| -> DbResult<Vec<String>> {
        let text: String = row.try_get(column)?;
        Ok(serde_json::from_str(&text).unwrap_or_default())
    };
    Ok(Rollout {
        os: row.try_get("os")?,
        arch: row.try_get("arch")?,
        version: row.try_get("version")?,
        scope: super::parse_column(row, "scope")?,
        site_ids: ids("site_ids")?,
        client_ids: ids("client_ids")?,
        percent: u8::try_from(row.try_get::<i64, _>("percent")?.clamp(0, 100)).unwrap_or(0),
        paused: row.try_get::<i64, _>("paused")? != 0,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Newest first by semantic version (unparseable ones last), then by os and arch.
fn sort_releases(releases: &mut [ReleaseRecord]) {
    releases.sort_by(|a, b| {
        (a.os.as_str(), a.arch.as_str())
            .cmp(&(b.os.as_str(), b.arch.as_str()))
            .then_with(|| {
                rollout::compare(&b.version, &a.version).unwrap_or(std::cmp::Ordering::Equal)
            })
    });
}

impl Store {
    /// Records a published build with its audit row (`release.add`); a (version, os, arch)
    /// already published is a conflict on `version`.
    pub async fn insert_release(
        &self,
        release: &ReleaseRecord,
        by: Actor<'_>,
    ) -> DbResult<ReleaseRecord> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "INSERT INTO releases (id, version, os, arch, file_name, sha256, size, signature, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&release.id)
        .bind(&release.version)
        .bind(&release.os)
        .bind(&release.arch)
        .bind(&release.file_name)
        .bind(&release.sha256)
        .bind(release.size)
        .bind(&release.signature)
        .bind(release.created_at)
        .execute(&mut *tx)
        .await;
        if let Err(e) = done {
            return Err(match StoreError::from(e) {
                StoreError::Conflict { .. } => StoreError::Conflict {
                    field: "version".into(),
                },
                other => other,
            });
        }
        let details = format!("{} {} {}", release.version, release.os, release.arch);
        audit::record(
            &mut tx,
            by,
            "release.add",
            "release",
            Some(&release.id),
            Some(&details),
        )
        .await?;
        tx.commit().await?;
        Ok(release.clone())
    }

    /// Every release, per os/arch, newest version first.
    pub async fn list_releases(&self) -> DbResult<Vec<ReleaseRecord>> {
        let rows = sqlx::query("SELECT * FROM releases")
            .fetch_all(&self.pool)
            .await?;
        let mut out = rows
            .iter()
            .map(release_from_row)
            .collect::<DbResult<Vec<_>>>()?;
        sort_releases(&mut out);
        Ok(out)
    }

    pub async fn release(
        &self,
        version: &str,
        os: &str,
        arch: &str,
    ) -> DbResult<Option<ReleaseRecord>> {
        let row =
            sqlx::query("SELECT * FROM releases WHERE version = $1 AND os = $2 AND arch = $3")
                .bind(version)
                .bind(os)
                .bind(arch)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(release_from_row).transpose()
    }

    /// Sets the target of rollout.os/arch with its audit row (`rollout.update`).
    pub async fn set_rollout(&self, r: &Rollout, by: Actor<'_>) -> DbResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO rollouts (os, arch, version, scope, site_ids, client_ids, percent, paused, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (os, arch) DO UPDATE SET version = $3, scope = $4, site_ids = $5, \
             client_ids = $6, percent = $7, paused = $8, updated_at = $9",
        )
        .bind(&r.os)
        .bind(&r.arch)
        .bind(&r.version)
        .bind(r.scope.as_str())
        .bind(serde_json::to_string(&r.site_ids).unwrap_or_else(|_| "[]".into()))
        .bind(serde_json::to_string(&r.client_ids).unwrap_or_else(|_| "[]".into()))
        .bind(i64::from(r.percent))
        .bind(i64::from(r.paused))
        .bind(r.updated_at)
        .execute(&mut *tx)
        .await?;
        let details = format!(
            "{} {}: {} to {}{}{}",
            r.os,
            r.arch,
            r.version,
            r.scope.as_str(),
            if r.scope == rollout::Scope::Percentage {
                format!(" {}%", r.percent)
            } else {
                String::new()
            },
            if r.paused { ", paused" } else { "" }
        );
        let target = format!("{}-{}", r.os, r.arch);
        audit::record(
            &mut tx,
            by,
            "rollout.update",
            "rollout",
            Some(&target),
            Some(&details),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn rollouts(&self) -> DbResult<Vec<Rollout>> {
        let rows = sqlx::query("SELECT * FROM rollouts ORDER BY os, arch")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rollout_from_row).collect()
    }

    pub async fn rollout(&self, os: &str, arch: &str) -> DbResult<Option<Rollout>> {
        let row = sqlx::query("SELECT * FROM rollouts WHERE os = $1 AND arch = $2")
            .bind(os)
            .bind(arch)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rollout_from_row).transpose()
    }

    /// Approved agents counted by version, os and arch.
    pub async fn version_counts(&self) -> DbResult<Vec<VersionCount>> {
        let rows = sqlx::query(
            "SELECT version, os_type, arch, CAST(COUNT(*) AS BIGINT) AS n FROM agents \
             WHERE approval = 'approved' GROUP BY version, os_type, arch \
             ORDER BY os_type, arch, version",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(VersionCount {
                    version: r.try_get("version")?,
                    os: r.try_get("os_type")?,
                    arch: r.try_get("arch")?,
                    agents: r.try_get("n")?,
                })
            })
            .collect()
    }

    /// Updates to `version` of agents of os/arch, counted by status.
    pub async fn update_counts(
        &self,
        os: &str,
        arch: &str,
        version: &str,
    ) -> DbResult<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT u.status, CAST(COUNT(*) AS BIGINT) AS n FROM agent_updates u \
             JOIN agents a ON a.id = u.agent_id \
             WHERE u.to_version = $1 AND a.os_type = $2 AND a.arch = $3 GROUP BY u.status",
        )
        .bind(version)
        .bind(os)
        .bind(arch)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
            .collect()
    }

    /// The agent's updates, newest first.
    pub async fn agent_updates(&self, agent_id: &str) -> DbResult<Vec<AgentUpdateRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {UPDATE_COLUMNS} FROM agent_updates WHERE agent_id = $1 \
             ORDER BY created_at DESC, id"
        ))
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(update_from_row).collect()
    }

    /// The version a legacy agent says it runs now (it has no `auth` after an update).
    pub async fn note_agent_version(&self, agent_id: &str, version: &str) -> DbResult<()> {
        sqlx::query(
            "UPDATE agents SET version = $1 WHERE id = $2 AND (version IS NULL OR version <> $1)",
        )
        .bind(version)
        .bind(agent_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A rollout's update for the agent, `pending` and sent now; None when one to `to` is in
    /// progress, failed or rolled back (a failed version is retried only by a technician).
    pub async fn start_rollout_update(
        &self,
        agent_id: &str,
        from: Option<&str>,
        to: &str,
    ) -> DbResult<Option<AgentUpdateRecord>> {
        let mut tx = self.begin_write().await?;
        let blocking = [
            status::PENDING,
            status::DOWNLOADING,
            status::INSTALLED,
            status::FAILED,
            status::ROLLED_BACK,
        ];
        let sql = format!(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM agent_updates WHERE agent_id = $1 \
             AND to_version = $2 AND status IN ({})",
            placeholders(3, blocking.len())
        );
        let mut q = sqlx::query_scalar::<_, i64>(&sql).bind(agent_id).bind(to);
        for s in blocking {
            q = q.bind(s);
        }
        if q.fetch_one(&mut *tx).await? > 0 {
            return Ok(None);
        }
        let row = new_update(agent_id, from, to, false, None, true);
        insert_update(&mut tx, &row).await?;
        tx.commit().await?;
        Ok(Some(row))
    }

    /// A technician asks for `to` on this agent (a retry, or a chosen version, older ones
    /// with `allow_downgrade`), with its audit row (`agent.update`). It waits, `pending` with
    /// no `sent_at`, until the agent connects. Conflict when one to `to` is in progress.
    pub async fn request_update(
        &self,
        agent_id: &str,
        from: Option<&str>,
        to: &str,
        allow_downgrade: bool,
        by: Actor<'_>,
    ) -> DbResult<AgentUpdateRecord> {
        let mut tx = self.begin_write().await?;
        let open: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM agent_updates WHERE agent_id = $1 \
             AND to_version = $2 AND status IN ($3, $4, $5) AND sent_at IS NOT NULL",
        )
        .bind(agent_id)
        .bind(to)
        .bind(status::PENDING)
        .bind(status::DOWNLOADING)
        .bind(status::INSTALLED)
        .fetch_one(&mut *tx)
        .await?;
        if open > 0 {
            return Err(StoreError::Conflict {
                field: "version".into(),
            });
        }
        // An earlier request not yet delivered is replaced by this one.
        sqlx::query(
            "DELETE FROM agent_updates WHERE agent_id = $1 AND status = $2 AND sent_at IS NULL",
        )
        .bind(agent_id)
        .bind(status::PENDING)
        .execute(&mut *tx)
        .await?;
        let row = new_update(agent_id, from, to, allow_downgrade, by.user_id, false);
        insert_update(&mut tx, &row).await?;
        let details = format!(
            "to {to}{}",
            if allow_downgrade { " (downgrade)" } else { "" }
        );
        audit::record(
            &mut tx,
            by,
            "agent.update",
            "agent",
            Some(agent_id),
            Some(&details),
        )
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// A technician's request waiting for the agent, now marked sent.
    pub async fn take_requested_update(
        &self,
        agent_id: &str,
    ) -> DbResult<Option<AgentUpdateRecord>> {
        // Read first: most evaluations find none, and then write nothing.
        let waiting: Option<String> = sqlx::query_scalar(
            "SELECT id FROM agent_updates WHERE agent_id = $1 AND status = $2 \
             AND sent_at IS NULL ORDER BY created_at DESC LIMIT 1",
        )
        .bind(agent_id)
        .bind(status::PENDING)
        .fetch_optional(&self.pool)
        .await?;
        let Some(id) = waiting else {
            return Ok(None);
        };
        let now = now_ms();
        let row = sqlx::query(&format!(
            "UPDATE agent_updates SET sent_at = $1, updated_at = $1 WHERE id = $2 \
             AND sent_at IS NULL RETURNING {UPDATE_COLUMNS}"
        ))
        .bind(now)
        .bind(&id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(update_from_row).transpose()
    }

    /// A pending update whose `update` did not reach the agent: waiting again, taken by
    /// [`Store::take_requested_update`] when the agent next connects or polls.
    pub async fn mark_update_unsent(&self, id: &str) -> DbResult<()> {
        sqlx::query(
            "UPDATE agent_updates SET sent_at = NULL, updated_at = $1 WHERE id = $2 \
             AND status = $3",
        )
        .bind(now_ms())
        .bind(id)
        .bind(status::PENDING)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// What the agent reported about an update: the row named by `update_id` (if it is the
    /// agent's), else its newest open one to `version`. Moves forward only: a finished row
    /// (completed, failed) stays as it is, except that `rolled_back` may follow
    /// `completed` (the new build connected, then crashed and was put back). Returns the
    /// changed row, or None when nothing matched or changed.
    pub async fn set_update_state(
        &self,
        agent_id: &str,
        update_id: Option<&str>,
        version: &str,
        state: &str,
        reason: Option<&str>,
    ) -> DbResult<Option<AgentUpdateRecord>> {
        let mut tx = self.begin_write().await?;
        let row = match update_id {
            Some(id) => {
                sqlx::query(&format!(
                    "SELECT {UPDATE_COLUMNS} FROM agent_updates WHERE id = $1 AND agent_id = $2"
                ))
                .bind(id)
                .bind(agent_id)
                .fetch_optional(&mut *tx)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {UPDATE_COLUMNS} FROM agent_updates WHERE agent_id = $1 \
                     AND to_version = $2 ORDER BY created_at DESC LIMIT 1"
                ))
                .bind(agent_id)
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?
            }
        };
        let Some(row) = row.as_ref().map(update_from_row).transpose()? else {
            return Ok(None);
        };
        let rank = |s: &str| match s {
            status::PENDING => 0,
            status::DOWNLOADING => 1,
            status::INSTALLED => 2,
            _ => 3,
        };
        let allowed = match (row.status.as_str(), state) {
            (status::FAILED | status::ROLLED_BACK, _) => false,
            (status::COMPLETED, s) => s == status::ROLLED_BACK,
            (from, to) => rank(to) > rank(from) || to == status::FAILED,
        };
        if !allowed {
            return Ok(None);
        }
        let now = now_ms();
        let finished = matches!(state, status::FAILED | status::ROLLED_BACK);
        sqlx::query(
            "UPDATE agent_updates SET status = $1, reason = $2, updated_at = $3, \
             completed_at = $4 WHERE id = $5",
        )
        .bind(state)
        .bind(reason)
        .bind(now)
        .bind(finished.then_some(now))
        .bind(&row.id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(AgentUpdateRecord {
            status: state.to_owned(),
            reason: reason.map(str::to_owned),
            updated_at: Some(now),
            completed_at: finished.then_some(now),
            ..row
        }))
    }

    /// The agent connected with `version`: its open updates to that version are completed
    /// (`from_version` set from `previous_version` when it says).
    pub async fn complete_updates(
        &self,
        agent_id: &str,
        version: &str,
        previous_version: Option<&str>,
    ) -> DbResult<Vec<AgentUpdateRecord>> {
        let now = now_ms();
        let rows = sqlx::query(&format!(
            "UPDATE agent_updates SET status = $1, updated_at = $2, completed_at = $2, \
             from_version = COALESCE($3, from_version) \
             WHERE agent_id = $4 AND to_version = $5 AND status IN ($6, $7, $8) \
             AND sent_at IS NOT NULL RETURNING {UPDATE_COLUMNS}"
        ))
        .bind(status::COMPLETED)
        .bind(now)
        .bind(previous_version)
        .bind(agent_id)
        .bind(version)
        .bind(status::PENDING)
        .bind(status::DOWNLOADING)
        .bind(status::INSTALLED)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(update_from_row).collect()
    }

    /// Updates sent (`pending`) or under way (`downloading`, `installed`) that the agent has
    /// not reported on since before `cutoff` (ms; the last change, else when sent or created)
    /// become `failed` with `reason`; returns the changed rows. A technician's request still
    /// waiting for its agent (`pending`, never sent) is left waiting. One statement, so a
    /// report arriving meanwhile either lands first (and the row is newer) or finds it failed.
    pub async fn fail_unreported_updates(
        &self,
        cutoff: i64,
        reason: &str,
    ) -> DbResult<Vec<AgentUpdateRecord>> {
        let now = now_ms();
        let rows = sqlx::query(&format!(
            "UPDATE agent_updates SET status = $1, reason = $2, updated_at = $3, \
             completed_at = $3 \
             WHERE status IN ($4, $5, $6) AND (sent_at IS NOT NULL OR status <> $4) \
             AND COALESCE(updated_at, sent_at, created_at) < $7 RETURNING {UPDATE_COLUMNS}"
        ))
        .bind(status::FAILED)
        .bind(reason)
        .bind(now)
        .bind(status::PENDING)
        .bind(status::DOWNLOADING)
        .bind(status::INSTALLED)
        .bind(cutoff)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(update_from_row).collect()
    }
}

/// A new `pending` row; `sent`: it goes out now (else it waits for the agent).
fn new_update(
    agent_id: &str,
    from: Option<&str>,
    to: &str,
    allow_downgrade: bool,
    requested_by: Option<&str>,
    sent: bool,
) -> AgentUpdateRecord {
    let now = now_ms();
    AgentUpdateRecord {
        id: new_id(),
        agent_id: agent_id.to_owned(),
        from_version: from.map(str::to_owned),
        to_version: to.to_owned(),
        status: status::PENDING.to_owned(),
        reason: None,
        allow_downgrade,
        requested_by: requested_by.map(str::to_owned),
        created_at: now,
        sent_at: sent.then_some(now),
        updated_at: Some(now),
        completed_at: None,
    }
}

async fn insert_update(conn: &mut sqlx::AnyConnection, row: &AgentUpdateRecord) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO agent_updates (id, agent_id, from_version, to_version, status, reason, \
         allow_downgrade, requested_by, created_at, sent_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&row.id)
    .bind(&row.agent_id)
    .bind(&row.from_version)
    .bind(&row.to_version)
    .bind(&row.status)
    .bind(&row.reason)
    .bind(i64::from(row.allow_downgrade))
    .bind(&row.requested_by)
    .bind(row.created_at)
    .bind(row.sent_at)
    .bind(row.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}
