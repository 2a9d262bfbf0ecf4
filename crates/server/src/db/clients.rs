use serde::Serialize;
use sqlx::Row;

use super::{audit, new_id, now_ms, Actor, DbResult, Store, StoreError};

#[derive(Debug, Clone, Serialize)]
pub struct ClientRecord {
    pub id: String,
    pub name: String,
    pub notes: Option<String>,
    #[serde(with = "super::rfc3339")]
    pub created_at: i64,
    pub site_count: i64,
    pub agent_count: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SiteRecord {
    pub id: String,
    pub client_id: String,
    pub client_name: String,
    pub name: String,
    pub site_code: String,
    pub notes: Option<String>,
    /// Every new machine enrolling here waits for a technician's approval.
    pub require_approval: bool,
    #[serde(with = "super::rfc3339")]
    pub created_at: i64,
    pub agent_count: i64,
}

const CLIENT_SELECT: &str = "SELECT c.id, c.name, c.notes, c.created_at, \
    (SELECT COUNT(*) FROM sites s WHERE s.client_id = c.id) AS site_count, \
    (SELECT COUNT(*) FROM agents a JOIN sites s ON a.site_id = s.id WHERE s.client_id = c.id) AS agent_count \
    FROM clients c";

const SITE_SELECT: &str =
    "SELECT s.id, s.client_id, c.name AS client_name, s.name, s.site_code, s.notes, s.created_at, s.require_approval, \
    (SELECT COUNT(*) FROM agents a WHERE a.site_id = s.id) AS agent_count \
    FROM sites s JOIN clients c ON c.id = s.client_id";

fn client_from_row(row: &sqlx::any::AnyRow) -> DbResult<ClientRecord> {
    Ok(ClientRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        notes: row.try_get("notes")?,
        created_at: row.try_get("created_at")?,
        site_count: row.try_get("site_count")?,
        agent_count: row.try_get("agent_count")?,
    })
}

fn site_from_row(row: &sqlx::any::AnyRow) -> DbResult<SiteRecord> {
    Ok(SiteRecord {
        id: row.try_get("id")?,
        client_id: row.try_get("client_id")?,
        client_name: row.try_get("client_name")?,
        name: row.try_get("name")?,
        site_code: row.try_get("site_code")?,
        notes: row.try_get("notes")?,
        require_approval: row.try_get::<i64, _>("require_approval")? != 0,
        created_at: row.try_get("created_at")?,
        agent_count: row.try_get("agent_count")?,
    })
}

impl Store {
    pub async fn create_client(
        &self,
        name: &str,
        notes: Option<&str>,
        by: Actor<'_>,
    ) -> DbResult<ClientRecord> {
        let id = new_id();
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO clients (id, name, notes, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)")
            .bind(&id)
            .bind(name)
            .bind(notes)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        audit::record(
            &mut tx,
            by,
            "client.create",
            "client",
            Some(&id),
            Some(name),
        )
        .await?;
        tx.commit().await?;
        Ok(ClientRecord {
            id,
            name: name.to_owned(),
            notes: notes.map(str::to_owned),
            created_at: now,
            site_count: 0,
            agent_count: 0,
        })
    }

    pub async fn list_clients(&self) -> DbResult<Vec<ClientRecord>> {
        let rows = sqlx::query(&format!("{CLIENT_SELECT} ORDER BY c.name, c.id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(client_from_row).collect()
    }

    pub async fn client(&self, id: &str) -> DbResult<Option<ClientRecord>> {
        let row = sqlx::query(&format!("{CLIENT_SELECT} WHERE c.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(client_from_row).transpose()
    }

    pub async fn update_client(
        &self,
        id: &str,
        name: &str,
        notes: Option<&str>,
        by: Actor<'_>,
    ) -> DbResult<()> {
        self.audited_rename("client", id, name, notes, by).await
    }

    /// Deletes a client with its sites; its agents stay, unassigned.
    pub async fn delete_client(&self, id: &str, by: Actor<'_>) -> DbResult<()> {
        self.audited_delete("client", id, by).await
    }

    pub async fn create_site(
        &self,
        client_id: &str,
        name: &str,
        site_code: &str,
        notes: Option<&str>,
        by: Actor<'_>,
    ) -> DbResult<String> {
        let id = new_id();
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO sites (id, client_id, name, site_code, notes, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(&id)
        .bind(client_id)
        .bind(name)
        .bind(site_code)
        .bind(notes)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        audit::record(&mut tx, by, "site.create", "site", Some(&id), Some(name)).await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn list_sites(&self, client_id: Option<&str>) -> DbResult<Vec<SiteRecord>> {
        let rows = match client_id {
            Some(cid) => {
                sqlx::query(&format!(
                    "{SITE_SELECT} WHERE s.client_id = $1 ORDER BY s.name, s.id"
                ))
                .bind(cid)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!("{SITE_SELECT} ORDER BY c.name, s.name, s.id"))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(site_from_row).collect()
    }

    pub async fn site(&self, id: &str) -> DbResult<Option<SiteRecord>> {
        let row = sqlx::query(&format!("{SITE_SELECT} WHERE s.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(site_from_row).transpose()
    }

    pub async fn site_by_code(&self, code: &str) -> DbResult<Option<SiteRecord>> {
        let row = sqlx::query(&format!("{SITE_SELECT} WHERE s.site_code = $1"))
            .bind(code)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(site_from_row).transpose()
    }

    pub async fn update_site(
        &self,
        id: &str,
        name: &str,
        notes: Option<&str>,
        by: Actor<'_>,
    ) -> DbResult<()> {
        self.audited_rename("site", id, name, notes, by).await
    }

    /// A new enrollment code for the site; the old one stops working at once.
    pub async fn set_site_code(&self, id: &str, code: &str, by: Actor<'_>) -> DbResult<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("UPDATE sites SET site_code = $1, updated_at = $2 WHERE id = $3")
            .bind(code)
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("site"));
        }
        audit::record(&mut tx, by, "site.regenerate_code", "site", Some(id), None).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_site(&self, id: &str, by: Actor<'_>) -> DbResult<()> {
        self.audited_delete("site", id, by).await
    }
}
