//! Jobs: a saved script (with parameters) or an ad-hoc command run on many agents at once.
//!
//! The target is resolved when the job starts: the agents chosen, a site, a client, or every
//! agent matching a fleet filter. Each agent gets its own command under the job; agents that are
//! connected get it at once, the others when they come back, unless the job's expiry passed
//! first (then `expired`).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use gururmm_protocol::{CommandStatus, CommandType};
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::extract::{AuthUser, Json, Query};
use super::types::{list, Job, JobAgent, JobBody, JobListQuery, JobTarget};
use crate::db::{Actor, AgentFilter, Approval, NewJob};
use crate::events::Event;
use crate::scripts::{resolve_parameters, TargetOs};
use crate::state::AppState;

/// Most agents one job may target.
const MAX_JOB_AGENTS: usize = 10_000;
/// The longest a job may wait for offline agents.
const MAX_EXPIRY_SECONDS: u64 = 30 * 86_400;

/// A job ready to insert: what it runs and on which agents.
pub(crate) struct PreparedJob {
    pub name: String,
    pub script_id: Option<String>,
    pub script_version: Option<i64>,
    pub command_type: String,
    pub command: String,
    pub interpreter: Option<String>,
    pub environment: BTreeMap<String, String>,
    pub timeout_seconds: i64,
    pub target_json: String,
    pub expires_at: Option<i64>,
    pub agent_ids: Vec<String>,
}

impl PreparedJob {
    pub fn as_new<'a>(
        &'a self,
        created_by: Option<&'a str>,
        rerun_of: Option<&'a str>,
        schedule_id: Option<&'a str>,
    ) -> NewJob<'a> {
        NewJob {
            name: &self.name,
            script_id: self.script_id.as_deref(),
            script_version: self.script_version,
            command_type: &self.command_type,
            command: &self.command,
            interpreter: self.interpreter.as_deref(),
            environment: &self.environment,
            timeout_seconds: self.timeout_seconds,
            target_json: &self.target_json,
            expires_at: self.expires_at,
            rerun_of,
            schedule_id,
            created_by,
        }
    }
}

fn os_matches(target_os: TargetOs, os_type: Option<&str>) -> bool {
    target_os == TargetOs::Any
        || os_type.is_some_and(|os| os.eq_ignore_ascii_case(target_os.as_str()))
}

/// The approved agents a target names now, limited to the script's OS.
async fn resolve_target(
    state: &AppState,
    target: &JobTarget,
    target_os: TargetOs,
    require_agents: bool,
) -> ApiResult<Vec<String>> {
    let narrows = target.agent_ids.is_some()
        || target.site_id.is_some()
        || target.client_id.is_some()
        || target.os_type.is_some()
        || target.online.is_some()
        || target
            .search
            .as_deref()
            .is_some_and(|s| !s.trim().is_empty());
    if !narrows && !target.all {
        return Err(ApiError::BadRequest(
            "target: name agent_ids, a site_id, a client_id or a filter (os_type, online, search), or all: true for the whole fleet".into(),
        ));
    }
    if let Some(ids) = &target.agent_ids {
        if ids.is_empty() || ids.len() > MAX_JOB_AGENTS {
            return Err(ApiError::BadRequest(format!(
                "target.agent_ids: 1 to {MAX_JOB_AGENTS} agents"
            )));
        }
    }
    let filter = AgentFilter {
        client_id: target.client_id.as_deref(),
        site_id: target.site_id.as_deref(),
        search: target.search.as_deref().map(str::trim),
        unassigned_only: false,
        approval: Some(Approval::Approved),
    };
    let agents = state.store.list_agents(&filter).await?;
    let chosen: Option<std::collections::HashSet<&str>> = target
        .agent_ids
        .as_ref()
        .map(|ids| ids.iter().map(String::as_str).collect());
    let ids: Vec<String> = agents
        .into_iter()
        .filter(|a| chosen.as_ref().is_none_or(|c| c.contains(a.id.as_str())))
        .filter(|a| {
            target.os_type.as_deref().is_none_or(|os| {
                a.os_type
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case(os))
            })
        })
        .filter(|a| {
            target
                .online
                .is_none_or(|online| state.is_online(a) == online)
        })
        .filter(|a| os_matches(target_os, a.os_type.as_deref()))
        .map(|a| a.id)
        .collect();
    if ids.len() > MAX_JOB_AGENTS {
        return Err(ApiError::BadRequest(format!(
            "target: {} agents match; a job takes at most {MAX_JOB_AGENTS}",
            ids.len()
        )));
    }
    if ids.is_empty() && require_agents {
        return Err(ApiError::BadRequest(
            "target: no approved agent matches (for a script written for one OS, only agents of that OS count)".into(),
        ));
    }
    Ok(ids)
}

/// Checks a job request and resolves its script, parameters and target (which must name at
/// least one agent).
pub(crate) async fn prepare(state: &AppState, body: &JobBody) -> ApiResult<PreparedJob> {
    prepare_for(state, body, true).await
}

/// [`prepare`]; with `require_agents` false a target that names no agent now is accepted (a
/// schedule's target may match agents by the time it runs).
pub(crate) async fn prepare_for(
    state: &AppState,
    body: &JobBody,
    require_agents: bool,
) -> ApiResult<PreparedJob> {
    let given: BTreeMap<String, Value> = body.parameters.clone().unwrap_or_default();
    let (name, script_id, version, kind, command, interpreter, environment, timeout, os) =
        match (&body.script_id, &body.command) {
            (Some(id), None) => {
                let script = state
                    .store
                    .script(id)
                    .await?
                    .ok_or_else(|| ApiError::not_found("script"))?;
                let c = script.content;
                let environment =
                    resolve_parameters(&c.parameters, &given).map_err(ApiError::BadRequest)?;
                (
                    script.name,
                    Some(script.id),
                    Some(script.version),
                    c.command_type.as_str().to_owned(),
                    c.body,
                    c.interpreter,
                    environment,
                    c.default_timeout_seconds,
                    c.target_os,
                )
            }
            (None, Some(command)) => {
                if !given.is_empty() {
                    return Err(ApiError::BadRequest(
                        "parameters are for saved scripts; an ad-hoc command takes none".into(),
                    ));
                }
                let kind = body.command_type.clone().unwrap_or(CommandType::Shell);
                if !kind.is_known() || kind == CommandType::ClaudeTask {
                    return Err(ApiError::BadRequest(
                        "command_type: shell, powershell, python or script".into(),
                    ));
                }
                if command.trim().is_empty() || command.len() > super::agents::MAX_COMMAND_BYTES {
                    return Err(ApiError::BadRequest(format!(
                        "command: 1 to {} bytes",
                        super::agents::MAX_COMMAND_BYTES
                    )));
                }
                (
                    command
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .chars()
                        .take(80)
                        .collect(),
                    None,
                    None,
                    kind.as_str().to_owned(),
                    command.clone(),
                    body.interpreter.clone().filter(|i| !i.trim().is_empty()),
                    BTreeMap::new(),
                    300,
                    TargetOs::Any,
                )
            }
            _ => {
                return Err(ApiError::BadRequest(
                    "give either script_id (a saved script) or command (an ad-hoc command)".into(),
                ))
            }
        };
    let name = match body.name.as_deref().map(str::trim) {
        Some(n) if n.chars().count() > 200 || n.chars().any(char::is_control) => {
            return Err(ApiError::BadRequest(
                "name: at most 200 characters, no control characters".into(),
            ))
        }
        Some(n) if !n.is_empty() => n.to_owned(),
        _ => name,
    };
    let timeout = body.timeout_seconds.unwrap_or(timeout);
    if !(1..=super::agents::MAX_COMMAND_TIMEOUT).contains(&timeout) {
        return Err(ApiError::BadRequest(format!(
            "timeout_seconds must be 1..={}",
            super::agents::MAX_COMMAND_TIMEOUT
        )));
    }
    let expires_at = match body.expires_in_seconds {
        None => None,
        Some(s) if (1..=MAX_EXPIRY_SECONDS).contains(&s) => {
            Some(crate::db::now_ms() + (s as i64) * 1000)
        }
        Some(_) => {
            return Err(ApiError::BadRequest(format!(
                "expires_in_seconds must be 1..={MAX_EXPIRY_SECONDS}"
            )))
        }
    };
    let agent_ids = resolve_target(state, &body.target, os, require_agents).await?;
    Ok(PreparedJob {
        name,
        script_id,
        script_version: version,
        command_type: kind,
        command,
        interpreter,
        environment,
        timeout_seconds: timeout as i64,
        target_json: serde_json::to_string(&body.target).unwrap_or_default(),
        expires_at,
        agent_ids,
    })
}

/// After a job's commands are queued: tells the dashboard and hands them to the agents
/// connected anywhere, in the background, a few at a time, so a big job never holds up the
/// request or the agents' sockets.
pub(crate) fn started(state: &AppState, job_id: &str, agent_ids: Vec<String>) {
    state.publish(Event::JobUpdated {
        id: job_id.to_owned(),
    });
    let state = state.clone();
    tokio::spawn(async move {
        use futures_util::StreamExt;
        futures_util::stream::iter(agent_ids)
            .for_each_concurrent(8, |agent_id| {
                let state = state.clone();
                async move { state.dispatch(&agent_id).await }
            })
            .await;
    });
}

async fn answer(state: &AppState, id: &str) -> ApiResult<Job> {
    let job = state
        .store
        .job(id)
        .await?
        .ok_or_else(|| ApiError::not_found("job"))?;
    Ok(job.into())
}

pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<JobBody>,
) -> ApiResult<(StatusCode, axum::Json<Job>)> {
    let job = prepare(&state, &body).await?;
    state.limiter.check_and_record(
        &format!("cmd-user:{}", user.id),
        state.config.commands_per_minute_per_user,
        std::time::Duration::from_secs(60),
    )?;
    let id = state
        .store
        .create_job(
            &job.as_new(Some(&user.email), None, None),
            &job.agent_ids,
            Actor::user(&user.id),
        )
        .await?;
    started(&state, &id, job.agent_ids);
    Ok((StatusCode::CREATED, axum::Json(answer(&state, &id).await?)))
}

pub async fn list_jobs(
    State(state): State<AppState>,
    Query(q): Query<JobListQuery>,
) -> ApiResult<axum::Json<Vec<Job>>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest("limit must be 1..=1000".into()));
    }
    let jobs = state
        .store
        .list_jobs(q.schedule_id.as_deref().filter(|s| !s.is_empty()), limit)
        .await?;
    Ok(axum::Json(list(jobs)))
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Job>> {
    Ok(axum::Json(answer(&state, &id).await?))
}

pub async fn agents(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<JobAgent>>> {
    answer(&state, &id).await?;
    Ok(axum::Json(list(state.store.job_agents(&id).await?)))
}

/// Cancels the job's queued commands; running ones finish or time out.
pub async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Job>> {
    let cancelled = state
        .store
        .cancel_job(&id, Actor::user(&user.id))
        .await
        .map_err(|e| match e {
            crate::db::StoreError::Conflict { .. } => {
                ApiError::Conflict("this job was cancelled before".into())
            }
            other => other.into(),
        })?;
    for (command_id, agent_id) in cancelled {
        state.publish(Event::CommandUpdated {
            id: command_id,
            agent_id,
            status: CommandStatus::Cancelled.to_string(),
        });
    }
    state.publish(Event::JobUpdated { id: id.clone() });
    Ok(axum::Json(answer(&state, &id).await?))
}

/// A new job with the same script, version and parameters (or command), on the agents where
/// this one failed, timed out or expired.
pub async fn rerun(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, axum::Json<Job>)> {
    let job = state
        .store
        .job(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("job"))?;
    let again: Vec<String> = state
        .store
        .job_agents(&id)
        .await?
        .into_iter()
        .filter(|a| ["failed", "timed_out", "expired"].contains(&a.status.as_str()))
        .map(|a| a.agent_id)
        .collect();
    if again.is_empty() {
        return Err(ApiError::Conflict(
            "no agent failed, timed out or expired in this job".into(),
        ));
    }
    state.limiter.check_and_record(
        &format!("cmd-user:{}", user.id),
        state.config.commands_per_minute_per_user,
        std::time::Duration::from_secs(60),
    )?;
    let prepared = PreparedJob {
        name: format!("{} (re-run)", job.name),
        script_id: job.script_id,
        script_version: job.script_version,
        command_type: job.command_type,
        command: job.command,
        interpreter: job.interpreter,
        environment: job.environment,
        timeout_seconds: job.timeout_seconds,
        target_json: serde_json::json!({ "agent_ids": again }).to_string(),
        expires_at: job
            .expires_at
            .map(|at| crate::db::now_ms() + (at - job.created_at).max(1000)),
        agent_ids: again,
    };
    let new_id = state
        .store
        .create_job(
            &prepared.as_new(Some(&user.email), Some(&id), None),
            &prepared.agent_ids,
            Actor::user(&user.id),
        )
        .await?;
    started(&state, &new_id, prepared.agent_ids);
    Ok((
        StatusCode::CREATED,
        axum::Json(answer(&state, &new_id).await?),
    ))
}
