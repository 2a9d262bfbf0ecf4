use gururmm_protocol::command_status::{CANCELLED, PENDING, RUNNING, TIMED_OUT};
use gururmm_protocol::CommandStatus;
use serde::Serialize;
use sqlx::Row;

use super::{audit, new_id, now_ms, Actor, DbResult, Store};

#[derive(Debug, Clone, Serialize)]
pub struct CommandRecord {
    pub id: String,
    pub agent_id: String,
    pub hostname: Option<String>,
    pub command_type: gururmm_protocol::CommandType,
    pub command: String,
    pub interpreter: Option<String>,
    pub working_directory: Option<String>,
    pub context_files: Option<Vec<String>>,
    pub timeout_seconds: i64,
    pub elevated: bool,
    pub status: gururmm_protocol::CommandStatus,
    pub exit_code: Option<i64>,
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    /// Characters in the whole stdout / stderr, whether or not `stdout` holds all of it.
    pub stdout_length: Option<i64>,
    pub stderr_length: Option<i64>,
    /// `stdout` and `stderr` hold only their first [`PREVIEW_CHARS`] characters.
    pub output_preview: bool,
    /// For a running command: `stdout`/`stderr` are the pieces streamed so far, up to this seq.
    pub live_seq: Option<i64>,
    pub duration_ms: Option<i64>,
    pub created_by: Option<String>,
    #[serde(with = "super::rfc3339")]
    pub created_at: i64,
    #[serde(with = "super::rfc3339::option")]
    pub sent_at: Option<i64>,
    #[serde(with = "super::rfc3339::option")]
    pub completed_at: Option<i64>,
}

impl CommandRecord {
    /// The wire form sent to the agent.
    pub fn to_wire(&self) -> gururmm_protocol::Command {
        gururmm_protocol::Command {
            id: self.id.clone(),
            command_type: self.command_type.clone(),
            command: self.command.clone(),
            timeout_seconds: self.timeout_seconds.max(0) as u64,
            elevated: self.elevated,
            interpreter: self.interpreter.clone(),
            working_directory: self.working_directory.clone(),
            context_files: self.context_files.clone(),
        }
    }
}

pub struct NewCommand<'a> {
    pub agent_id: &'a str,
    pub command_type: &'a str,
    pub command: &'a str,
    pub interpreter: Option<&'a str>,
    pub working_directory: Option<&'a str>,
    pub context_files: Option<&'a [String]>,
    pub timeout_seconds: i64,
    pub elevated: bool,
    pub created_by: Option<&'a str>,
}

/// How much of each output a list shows (the command's own endpoint shows all of it).
pub const PREVIEW_CHARS: i64 = 500;

#[derive(Debug, Default, Clone)]
pub struct CommandFilter {
    pub agent_id: Option<String>,
    pub status: Option<String>,
    /// Created at or after, Unix ms.
    pub since: Option<i64>,
    /// Created before, Unix ms.
    pub until: Option<i64>,
    pub limit: i64,
    /// Whole outputs instead of previews of [`PREVIEW_CHARS`].
    pub full_output: bool,
}

/// The command columns; `stdout`/`stderr` are cut to [`PREVIEW_CHARS`] when `preview`.
fn select(preview: bool) -> String {
    let output = if preview {
        format!("substr(m.stdout, 1, {PREVIEW_CHARS}) AS stdout, substr(m.stderr, 1, {PREVIEW_CHARS}) AS stderr")
    } else {
        "m.stdout, m.stderr".to_owned()
    };
    format!(
        "SELECT m.id, m.agent_id, a.hostname, m.command_type, m.command, m.interpreter, m.working_directory, \
         m.context_files, m.timeout_seconds, m.elevated, m.status, m.exit_code, {output}, \
         CAST(length(m.stdout) AS BIGINT) AS stdout_length, CAST(length(m.stderr) AS BIGINT) AS stderr_length, \
         m.duration_ms, m.created_by, m.created_at, m.sent_at, m.completed_at \
         FROM commands m LEFT JOIN agents a ON a.id = m.agent_id"
    )
}

fn from_row(row: &sqlx::any::AnyRow) -> DbResult<CommandRecord> {
    Ok(CommandRecord {
        id: row.try_get("id")?,
        agent_id: row.try_get("agent_id")?,
        hostname: row.try_get("hostname")?,
        command_type: gururmm_protocol::CommandType::parse(
            &row.try_get::<String, _>("command_type")?,
        ),
        command: row.try_get("command")?,
        interpreter: row.try_get("interpreter")?,
        working_directory: row.try_get("working_directory")?,
        context_files: row
            .try_get::<Option<String>, _>("context_files")?
            .and_then(|json| serde_json::from_str(&json).ok()),
        timeout_seconds: row.try_get("timeout_seconds")?,
        elevated: row.try_get::<i64, _>("elevated")? != 0,
        status: super::parse_column(row, "status")?,
        exit_code: row.try_get("exit_code")?,
        stdout: row.try_get("stdout")?,
        stderr: row.try_get("stderr")?,
        stdout_length: row.try_get("stdout_length")?,
        stderr_length: row.try_get("stderr_length")?,
        output_preview: false,
        live_seq: None,
        duration_ms: row.try_get("duration_ms")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        sent_at: row.try_get("sent_at")?,
        completed_at: row.try_get("completed_at")?,
    })
}

/// A command that passed its deadline, as reported by [`Store::time_out_overdue`].
#[derive(Debug, Clone)]
pub struct TimedOut {
    pub id: String,
    pub agent_id: String,
}

impl Store {
    /// Queues a command (`pending`) with its audit row `command.create`, which names the
    /// command and what it runs. The record answered has no hostname (read the command for it).
    pub async fn insert_command(
        &self,
        c: NewCommand<'_>,
        by: Actor<'_>,
    ) -> DbResult<CommandRecord> {
        let id = new_id();
        let created_at = now_ms();
        let context_files = c
            .context_files
            .map(|files| serde_json::to_string(files).unwrap_or_default());
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO commands (id, agent_id, command_type, command, interpreter, timeout_seconds, elevated, status, created_by, created_at, \
             working_directory, context_files) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&id)
        .bind(c.agent_id)
        .bind(c.command_type)
        .bind(c.command)
        .bind(c.interpreter)
        .bind(c.timeout_seconds)
        .bind(i64::from(c.elevated))
        .bind(PENDING)
        .bind(c.created_by)
        .bind(created_at)
        .bind(c.working_directory)
        .bind(context_files.as_deref())
        .execute(&mut *tx)
        .await?;
        let details = format!("{id} {}: {}", c.command_type, c.command);
        audit::record(
            &mut tx,
            by,
            "command.create",
            "agent",
            Some(c.agent_id),
            Some(&details),
        )
        .await?;
        tx.commit().await?;
        // Built here rather than read back: one statement less on every command.
        Ok(CommandRecord {
            id,
            agent_id: c.agent_id.to_owned(),
            hostname: None,
            command_type: gururmm_protocol::CommandType::parse(c.command_type),
            command: c.command.to_owned(),
            interpreter: c.interpreter.map(str::to_owned),
            working_directory: c.working_directory.map(str::to_owned),
            context_files: c.context_files.map(<[String]>::to_vec),
            timeout_seconds: c.timeout_seconds,
            elevated: c.elevated,
            status: gururmm_protocol::CommandStatus::Pending,
            exit_code: None,
            stdout: None,
            stderr: None,
            stdout_length: None,
            stderr_length: None,
            output_preview: false,
            live_seq: None,
            duration_ms: None,
            created_by: c.created_by.map(str::to_owned),
            created_at,
            sent_at: None,
            completed_at: None,
        })
    }

    pub async fn command(&self, id: &str) -> DbResult<Option<CommandRecord>> {
        let row = sqlx::query(&format!("{} WHERE m.id = $1", select(false)))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn list_commands(&self, f: &CommandFilter) -> DbResult<Vec<CommandRecord>> {
        let preview = !f.full_output;
        let mut sql = format!("{} WHERE 1 = 1", select(preview));
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        if f.agent_id.is_some() {
            sql.push_str(&format!(" AND m.agent_id = ${}", next()));
        }
        if f.status.is_some() {
            sql.push_str(&format!(" AND m.status = ${}", next()));
        }
        if f.since.is_some() {
            sql.push_str(&format!(" AND m.created_at >= ${}", next()));
        }
        if f.until.is_some() {
            sql.push_str(&format!(" AND m.created_at < ${}", next()));
        }
        sql.push_str(&format!(
            " ORDER BY m.created_at DESC, m.id LIMIT ${}",
            next()
        ));
        let mut q = sqlx::query(&sql);
        if let Some(v) = &f.agent_id {
            q = q.bind(v);
        }
        if let Some(v) = &f.status {
            q = q.bind(v);
        }
        if let Some(v) = f.since {
            q = q.bind(v);
        }
        if let Some(v) = f.until {
            q = q.bind(v);
        }
        let rows = q.bind(f.limit).fetch_all(&self.pool).await?;
        let cut = |len: Option<i64>| len.is_some_and(|l| l > PREVIEW_CHARS);
        rows.iter()
            .map(|row| {
                let mut c = from_row(row)?;
                c.output_preview = preview && (cut(c.stdout_length) || cut(c.stderr_length));
                Ok(c)
            })
            .collect()
    }

    /// Claims the agent's queued commands in one statement: pending -> running, oldest first.
    /// A record waiting for approval is handed nothing. Each command is claimed once, however
    /// many paths ask at the same time; the caller gives back what it could not send
    /// ([`Store::release_unsent`]).
    pub async fn claim_pending(&self, agent_id: &str) -> DbResult<Vec<CommandRecord>> {
        let rows = sqlx::query(
            "UPDATE commands SET status = $1, sent_at = $2 WHERE id IN \
             (SELECT m.id FROM commands m JOIN agents a ON a.id = m.agent_id \
              WHERE m.agent_id = $3 AND m.status = $4 AND a.approval = 'approved') \
             RETURNING id, agent_id, CAST(NULL AS TEXT) AS hostname, command_type, command, interpreter, \
             working_directory, context_files, timeout_seconds, elevated, status, exit_code, stdout, stderr, \
             CAST(NULL AS BIGINT) AS stdout_length, CAST(NULL AS BIGINT) AS stderr_length, duration_ms, \
             created_by, created_at, sent_at, completed_at",
        )
        .bind(RUNNING)
        .bind(now_ms())
        .bind(agent_id)
        .bind(PENDING)
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = rows.iter().map(from_row).collect::<DbResult<Vec<_>>>()?;
        claimed.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(claimed)
    }

    /// Claimed commands that did not go out (the transport failed): pending again, for the
    /// next connection.
    pub async fn release_unsent(&self, ids: &[String]) -> DbResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let list = super::placeholders(3, ids.len());
        let sql = format!(
            "UPDATE commands SET status = $1, sent_at = NULL WHERE status = $2 AND id IN ({list})"
        );
        let mut q = sqlx::query(&sql).bind(PENDING).bind(RUNNING);
        for id in ids {
            q = q.bind(id);
        }
        q.execute(&self.pool).await?;
        Ok(())
    }

    /// Stores an agent's result. The command must belong to that agent. A cancelled command
    /// keeps its status but gets the output; a result that arrives after the server timed the
    /// command out replaces the timeout with what really happened. A second result for a
    /// finished command is ignored. Returns the stored status, or None if no such command.
    #[allow(clippy::too_many_arguments)]
    pub async fn store_result(
        &self,
        agent_id: &str,
        id: &str,
        status: &str,
        exit_code: i64,
        stdout: &str,
        stderr: &str,
        duration_ms: i64,
    ) -> DbResult<Option<String>> {
        let updated: Option<String> = sqlx::query_scalar(
            "UPDATE commands SET exit_code = $1, stdout = $2, stderr = $3, duration_ms = $4, completed_at = $5, \
             status = CASE WHEN status = $6 THEN status ELSE $7 END \
             WHERE id = $8 AND agent_id = $9 AND (exit_code IS NULL) RETURNING status",
        )
        .bind(exit_code)
        .bind(stdout)
        .bind(stderr)
        .bind(duration_ms)
        .bind(now_ms())
        .bind(CANCELLED)
        .bind(status)
        .bind(id)
        .bind(agent_id)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(stored) = &updated {
            // A cancelled command keeps its status: it was counted when cancelled.
            if stored != CANCELLED {
                crate::telemetry::command_finished_as(stored);
            }
            return Ok(updated);
        }
        // Already finished, or not this agent's: say which (one more read, only then).
        Ok(
            sqlx::query_scalar("SELECT status FROM commands WHERE id = $1 AND agent_id = $2")
                .bind(id)
                .bind(agent_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Marks running commands whose timeout plus `grace_ms` has passed as timed out.
    pub async fn time_out_overdue(&self, grace_ms: i64) -> DbResult<Vec<TimedOut>> {
        let now = now_ms();
        let rows = sqlx::query(
            "UPDATE commands SET status = $1, completed_at = $2 \
             WHERE status = $3 AND sent_at IS NOT NULL AND sent_at + timeout_seconds * 1000 + $4 < $2 \
             RETURNING id, agent_id",
        )
        .bind(TIMED_OUT)
        .bind(now)
        .bind(RUNNING)
        .bind(grace_ms)
        .fetch_all(&self.pool)
        .await?;
        crate::telemetry::commands_finished(CommandStatus::TimedOut, rows.len());
        rows.iter()
            .map(|r| {
                Ok(TimedOut {
                    id: r.try_get("id")?,
                    agent_id: r.try_get("agent_id")?,
                })
            })
            .collect()
    }

    /// pending or running -> cancelled, with its audit row. Returns false (and changes nothing)
    /// if the command had already finished.
    pub async fn cancel_command(&self, id: &str, by: Actor<'_>) -> DbResult<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE commands SET status = $1, completed_at = $2 WHERE id = $3 AND status IN ($4, $5)",
        )
        .bind(CANCELLED)
        .bind(now_ms())
        .bind(id)
        .bind(PENDING)
        .bind(RUNNING)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        audit::record(&mut tx, by, "command.cancel", "command", Some(id), None).await?;
        tx.commit().await?;
        crate::telemetry::commands_finished(CommandStatus::Cancelled, 1);
        Ok(true)
    }

    /// Stores live output pieces in one transaction. A piece is kept only when its command
    /// is running on the agent that sent it; a piece seen before (same command and seq) is
    /// ignored. Returns, per piece, whether it was stored.
    pub async fn insert_output_pieces(&self, pieces: &[OutputPiece]) -> DbResult<Vec<bool>> {
        let mut tx = self.begin_write().await?;
        let now = now_ms();
        let mut stored = Vec::with_capacity(pieces.len());
        for p in pieces {
            let done = sqlx::query(
                "INSERT INTO command_output (command_id, seq, stream, data, received_at) \
                 SELECT m.id, $1, $2, $3, $4 FROM commands m WHERE m.id = $5 AND m.agent_id = $6 AND m.status = $7 \
                 ON CONFLICT DO NOTHING",
            )
            .bind(p.seq)
            .bind(&p.stream)
            .bind(&p.data)
            .bind(now)
            .bind(&p.command_id)
            .bind(&p.agent_id)
            .bind(RUNNING)
            .execute(&mut *tx)
            .await?;
            stored.push(done.rows_affected() == 1);
        }
        tx.commit().await?;
        Ok(stored)
    }

    /// What a running command streamed so far: (stdout, stderr, highest seq).
    pub async fn live_output(&self, command_id: &str) -> DbResult<(String, String, Option<i64>)> {
        let rows = sqlx::query(
            "SELECT seq, stream, data FROM command_output WHERE command_id = $1 ORDER BY seq",
        )
        .bind(command_id)
        .fetch_all(&self.pool)
        .await?;
        let (mut stdout, mut stderr, mut last) = (String::new(), String::new(), None);
        for row in &rows {
            let stream: String = row.try_get("stream")?;
            let data: String = row.try_get("data")?;
            if stream == gururmm_protocol::output_stream::STDERR {
                stderr.push_str(&data);
            } else {
                stdout.push_str(&data);
            }
            last = Some(row.try_get::<i64, _>("seq")?);
        }
        Ok((stdout, stderr, last))
    }

    /// Removes the live pieces of commands that are no longer running (their result is the
    /// record). Returns how many were removed.
    pub async fn purge_finished_output(&self) -> DbResult<u64> {
        let done = sqlx::query(
            "DELETE FROM command_output WHERE command_id IN \
             (SELECT m.id FROM commands m WHERE m.status <> $1)",
        )
        .bind(RUNNING)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

/// One `command_output` piece as the server keeps it (already bounded and cleaned).
#[derive(Debug, Clone)]
pub struct OutputPiece {
    pub agent_id: String,
    pub command_id: String,
    pub seq: i64,
    pub stream: String,
    pub data: String,
}
