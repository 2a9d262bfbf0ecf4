//! Agents: the fleet list, registration by a technician, moves, state, metrics, commands.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use gururmm_protocol::{capability, claude_task, CommandType};

use super::error::{ApiError, ApiResult};
use super::extract::{AuthUser, Json, Query};
use super::types::{
    list as into_list, Agent, AgentListQuery, AgentState, AgentStats, Command, CommandBody,
    MetricsHistory, MetricsQuery, MoveBody, RegisterAgentBody, RegisteredAgent, WatchdogEvent,
};
use crate::auth::{key_hash, new_agent_key};
use crate::db::{Actor, AgentRecord, Approval, NewAgent, NewCommand};
use crate::state::AppState;

fn with_status(state: &AppState, mut agent: AgentRecord) -> AgentRecord {
    let online = state.is_online(&agent);
    agent.set_online(online);
    agent
}

pub(crate) async fn load_agent(state: &AppState, id: &str) -> ApiResult<AgentRecord> {
    let agent = state
        .store
        .agent(id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent"))?;
    Ok(with_status(state, agent))
}

pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<AgentListQuery>,
) -> ApiResult<axum::Json<Vec<Agent>>> {
    let filter = crate::db::AgentFilter {
        client_id: q.client_id.as_deref().filter(|s| !s.is_empty()),
        site_id: q.site_id.as_deref().filter(|s| !s.is_empty()),
        search: q.search.as_deref(),
        unassigned_only: false,
        approval: q.approval,
    };
    let agents = state.store.list_agents(&filter).await?;
    Ok(axum::Json(
        agents
            .into_iter()
            .map(|a| with_status(&state, a))
            .filter(|a| q.status.is_none_or(|s| a.status == s))
            .map(Agent::from)
            .collect(),
    ))
}

pub async fn unassigned(State(state): State<AppState>) -> ApiResult<axum::Json<Vec<Agent>>> {
    let filter = crate::db::AgentFilter {
        unassigned_only: true,
        ..Default::default()
    };
    let agents = state.store.list_agents(&filter).await?;
    Ok(axum::Json(
        agents
            .into_iter()
            .map(|a| with_status(&state, a).into())
            .collect(),
    ))
}

pub async fn stats(State(state): State<AppState>) -> ApiResult<axum::Json<AgentStats>> {
    let mut stats = state.store.agent_counts().await?;
    let approved = crate::db::AgentFilter {
        approval: Some(Approval::Approved),
        ..Default::default()
    };
    let ids = state.store.list_agents(&approved).await?;
    stats.online = ids.iter().filter(|a| state.is_online(a)).count() as i64;
    stats.offline = stats.total - stats.online;
    Ok(axum::Json(stats.into()))
}

/// A technician registers an agent by hand; its `grmm_` key is shown in this answer only.
pub async fn register(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<RegisterAgentBody>,
) -> ApiResult<(StatusCode, axum::Json<RegisteredAgent>)> {
    let hostname = body.hostname.trim();
    if hostname.is_empty() || hostname.len() > 255 {
        return Err(ApiError::BadRequest(
            "hostname must be 1 to 255 characters".into(),
        ));
    }
    if let Some(site_id) = &body.site_id {
        if state.store.site(site_id).await?.is_none() {
            return Err(ApiError::BadRequest(format!(
                "site {site_id} does not exist"
            )));
        }
    }
    let key = new_agent_key();
    let id = state
        .store
        .register_agent(
            NewAgent {
                site_id: body.site_id.as_deref(),
                hostname,
                device_id: None,
                os_type: None,
                os_version: None,
                arch: None,
                version: None,
                api_key_hash: &key_hash(&key),
                capabilities: None,
            },
            Actor::user(&user.id),
        )
        .await?;
    let agent = load_agent(&state, &id).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(RegisteredAgent {
            agent: agent.into(),
            api_key: key,
        }),
    ))
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Agent>> {
    let mut agent: Agent = load_agent(&state, &id).await?.into();
    agent.update = state
        .store
        .agent_updates(&id)
        .await?
        .into_iter()
        .next()
        .map(Into::into);
    Ok(axum::Json(agent))
}

pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.delete_agent(&id, Actor::user(&user.id)).await?;
    state.disconnect_agent(&id, "agent deleted").await;
    Ok(StatusCode::NO_CONTENT)
}

/// Only a record waiting for approval can be approved or rejected.
async fn load_pending(state: &AppState, id: &str) -> ApiResult<AgentRecord> {
    let agent = load_agent(state, id).await?;
    if agent.approval != Approval::Pending {
        return Err(ApiError::Conflict(
            "this agent is not waiting for approval".into(),
        ));
    }
    Ok(agent)
}

/// Approves a pending record: it takes the place (and history) of the agent it claims to be,
/// whose old key stops working; both sockets are closed so the machine reconnects with its
/// key as that agent.
pub async fn approve(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Agent>> {
    load_pending(&state, &id).await?;
    let approved = state
        .store
        .approve_agent(&id, Actor::user(&user.id))
        .await?;
    if approved != id {
        state
            .disconnect_agent(&approved, "replaced by an approved enrollment")
            .await;
    }
    state
        .disconnect_agent(&id, "approved: reconnect with your agent key")
        .await;
    Ok(axum::Json(load_agent(&state, &approved).await?.into()))
}

/// Rejects a pending record: it is removed and its key dies. Answers the removed record.
pub async fn reject(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Agent>> {
    let agent = load_pending(&state, &id).await?;
    state.store.reject_agent(&id, Actor::user(&user.id)).await?;
    state.disconnect_agent(&id, "enrollment rejected").await;
    Ok(axum::Json(agent.into()))
}

pub async fn move_to_site(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(body): Json<MoveBody>,
) -> ApiResult<axum::Json<Agent>> {
    if let Some(site_id) = &body.site_id {
        if state.store.site(site_id).await?.is_none() {
            return Err(ApiError::BadRequest(format!(
                "site {site_id} does not exist"
            )));
        }
    }
    state
        .store
        .move_agent(&id, body.site_id.as_deref(), Actor::user(&user.id))
        .await?;
    state.placement_changed().await;
    Ok(axum::Json(load_agent(&state, &id).await?.into()))
}

pub async fn agent_state(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<AgentState>> {
    load_agent(&state, &id).await?;
    Ok(axum::Json(state.store.agent_state(&id).await?.into()))
}

pub const DEFAULT_COMMAND_TIMEOUT: u64 = 300;
pub const MAX_COMMAND_TIMEOUT: u64 = 24 * 3600;
const MAX_COMMAND_BYTES: usize = 256 * 1024;

/// Creates a `pending` command; if the agent is connected it goes out at once and the answer
/// already says `running`.
pub async fn send_command(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(body): Json<CommandBody>,
) -> ApiResult<(StatusCode, axum::Json<Command>)> {
    let kind = body.command_type.clone();
    if !kind.is_known() {
        let known: Vec<&str> = CommandType::KNOWN.iter().map(|k| k.as_str()).collect();
        return Err(ApiError::BadRequest(format!(
            "command_type must be one of {}, not {:?}",
            known.join(", "),
            kind.as_str()
        )));
    }
    if body.command.trim().is_empty() {
        return Err(ApiError::BadRequest("command must not be empty".into()));
    }
    if body.command.len() > MAX_COMMAND_BYTES {
        return Err(ApiError::PayloadTooLarge(format!(
            "command must be at most {MAX_COMMAND_BYTES} bytes"
        )));
    }
    let claude = kind == CommandType::ClaudeTask;
    let (default_timeout, max_timeout) = if claude {
        (
            claude_task::DEFAULT_TIMEOUT_SECONDS,
            claude_task::MAX_TIMEOUT_SECONDS,
        )
    } else {
        (DEFAULT_COMMAND_TIMEOUT, MAX_COMMAND_TIMEOUT)
    };
    let timeout = body.timeout_seconds.unwrap_or(default_timeout);
    if !(1..=max_timeout).contains(&timeout) {
        return Err(ApiError::BadRequest(format!(
            "timeout_seconds must be 1..={max_timeout}{}",
            if claude { " for claude_task" } else { "" }
        )));
    }
    if claude {
        check_claude_task(&body)?;
    } else if body.working_directory.is_some() || body.context_files.is_some() {
        return Err(ApiError::BadRequest(
            "working_directory and context_files are for claude_task only".into(),
        ));
    }
    if body.interpreter.as_ref().is_some_and(|i| i.len() > 255) {
        return Err(ApiError::BadRequest(
            "interpreter must be at most 255 bytes".into(),
        ));
    }
    let agent = load_agent(&state, &id).await?;
    if agent.approval == Approval::Pending {
        return Err(ApiError::Conflict(
            "this agent is waiting for approval: approve it before sending commands".into(),
        ));
    }
    if claude
        && !agent
            .capabilities
            .iter()
            .any(|c| c == capability::CLAUDE_TASK)
    {
        return Err(ApiError::Conflict(
            "this agent's AI task executor is not enabled (its agent.toml needs [claude] enabled = true, and the agent reconnected since)".into(),
        ));
    }
    let minute = Duration::from_secs(60);
    state.limiter.check(
        &format!("cmd-agent:{id}"),
        state.config.commands_per_minute_per_agent,
        minute,
    )?;
    state.limiter.check_and_record(
        &format!("cmd-user:{}", user.id),
        state.config.commands_per_minute_per_user,
        minute,
    )?;
    state.limiter.record(&format!("cmd-agent:{id}"));

    let command = state
        .store
        .insert_command(
            NewCommand {
                agent_id: &id,
                command_type: kind.as_str(),
                command: &body.command,
                interpreter: body.interpreter.as_deref().filter(|i| !i.trim().is_empty()),
                working_directory: body
                    .working_directory
                    .as_deref()
                    .filter(|w| !w.trim().is_empty()),
                context_files: body.context_files.as_deref(),
                timeout_seconds: timeout as i64,
                elevated: body.elevated,
                created_by: Some(&user.email),
            },
            Actor::user(&user.id),
        )
        .await?;
    state.publish(crate::events::Event::CommandUpdated {
        id: command.id.clone(),
        agent_id: id.clone(),
        status: command.status.to_string(),
    });
    state.dispatch(&id).await;
    // Created whatever happens next: a failed re-read (a busy or vanished database) answers
    // with the record as inserted, never an error that would make the caller submit it again.
    let command = match state.store.command(&command.id).await {
        Ok(Some(now)) => now,
        Ok(None) | Err(_) => command,
    };
    Ok((StatusCode::CREATED, axum::Json(command.into())))
}

/// Most context files one claude_task may name.
const MAX_CONTEXT_FILES: usize = 32;
/// Longest path a claude_task may name, in bytes.
const MAX_TASK_PATH_BYTES: usize = 1024;

/// The server's checks of a claude_task (the agent checks again, and checks the paths against
/// its `working_root`, which only it knows).
fn check_claude_task(body: &CommandBody) -> ApiResult<()> {
    if let Some(c) = claude_task::forbidden_char(&body.command) {
        return Err(ApiError::BadRequest(format!(
            "the task text must not contain {} (refused: & | ; $ ( ) < > backtick, newline, carriage return)",
            claude_task::describe(c)
        )));
    }
    let check_path = |name: &str, path: &str| {
        if path.trim().is_empty() || path.len() > MAX_TASK_PATH_BYTES || path.contains('\0') {
            return Err(ApiError::BadRequest(format!(
                "{name} must be a path of 1..={MAX_TASK_PATH_BYTES} bytes"
            )));
        }
        Ok(())
    };
    if let Some(dir) = &body.working_directory {
        check_path("working_directory", dir)?;
    }
    if let Some(files) = &body.context_files {
        if files.len() > MAX_CONTEXT_FILES {
            return Err(ApiError::BadRequest(format!(
                "context_files may name at most {MAX_CONTEXT_FILES} files"
            )));
        }
        for file in files {
            check_path("each of context_files", file)?;
        }
    }
    Ok(())
}

/// Most points a range returns; longer ranges are averaged into buckets.
const MAX_POINTS: i64 = 360;

pub(crate) fn parse_time(name: &str, value: &str) -> ApiResult<i64> {
    if let Ok(secs) = value.parse::<i64>() {
        return Ok(secs.saturating_mul(1000));
    }
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            ApiError::BadRequest(format!(
                "{name} must be an RFC 3339 time or Unix seconds, not {value:?}"
            ))
        })
}

pub async fn metrics(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<MetricsQuery>,
) -> ApiResult<axum::Json<MetricsHistory>> {
    load_agent(&state, &id).await?;
    let now = crate::db::now_ms();
    let to =
        q.to.as_deref()
            .map(|v| parse_time("to", v))
            .transpose()?
            .unwrap_or(now);
    let from = q
        .from
        .as_deref()
        .map(|v| parse_time("from", v))
        .transpose()?
        .unwrap_or(to.saturating_sub(3600 * 1000));
    if from >= to {
        return Err(ApiError::BadRequest("from must be before to".into()));
    }
    let range_ms = to.saturating_sub(from);
    // Raw points (second resolution) for short ranges; buckets for long ones.
    let bucket_ms = (range_ms / MAX_POINTS).max(1000);
    let points = state.store.metrics_range(&id, from, to, bucket_ms).await?;
    Ok(axum::Json(MetricsHistory {
        from: crate::db::rfc3339::format(from),
        to: crate::db::rfc3339::format(to),
        agent_id: id,
        bucket_seconds: bucket_ms / 1000,
        points: into_list(points),
    }))
}

pub async fn watchdog_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<WatchdogEvent>>> {
    load_agent(&state, &id).await?;
    Ok(axum::Json(into_list(
        state.store.watchdog_events(&id, 500).await?,
    )))
}
