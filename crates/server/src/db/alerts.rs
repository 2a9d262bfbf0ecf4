//! Alert rules, alerts and maintenance windows. An alert opens and resolves in one
//! transaction with the notifications it queues (`crate::notify`); a technician's change also
//! commits with its audit row.

use sqlx::Row;

use super::{audit, new_id, now_ms, nullable_float, Actor, DbResult, Store, StoreError};
use crate::alerting::maintenance::{MaintenanceWindow, Weekly, WindowInput};
use crate::alerting::rules::{AlertRule, RuleInput, RuleKind};
use crate::alerting::Severity;
use crate::notify::{AlertNotice, AlertTransition};
use crate::scope::Scope;

/// An alert as stored, with where its agent sits.
#[derive(Debug, Clone)]
pub struct AlertRecord {
    pub id: String,
    pub rule_id: Option<String>,
    pub rule_name: String,
    pub agent_id: String,
    pub hostname: String,
    pub site_id: Option<String>,
    pub client_id: Option<String>,
    pub kind: RuleKind,
    pub subject: String,
    pub severity: Severity,
    pub status: String,
    pub message: String,
    pub opened_at: i64,
    pub acknowledged_at: Option<i64>,
    pub acknowledged_by: Option<String>,
    /// The acknowledging user's email, while the user exists.
    pub acknowledged_by_email: Option<String>,
    pub acknowledged_note: Option<String>,
    pub resolved_at: Option<i64>,
    pub resolved_by: Option<String>,
    pub resolved_by_email: Option<String>,
    pub resolved_note: Option<String>,
}

/// Which alerts a list returns, newest first.
#[derive(Debug, Default, Clone)]
pub struct AlertFilter {
    pub status: Option<String>,
    pub severity: Option<Severity>,
    pub client_id: Option<String>,
    pub site_id: Option<String>,
    pub agent_id: Option<String>,
    pub rule_id: Option<String>,
    /// Opened at or after (ms).
    pub since: Option<i64>,
    /// Opened before (ms).
    pub until: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

/// Unresolved alerts by severity, for the header.
#[derive(Debug, Clone, Default)]
pub struct AlertCounts {
    pub critical: i64,
    pub warning: i64,
    pub info: i64,
    pub acknowledged: i64,
}

/// An alert to open.
#[derive(Debug, Clone)]
pub struct NewAlert<'a> {
    pub rule: &'a AlertRule,
    pub agent_id: &'a str,
    pub subject: &'a str,
    pub message: &'a str,
}

/// The (rule, agent, subject) of an unresolved alert.
pub type OpenKey = (String, String, String);

const RULE_SELECT: &str = "SELECT id, name, kind, CAST(threshold AS DOUBLE PRECISION) AS threshold, \
    duration_seconds, include_timeouts, severity, scope_kind, scope_id, enabled, created_at, updated_at \
    FROM alert_rules";

const ALERT_SELECT: &str = "SELECT al.id, al.rule_id, al.rule_name, al.agent_id, a.hostname, \
    a.site_id, s.client_id, al.kind, al.subject, al.severity, al.status, al.message, al.opened_at, \
    al.acknowledged_at, al.acknowledged_by, al.acknowledged_note, al.resolved_at, al.resolved_by, \
    al.resolved_note, ua.email AS acknowledged_by_email, ur.email AS resolved_by_email \
    FROM alerts al JOIN agents a ON a.id = al.agent_id LEFT JOIN sites s ON s.id = a.site_id \
    LEFT JOIN users ua ON ua.id = al.acknowledged_by LEFT JOIN users ur ON ur.id = al.resolved_by";

const WINDOW_SELECT: &str = "SELECT id, name, scope_kind, scope_id, starts_at, ends_at, weekdays, \
    start_minute, duration_minutes, time_zone, created_at, updated_at FROM maintenance_windows";

fn decode_error(what: String) -> StoreError {
    StoreError::Other(sqlx::Error::Decode(what.into()))
}

fn kind_of(text: &str) -> DbResult<RuleKind> {
    RuleKind::parse(text).ok_or_else(|| decode_error(format!("unknown alert kind {text:?}")))
}

fn severity_of(text: &str) -> DbResult<Severity> {
    Severity::parse(text).ok_or_else(|| decode_error(format!("unknown severity {text:?}")))
}

fn rule_from_row(row: &sqlx::any::AnyRow) -> DbResult<AlertRule> {
    Ok(AlertRule {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        kind: kind_of(&row.try_get::<String, _>("kind")?)?,
        threshold: row.try_get("threshold")?,
        duration_seconds: row.try_get("duration_seconds")?,
        include_timeouts: row.try_get::<i64, _>("include_timeouts")? != 0,
        severity: severity_of(&row.try_get::<String, _>("severity")?)?,
        scope: Scope::from_columns(
            &row.try_get::<String, _>("scope_kind")?,
            row.try_get("scope_id")?,
        )?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn alert_from_row(row: &sqlx::any::AnyRow) -> DbResult<AlertRecord> {
    Ok(AlertRecord {
        id: row.try_get("id")?,
        rule_id: row.try_get("rule_id")?,
        rule_name: row.try_get("rule_name")?,
        agent_id: row.try_get("agent_id")?,
        hostname: row.try_get("hostname")?,
        site_id: row.try_get("site_id")?,
        client_id: row.try_get("client_id")?,
        kind: kind_of(&row.try_get::<String, _>("kind")?)?,
        subject: row.try_get("subject")?,
        severity: severity_of(&row.try_get::<String, _>("severity")?)?,
        status: row.try_get("status")?,
        message: row.try_get("message")?,
        opened_at: row.try_get("opened_at")?,
        acknowledged_at: row.try_get("acknowledged_at")?,
        acknowledged_by: row.try_get("acknowledged_by")?,
        acknowledged_by_email: row.try_get("acknowledged_by_email")?,
        acknowledged_note: row.try_get("acknowledged_note")?,
        resolved_at: row.try_get("resolved_at")?,
        resolved_by: row.try_get("resolved_by")?,
        resolved_by_email: row.try_get("resolved_by_email")?,
        resolved_note: row.try_get("resolved_note")?,
    })
}

fn window_from_row(row: &sqlx::any::AnyRow) -> DbResult<MaintenanceWindow> {
    let weekdays: Option<String> = row.try_get("weekdays")?;
    let start_minute: Option<i64> = row.try_get("start_minute")?;
    let duration_minutes: Option<i64> = row.try_get("duration_minutes")?;
    let weekly = match (weekdays, start_minute, duration_minutes) {
        (Some(days), Some(start), Some(length)) => Some(Weekly {
            weekdays: days.split(',').filter_map(|d| d.parse().ok()).collect(),
            start: format!("{:02}:{:02}", start / 60, start % 60),
            duration_minutes: length,
        }),
        _ => None,
    };
    Ok(MaintenanceWindow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        scope: Scope::from_columns(
            &row.try_get::<String, _>("scope_kind")?,
            row.try_get("scope_id")?,
        )?,
        starts_at: row.try_get("starts_at")?,
        ends_at: row.try_get("ends_at")?,
        weekly,
        time_zone: row.try_get("time_zone")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn notice(alert: &AlertRecord, transition: AlertTransition, at: i64) -> AlertNotice {
    AlertNotice {
        alert_id: alert.id.clone(),
        rule_id: alert.rule_id.clone(),
        rule_name: alert.rule_name.clone(),
        agent_id: alert.agent_id.clone(),
        hostname: alert.hostname.clone(),
        client_id: alert.client_id.clone(),
        site_id: alert.site_id.clone(),
        severity: alert.severity,
        transition,
        message: alert.message.clone(),
        at,
    }
}

async fn alert_in(conn: &mut sqlx::AnyConnection, id: &str) -> DbResult<Option<AlertRecord>> {
    let row = sqlx::query(&format!("{ALERT_SELECT} WHERE al.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(alert_from_row).transpose()
}

impl Store {
    // ---- rules

    pub async fn list_alert_rules(&self) -> DbResult<Vec<AlertRule>> {
        let rows = sqlx::query(&format!("{RULE_SELECT} ORDER BY name, id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rule_from_row).collect()
    }

    pub async fn alert_rule(&self, id: &str) -> DbResult<Option<AlertRule>> {
        let row = sqlx::query(&format!("{RULE_SELECT} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rule_from_row).transpose()
    }

    /// Creates a rule (`id` None) or replaces one, with its audit row.
    pub async fn save_alert_rule(
        &self,
        id: Option<&str>,
        rule: &RuleInput,
        by: Actor<'_>,
    ) -> DbResult<AlertRule> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let (id, created) = save_target(id);
        let sql = if created {
            "INSERT INTO alert_rules (name, kind, threshold, duration_seconds, include_timeouts, severity, \
             scope_kind, scope_id, enabled, updated_at, id, created_at) \
             VALUES ($1, $2, CAST($3 AS DOUBLE PRECISION), $4, $5, $6, $7, $8, $9, $10, $11, $10)"
        } else {
            "UPDATE alert_rules SET name = $1, kind = $2, threshold = CAST($3 AS DOUBLE PRECISION), \
             duration_seconds = $4, include_timeouts = $5, severity = $6, scope_kind = $7, scope_id = $8, \
             enabled = $9, updated_at = $10 WHERE id = $11"
        };
        let done = sqlx::query(sql)
            .bind(&rule.name)
            .bind(rule.kind.as_str())
            .bind(nullable_float(rule.threshold))
            .bind(rule.duration_seconds)
            .bind(i64::from(rule.include_timeouts))
            .bind(rule.severity.as_str())
            .bind(rule.scope.kind.as_str())
            .bind(rule.scope.id.as_deref())
            .bind(i64::from(rule.enabled))
            .bind(now)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("alert rule"));
        }
        // A rule switched off no longer holds its alerts open.
        if !rule.enabled {
            resolve_rule_alerts(&mut tx, &id, now).await?;
        }
        let saved = Saved {
            kind: "alert_rule",
            id: &id,
            created,
            name: &rule.name,
            select: RULE_SELECT,
        };
        rule_from_row(&saved.finish(tx, by).await?)
    }

    /// Deletes a rule with its audit row; its unresolved alerts are resolved (kept in history).
    pub async fn delete_alert_rule(&self, id: &str, by: Actor<'_>) -> DbResult<()> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        resolve_rule_alerts(&mut tx, id, now).await?;
        let done = sqlx::query("DELETE FROM alert_rules WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("alert rule"));
        }
        audit::record(
            &mut tx,
            by,
            "alert_rule.delete",
            "alert_rule",
            Some(id),
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    // ---- maintenance windows

    pub async fn list_maintenance_windows(&self) -> DbResult<Vec<MaintenanceWindow>> {
        let rows = sqlx::query(&format!("{WINDOW_SELECT} ORDER BY name, id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(window_from_row).collect()
    }

    pub async fn maintenance_window(&self, id: &str) -> DbResult<Option<MaintenanceWindow>> {
        let row = sqlx::query(&format!("{WINDOW_SELECT} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(window_from_row).transpose()
    }

    /// Creates a window (`id` None) or replaces one, with its audit row.
    pub async fn save_maintenance_window(
        &self,
        id: Option<&str>,
        w: &WindowInput,
        by: Actor<'_>,
    ) -> DbResult<MaintenanceWindow> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let (id, created) = save_target(id);
        let sql = if created {
            "INSERT INTO maintenance_windows (name, scope_kind, scope_id, starts_at, ends_at, weekdays, \
             start_minute, duration_minutes, time_zone, updated_at, id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $10)"
        } else {
            "UPDATE maintenance_windows SET name = $1, scope_kind = $2, scope_id = $3, starts_at = $4, \
             ends_at = $5, weekdays = $6, start_minute = $7, duration_minutes = $8, time_zone = $9, \
             updated_at = $10 WHERE id = $11"
        };
        let weekdays = w.weekly.as_ref().map(|w| {
            w.weekdays
                .iter()
                .map(u8::to_string)
                .collect::<Vec<_>>()
                .join(",")
        });
        let start_minute = w
            .weekly
            .as_ref()
            .and_then(|w| crate::alerting::maintenance::parse_start(&w.start))
            .map(i64::from);
        let done = sqlx::query(sql)
            .bind(&w.name)
            .bind(w.scope.kind.as_str())
            .bind(w.scope.id.as_deref())
            .bind(w.starts_at)
            .bind(w.ends_at)
            .bind(weekdays)
            .bind(start_minute)
            .bind(w.weekly.as_ref().map(|w| w.duration_minutes))
            .bind(&w.time_zone)
            .bind(now)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("maintenance window"));
        }
        let saved = Saved {
            kind: "maintenance_window",
            id: &id,
            created,
            name: &w.name,
            select: WINDOW_SELECT,
        };
        window_from_row(&saved.finish(tx, by).await?)
    }

    pub async fn delete_maintenance_window(&self, id: &str, by: Actor<'_>) -> DbResult<()> {
        self.audited_delete("maintenance_window", id, by).await
    }

    // ---- alerts

    /// Opens an alert and queues its notifications, in one transaction. None when one is
    /// already unresolved for this rule, agent and subject (or the agent is gone).
    pub async fn open_alert(&self, new: &NewAlert<'_>) -> DbResult<Option<AlertRecord>> {
        let now = now_ms();
        let id = new_id();
        let mut tx = self.begin_write().await?;
        // The unique index would refuse a second one; checking first keeps a PostgreSQL
        // transaction usable and the log free of constraint errors.
        let open = sqlx::query(
            "SELECT 1 AS found FROM alerts WHERE rule_id = $1 AND agent_id = $2 AND subject = $3 \
             AND status <> 'resolved'",
        )
        .bind(&new.rule.id)
        .bind(new.agent_id)
        .bind(new.subject)
        .fetch_optional(&mut *tx)
        .await?;
        if open.is_some() {
            return Ok(None);
        }
        let inserted = sqlx::query(
            "INSERT INTO alerts (id, rule_id, rule_name, agent_id, kind, subject, severity, status, message, opened_at) \
             SELECT $1, $2, $3, a.id, $4, $5, $6, 'open', $7, $8 FROM agents a WHERE a.id = $9",
        )
        .bind(&id)
        .bind(&new.rule.id)
        .bind(&new.rule.name)
        .bind(new.rule.kind.as_str())
        .bind(new.subject)
        .bind(new.rule.severity.as_str())
        .bind(new.message)
        .bind(now)
        .bind(new.agent_id)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(done) if done.rows_affected() == 0 => return Ok(None),
            Ok(_) => {}
            // Another node opened it a moment ago.
            Err(e) => match StoreError::from(e) {
                StoreError::Conflict { .. } => return Ok(None),
                other => return Err(other),
            },
        }
        let alert = alert_in(&mut tx, &id)
            .await?
            .ok_or(StoreError::NotFound("alert"))?;
        crate::notify::enqueue_alert_notice(&mut tx, &notice(&alert, AlertTransition::Opened, now))
            .await?;
        tx.commit().await?;
        Ok(Some(alert))
    }

    /// Resolves the unresolved alert of this rule, agent and subject automatically (the
    /// condition cleared), queueing its notifications. None when there was none.
    pub async fn resolve_alert_auto(
        &self,
        rule_id: &str,
        agent_id: &str,
        subject: &str,
    ) -> DbResult<Option<AlertRecord>> {
        let row = sqlx::query(
            "SELECT id FROM alerts WHERE rule_id = $1 AND agent_id = $2 AND subject = $3 AND status <> 'resolved'",
        )
        .bind(rule_id)
        .bind(agent_id)
        .bind(subject)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let id: String = row.try_get("id")?;
        self.resolve_alert(&id, None, Actor::SYSTEM).await
    }

    /// Resolves an unresolved alert, by hand (`note`, audited) or automatically
    /// (`Actor::SYSTEM`), with its notifications. None when it was already resolved.
    pub async fn resolve_alert(
        &self,
        id: &str,
        note: Option<&str>,
        by: Actor<'_>,
    ) -> DbResult<Option<AlertRecord>> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE alerts SET status = 'resolved', resolved_at = $1, resolved_by = $2, resolved_note = $3 \
             WHERE id = $4 AND status <> 'resolved'",
        )
        .bind(now)
        .bind(by.user_id)
        .bind(note)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let alert = alert_in(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound("alert"))?;
        if by.user_id.is_some() {
            audit::record(&mut tx, by, "alert.resolve", "alert", Some(id), note).await?;
        }
        crate::notify::enqueue_alert_notice(
            &mut tx,
            &notice(&alert, AlertTransition::Resolved, now),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(alert))
    }

    /// Acknowledges an open alert, with its audit row. None when it is not open.
    pub async fn acknowledge_alert(
        &self,
        id: &str,
        note: Option<&str>,
        by: Actor<'_>,
    ) -> DbResult<Option<AlertRecord>> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE alerts SET status = 'acknowledged', acknowledged_at = $1, acknowledged_by = $2, \
             acknowledged_note = $3 WHERE id = $4 AND status = 'open'",
        )
        .bind(now_ms())
        .bind(by.user_id)
        .bind(note)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        audit::record(&mut tx, by, "alert.acknowledge", "alert", Some(id), note).await?;
        let alert = alert_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(alert)
    }

    pub async fn alert(&self, id: &str) -> DbResult<Option<AlertRecord>> {
        let mut conn = self.pool.acquire().await?;
        alert_in(&mut conn, id).await
    }

    pub async fn list_alerts(&self, f: &AlertFilter) -> DbResult<Vec<AlertRecord>> {
        let mut sql = format!("{ALERT_SELECT} WHERE 1 = 1");
        let mut texts: Vec<String> = Vec::new();
        let mut push = |sql: &mut String, column: &str, v: &str| {
            texts.push(v.to_owned());
            sql.push_str(&format!(" AND {column} = ${}", texts.len()));
        };
        if let Some(v) = &f.status {
            push(&mut sql, "al.status", v);
        }
        if let Some(v) = f.severity {
            push(&mut sql, "al.severity", v.as_str());
        }
        if let Some(v) = &f.client_id {
            push(&mut sql, "s.client_id", v);
        }
        if let Some(v) = &f.site_id {
            push(&mut sql, "a.site_id", v);
        }
        if let Some(v) = &f.agent_id {
            push(&mut sql, "al.agent_id", v);
        }
        if let Some(v) = &f.rule_id {
            push(&mut sql, "al.rule_id", v);
        }
        let n = texts.len();
        sql.push_str(&format!(
            " AND al.opened_at >= ${} AND al.opened_at < ${} ORDER BY al.opened_at DESC, al.id LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2,
            n + 3,
            n + 4
        ));
        let mut q = sqlx::query(&sql);
        for t in &texts {
            q = q.bind(t);
        }
        let rows = q
            .bind(f.since.unwrap_or(0))
            .bind(f.until.unwrap_or(i64::MAX))
            .bind(f.limit)
            .bind(f.offset)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(alert_from_row).collect()
    }

    pub async fn alert_counts(&self) -> DbResult<AlertCounts> {
        let rows = sqlx::query(
            "SELECT status, severity, COUNT(*) AS n FROM alerts WHERE status IN ('open', 'acknowledged') GROUP BY status, severity",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut counts = AlertCounts::default();
        for row in rows {
            let status: String = row.try_get("status")?;
            let severity: String = row.try_get("severity")?;
            let n: i64 = row.try_get("n")?;
            match (status.as_str(), Severity::parse(&severity)) {
                ("acknowledged", _) => counts.acknowledged += n,
                (_, Some(Severity::Critical)) => counts.critical += n,
                (_, Some(Severity::Warning)) => counts.warning += n,
                (_, Some(Severity::Info)) => counts.info += n,
                _ => {}
            }
        }
        Ok(counts)
    }

    /// The keys of every unresolved alert of the given kinds (the evaluator's memory after a
    /// start or a reload).
    pub async fn open_alert_keys(&self, kinds: &[RuleKind]) -> DbResult<Vec<OpenKey>> {
        let list = kinds
            .iter()
            .map(|k| format!("'{}'", k.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(&format!(
            "SELECT rule_id, agent_id, subject FROM alerts WHERE status IN ('open', 'acknowledged') \
             AND rule_id IS NOT NULL AND kind IN ({list})"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("rule_id")?,
                    r.try_get("agent_id")?,
                    r.try_get("subject")?,
                ))
            })
            .collect()
    }

    /// Agents last heard from before `cutoff` (and heard from at all) with no unresolved alert
    /// of `rule_id`: the offline rule's candidates.
    pub async fn silent_agents(
        &self,
        rule_id: &str,
        cutoff: i64,
    ) -> DbResult<Vec<super::AgentRecord>> {
        let rows = sqlx::query(&format!(
            "{} WHERE a.last_seen IS NOT NULL AND a.last_seen < $1 AND NOT EXISTS \
             (SELECT 1 FROM alerts al WHERE al.agent_id = a.id AND al.rule_id = $2 AND al.status <> 'resolved') \
             ORDER BY a.last_seen LIMIT 10000",
            super::agents::AGENT_SELECT
        ))
        .bind(cutoff)
        .bind(rule_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(super::agents::from_row).collect()
    }

    /// Unresolved offline alerts with their agents: the ones whose agent is back resolve.
    pub async fn open_offline_alerts(&self) -> DbResult<Vec<(String, i64, super::AgentRecord)>> {
        let rows = sqlx::query(&format!(
            "SELECT al.id AS alert_id, al.opened_at AS alert_opened_at, x.* FROM alerts al JOIN ({}) x \
             ON x.id = al.agent_id WHERE al.status IN ('open', 'acknowledged') AND al.kind = 'offline' LIMIT 10000",
            super::agents::AGENT_SELECT
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("alert_id")?,
                    r.try_get("alert_opened_at")?,
                    super::agents::from_row(r)?,
                ))
            })
            .collect()
    }
}

/// The id a save writes: a new one for a create (true).
fn save_target(id: Option<&str>) -> (String, bool) {
    match id {
        Some(id) => (id.to_owned(), false),
        None => (new_id(), true),
    }
}

/// A rule or window just written in its transaction.
struct Saved<'a> {
    kind: &'static str,
    id: &'a str,
    created: bool,
    name: &'a str,
    select: &'static str,
}

impl Saved<'_> {
    /// Writes the audit row (`<kind>.create` or `.update`), commits, and gives the row as saved.
    async fn finish(
        self,
        mut tx: sqlx::Transaction<'static, sqlx::Any>,
        by: Actor<'_>,
    ) -> DbResult<sqlx::any::AnyRow> {
        let verb = if self.created { "create" } else { "update" };
        let action = format!("{}.{verb}", self.kind);
        audit::record(
            &mut tx,
            by,
            &action,
            self.kind,
            Some(self.id),
            Some(self.name),
        )
        .await?;
        let row = sqlx::query(&format!("{} WHERE id = $1", self.select))
            .bind(self.id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(row)
    }
}

/// Resolves every unresolved alert of a rule (deleted or switched off), with no notification:
/// nobody needs telling that a rule went away.
async fn resolve_rule_alerts(
    conn: &mut sqlx::AnyConnection,
    rule_id: &str,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE alerts SET status = 'resolved', resolved_at = $1, resolved_note = 'the rule was removed or switched off' \
         WHERE rule_id = $2 AND status <> 'resolved'",
    )
    .bind(now)
    .bind(rule_id)
    .execute(conn)
    .await?;
    Ok(())
}
