use axum::extract::{Path, State};
use gururmm_protocol::command_status;
use serde::Deserialize;

use super::agents::parse_time;
use super::error::{ApiError, ApiResult};
use super::extract::{AuthUser, Query};
use crate::db::{Actor, CommandFilter, CommandRecord};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct CommandListQuery {
    agent_id: Option<String>,
    status: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<i64>,
}

pub async fn list(
    State(state): State<AppState>,
    _user: AuthUser,
    Query(q): Query<CommandListQuery>,
) -> ApiResult<axum::Json<Vec<CommandRecord>>> {
    if let Some(s) = q.status.as_deref() {
        if !command_status::ALL.contains(&s) {
            return Err(ApiError::BadRequest(format!(
                "status must be one of {}",
                command_status::ALL.join(", ")
            )));
        }
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest("limit must be 1..=1000".into()));
    }
    let filter = CommandFilter {
        agent_id: q.agent_id.filter(|s| !s.is_empty()),
        status: q.status.filter(|s| !s.is_empty()),
        since: q
            .since
            .as_deref()
            .map(|v| parse_time("since", v))
            .transpose()?,
        until: q
            .until
            .as_deref()
            .map(|v| parse_time("until", v))
            .transpose()?,
        limit,
    };
    Ok(axum::Json(state.store.list_commands(&filter).await?))
}

pub async fn get(
    State(state): State<AppState>,
    _user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<CommandRecord>> {
    state
        .store
        .command(&id)
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found("command"))
}

/// Cancels a pending or running command. A running one may still finish on the agent; its
/// output is then kept, but the command stays cancelled.
pub async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<CommandRecord>> {
    user.require_write()?;
    let command = state
        .store
        .command(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("command"))?;
    if !state
        .store
        .cancel_command(&id, Actor::user(&user.id))
        .await?
    {
        return Err(ApiError::Conflict(format!(
            "command is already {}",
            command.status
        )));
    }
    state.events.publish(crate::events::Event::CommandUpdated {
        id: id.clone(),
        agent_id: command.agent_id.clone(),
        status: command_status::CANCELLED.into(),
    });
    get(State(state), user, Path(id)).await
}
