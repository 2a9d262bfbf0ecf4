//! Storage. One set of portable SQL runs on both backends through sqlx's `Any` driver; the
//! backend is picked by the URL scheme (`sqlite:` is the embedded default, `postgres:` is for
//! production). Ids are UUID text, times are Unix milliseconds, so no type differs between the
//! two. Aggregates are cast explicitly because PostgreSQL returns NUMERIC for SUM/AVG of
//! integers, which `Any` cannot decode.

mod agents;
mod alerts;
mod audit;
mod clients;
mod cluster;
mod commands;
mod enrollment;
mod jobs;
mod metrics;
pub mod notifications;
mod oidc;
mod policies;
mod rate_limits;
mod releases;
mod schedules;
mod scripts;
mod sessions;
mod settings;
mod two_factor;
mod users;

pub use agents::{
    capabilities_column, AgentFilter, AgentRecord, AgentState, AgentStats, AgentStatus, Approval,
    NewAgent,
};
pub use alerts::{AlertCounts, AlertFilter, AlertRecord, NewAlert, OpenKey};
pub use clients::{ClientRecord, SiteRecord};
pub use cluster::PresenceBatch;
pub use commands::{CommandFilter, CommandRecord, NewCommand, OutputPiece, PREVIEW_CHARS};
pub use enrollment::{EnrollVia, Enrolled, TokenRecord, TokenRefusal};
pub use jobs::{JobAgentRecord, JobCounts, JobRecord, NewJob};
pub use metrics::{MetricsPoint, MetricsSummary, WatchdogEventRecord};
pub use oidc::{OidcLogin, SsoIdentity, SsoOutcome, NO_PASSWORD};
pub use policies::{AssignmentRecord, PolicyRecord, PolicyStatusRecord};
pub use releases::{AgentUpdateRecord, ReleaseRecord, VersionCount};
pub use schedules::{ScheduleFields, ScheduleRecord};
pub use scripts::{ScriptRecord, ScriptVersionRecord};
pub use sessions::{NewSession, SessionRecord};
pub use users::{UserChange, UserRecord};

use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions};

pub type DbResult<T> = Result<T, StoreError>;

/// What can go wrong at the database boundary, in the terms a caller acts on. The HTTP layer
/// maps it to a status in one place (`http::error`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A unique value is taken; `field` names the column (e.g. `email`, `site_code`).
    #[error("{field} is already taken")]
    Conflict { field: String },
    /// The database cannot be reached or has no free connection.
    #[error("the database is unavailable: {0}")]
    Unavailable(sqlx::Error),
    #[error(transparent)]
    Other(sqlx::Error),
}

impl StoreError {
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }
}

/// Runs `attempt` until it succeeds or fails for a reason other than the database being
/// unreachable, waiting between tries (200 ms, doubling up to 5 s). A closed pool (the server
/// is stopping) ends it too. For writes that must not be lost to an outage: they wait for the
/// database to come back. Logged once every 10 s at most, however many writes wait.
pub async fn retry_while_unavailable<T, F, Fut>(what: &'static str, mut attempt: F) -> DbResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = DbResult<T>>,
{
    static LAST_WARNED_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let mut pause = std::time::Duration::from_millis(200);
    loop {
        match attempt().await {
            Err(StoreError::Unavailable(e)) if !matches!(e, sqlx::Error::PoolClosed) => {
                let now = now_ms();
                let last = LAST_WARNED_MS.load(std::sync::atomic::Ordering::Relaxed);
                if now - last >= 10_000
                    && LAST_WARNED_MS
                        .compare_exchange(
                            last,
                            now,
                            std::sync::atomic::Ordering::Relaxed,
                            std::sync::atomic::Ordering::Relaxed,
                        )
                        .is_ok()
                {
                    tracing::warn!(error = %e, "database unavailable; {what} wait for it (logged every 10 s)");
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(5));
            }
            other => return other,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict {
                field: conflicting_field(db.as_ref()),
            },
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e),
            // PostgreSQL going down or coming up: class 08 (connection exception) and 57P
            // (shutting down, starting up) say "try again", not "bad request".
            sqlx::Error::Database(db)
                if db
                    .code()
                    .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")) =>
            {
                StoreError::Unavailable(e)
            }
            _ => StoreError::Other(e),
        }
    }
}

/// The column a unique violation is about. SQLite says "UNIQUE constraint failed: users.email";
/// PostgreSQL names the constraint (`users_email_key`, or an index of ours).
fn conflicting_field(db: &dyn sqlx::error::DatabaseError) -> String {
    if let Some(cols) = db.message().strip_prefix("UNIQUE constraint failed: ") {
        let first = cols.split(',').next().unwrap_or(cols).trim();
        return first.rsplit('.').next().unwrap_or(first).to_owned();
    }
    match db.constraint() {
        Some("idx_agents_device") => "device_id".to_owned(),
        Some(name) => {
            let column = name.strip_suffix("_key").unwrap_or(name);
            match db.table() {
                Some(table) => column
                    .strip_prefix(&format!("{table}_"))
                    .unwrap_or(column)
                    .to_owned(),
                None => column.to_owned(),
            }
        }
        None => "value".to_owned(),
    }
}

/// Who made a change: the audit row that commits with it names them.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// The signed-in user; None for the server itself or an agent enrolling.
    pub user_id: Option<&'a str>,
}

impl<'a> Actor<'a> {
    pub fn user(id: &'a str) -> Actor<'a> {
        Actor { user_id: Some(id) }
    }

    pub const SYSTEM: Actor<'static> = Actor { user_id: None };
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

pub fn backend_of(url: &str) -> Option<Backend> {
    if url.starts_with("sqlite:") {
        Some(Backend::Sqlite)
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Some(Backend::Postgres)
    } else {
        None
    }
}

impl Store {
    /// Connects (creating the SQLite file and its folder if missing) without migrating. A
    /// caller waits up to 30 s for a connection (the command-line tools, tests).
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
        Store::connect_with_timeout(url, std::time::Duration::from_secs(30)).await
    }

    /// [`Store::connect`] where a caller waits at most `acquire_timeout` for a connection and
    /// then gets [`StoreError::Unavailable`]: the server, so that a database outage answers
    /// 503 at once instead of hanging requests.
    pub async fn connect_with_timeout(
        url: &str,
        acquire_timeout: std::time::Duration,
    ) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = backend_of(url).ok_or_else(|| {
            anyhow::anyhow!(
                "database URL must start with sqlite: or postgres: (got {})",
                crate::config::redact_url(url)
            )
        })?;
        let url = match backend {
            Backend::Sqlite => prepare_sqlite_url(url)?,
            Backend::Postgres => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)?
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(
                tracing::log::LevelFilter::Warn,
                std::time::Duration::from_secs(1),
            );
        let max = match backend {
            // SQLite serialises writers anyway; a few readers are plenty.
            Backend::Sqlite => 4,
            Backend::Postgres => 16,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(acquire_timeout)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA foreign_keys = ON")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 10000")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA synchronous = NORMAL")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot open database {}: {e}",
                    crate::config::redact_url(&url)
                )
            })?;
        Ok(Store { pool, backend })
    }

    /// A transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads first and writes later fails with
    /// "database is locked" when another writer went first, which busy_timeout cannot wait out.
    pub async fn begin_write(&self) -> DbResult<sqlx::Transaction<'static, sqlx::Any>> {
        let statement = match self.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        Ok(self.pool.begin_with(statement).await?)
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// Migrations this build has that the database has not applied (successfully): empty when
    /// the schema is current. An error when the database cannot be asked.
    pub async fn missing_migrations(&self) -> DbResult<Vec<i64>> {
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = $1")
                .bind(true)
                .fetch_all(&self.pool)
                .await?;
        Ok(MIGRATOR
            .iter()
            .map(|m| m.version)
            .filter(|v| !applied.contains(v))
            .collect())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Deletes the row with this id together with its audit row (`<kind>.delete`); NotFound
    /// when there is no such row. `kind` names one of our tables (`kind` + "s"), never user
    /// input.
    async fn audited_delete(&self, kind: &'static str, id: &str, by: Actor<'_>) -> DbResult<()> {
        let mut tx = self.begin_write().await?;
        if let Some(scope_kind) = crate::scope::ScopeKind::parse(kind) {
            crate::scope::forget_target(&mut tx, scope_kind, id).await?;
        }
        let done = sqlx::query(&format!("DELETE FROM {kind}s WHERE id = $1"))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(kind));
        }
        audit::record(&mut tx, by, &format!("{kind}.delete"), kind, Some(id), None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets name and notes of a client or site with its audit row (`<kind>.update`); NotFound
    /// when the row does not exist.
    async fn audited_rename(
        &self,
        kind: &'static str,
        id: &str,
        name: &str,
        notes: Option<&str>,
        by: Actor<'_>,
    ) -> DbResult<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(&format!(
            "UPDATE {kind}s SET name = $1, notes = $2, updated_at = $3 WHERE id = $4"
        ))
        .bind(name)
        .bind(notes)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(kind));
        }
        audit::record(
            &mut tx,
            by,
            &format!("{kind}.update"),
            kind,
            Some(id),
            Some(name),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A `sqlite:` URL's file path and query.
fn split_sqlite_url(url: &str) -> (&str, Option<&str>) {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    }
}

/// The database file of a `sqlite:` URL; None for another backend or an in-memory database.
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    if backend_of(url) != Some(Backend::Sqlite) {
        return None;
    }
    let (path, query) = split_sqlite_url(url);
    let in_memory = query.is_some_and(|q| q.contains("mode=memory"));
    (path != ":memory:" && !path.is_empty() && !in_memory).then(|| path.into())
}

fn prepare_sqlite_url(url: &str) -> anyhow::Result<String> {
    let (path, query) = split_sqlite_url(url);
    if sqlite_file(url).is_some() {
        if let Some(parent) = std::path::Path::new(path).parent() {
            if !parent.as_os_str().is_empty() && !parent.exists() {
                crate::private_files::private_dir(parent)?;
            }
        }
        crate::private_files::secure_sqlite_files(std::path::Path::new(path))?;
    }
    Ok(match query {
        Some(q) => format!("sqlite://{path}?{q}"),
        None => format!("sqlite://{path}?mode=rwc"),
    })
}

/// A nullable float to bind as text, read in SQL as `CAST($n AS DOUBLE PRECISION)`.
/// sqlx 0.8's Any driver sends a NULL f64 as a 4-byte float; PostgreSQL then keeps that type
/// for the connection's cached statement and refuses every later real value in it (22P03).
/// Text has no such trap, and both databases read the exponent notation exactly.
fn nullable_float(v: Option<f64>) -> Option<String> {
    v.filter(|v| v.is_finite()).map(|v| format!("{v:e}"))
}

/// `$first, $first+1, ...`: `n` placeholders, for `IN (...)` lists of any length.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($1, $2), ($3, $4), ...`: `rows` tuples of `columns` placeholders, for multi-row
/// `VALUES`.
fn value_rows(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", placeholders(r * columns + 1, columns)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A text column holding one of a closed set of names, parsed at the row boundary.
fn parse_column<T>(row: &sqlx::any::AnyRow, column: &str) -> DbResult<T>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    use sqlx::Row;
    let text: String = row.try_get(column)?;
    text.parse().map_err(|e: T::Err| {
        StoreError::Other(sqlx::Error::ColumnDecode {
            index: column.to_owned(),
            source: e.to_string().into(),
        })
    })
}

/// Serializers that present stored millisecond times as RFC 3339 strings in the API.
pub mod rfc3339 {
    use serde::Serializer;

    pub fn format(ms: i64) -> String {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }

    pub fn serialize<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*ms))
    }

    pub mod option {
        use serde::Serializer;

        pub fn serialize<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
            match ms {
                Some(ms) => s.serialize_str(&super::format(*ms)),
                None => s.serialize_none(),
            }
        }
    }
}
