use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::{audit, new_id, now_ms, Actor, DbResult, Store};

/// An agent as the API shows it. `online` is not stored: it is filled from the live socket
/// registry, so it is true exactly while the agent's connection is.
#[derive(Debug, Clone, Serialize)]
pub struct AgentRecord {
    pub id: String,
    pub site_id: Option<String>,
    pub site_name: Option<String>,
    pub client_id: Option<String>,
    pub client_name: Option<String>,
    pub hostname: String,
    pub device_id: Option<String>,
    pub os_type: Option<String>,
    pub os_version: Option<String>,
    pub arch: Option<String>,
    pub version: Option<String>,
    pub online: bool,
    pub status: AgentStatus,
    pub approval: Approval,
    /// A pending record: the agent whose device id it enrolled with.
    pub claims_agent_id: Option<String>,
    #[serde(with = "super::rfc3339::option")]
    pub last_seen: Option<i64>,
    #[serde(with = "super::rfc3339")]
    pub created_at: i64,
    /// The server node holding the agent's socket, as that node last wrote it.
    #[serde(skip)]
    pub connected_node: Option<String>,
    /// When a legacy (polling) agent last polled any node.
    #[serde(skip)]
    pub legacy_poll_at: Option<i64>,
    /// The highest severity among the agent's unresolved alerts.
    pub alert_severity: Option<crate::alerting::Severity>,
    /// What the agent said it can do in its last `auth` (`gururmm_protocol::capability`).
    pub capabilities: Vec<String>,
}

/// Whether the agent's connection (or legacy polling) is live.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    Online,
    Offline,
}

/// Whether a technician admitted the agent. A pending record gets no commands; approving it
/// gives it the place of the agent it claims to be (if any).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Approval {
    Approved,
    Pending,
}

impl Approval {
    pub fn as_str(self) -> &'static str {
        match self {
            Approval::Approved => "approved",
            Approval::Pending => "pending",
        }
    }

    pub(super) fn parse(s: &str) -> Approval {
        // Anything but `approved` is treated as not admitted.
        if s == "approved" {
            Approval::Approved
        } else {
            Approval::Pending
        }
    }
}

impl AgentRecord {
    pub fn set_online(&mut self, online: bool) {
        self.online = online;
        self.status = if online {
            AgentStatus::Online
        } else {
            AgentStatus::Offline
        };
    }
}

pub struct NewAgent<'a> {
    pub site_id: Option<&'a str>,
    pub hostname: &'a str,
    pub device_id: Option<&'a str>,
    pub os_type: Option<&'a str>,
    pub os_version: Option<&'a str>,
    pub arch: Option<&'a str>,
    pub version: Option<&'a str>,
    pub api_key_hash: &'a str,
    /// Known capability names, comma-separated (see [`capabilities_column`]).
    pub capabilities: Option<&'a str>,
}

/// The capabilities column for what an agent listed: only names this server knows, sorted,
/// comma-separated, so hostile input stores nothing of its own.
pub fn capabilities_column(listed: &[String]) -> String {
    use gururmm_protocol::capability::{CLAUDE_TASK, LIVE_OUTPUT};
    let mut known: Vec<&str> = [LIVE_OUTPUT, CLAUDE_TASK]
        .into_iter()
        .filter(|k| listed.iter().any(|l| l == k))
        .collect();
    known.sort_unstable();
    known.join(",")
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentState {
    pub agent_id: String,
    pub network: Option<serde_json::Value>,
    pub metrics: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentStats {
    pub total: i64,
    pub online: i64,
    pub offline: i64,
    pub unassigned: i64,
    pub by_os: std::collections::BTreeMap<String, i64>,
    pub by_version: std::collections::BTreeMap<String, i64>,
}

pub(super) const AGENT_SELECT: &str =
    "SELECT a.id, a.site_id, s.name AS site_name, s.client_id, c.name AS client_name, \
    a.hostname, a.device_id, a.os_type, a.os_version, a.arch, a.version, a.last_seen, a.created_at, \
    a.approval, a.claims_agent_id, a.connected_node, a.legacy_poll_at, a.capabilities, \
    (SELECT CAST(MAX(CASE al.severity WHEN 'critical' THEN 3 WHEN 'warning' THEN 2 ELSE 1 END) AS BIGINT) \
     FROM alerts al WHERE al.agent_id = a.id AND al.status <> 'resolved') AS alert_rank \
    FROM agents a LEFT JOIN sites s ON s.id = a.site_id LEFT JOIN clients c ON c.id = s.client_id";

pub(super) fn from_row(row: &sqlx::any::AnyRow) -> DbResult<AgentRecord> {
    Ok(AgentRecord {
        id: row.try_get("id")?,
        site_id: row.try_get("site_id")?,
        site_name: row.try_get("site_name")?,
        client_id: row.try_get("client_id")?,
        client_name: row.try_get("client_name")?,
        hostname: row.try_get("hostname")?,
        device_id: row.try_get("device_id")?,
        os_type: row.try_get("os_type")?,
        os_version: row.try_get("os_version")?,
        arch: row.try_get("arch")?,
        version: row.try_get("version")?,
        online: false,
        status: AgentStatus::Offline,
        approval: Approval::parse(&row.try_get::<String, _>("approval")?),
        claims_agent_id: row.try_get("claims_agent_id")?,
        last_seen: row.try_get("last_seen")?,
        created_at: row.try_get("created_at")?,
        connected_node: row.try_get("connected_node")?,
        legacy_poll_at: row.try_get("legacy_poll_at")?,
        alert_severity: match row.try_get::<Option<i64>, _>("alert_rank")? {
            Some(3) => Some(crate::alerting::Severity::Critical),
            Some(2) => Some(crate::alerting::Severity::Warning),
            Some(_) => Some(crate::alerting::Severity::Info),
            None => None,
        },
        capabilities: row
            .try_get::<Option<String>, _>("capabilities")?
            .unwrap_or_default()
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

pub(super) async fn insert_agent(conn: &mut AnyConnection, a: &NewAgent<'_>) -> DbResult<String> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO agents (id, site_id, device_id, hostname, os_type, os_version, arch, version, api_key_hash, created_at, capabilities) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&id)
    .bind(a.site_id)
    .bind(a.device_id)
    .bind(a.hostname)
    .bind(a.os_type)
    .bind(a.os_version)
    .bind(a.arch)
    .bind(a.version)
    .bind(a.api_key_hash)
    .bind(now_ms())
    .bind(a.capabilities)
    .execute(conn)
    .await?;
    Ok(id)
}

/// What the agent says about itself (device, hostname, OS, version), and that it was seen.
pub(super) async fn update_identity(
    conn: &mut AnyConnection,
    id: &str,
    a: &NewAgent<'_>,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE agents SET device_id = $1, hostname = $2, os_type = $3, os_version = $4, arch = $5, version = $6, last_seen = $7, \
         capabilities = $8 WHERE id = $9",
    )
    .bind(a.device_id)
    .bind(a.hostname)
    .bind(a.os_type)
    .bind(a.os_version)
    .bind(a.arch)
    .bind(a.version)
    .bind(now_ms())
    .bind(a.capabilities)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Which agents a list returns.
#[derive(Debug, Default, Clone)]
pub struct AgentFilter<'a> {
    pub client_id: Option<&'a str>,
    pub site_id: Option<&'a str>,
    /// Case-insensitive substring of the hostname.
    pub search: Option<&'a str>,
    pub unassigned_only: bool,
    pub approval: Option<Approval>,
}

impl Store {
    /// Inserts an agent with no audit row (tests, and the paths below that audit themselves).
    pub async fn insert_agent(&self, a: NewAgent<'_>) -> DbResult<String> {
        let mut conn = self.pool.acquire().await?;
        insert_agent(&mut conn, &a).await
    }

    /// A technician registers an agent by hand (`agent.register`).
    pub async fn register_agent(&self, a: NewAgent<'_>, by: Actor<'_>) -> DbResult<String> {
        let mut tx = self.begin_write().await?;
        let id = insert_agent(&mut tx, &a).await?;
        audit::record(
            &mut tx,
            by,
            "agent.register",
            "agent",
            Some(&id),
            Some(a.hostname),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn agent(&self, id: &str) -> DbResult<Option<AgentRecord>> {
        let row = sqlx::query(&format!("{AGENT_SELECT} WHERE a.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn list_agents(&self, filter: &AgentFilter<'_>) -> DbResult<Vec<AgentRecord>> {
        let mut sql = format!("{AGENT_SELECT} WHERE 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        if let Some(cid) = filter.client_id {
            binds.push(cid.to_owned());
            sql.push_str(&format!(" AND s.client_id = ${}", binds.len()));
        }
        if let Some(sid) = filter.site_id {
            binds.push(sid.to_owned());
            sql.push_str(&format!(" AND a.site_id = ${}", binds.len()));
        }
        if let Some(search) = filter.search.filter(|s| !s.is_empty()) {
            binds.push(format!("%{}%", search.to_lowercase()));
            sql.push_str(&format!(" AND LOWER(a.hostname) LIKE ${}", binds.len()));
        }
        if filter.unassigned_only {
            sql.push_str(" AND a.site_id IS NULL");
        }
        if let Some(approval) = filter.approval {
            binds.push(approval.as_str().to_owned());
            sql.push_str(&format!(" AND a.approval = ${}", binds.len()));
        }
        sql.push_str(" ORDER BY a.hostname, a.id");
        let mut query = sqlx::query(&sql);
        for b in &binds {
            query = query.bind(b);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn agent_id_by_key_hash(&self, hash: &str) -> DbResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM agents WHERE api_key_hash = $1")
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The agent holding this key (hash), read in one statement: a fleet reconnecting at once
    /// costs one read per agent.
    pub async fn agent_by_key_hash(&self, hash: &str) -> DbResult<Option<AgentRecord>> {
        let row = sqlx::query(&format!("{AGENT_SELECT} WHERE a.api_key_hash = $1"))
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Records what an agent said about itself when it authenticated with its key.
    pub async fn update_agent_identity(&self, id: &str, a: &NewAgent<'_>) -> DbResult<()> {
        let mut conn = self.pool.acquire().await?;
        update_identity(&mut conn, id, a).await
    }

    /// Moves an agent to a site (None: unassigned) with its audit row; NotFound when there is
    /// no such agent.
    pub async fn move_agent(&self, id: &str, site_id: Option<&str>, by: Actor<'_>) -> DbResult<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("UPDATE agents SET site_id = $1 WHERE id = $2")
            .bind(site_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(super::StoreError::NotFound("agent"));
        }
        audit::record(&mut tx, by, "agent.move", "agent", Some(id), site_id).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_agent(&self, id: &str, by: Actor<'_>) -> DbResult<()> {
        self.audited_delete("agent", id, by).await
    }

    /// Counts per OS and version of approved agents (records waiting for approval are not in
    /// the fleet yet); online figures are added by the caller from the hub.
    pub async fn agent_counts(&self) -> DbResult<AgentStats> {
        let mut stats = AgentStats {
            total: 0,
            online: 0,
            offline: 0,
            unassigned: 0,
            by_os: Default::default(),
            by_version: Default::default(),
        };
        let rows = sqlx::query("SELECT COALESCE(os_type, 'unknown') AS k, COUNT(*) AS n FROM agents WHERE approval = 'approved' GROUP BY COALESCE(os_type, 'unknown')")
            .fetch_all(&self.pool)
            .await?;
        for row in rows {
            let n: i64 = row.try_get("n")?;
            stats.total += n;
            stats.by_os.insert(row.try_get("k")?, n);
        }
        let rows = sqlx::query("SELECT COALESCE(version, 'unknown') AS k, COUNT(*) AS n FROM agents WHERE approval = 'approved' GROUP BY COALESCE(version, 'unknown')")
            .fetch_all(&self.pool)
            .await?;
        for row in rows {
            stats
                .by_version
                .insert(row.try_get("k")?, row.try_get("n")?);
        }
        stats.unassigned = sqlx::query_scalar(
            "SELECT COUNT(*) FROM agents WHERE site_id IS NULL AND approval = 'approved'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(stats)
    }

    /// Stores the network state if its hash differs from the stored one; returns whether it did.
    pub async fn store_network_state(
        &self,
        agent_id: &str,
        hash: &str,
        json: &str,
    ) -> DbResult<bool> {
        let current: Option<Option<String>> =
            sqlx::query_scalar("SELECT network_hash FROM agent_state WHERE agent_id = $1")
                .bind(agent_id)
                .fetch_optional(&self.pool)
                .await?;
        if current.flatten().as_deref() == Some(hash) {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO agent_state (agent_id, network_hash, network_json, network_updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (agent_id) DO UPDATE SET network_hash = $2, network_json = $3, network_updated_at = $4",
        )
        .bind(agent_id)
        .bind(hash)
        .bind(json)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(true)
    }

    pub async fn agent_state(&self, agent_id: &str) -> DbResult<AgentState> {
        let row = sqlx::query(
            "SELECT network_hash, network_json, network_updated_at, metrics_json FROM agent_state WHERE agent_id = $1",
        )
        .bind(agent_id)
        .fetch_optional(&self.pool)
        .await?;
        let mut state = AgentState {
            agent_id: agent_id.to_owned(),
            network: None,
            metrics: None,
        };
        if let Some(row) = row {
            let network: Option<String> = row.try_get("network_json")?;
            if let Some(json) = network {
                let mut v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
                let updated: Option<i64> = row.try_get("network_updated_at")?;
                if let (Some(obj), Some(ts)) = (v.as_object_mut(), updated) {
                    obj.insert("updated_at".into(), super::rfc3339::format(ts).into());
                }
                state.network = Some(v);
            }
            let metrics: Option<String> = row.try_get("metrics_json")?;
            state.metrics = metrics.and_then(|m| serde_json::from_str(&m).ok());
        }
        Ok(state)
    }
}
