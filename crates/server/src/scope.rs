//! Where a policy, an alert rule or a maintenance window applies: the whole fleet, one client,
//! one site or one agent. When several apply to an agent, the more specific wins (agent over
//! site over client over fleet). Stored as two columns, `scope_kind` and `scope_id` (NULL for
//! the fleet), so any table can hold a scope and be filtered by one in SQL.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use crate::db::{DbResult, Store, StoreError};

/// The kinds of scope, least specific first: the derived order is the precedence.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ScopeKind {
    Fleet,
    Client,
    Site,
    Agent,
}

impl ScopeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeKind::Fleet => "fleet",
            ScopeKind::Client => "client",
            ScopeKind::Site => "site",
            ScopeKind::Agent => "agent",
        }
    }

    pub fn parse(s: &str) -> Option<ScopeKind> {
        Some(match s {
            "fleet" => ScopeKind::Fleet,
            "client" => ScopeKind::Client,
            "site" => ScopeKind::Site,
            "agent" => ScopeKind::Agent,
            _ => return None,
        })
    }
}

/// A scope as the API takes and gives it: `{"kind": "site", "id": "<site id>"}`, or
/// `{"kind": "fleet"}` for everyone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub struct Scope {
    pub kind: ScopeKind,
    /// The client, site or agent id; absent for the fleet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

impl Scope {
    pub fn fleet() -> Scope {
        Scope {
            kind: ScopeKind::Fleet,
            id: None,
        }
    }

    /// Checks the shape (an id exactly when the kind needs one). Whether the target exists is
    /// `Store::scope_target_exists`.
    pub fn check(&self) -> Result<(), String> {
        match (self.kind, self.id.as_deref()) {
            (ScopeKind::Fleet, None) => Ok(()),
            (ScopeKind::Fleet, Some(_)) => Err("scope.id: must be absent for the fleet".into()),
            (_, None) | (_, Some("")) => Err(format!(
                "scope.id: required for a {} scope",
                self.kind.as_str()
            )),
            (_, Some(_)) => Ok(()),
        }
    }

    /// Rebuilds a scope from its two stored columns.
    pub fn from_columns(kind: &str, id: Option<String>) -> DbResult<Scope> {
        let kind = ScopeKind::parse(kind).ok_or_else(|| {
            StoreError::Other(sqlx::Error::Decode(
                format!("unknown scope kind {kind:?}").into(),
            ))
        })?;
        Ok(Scope { kind, id })
    }
}

/// Where one agent sits: what a scope is matched against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub agent_id: String,
    pub site_id: Option<String>,
    pub client_id: Option<String>,
}

impl Placement {
    /// Whether `scope` covers this agent.
    pub fn covers(&self, scope: &Scope) -> bool {
        let id = scope.id.as_deref();
        match scope.kind {
            ScopeKind::Fleet => true,
            ScopeKind::Client => id.is_some() && self.client_id.as_deref() == id,
            ScopeKind::Site => id.is_some() && self.site_id.as_deref() == id,
            ScopeKind::Agent => id == Some(self.agent_id.as_str()),
        }
    }
}

const PLACEMENT_SELECT: &str = "SELECT a.id AS agent_id, a.site_id, s.client_id \
    FROM agents a LEFT JOIN sites s ON s.id = a.site_id";

fn placement_from_row(row: &sqlx::any::AnyRow) -> DbResult<Placement> {
    Ok(Placement {
        agent_id: row.try_get("agent_id")?,
        site_id: row.try_get("site_id")?,
        client_id: row.try_get("client_id")?,
    })
}

impl Store {
    /// Where one agent sits, or `None` for an unknown agent.
    pub async fn agent_placement(&self, agent_id: &str) -> DbResult<Option<Placement>> {
        let row = sqlx::query(&format!("{PLACEMENT_SELECT} WHERE a.id = $1"))
            .bind(agent_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(placement_from_row).transpose()
    }

    /// Where every agent sits (for evaluators that keep the fleet's placement in memory).
    pub async fn placements(&self) -> DbResult<Vec<Placement>> {
        let rows = sqlx::query(PLACEMENT_SELECT).fetch_all(self.pool()).await?;
        rows.iter().map(placement_from_row).collect()
    }

    /// Whether the client, site or agent a scope names exists (the fleet always does).
    pub async fn scope_target_exists(&self, scope: &Scope) -> DbResult<bool> {
        let table = match scope.kind {
            ScopeKind::Fleet => return Ok(true),
            ScopeKind::Client => "clients",
            ScopeKind::Site => "sites",
            ScopeKind::Agent => "agents",
        };
        let Some(id) = scope.id.as_deref() else {
            return Ok(false);
        };
        let row = sqlx::query(&format!("SELECT 1 AS found FROM {table} WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.is_some())
    }
}

/// Tables whose rows name a scope and mean nothing without its target: a policy assignment, a
/// maintenance window, a notification route. (Alert rules stay: they are kept with their
/// history and show the missing target.)
const BOUND_TO_TARGET: [&str; 3] = [
    "policy_assignments",
    "maintenance_windows",
    "notification_routes",
];

/// Removes the rows bound to a client, site or agent that is being deleted (for a client, also
/// those bound to its sites, which go with it), inside the deleting transaction.
pub async fn forget_target(
    conn: &mut sqlx::AnyConnection,
    kind: ScopeKind,
    id: &str,
) -> DbResult<()> {
    for table in BOUND_TO_TARGET {
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE scope_kind = $1 AND scope_id = $2"
        ))
        .bind(kind.as_str())
        .bind(id)
        .execute(&mut *conn)
        .await?;
        if kind == ScopeKind::Client {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE scope_kind = 'site' \
                 AND scope_id IN (SELECT id FROM sites WHERE client_id = $1)"
            ))
            .bind(id)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed() -> Placement {
        Placement {
            agent_id: "a1".into(),
            site_id: Some("s1".into()),
            client_id: Some("c1".into()),
        }
    }

    fn scope(kind: ScopeKind, id: Option<&str>) -> Scope {
        Scope {
            kind,
            id: id.map(str::to_string),
        }
    }

    #[test]
    fn covers_by_kind_and_id() {
        let p = placed();
        assert!(p.covers(&Scope::fleet()));
        assert!(p.covers(&scope(ScopeKind::Client, Some("c1"))));
        assert!(!p.covers(&scope(ScopeKind::Client, Some("c2"))));
        assert!(p.covers(&scope(ScopeKind::Site, Some("s1"))));
        assert!(!p.covers(&scope(ScopeKind::Site, Some("s2"))));
        assert!(p.covers(&scope(ScopeKind::Agent, Some("a1"))));
        assert!(!p.covers(&scope(ScopeKind::Agent, Some("a2"))));
        // An agent without a site is covered by the fleet and by itself only.
        let loose = Placement {
            site_id: None,
            client_id: None,
            ..placed()
        };
        assert!(!loose.covers(&scope(ScopeKind::Client, None)));
        assert!(!loose.covers(&scope(ScopeKind::Site, None)));
    }

    #[test]
    fn precedence_follows_specificity() {
        assert!(ScopeKind::Agent > ScopeKind::Site);
        assert!(ScopeKind::Site > ScopeKind::Client);
        assert!(ScopeKind::Client > ScopeKind::Fleet);
    }

    #[test]
    fn shape_is_checked() {
        assert!(Scope::fleet().check().is_ok());
        assert!(scope(ScopeKind::Fleet, Some("x")).check().is_err());
        assert!(scope(ScopeKind::Site, None).check().is_err());
        assert!(scope(ScopeKind::Site, Some("")).check().is_err());
        assert!(scope(ScopeKind::Agent, Some("a")).check().is_ok());
    }
}
