//! The script library: scripts and their versions.

use sqlx::{AnyConnection, Row};

use super::{audit, new_id, now_ms, Actor, DbResult, Store, StoreError};
use crate::scripts::{ScriptContent, ScriptDefinition, ScriptKind, TargetOs};

/// A script with the content of its current version.
#[derive(Debug, Clone)]
pub struct ScriptRecord {
    pub id: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub version: i64,
    pub content: ScriptContent,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One version of a script.
#[derive(Debug, Clone)]
pub struct ScriptVersionRecord {
    pub script_id: String,
    pub version: i64,
    pub content: ScriptContent,
    pub created_by: Option<String>,
    pub created_at: i64,
}

/// A stored column that no longer reads was written by another build: an error, never a
/// silently different script.
fn decode(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Other(sqlx::Error::Decode(
        format!("stored script {what}: {e}").into(),
    ))
}

fn content_from_row(row: &sqlx::any::AnyRow) -> DbResult<ScriptContent> {
    let kind: String = row.try_get("command_type")?;
    let os: String = row.try_get("target_os")?;
    Ok(ScriptContent {
        command_type: ScriptKind::parse(&kind).ok_or_else(|| decode("command_type", &kind))?,
        interpreter: row.try_get("interpreter")?,
        body: row.try_get("body")?,
        default_timeout_seconds: row.try_get::<i64, _>("default_timeout_seconds")?.max(1) as u64,
        target_os: TargetOs::parse(&os).ok_or_else(|| decode("target_os", &os))?,
        parameters: serde_json::from_str(&row.try_get::<String, _>("parameters_json")?)
            .map_err(|e| decode("parameters", e))?,
    })
}

const SCRIPT_SELECT: &str = "SELECT s.id, s.name, s.description, s.category, s.current_version, \
    s.created_at, s.updated_at, v.command_type, v.interpreter, v.body, v.default_timeout_seconds, \
    v.target_os, v.parameters_json FROM scripts s \
    JOIN script_versions v ON v.script_id = s.id AND v.version = s.current_version";

fn script_from_row(row: &sqlx::any::AnyRow) -> DbResult<ScriptRecord> {
    Ok(ScriptRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        category: row.try_get("category")?,
        version: row.try_get("current_version")?,
        content: content_from_row(row)?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

async fn insert_version(
    conn: &mut AnyConnection,
    script_id: &str,
    version: i64,
    content: &ScriptContent,
    created_by: Option<&str>,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO script_versions (script_id, version, command_type, interpreter, body, \
         default_timeout_seconds, target_os, parameters_json, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(script_id)
    .bind(version)
    .bind(content.command_type.as_str())
    .bind(content.interpreter.as_deref())
    .bind(&content.body)
    .bind(content.default_timeout_seconds as i64)
    .bind(content.target_os.as_str())
    .bind(serde_json::to_string(&content.parameters).unwrap_or_else(|_| "[]".into()))
    .bind(created_by)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// Saves a new script as version 1, with its audit row `script.create`. `author` is who
    /// the version names (an email). Conflict on `name` when taken.
    pub async fn create_script(
        &self,
        d: &ScriptDefinition,
        author: Option<&str>,
        by: Actor<'_>,
    ) -> DbResult<String> {
        let id = new_id();
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO scripts (id, name, description, category, current_version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 1, $5, $5)",
        )
        .bind(&id)
        .bind(&d.name)
        .bind(&d.description)
        .bind(&d.category)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        insert_version(&mut tx, &id, 1, &d.content, author, now).await?;
        audit::record(
            &mut tx,
            by,
            "script.create",
            "script",
            Some(&id),
            Some(&d.name),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Saves an edit as the script's next version, with its audit row `script.update`.
    /// Returns the new version. NotFound when there is no such script.
    pub async fn update_script(
        &self,
        id: &str,
        d: &ScriptDefinition,
        author: Option<&str>,
        by: Actor<'_>,
    ) -> DbResult<i64> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let version: Option<i64> = sqlx::query_scalar(
            "UPDATE scripts SET name = $1, description = $2, category = $3, \
             current_version = current_version + 1, updated_at = $4 WHERE id = $5 \
             RETURNING current_version",
        )
        .bind(&d.name)
        .bind(&d.description)
        .bind(&d.category)
        .bind(now)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let version = version.ok_or(StoreError::NotFound("script"))?;
        insert_version(&mut tx, id, version, &d.content, author, now).await?;
        let details = format!("{} v{version}", d.name);
        audit::record(
            &mut tx,
            by,
            "script.update",
            "script",
            Some(id),
            Some(&details),
        )
        .await?;
        tx.commit().await?;
        Ok(version)
    }

    pub async fn delete_script(&self, id: &str, by: Actor<'_>) -> DbResult<()> {
        self.audited_delete("script", id, by).await
    }

    /// Scripts by name; `search` matches name, description or category (case-insensitive),
    /// `category` exactly.
    pub async fn list_scripts(
        &self,
        search: Option<&str>,
        category: Option<&str>,
    ) -> DbResult<Vec<ScriptRecord>> {
        let mut sql = format!("{SCRIPT_SELECT} WHERE 1 = 1");
        let mut n = 0;
        if search.is_some() {
            n += 1;
            sql.push_str(&format!(
                " AND (LOWER(s.name) LIKE ${n} OR LOWER(s.description) LIKE ${n} OR LOWER(s.category) LIKE ${n})"
            ));
        }
        if category.is_some() {
            n += 1;
            sql.push_str(&format!(" AND s.category = ${n}"));
        }
        sql.push_str(" ORDER BY LOWER(s.name), s.id");
        let mut q = sqlx::query(&sql);
        if let Some(s) = search {
            q = q.bind(format!("%{}%", s.to_lowercase()));
        }
        if let Some(c) = category {
            q = q.bind(c.to_owned());
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(script_from_row).collect()
    }

    pub async fn script(&self, id: &str) -> DbResult<Option<ScriptRecord>> {
        let row = sqlx::query(&format!("{SCRIPT_SELECT} WHERE s.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(script_from_row).transpose()
    }

    pub async fn script_by_name(&self, name: &str) -> DbResult<Option<ScriptRecord>> {
        let row = sqlx::query(&format!("{SCRIPT_SELECT} WHERE s.name = $1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(script_from_row).transpose()
    }

    /// Every version of a script, newest first.
    pub async fn script_versions(&self, id: &str) -> DbResult<Vec<ScriptVersionRecord>> {
        let rows =
            sqlx::query("SELECT * FROM script_versions WHERE script_id = $1 ORDER BY version DESC")
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|row| {
                Ok(ScriptVersionRecord {
                    script_id: row.try_get("script_id")?,
                    version: row.try_get("version")?,
                    content: content_from_row(row)?,
                    created_by: row.try_get("created_by")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }
}
