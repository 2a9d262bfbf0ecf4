//! Jobs: one script or command run on many agents, one command per agent.

use std::collections::BTreeMap;

use gururmm_protocol::command_status::{CANCELLED, EXPIRED, PENDING};
use sqlx::{AnyConnection, Row};

use super::{audit, new_id, now_ms, Actor, DbResult, Store, StoreError};

/// What a job runs, resolved (script content and parameters, or an ad-hoc command).
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    pub name: &'a str,
    pub script_id: Option<&'a str>,
    pub script_version: Option<i64>,
    pub command_type: &'a str,
    pub command: &'a str,
    pub interpreter: Option<&'a str>,
    pub environment: &'a BTreeMap<String, String>,
    pub timeout_seconds: i64,
    /// The target as the technician gave it (JSON), kept for the record and re-runs.
    pub target_json: &'a str,
    pub expires_at: Option<i64>,
    pub rerun_of: Option<&'a str>,
    pub schedule_id: Option<&'a str>,
    pub created_by: Option<&'a str>,
}

#[derive(Debug, Clone, Default)]
pub struct JobCounts {
    pub total: i64,
    pub queued: i64,
    pub running: i64,
    pub completed: i64,
    pub failed: i64,
    pub timed_out: i64,
    pub cancelled: i64,
    pub expired: i64,
}

impl JobCounts {
    fn add(&mut self, status: &str, n: i64) {
        self.total += n;
        match status {
            "pending" => self.queued += n,
            "running" => self.running += n,
            "completed" => self.completed += n,
            "failed" => self.failed += n,
            "timed_out" => self.timed_out += n,
            "cancelled" => self.cancelled += n,
            "expired" => self.expired += n,
            _ => {}
        }
    }

    /// Nothing queued or running any more.
    pub fn finished(&self) -> bool {
        self.queued == 0 && self.running == 0
    }
}

#[derive(Debug, Clone)]
pub struct JobRecord {
    pub id: String,
    pub name: String,
    pub script_id: Option<String>,
    pub script_name: Option<String>,
    pub script_version: Option<i64>,
    pub command_type: String,
    pub command: String,
    pub interpreter: Option<String>,
    pub environment: BTreeMap<String, String>,
    pub timeout_seconds: i64,
    pub target: serde_json::Value,
    pub expires_at: Option<i64>,
    pub rerun_of: Option<String>,
    pub schedule_id: Option<String>,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub cancelled_at: Option<i64>,
    pub counts: JobCounts,
}

/// One agent's part of a job.
#[derive(Debug, Clone)]
pub struct JobAgentRecord {
    pub agent_id: String,
    pub hostname: Option<String>,
    pub command_id: String,
    pub status: String,
    pub exit_code: Option<i64>,
    pub completed_at: Option<i64>,
}

const JOB_SELECT: &str = "SELECT j.*, s.name AS script_name FROM jobs j \
    LEFT JOIN scripts s ON s.id = j.script_id";

fn job_from_row(row: &sqlx::any::AnyRow) -> DbResult<JobRecord> {
    let json = |col: &str| -> DbResult<serde_json::Value> {
        let text: String = row.try_get(col)?;
        Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    };
    Ok(JobRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        script_id: row.try_get("script_id")?,
        script_name: row.try_get("script_name")?,
        script_version: row.try_get("script_version")?,
        command_type: row.try_get("command_type")?,
        command: row.try_get("command")?,
        interpreter: row.try_get("interpreter")?,
        environment: serde_json::from_value(json("environment_json")?).unwrap_or_default(),
        timeout_seconds: row.try_get("timeout_seconds")?,
        target: json("target_json")?,
        expires_at: row.try_get("expires_at")?,
        rerun_of: row.try_get("rerun_of")?,
        schedule_id: row.try_get("schedule_id")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        cancelled_at: row.try_get("cancelled_at")?,
        counts: JobCounts::default(),
    })
}

/// Rows per multi-row insert of a job's commands (13 values each, well under either
/// database's limit of bound values).
const COMMANDS_PER_INSERT: usize = 200;

/// Inserts a job and one queued command per agent, with the audit row `job.create`, on
/// `conn` (the caller's transaction). Returns the job id.
pub(crate) async fn insert_job(
    conn: &mut AnyConnection,
    j: &NewJob<'_>,
    agent_ids: &[String],
    by: Actor<'_>,
) -> DbResult<String> {
    let id = new_id();
    let now = now_ms();
    let environment = serde_json::to_string(j.environment).unwrap_or_else(|_| "{}".into());
    sqlx::query(
        "INSERT INTO jobs (id, name, script_id, script_version, command_type, command, interpreter, \
         environment_json, timeout_seconds, target_json, expires_at, rerun_of, schedule_id, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(&id)
    .bind(j.name)
    .bind(j.script_id)
    .bind(j.script_version)
    .bind(j.command_type)
    .bind(j.command)
    .bind(j.interpreter)
    .bind(&environment)
    .bind(j.timeout_seconds)
    .bind(j.target_json)
    .bind(j.expires_at)
    .bind(j.rerun_of)
    .bind(j.schedule_id)
    .bind(j.created_by)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let env_column = (!j.environment.is_empty()).then_some(environment);
    for chunk in agent_ids.chunks(COMMANDS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO commands (id, agent_id, command_type, command, interpreter, timeout_seconds, elevated, \
             status, created_by, created_at, job_id, environment_json, expires_at) VALUES {}",
            super::value_rows(chunk.len(), 13)
        );
        let mut q = sqlx::query(&sql);
        for agent_id in chunk {
            q = q
                .bind(new_id())
                .bind(agent_id.as_str())
                .bind(j.command_type)
                .bind(j.command)
                .bind(j.interpreter)
                .bind(j.timeout_seconds)
                .bind(0_i64)
                .bind(PENDING)
                .bind(j.created_by)
                .bind(now)
                .bind(&id)
                .bind(env_column.as_deref())
                .bind(j.expires_at);
        }
        q.execute(&mut *conn).await?;
    }
    let details = format!("{id} {}: {} agents", j.name, agent_ids.len());
    audit::record(conn, by, "job.create", "job", Some(&id), Some(&details)).await?;
    Ok(id)
}

impl Store {
    /// A job and its commands in one transaction with its audit row.
    pub async fn create_job(
        &self,
        j: &NewJob<'_>,
        agent_ids: &[String],
        by: Actor<'_>,
    ) -> DbResult<String> {
        let mut tx = self.begin_write().await?;
        let id = insert_job(&mut tx, j, agent_ids, by).await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn job_counts(&self, ids: &[String]) -> DbResult<BTreeMap<String, JobCounts>> {
        let mut counts: BTreeMap<String, JobCounts> = BTreeMap::new();
        if ids.is_empty() {
            return Ok(counts);
        }
        let list = super::placeholders(1, ids.len());
        let sql = format!(
            "SELECT job_id, status, CAST(COUNT(*) AS BIGINT) AS n FROM commands \
             WHERE job_id IN ({list}) GROUP BY job_id, status"
        );
        let mut q = sqlx::query(&sql);
        for id in ids {
            q = q.bind(id);
        }
        for row in q.fetch_all(&self.pool).await? {
            let job: String = row.try_get("job_id")?;
            let status: String = row.try_get("status")?;
            counts
                .entry(job)
                .or_default()
                .add(&status, row.try_get("n")?);
        }
        Ok(counts)
    }

    pub async fn job(&self, id: &str) -> DbResult<Option<JobRecord>> {
        let row = sqlx::query(&format!("{JOB_SELECT} WHERE j.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(mut job) = row.as_ref().map(job_from_row).transpose()? else {
            return Ok(None);
        };
        job.counts = self
            .job_counts(std::slice::from_ref(&job.id))
            .await?
            .remove(&job.id)
            .unwrap_or_default();
        Ok(Some(job))
    }

    /// The newest jobs first, with their counts; `schedule_id` only those it started.
    pub async fn list_jobs(
        &self,
        schedule_id: Option<&str>,
        limit: i64,
    ) -> DbResult<Vec<JobRecord>> {
        let rows = match schedule_id {
            Some(s) => {
                sqlx::query(&format!(
                "{JOB_SELECT} WHERE j.schedule_id = $1 ORDER BY j.created_at DESC, j.id LIMIT $2"
            ))
                .bind(s)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "{JOB_SELECT} ORDER BY j.created_at DESC, j.id LIMIT $1"
                ))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        let mut jobs = rows
            .iter()
            .map(job_from_row)
            .collect::<DbResult<Vec<_>>>()?;
        let ids: Vec<String> = jobs.iter().map(|j| j.id.clone()).collect();
        let mut counts = self.job_counts(&ids).await?;
        for job in &mut jobs {
            job.counts = counts.remove(&job.id).unwrap_or_default();
        }
        Ok(jobs)
    }

    /// Each agent's command in a job, by hostname.
    pub async fn job_agents(&self, id: &str) -> DbResult<Vec<JobAgentRecord>> {
        let rows = sqlx::query(
            "SELECT m.agent_id, a.hostname, m.id AS command_id, m.status, m.exit_code, m.completed_at \
             FROM commands m LEFT JOIN agents a ON a.id = m.agent_id WHERE m.job_id = $1 \
             ORDER BY a.hostname, m.agent_id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(JobAgentRecord {
                    agent_id: row.try_get("agent_id")?,
                    hostname: row.try_get("hostname")?,
                    command_id: row.try_get("command_id")?,
                    status: row.try_get("status")?,
                    exit_code: row.try_get("exit_code")?,
                    completed_at: row.try_get("completed_at")?,
                })
            })
            .collect()
    }

    /// Cancels what is still queued (running commands finish or time out), with the audit
    /// row `job.cancel`. Returns the commands cancelled (id, agent id). NotFound: no such
    /// job; Conflict when it was cancelled before.
    pub async fn cancel_job(&self, id: &str, by: Actor<'_>) -> DbResult<Vec<(String, String)>> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let marked =
            sqlx::query("UPDATE jobs SET cancelled_at = $1 WHERE id = $2 AND cancelled_at IS NULL")
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        if marked.rows_affected() == 0 {
            let exists: Option<String> = sqlx::query_scalar("SELECT id FROM jobs WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            return Err(match exists {
                Some(_) => StoreError::Conflict {
                    field: "cancelled_at".into(),
                },
                None => StoreError::NotFound("job"),
            });
        }
        let rows = sqlx::query(
            "UPDATE commands SET status = $1, completed_at = $2 WHERE job_id = $3 AND status = $4 \
             RETURNING id, agent_id",
        )
        .bind(CANCELLED)
        .bind(now)
        .bind(id)
        .bind(PENDING)
        .fetch_all(&mut *tx)
        .await?;
        let cancelled = rows
            .iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("agent_id")?)))
            .collect::<DbResult<Vec<(String, String)>>>()?;
        let details = format!("{} queued commands cancelled", cancelled.len());
        audit::record(&mut tx, by, "job.cancel", "job", Some(id), Some(&details)).await?;
        tx.commit().await?;
        crate::telemetry::commands_finished(
            gururmm_protocol::CommandStatus::Cancelled,
            cancelled.len(),
        );
        Ok(cancelled)
    }

    /// Queued commands whose job expired: `expired`. Returns them (id, agent id).
    pub async fn expire_commands(&self) -> DbResult<Vec<(String, String)>> {
        let now = now_ms();
        let rows = sqlx::query(
            "UPDATE commands SET status = $1, completed_at = $2 \
             WHERE status = $3 AND expires_at IS NOT NULL AND expires_at <= $2 RETURNING id, agent_id",
        )
        .bind(EXPIRED)
        .bind(now)
        .bind(PENDING)
        .fetch_all(&self.pool)
        .await?;
        crate::telemetry::commands_finished(gururmm_protocol::CommandStatus::Expired, rows.len());
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("agent_id")?)))
            .collect()
    }
}
