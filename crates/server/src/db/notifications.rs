//! Notification channels, routes and the delivery queue (see `crate::notify`).

use sqlx::{AnyConnection, Row};

use super::{audit, new_id, now_ms, placeholders, Actor, DbResult, Store, StoreError};
use crate::alerting::Severity;
use crate::scope::Scope;

#[derive(Debug, Clone)]
pub struct ChannelRecord {
    pub id: String,
    pub name: String,
    /// webhook | slack | teams | email
    pub kind: String,
    pub url: Option<String>,
    pub email_to: Vec<String>,
    /// Sealed with the server's secret box; never leaves the server.
    pub secret_sealed: Option<String>,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A channel as created or changed. `secret_sealed` None keeps the current secret (a webhook's
/// secret is write-only); other kinds never keep one.
pub struct ChannelChange<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub url: Option<&'a str>,
    pub email_to: &'a [String],
    pub secret_sealed: Option<&'a str>,
    pub enabled: bool,
}

#[derive(Debug, Clone)]
pub struct RouteRecord {
    pub id: String,
    pub channel_id: String,
    pub min_severity: Severity,
    pub scope: Scope,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    pub id: String,
    pub channel_id: String,
    pub alert_id: Option<String>,
    pub payload: String,
    /// pending | delivered | failed
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub delivered_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub delivery_id: String,
    pub attempt: i64,
    pub at: i64,
    pub status_code: Option<i64>,
    pub response: Option<String>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

#[derive(Default)]
pub struct DeliveryFilter<'a> {
    pub channel_id: Option<&'a str>,
    pub status: Option<&'a str>,
    pub alert_id: Option<&'a str>,
    pub limit: i64,
}

/// What became of one attempt.
pub enum AttemptOutcome {
    Delivered,
    /// Try again at this time (Unix ms).
    Retry(i64),
    Failed,
}

const CHANNEL_COLUMNS: &str =
    "id, name, kind, url, email_to, secret_sealed, enabled, created_at, updated_at";
const ROUTE_COLUMNS: &str =
    "id, channel_id, min_severity, scope_kind, scope_id, created_at, updated_at";
const DELIVERY_COLUMNS: &str = "id, channel_id, alert_id, payload, status, attempts, \
    next_attempt_at, last_error, created_at, updated_at, delivered_at";

fn channel_from_row(row: &sqlx::any::AnyRow) -> DbResult<ChannelRecord> {
    let email_to: Option<String> = row.try_get("email_to")?;
    Ok(ChannelRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        kind: row.try_get("kind")?,
        url: row.try_get("url")?,
        email_to: email_to
            .map(|list| {
                list.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        secret_sealed: row.try_get("secret_sealed")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn route_from_row(row: &sqlx::any::AnyRow) -> DbResult<RouteRecord> {
    let severity: String = row.try_get("min_severity")?;
    Ok(RouteRecord {
        id: row.try_get("id")?,
        channel_id: row.try_get("channel_id")?,
        min_severity: Severity::parse(&severity).ok_or_else(|| {
            StoreError::Other(sqlx::Error::Decode(
                format!("unknown severity {severity:?}").into(),
            ))
        })?,
        scope: Scope::from_columns(
            &row.try_get::<String, _>("scope_kind")?,
            row.try_get("scope_id")?,
        )?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn delivery_from_row(row: &sqlx::any::AnyRow) -> DbResult<DeliveryRecord> {
    Ok(DeliveryRecord {
        id: row.try_get("id")?,
        channel_id: row.try_get("channel_id")?,
        alert_id: row.try_get("alert_id")?,
        payload: row.try_get("payload")?,
        status: row.try_get("status")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        delivered_at: row.try_get("delivered_at")?,
    })
}

/// The channels an alert of `severity` on an agent placed as `placement` goes to: enabled,
/// with a route whose severity and scope match. Each channel once.
pub async fn matching_channels(
    conn: &mut AnyConnection,
    placement: &crate::scope::Placement,
    severity: Severity,
) -> DbResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT r.channel_id, r.min_severity, r.scope_kind, r.scope_id \
         FROM notification_routes r JOIN notification_channels c ON c.id = r.channel_id \
         WHERE c.enabled = 1 ORDER BY r.channel_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut channels: Vec<String> = Vec::new();
    for row in &rows {
        let channel: String = row.try_get("channel_id")?;
        let min: String = row.try_get("min_severity")?;
        let scope = Scope::from_columns(
            &row.try_get::<String, _>("scope_kind")?,
            row.try_get("scope_id")?,
        )?;
        let severe_enough = Severity::parse(&min).is_some_and(|min| severity >= min);
        if severe_enough && placement.covers(&scope) && !channels.contains(&channel) {
            channels.push(channel);
        }
    }
    Ok(channels)
}

/// Queues one delivery, due now.
pub async fn insert_delivery(
    conn: &mut AnyConnection,
    id: &str,
    channel_id: &str,
    alert_id: Option<&str>,
    payload: &str,
) -> DbResult<()> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO notification_deliveries (id, channel_id, alert_id, payload, status, attempts, \
         next_attempt_at, created_at, updated_at) VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5, $5)",
    )
    .bind(id)
    .bind(channel_id)
    .bind(alert_id)
    .bind(payload)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    pub async fn list_channels(&self) -> DbResult<Vec<ChannelRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {CHANNEL_COLUMNS} FROM notification_channels ORDER BY name, id"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(channel_from_row).collect()
    }

    pub async fn channel(&self, id: &str) -> DbResult<Option<ChannelRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {CHANNEL_COLUMNS} FROM notification_channels WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(channel_from_row).transpose()
    }

    pub async fn create_channel(&self, c: &ChannelChange<'_>, by: Actor<'_>) -> DbResult<String> {
        let id = new_id();
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO notification_channels (id, name, kind, url, email_to, secret_sealed, \
             enabled, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(&id)
        .bind(c.name)
        .bind(c.kind)
        .bind(c.url)
        .bind(email_list(c.email_to))
        .bind(c.secret_sealed)
        .bind(i64::from(c.enabled))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let details = format!("{} ({})", c.name, c.kind);
        audit::record(
            &mut tx,
            by,
            "notification_channel.create",
            "notification_channel",
            Some(&id),
            Some(&details),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn update_channel(
        &self,
        id: &str,
        c: &ChannelChange<'_>,
        by: Actor<'_>,
    ) -> DbResult<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE notification_channels SET name = $1, kind = $2, url = $3, email_to = $4, \
             secret_sealed = CASE WHEN $5 = 'webhook' THEN COALESCE($6, secret_sealed) ELSE NULL END, \
             enabled = $7, updated_at = $8 WHERE id = $9",
        )
        .bind(c.name)
        .bind(c.kind)
        .bind(c.url)
        .bind(email_list(c.email_to))
        .bind(c.kind)
        .bind(c.secret_sealed)
        .bind(i64::from(c.enabled))
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("notification channel"));
        }
        let details = format!(
            "{} ({}){}",
            c.name,
            c.kind,
            if c.secret_sealed.is_some() {
                ", new secret"
            } else {
                ""
            }
        );
        audit::record(
            &mut tx,
            by,
            "notification_channel.update",
            "notification_channel",
            Some(id),
            Some(&details),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a channel with its routes and its deliveries.
    pub async fn delete_channel(&self, id: &str, by: Actor<'_>) -> DbResult<()> {
        let mut tx = self.begin_write().await?;
        // SQLite may run without foreign keys: the dependent rows go explicitly.
        sqlx::query(
            "DELETE FROM notification_attempts WHERE delivery_id IN \
             (SELECT id FROM notification_deliveries WHERE channel_id = $1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        for table in ["notification_deliveries", "notification_routes"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE channel_id = $1"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let done = sqlx::query("DELETE FROM notification_channels WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("notification channel"));
        }
        audit::record(
            &mut tx,
            by,
            "notification_channel.delete",
            "notification_channel",
            Some(id),
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Queues a test delivery to a channel (audited: it sends something to the outside).
    pub async fn queue_test_delivery(
        &self,
        id: &str,
        channel_id: &str,
        payload: &str,
        by: Actor<'_>,
    ) -> DbResult<()> {
        let mut tx = self.begin_write().await?;
        insert_delivery(&mut tx, id, channel_id, None, payload).await?;
        audit::record(
            &mut tx,
            by,
            "notification_channel.test",
            "notification_channel",
            Some(channel_id),
            Some(id),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_routes(&self) -> DbResult<Vec<RouteRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {ROUTE_COLUMNS} FROM notification_routes ORDER BY channel_id, created_at, id"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(route_from_row).collect()
    }

    pub async fn route(&self, id: &str) -> DbResult<Option<RouteRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {ROUTE_COLUMNS} FROM notification_routes WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(route_from_row).transpose()
    }

    /// Creates (`id` None) or changes a route; answers its id.
    pub async fn save_route(
        &self,
        id: Option<&str>,
        channel_id: &str,
        min_severity: Severity,
        scope: &Scope,
        by: Actor<'_>,
    ) -> DbResult<String> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let (route_id, action) = match id {
            None => {
                let route_id = new_id();
                sqlx::query(
                    "INSERT INTO notification_routes (id, channel_id, min_severity, scope_kind, \
                     scope_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
                )
                .bind(&route_id)
                .bind(channel_id)
                .bind(min_severity.as_str())
                .bind(scope.kind.as_str())
                .bind(scope.id.as_deref())
                .bind(now)
                .execute(&mut *tx)
                .await?;
                (route_id, "notification_route.create")
            }
            Some(id) => {
                let done = sqlx::query(
                    "UPDATE notification_routes SET channel_id = $1, min_severity = $2, \
                     scope_kind = $3, scope_id = $4, updated_at = $5 WHERE id = $6",
                )
                .bind(channel_id)
                .bind(min_severity.as_str())
                .bind(scope.kind.as_str())
                .bind(scope.id.as_deref())
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound("notification route"));
                }
                (id.to_owned(), "notification_route.update")
            }
        };
        let details = format!(
            "channel {channel_id}, {} and above, {}{}",
            min_severity.as_str(),
            scope.kind.as_str(),
            scope
                .id
                .as_deref()
                .map(|s| format!(" {s}"))
                .unwrap_or_default()
        );
        audit::record(
            &mut tx,
            by,
            action,
            "notification_route",
            Some(&route_id),
            Some(&details),
        )
        .await?;
        tx.commit().await?;
        Ok(route_id)
    }

    pub async fn delete_route(&self, id: &str, by: Actor<'_>) -> DbResult<()> {
        self.audited_delete("notification_route", id, by).await
    }

    /// Deliveries, newest first, with their attempts (oldest first).
    pub async fn list_deliveries(
        &self,
        f: &DeliveryFilter<'_>,
    ) -> DbResult<Vec<(DeliveryRecord, Vec<AttemptRecord>)>> {
        let mut sql = format!("SELECT {DELIVERY_COLUMNS} FROM notification_deliveries WHERE 1 = 1");
        let mut binds = Vec::new();
        for (column, value) in [
            ("channel_id", f.channel_id),
            ("status", f.status),
            ("alert_id", f.alert_id),
        ] {
            if let Some(value) = value {
                binds.push(value);
                sql.push_str(&format!(" AND {column} = ${}", binds.len()));
            }
        }
        sql.push_str(&format!(
            " ORDER BY created_at DESC, id LIMIT ${}",
            binds.len() + 1
        ));
        let mut query = sqlx::query(&sql);
        for value in binds {
            query = query.bind(value);
        }
        let rows = query.bind(f.limit).fetch_all(self.pool()).await?;
        let deliveries: Vec<DeliveryRecord> = rows
            .iter()
            .map(delivery_from_row)
            .collect::<DbResult<_>>()?;
        let mut by_delivery: std::collections::HashMap<String, Vec<AttemptRecord>> =
            Default::default();
        for a in self
            .attempts_of(deliveries.iter().map(|d| d.id.as_str()))
            .await?
        {
            by_delivery
                .entry(a.delivery_id.clone())
                .or_default()
                .push(a);
        }
        Ok(deliveries
            .into_iter()
            .map(|d| {
                let attempts = by_delivery.remove(&d.id).unwrap_or_default();
                (d, attempts)
            })
            .collect())
    }

    pub async fn delivery(
        &self,
        id: &str,
    ) -> DbResult<Option<(DeliveryRecord, Vec<AttemptRecord>)>> {
        let row = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM notification_deliveries WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let Some(delivery) = row.as_ref().map(delivery_from_row).transpose()? else {
            return Ok(None);
        };
        let attempts = self.attempts_of([id]).await?;
        Ok(Some((delivery, attempts)))
    }

    async fn attempts_of<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> DbResult<Vec<AttemptRecord>> {
        let ids: Vec<&str> = ids.into_iter().collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT delivery_id, attempt, at, status_code, response, error, duration_ms \
             FROM notification_attempts WHERE delivery_id IN ({}) ORDER BY delivery_id, attempt",
            placeholders(1, ids.len())
        );
        let mut query = sqlx::query(&sql);
        for id in ids {
            query = query.bind(id);
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter()
            .map(|row| {
                Ok(AttemptRecord {
                    delivery_id: row.try_get("delivery_id")?,
                    attempt: row.try_get("attempt")?,
                    at: row.try_get("at")?,
                    status_code: row.try_get("status_code")?,
                    response: row.try_get("response")?,
                    error: row.try_get("error")?,
                    duration_ms: row.try_get("duration_ms")?,
                })
            })
            .collect()
    }

    /// Claims up to `limit` due deliveries for `node` until `lease_until`, skipping channels
    /// `busy` says are full. The claim is a conditional UPDATE: of two nodes racing for one
    /// delivery, exactly one changes the row.
    pub async fn claim_deliveries(
        &self,
        node: &str,
        limit: usize,
        lease_until: i64,
        mut busy: impl FnMut(&str) -> bool,
    ) -> DbResult<Vec<(DeliveryRecord, ChannelRecord)>> {
        let now = now_ms();
        let candidates = sqlx::query(
            "SELECT id, channel_id FROM notification_deliveries WHERE status = 'pending' \
             AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until < $1) \
             ORDER BY next_attempt_at, id LIMIT 200",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        let mut claimed = Vec::new();
        for row in &candidates {
            if claimed.len() >= limit {
                break;
            }
            let id: String = row.try_get("id")?;
            let channel_id: String = row.try_get("channel_id")?;
            if busy(&channel_id) {
                continue;
            }
            let done = sqlx::query(
                "UPDATE notification_deliveries SET lease_until = $1, leased_by = $2 \
                 WHERE id = $3 AND status = 'pending' AND (lease_until IS NULL OR lease_until < $4)",
            )
            .bind(lease_until)
            .bind(node)
            .bind(&id)
            .bind(now)
            .execute(self.pool())
            .await?;
            if done.rows_affected() == 1 {
                claimed.push(id);
            }
        }
        let mut out = Vec::new();
        for id in claimed {
            let row = sqlx::query(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM notification_deliveries WHERE id = $1"
            ))
            .bind(&id)
            .fetch_one(self.pool())
            .await?;
            let delivery = delivery_from_row(&row)?;
            match self.channel(&delivery.channel_id).await? {
                Some(channel) => out.push((delivery, channel)),
                None => continue,
            }
        }
        Ok(out)
    }

    /// When the next pending delivery falls due after `now` (Unix ms), if any.
    pub async fn next_delivery_due(&self, now: i64) -> DbResult<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM notification_deliveries \
             WHERE status = 'pending' AND next_attempt_at > $1",
        )
        .bind(now)
        .fetch_one(self.pool())
        .await?)
    }

    /// Deletes finished deliveries (delivered or failed) last changed before `older_than_ms`,
    /// with their attempts; answers how many deliveries went.
    pub async fn prune_deliveries(&self, older_than_ms: i64) -> DbResult<u64> {
        let mut tx = self.begin_write().await?;
        let finished = "SELECT id FROM notification_deliveries \
            WHERE status <> 'pending' AND updated_at < $1";
        sqlx::query(&format!(
            "DELETE FROM notification_attempts WHERE delivery_id IN ({finished})"
        ))
        .bind(older_than_ms)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query(
            "DELETE FROM notification_deliveries WHERE status <> 'pending' AND updated_at < $1",
        )
        .bind(older_than_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Logs one attempt and moves the delivery on, releasing this node's lease.
    pub async fn record_attempt(
        &self,
        node: &str,
        attempt: &AttemptRecord,
        outcome: AttemptOutcome,
    ) -> DbResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO notification_attempts (id, delivery_id, attempt, at, status_code, \
             response, error, duration_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(new_id())
        .bind(&attempt.delivery_id)
        .bind(attempt.attempt)
        .bind(attempt.at)
        .bind(attempt.status_code)
        .bind(attempt.response.as_deref())
        .bind(attempt.error.as_deref())
        .bind(attempt.duration_ms)
        .execute(&mut *tx)
        .await?;
        let now = now_ms();
        let (status, next, delivered_at) = match outcome {
            AttemptOutcome::Delivered => ("delivered", now, Some(now)),
            AttemptOutcome::Retry(at) => ("pending", at, None),
            AttemptOutcome::Failed => ("failed", now, None),
        };
        sqlx::query(
            "UPDATE notification_deliveries SET status = $1, attempts = $2, next_attempt_at = $3, \
             lease_until = NULL, leased_by = NULL, last_error = $4, updated_at = $5, \
             delivered_at = $6 WHERE id = $7 AND leased_by = $8",
        )
        .bind(status)
        .bind(attempt.attempt)
        .bind(next)
        .bind(attempt.error.as_deref())
        .bind(now)
        .bind(delivered_at)
        .bind(&attempt.delivery_id)
        .bind(node)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

fn email_list(list: &[String]) -> Option<String> {
    (!list.is_empty()).then(|| list.join(","))
}
