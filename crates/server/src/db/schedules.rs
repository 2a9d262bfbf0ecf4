//! Schedules and the claim of each slot.

use sqlx::Row;

use super::jobs::{insert_job, NewJob};
use super::{audit, new_id, now_ms, Actor, DbResult, Store, StoreError};

#[derive(Debug, Clone)]
pub struct ScheduleRecord {
    pub id: String,
    pub name: String,
    pub job_json: String,
    pub cron: Option<String>,
    pub time_zone: String,
    pub run_at: Option<i64>,
    pub paused: bool,
    pub next_run_at: Option<i64>,
    pub last_run_at: Option<i64>,
    pub last_job_id: Option<String>,
    pub last_error: Option<String>,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a technician sets on a schedule.
pub struct ScheduleFields<'a> {
    pub name: &'a str,
    pub job_json: &'a str,
    pub cron: Option<&'a str>,
    pub time_zone: &'a str,
    pub run_at: Option<i64>,
    pub paused: bool,
    /// The first slot to run (worked out by the caller from cron or run_at).
    pub next_run_at: Option<i64>,
}

fn from_row(row: &sqlx::any::AnyRow) -> DbResult<ScheduleRecord> {
    Ok(ScheduleRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        job_json: row.try_get("job_json")?,
        cron: row.try_get("cron")?,
        time_zone: row.try_get("time_zone")?,
        run_at: row.try_get("run_at")?,
        paused: row.try_get::<i64, _>("paused")? != 0,
        next_run_at: row.try_get("next_run_at")?,
        last_run_at: row.try_get("last_run_at")?,
        last_job_id: row.try_get("last_job_id")?,
        last_error: row.try_get("last_error")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    pub async fn create_schedule(
        &self,
        f: &ScheduleFields<'_>,
        created_by: Option<&str>,
        by: Actor<'_>,
    ) -> DbResult<String> {
        let id = new_id();
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO schedules (id, name, job_json, cron, time_zone, run_at, paused, next_run_at, \
             created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind(&id)
        .bind(f.name)
        .bind(f.job_json)
        .bind(f.cron)
        .bind(f.time_zone)
        .bind(f.run_at)
        .bind(i64::from(f.paused))
        .bind(f.next_run_at)
        .bind(created_by)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        audit::record(
            &mut tx,
            by,
            "schedule.create",
            "schedule",
            Some(&id),
            Some(f.name),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Replaces a schedule's settings (and its next slot) with its audit row.
    pub async fn update_schedule(
        &self,
        id: &str,
        f: &ScheduleFields<'_>,
        by: Actor<'_>,
    ) -> DbResult<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE schedules SET name = $1, job_json = $2, cron = $3, time_zone = $4, run_at = $5, \
             paused = $6, next_run_at = $7, updated_at = $8 WHERE id = $9",
        )
        .bind(f.name)
        .bind(f.job_json)
        .bind(f.cron)
        .bind(f.time_zone)
        .bind(f.run_at)
        .bind(i64::from(f.paused))
        .bind(f.next_run_at)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("schedule"));
        }
        let details = format!("{}{}", f.name, if f.paused { " (paused)" } else { "" });
        audit::record(
            &mut tx,
            by,
            "schedule.update",
            "schedule",
            Some(id),
            Some(&details),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_schedule(&self, id: &str, by: Actor<'_>) -> DbResult<()> {
        self.audited_delete("schedule", id, by).await
    }

    pub async fn schedule(&self, id: &str) -> DbResult<Option<ScheduleRecord>> {
        let row = sqlx::query("SELECT * FROM schedules WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn list_schedules(&self) -> DbResult<Vec<ScheduleRecord>> {
        let rows = sqlx::query("SELECT * FROM schedules ORDER BY LOWER(name), id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Schedules not paused whose next slot is at or before `now`.
    pub async fn due_schedules(&self, now: i64) -> DbResult<Vec<ScheduleRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM schedules WHERE paused = 0 AND next_run_at IS NOT NULL AND next_run_at <= $1 \
             ORDER BY next_run_at",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Claims the slot `slot` of a schedule and starts its job, in one transaction: the
    /// schedule moves on to `next` only if its next slot is still `slot`, so a slot is run
    /// once whoever else tries. Returns the job id, or None when the slot was taken.
    #[allow(clippy::too_many_arguments)]
    pub async fn run_schedule_slot(
        &self,
        id: &str,
        slot: i64,
        next: Option<i64>,
        now: i64,
        job: &NewJob<'_>,
        agent_ids: &[String],
        by: Actor<'_>,
    ) -> DbResult<Option<String>> {
        let mut tx = self.begin_write().await?;
        let claimed = sqlx::query(
            "UPDATE schedules SET next_run_at = $1, last_run_at = $2, last_error = NULL \
             WHERE id = $3 AND next_run_at = $4 AND paused = 0",
        )
        .bind(next)
        .bind(now)
        .bind(id)
        .bind(slot)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() == 0 {
            return Ok(None);
        }
        let job_id = insert_job(&mut tx, job, agent_ids, by).await?;
        sqlx::query("UPDATE schedules SET last_job_id = $1 WHERE id = $2")
            .bind(&job_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(job_id))
    }

    /// A slot that could start no job: moves on to `next` (if the slot is still `slot`) and
    /// records why.
    pub async fn skip_schedule_run(
        &self,
        id: &str,
        slot: i64,
        next: Option<i64>,
        now: i64,
        why: &str,
    ) -> DbResult<()> {
        sqlx::query(
            "UPDATE schedules SET next_run_at = $1, last_run_at = $2, last_error = $3 \
             WHERE id = $4 AND next_run_at = $5",
        )
        .bind(next)
        .bind(now)
        .bind(why)
        .bind(id)
        .bind(slot)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
