use axum::extract::{Path, State};
use gururmm_protocol::CommandStatus;

use super::agents::parse_time;
use super::error::{ApiError, ApiResult};
use super::extract::{AuthUser, Query};
use super::types::{list as into_list, Command, CommandListQuery};
use crate::db::{Actor, CommandFilter};
use crate::state::AppState;

pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<CommandListQuery>,
) -> ApiResult<axum::Json<Vec<Command>>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest("limit must be 1..=1000".into()));
    }
    let filter = CommandFilter {
        agent_id: q.agent_id.filter(|s| !s.is_empty()),
        status: q.status.map(|s| s.as_str().to_owned()),
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
        full_output: q.full_output,
    };
    Ok(axum::Json(into_list(
        state.store.list_commands(&filter).await?,
    )))
}

/// A command with its whole output; while it runs, the output streamed so far.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Command>> {
    let mut command = state
        .store
        .command(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("command"))?;
    if command.status == CommandStatus::Running && command.exit_code.is_none() {
        let (stdout, stderr, last) = state.store.live_output(&id).await?;
        if last.is_some() {
            command.stdout_length = Some(stdout.chars().count() as i64);
            command.stderr_length = Some(stderr.chars().count() as i64);
            command.stdout = Some(stdout);
            command.stderr = Some(stderr);
            command.live_seq = last;
        }
    }
    Ok(axum::Json(command.into()))
}

/// Cancels a pending or running command. A running one may still finish on the agent; its
/// output is then kept, but the command stays cancelled.
pub async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Command>> {
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
    state.publish(crate::events::Event::CommandUpdated {
        id: id.clone(),
        agent_id: command.agent_id.clone(),
        status: CommandStatus::Cancelled.to_string(),
    });
    get(State(state), Path(id)).await
}
