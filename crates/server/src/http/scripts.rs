//! The script library: saved scripts, their versions, import and export.

use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::error::{ApiError, ApiResult};
use super::extract::{AuthUser, Json, Query};
use super::types::{list, Script, ScriptExport, ScriptImported, ScriptListQuery, ScriptVersion};
use crate::db::Actor;
use crate::scripts::ScriptDefinition;
use crate::state::AppState;

/// The `format` of an export file.
pub const EXPORT_FORMAT: &str = "gururmm-scripts/1";
/// Most scripts in one import.
const MAX_IMPORT: usize = 500;

fn checked(mut d: ScriptDefinition) -> ApiResult<ScriptDefinition> {
    d.check().map_err(ApiError::BadRequest)?;
    Ok(d)
}

pub async fn list_scripts(
    State(state): State<AppState>,
    Query(q): Query<ScriptListQuery>,
) -> ApiResult<axum::Json<Vec<Script>>> {
    let search = q.search.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let category = q.category.as_deref().filter(|s| !s.is_empty());
    Ok(axum::Json(list(
        state.store.list_scripts(search, category).await?,
    )))
}

pub async fn get_script(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Script>> {
    super::error::found(state.store.script(&id).await?, "script")
}

pub async fn create_script(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<ScriptDefinition>,
) -> ApiResult<(StatusCode, axum::Json<Script>)> {
    let d = checked(body)?;
    let id = state
        .store
        .create_script(&d, Some(&user.email), Actor::user(&user.id))
        .await?;
    let axum::Json(script) = get_script(State(state), Path(id)).await?;
    Ok((StatusCode::CREATED, axum::Json(script)))
}

/// An edit: saved as the script's next version (earlier versions stay readable).
pub async fn update_script(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(body): Json<ScriptDefinition>,
) -> ApiResult<axum::Json<Script>> {
    let d = checked(body)?;
    state
        .store
        .update_script(&id, &d, Some(&user.email), Actor::user(&user.id))
        .await?;
    get_script(State(state), Path(id)).await
}

pub async fn delete_script(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_script(&id, Actor::user(&user.id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn versions(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<ScriptVersion>>> {
    let versions = state.store.script_versions(&id).await?;
    if versions.is_empty() {
        return Err(ApiError::not_found("script"));
    }
    Ok(axum::Json(list(versions)))
}

/// Every script's current version, in the form `import` takes.
pub async fn export(State(state): State<AppState>) -> ApiResult<axum::Json<ScriptExport>> {
    let scripts = state.store.list_scripts(None, None).await?;
    Ok(axum::Json(ScriptExport {
        format: EXPORT_FORMAT.to_owned(),
        scripts: scripts
            .into_iter()
            .map(|s| ScriptDefinition {
                name: s.name,
                description: s.description,
                category: s.category,
                content: s.content,
            })
            .collect(),
    }))
}

/// Adds the scripts of an export: a new name becomes a new script, a known name a new version
/// of that script when its content differs. Every script is checked before any is saved.
pub async fn import(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<ScriptExport>,
) -> ApiResult<axum::Json<ScriptImported>> {
    let result = import_scripts(&state, body, Some(&user.email), Actor::user(&user.id)).await?;
    Ok(axum::Json(result))
}

pub(crate) async fn import_scripts(
    state: &AppState,
    body: ScriptExport,
    author: Option<&str>,
    by: Actor<'_>,
) -> ApiResult<ScriptImported> {
    if body.format != EXPORT_FORMAT {
        return Err(ApiError::BadRequest(format!(
            "format must be {EXPORT_FORMAT:?}, not {:?}",
            body.format
        )));
    }
    if body.scripts.len() > MAX_IMPORT {
        return Err(ApiError::BadRequest(format!(
            "scripts: at most {MAX_IMPORT} in one import"
        )));
    }
    let mut scripts = Vec::with_capacity(body.scripts.len());
    for (n, d) in body.scripts.into_iter().enumerate() {
        scripts.push(checked(d).map_err(|e| match e {
            ApiError::BadRequest(m) => ApiError::BadRequest(format!("scripts[{n}].{m}")),
            other => other,
        })?);
    }
    let mut result = ScriptImported::default();
    for d in scripts {
        match state.store.script_by_name(&d.name).await? {
            None => {
                state.store.create_script(&d, author, by).await?;
                result.created.push(d.name);
            }
            Some(old)
                if old.content == d.content
                    && old.description == d.description
                    && old.category == d.category =>
            {
                result.unchanged.push(d.name);
            }
            Some(old) => {
                state.store.update_script(&old.id, &d, author, by).await?;
                result.updated.push(d.name);
            }
        }
    }
    Ok(result)
}

/// The starter scripts (`starter-scripts.json`), added once to a new installation: deleting
/// them later does not bring them back.
pub async fn add_starter_scripts(state: &AppState) -> anyhow::Result<()> {
    const DONE: &str = "starter_scripts_added";
    if state.store.setting(DONE).await?.is_some() {
        return Ok(());
    }
    let starters: ScriptExport = serde_json::from_str(include_str!("../../starter-scripts.json"))?;
    let result = import_scripts(state, starters, None, Actor::SYSTEM)
        .await
        .map_err(|e| anyhow::anyhow!("starter scripts: {e:?}"))?;
    state.store.set_setting(DONE, "true", Actor::SYSTEM).await?;
    tracing::info!(
        added = result.created.len(),
        "starter scripts added to the library"
    );
    Ok(())
}
