//! Enrollment that proves identity: a site code or an enrollment token admits a machine, but
//! never takes over an agent. A device id that already belongs to an agent (or any new device
//! at a site that requires approval) gets a new record, `pending`, until a technician approves
//! it (it then takes the claimed agent's place) or rejects it (it is removed).

use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::agents::{insert_agent, update_identity, Approval};
use super::{audit, new_id, now_ms, Actor, DbResult, NewAgent, Store, StoreError};

/// What an enrollment made.
#[derive(Debug, Clone)]
pub struct Enrolled {
    pub agent_id: String,
    pub approval: Approval,
    pub claims_agent_id: Option<String>,
}

/// How the machine proved it may enroll: a site code, or an enrollment token (by id).
#[derive(Debug, Clone, Copy)]
pub enum EnrollVia<'a> {
    SiteCode,
    Token(&'a str),
}

/// An enrollment token as stored (the secret itself is never stored, only its hash).
#[derive(Debug, Clone, Serialize)]
pub struct TokenRecord {
    pub id: String,
    pub site_id: Option<String>,
    pub hint: String,
    pub expires_at: Option<i64>,
    pub max_uses: i64,
    pub uses: i64,
    pub revoked_at: Option<i64>,
    pub created_by: Option<String>,
    pub created_at: i64,
}

/// Why a token cannot enroll a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRefusal {
    Revoked,
    Expired,
    UsedUp,
}

impl TokenRecord {
    /// Ok when the token can admit one more machine at `now`.
    pub fn usable(&self, now: i64) -> Result<(), TokenRefusal> {
        if self.revoked_at.is_some() {
            Err(TokenRefusal::Revoked)
        } else if self.expires_at.is_some_and(|t| t <= now) {
            Err(TokenRefusal::Expired)
        } else if self.uses >= self.max_uses {
            Err(TokenRefusal::UsedUp)
        } else {
            Ok(())
        }
    }
}

const TOKEN_SELECT: &str = "SELECT id, site_id, hint, expires_at, max_uses, uses, revoked_at, \
    created_by, created_at FROM registration_tokens";

fn token_from_row(row: &sqlx::any::AnyRow) -> DbResult<TokenRecord> {
    Ok(TokenRecord {
        id: row.try_get("id")?,
        site_id: row.try_get("site_id")?,
        hint: row.try_get("hint")?,
        expires_at: row.try_get("expires_at")?,
        max_uses: row.try_get("max_uses")?,
        uses: row.try_get("uses")?,
        revoked_at: row.try_get("revoked_at")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
    })
}

/// The approved agent that holds this device id, if any.
async fn approved_with_device(
    conn: &mut AnyConnection,
    device_id: Option<&str>,
) -> DbResult<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT id FROM agents WHERE device_id = $1 AND approval = 'approved'")
            .bind(device_id)
            .fetch_optional(conn)
            .await?,
    )
}

impl Store {
    /// Enrollment, in one transaction with its audit row (and the token's use, if by token).
    /// A device id that belongs to an approved agent makes a pending record claiming it; a new
    /// device is a new agent, pending when `require_approval`. `a.site_id` is set.
    pub async fn enroll_agent(
        &self,
        a: NewAgent<'_>,
        require_approval: bool,
        via: EnrollVia<'_>,
    ) -> DbResult<Enrolled> {
        let mut tx = self.begin_write().await?;
        if let EnrollVia::Token(token_id) = via {
            // Conditional, so concurrent enrollments cannot use a token beyond its uses.
            let used = sqlx::query(
                "UPDATE registration_tokens SET uses = uses + 1 WHERE id = $1 AND uses < max_uses \
                 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
            )
            .bind(token_id)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
            if used.rows_affected() == 0 {
                return Err(StoreError::Conflict {
                    field: "enrollment token".into(),
                });
            }
        }
        let claims = approved_with_device(&mut tx, a.device_id).await?;
        let approval = if claims.is_some() || require_approval {
            Approval::Pending
        } else {
            Approval::Approved
        };
        let id = if approval == Approval::Pending {
            // Inserted pending at once: an approved row would clash on the device id.
            let id = new_id();
            sqlx::query(
                "INSERT INTO agents (id, site_id, device_id, hostname, os_type, os_version, arch, version, api_key_hash, created_at, approval, claims_agent_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', $11)",
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
            .bind(claims.as_deref())
            .execute(&mut *tx)
            .await?;
            id
        } else {
            insert_agent(&mut tx, &a).await?
        };
        let how = match via {
            EnrollVia::SiteCode => "site code".to_owned(),
            EnrollVia::Token(t) => format!("token {t}"),
        };
        let details = match (&claims, approval) {
            (Some(old), _) => format!(
                "by {how}, site {}; claims agent {old}",
                a.site_id.unwrap_or("-")
            ),
            (None, _) => format!("by {how}, site {}", a.site_id.unwrap_or("-")),
        };
        let action = match approval {
            Approval::Approved => "agent.enroll",
            Approval::Pending => "agent.enroll_pending",
        };
        audit::record(
            &mut tx,
            Actor::SYSTEM,
            action,
            "agent",
            Some(&id),
            Some(&details),
        )
        .await?;
        tx.commit().await?;
        Ok(Enrolled {
            agent_id: id,
            approval,
            claims_agent_id: claims,
        })
    }

    /// A refused enrollment (`agent.enroll_failed`); `details` never holds the code in full.
    pub async fn audit_failed_enrollment(&self, details: &str) -> DbResult<()> {
        let mut conn = self.pool.acquire().await?;
        audit::record(
            &mut conn,
            Actor::SYSTEM,
            "agent.enroll_failed",
            "enrollment",
            None,
            Some(details),
        )
        .await
    }

    /// Approves a pending record, in one transaction with its audit row. When it claims an
    /// agent that still exists, that agent takes the record's key, device, hostname, OS and
    /// site (its history stays), and the record is deleted: the old key dies and the new one
    /// authenticates as the old id. Otherwise the record itself becomes approved. Returns the
    /// id of the approved agent. NotFound: no pending record with this id.
    pub async fn approve_agent(&self, id: &str, by: Actor<'_>) -> DbResult<String> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "SELECT site_id, device_id, hostname, os_type, os_version, arch, version, api_key_hash, claims_agent_id, capabilities \
             FROM agents WHERE id = $1 AND approval = 'pending'",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound("pending agent"))?;
        let claims: Option<String> = row.try_get("claims_agent_id")?;
        let claimed = match claims {
            Some(old) => {
                sqlx::query_scalar::<_, String>("SELECT id FROM agents WHERE id = $1")
                    .bind(&old)
                    .fetch_optional(&mut *tx)
                    .await?
            }
            None => None,
        };
        let approved = match claimed {
            Some(old) => {
                let site_id: Option<String> = row.try_get("site_id")?;
                let key: Option<String> = row.try_get("api_key_hash")?;
                let text = |c: &str| row.try_get::<Option<String>, _>(c);
                let (device, os_type, os_version, arch, version) = (
                    text("device_id")?,
                    text("os_type")?,
                    text("os_version")?,
                    text("arch")?,
                    text("version")?,
                );
                let hostname: String = row.try_get("hostname")?;
                let capabilities = text("capabilities")?;
                // The record goes first: its key and device id move to the old agent.
                sqlx::query("DELETE FROM agents WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE agents SET api_key_hash = $1, site_id = $2 WHERE id = $3")
                    .bind(key)
                    .bind(site_id)
                    .bind(&old)
                    .execute(&mut *tx)
                    .await?;
                let identity = NewAgent {
                    site_id: None,
                    hostname: &hostname,
                    device_id: device.as_deref(),
                    os_type: os_type.as_deref(),
                    os_version: os_version.as_deref(),
                    arch: arch.as_deref(),
                    version: version.as_deref(),
                    api_key_hash: "",
                    capabilities: capabilities.as_deref(),
                };
                update_identity(&mut tx, &old, &identity).await?;
                audit::record(
                    &mut tx,
                    by,
                    "agent.approve",
                    "agent",
                    Some(&old),
                    Some(&format!(
                        "pending record {id} took this agent's place; the old key no longer works"
                    )),
                )
                .await?;
                old
            }
            None => {
                sqlx::query(
                    "UPDATE agents SET approval = 'approved', claims_agent_id = NULL WHERE id = $1",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?;
                audit::record(&mut tx, by, "agent.approve", "agent", Some(id), None).await?;
                id.to_owned()
            }
        };
        tx.commit().await?;
        Ok(approved)
    }

    /// Removes a pending record (its key dies with it), with its audit row.
    pub async fn reject_agent(&self, id: &str, by: Actor<'_>) -> DbResult<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM agents WHERE id = $1 AND approval = 'pending'")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("pending agent"));
        }
        audit::record(&mut tx, by, "agent.reject", "agent", Some(id), None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether every new machine at the site waits for approval, with its audit row.
    pub async fn set_site_require_approval(
        &self,
        id: &str,
        require: bool,
        by: Actor<'_>,
    ) -> DbResult<()> {
        let mut tx = self.begin_write().await?;
        let done =
            sqlx::query("UPDATE sites SET require_approval = $1, updated_at = $2 WHERE id = $3")
                .bind(i64::from(require))
                .bind(now_ms())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("site"));
        }
        let details = if require { "on" } else { "off" };
        audit::record(
            &mut tx,
            by,
            "site.require_approval",
            "site",
            Some(id),
            Some(details),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores a new token (its hash) for a site, with its audit row.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_token(
        &self,
        site_id: &str,
        token_hash: &str,
        hint: &str,
        expires_at: i64,
        max_uses: i64,
        by: Actor<'_>,
    ) -> DbResult<TokenRecord> {
        let id = new_id();
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO registration_tokens (id, token_hash, site_id, expires_at, created_by, created_at, max_uses, uses, hint) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8)",
        )
        .bind(&id)
        .bind(token_hash)
        .bind(site_id)
        .bind(expires_at)
        .bind(by.user_id)
        .bind(now)
        .bind(max_uses)
        .bind(hint)
        .execute(&mut *tx)
        .await?;
        audit::record(
            &mut tx,
            by,
            "token.create",
            "site",
            Some(site_id),
            Some(&id),
        )
        .await?;
        tx.commit().await?;
        Ok(TokenRecord {
            id,
            site_id: Some(site_id.to_owned()),
            hint: hint.to_owned(),
            expires_at: Some(expires_at),
            max_uses,
            uses: 0,
            revoked_at: None,
            created_by: by.user_id.map(str::to_owned),
            created_at: now,
        })
    }

    pub async fn site_tokens(&self, site_id: &str) -> DbResult<Vec<TokenRecord>> {
        let rows = sqlx::query(&format!(
            "{TOKEN_SELECT} WHERE site_id = $1 ORDER BY created_at DESC, id"
        ))
        .bind(site_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    pub async fn token_by_hash(&self, hash: &str) -> DbResult<Option<TokenRecord>> {
        let row = sqlx::query(&format!("{TOKEN_SELECT} WHERE token_hash = $1"))
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// Revokes a site's token (kept in the list, marked revoked), with its audit row.
    pub async fn revoke_token(&self, site_id: &str, id: &str, by: Actor<'_>) -> DbResult<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE registration_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 AND site_id = $3",
        )
        .bind(now_ms())
        .bind(id)
        .bind(site_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("token"));
        }
        audit::record(&mut tx, by, "token.revoke", "site", Some(site_id), Some(id)).await?;
        tx.commit().await?;
        Ok(())
    }
}
