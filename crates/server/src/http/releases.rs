//! Releases, the fleet's versions, rollouts and each agent's updates.

use std::cmp::Ordering;

use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::error::{ApiError, ApiResult};
use super::extract::{AuthUser, Json};
use super::types::{
    AgentUpdate, AgentUpdateBody, Release, Rollout, RolloutBody, RolloutProgress, VersionCount,
};
use crate::cluster::Notice;
use crate::db::{now_ms, Actor, StoreError};
use crate::rollout::{self, status, Scope};
use crate::state::AppState;

pub async fn list(State(state): State<AppState>) -> ApiResult<axum::Json<Vec<Release>>> {
    let releases = state.store.list_releases().await?;
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut out = Vec::with_capacity(releases.len());
    // Sorted newest first per os/arch: the first of each is the newest.
    for r in releases {
        let key = (r.os.clone(), r.arch.clone());
        let newest = !seen.contains(&key);
        if newest {
            seen.push(key);
        }
        out.push(Release::new(r, newest));
    }
    Ok(axum::Json(out))
}

pub async fn versions(State(state): State<AppState>) -> ApiResult<axum::Json<Vec<VersionCount>>> {
    let counts = state.store.version_counts().await?;
    Ok(axum::Json(counts.into_iter().map(Into::into).collect()))
}

async fn with_progress(state: &AppState, r: rollout::Rollout) -> ApiResult<Rollout> {
    let mut progress = RolloutProgress::default();
    for v in state.store.version_counts().await? {
        if v.os.as_deref() == Some(&r.os) && v.arch.as_deref() == Some(&r.arch) {
            progress.agents += v.agents;
            let current = v
                .version
                .as_deref()
                .and_then(|have| rollout::compare(have, &r.version));
            if matches!(current, Some(Ordering::Equal | Ordering::Greater)) {
                progress.up_to_date += v.agents;
            }
        }
    }
    for (s, n) in state
        .store
        .update_counts(&r.os, &r.arch, &r.version)
        .await?
    {
        match s.as_str() {
            status::PENDING => progress.pending = n,
            status::DOWNLOADING => progress.downloading = n,
            status::INSTALLED => progress.installed = n,
            status::COMPLETED => progress.completed = n,
            status::FAILED => progress.failed = n,
            status::ROLLED_BACK => progress.rolled_back = n,
            _ => {}
        }
    }
    Ok(Rollout {
        updated_at: crate::db::rfc3339::format(r.updated_at),
        os: r.os,
        arch: r.arch,
        version: r.version,
        scope: r.scope,
        site_ids: r.site_ids,
        client_ids: r.client_ids,
        percent: r.percent,
        paused: r.paused,
        progress,
    })
}

pub async fn rollouts(State(state): State<AppState>) -> ApiResult<axum::Json<Vec<Rollout>>> {
    let mut out = Vec::new();
    for r in state.store.rollouts().await? {
        out.push(with_progress(&state, r).await?);
    }
    Ok(axum::Json(out))
}

pub async fn set_rollout(
    State(state): State<AppState>,
    user: AuthUser,
    Path((os, arch)): Path<(String, String)>,
    Json(body): Json<RolloutBody>,
) -> ApiResult<axum::Json<Rollout>> {
    rollout::check_os(&os).map_err(ApiError::NotFound)?;
    rollout::check_arch(&arch).map_err(ApiError::NotFound)?;
    let version = rollout::parse_version(&body.version)
        .map_err(ApiError::BadRequest)?
        .to_string();
    if body.percent > 100 {
        return Err(ApiError::BadRequest("percent must be 0..100".into()));
    }
    if state.store.release(&version, &os, &arch).await?.is_none() {
        return Err(ApiError::BadRequest(format!(
            "no build of version {version} is published for {os} {arch} (gururmm-server release add)"
        )));
    }
    match body.scope {
        Scope::Sites if body.site_ids.is_empty() => {
            return Err(ApiError::BadRequest(
                "scope sites needs at least one site in site_ids".into(),
            ))
        }
        Scope::Clients if body.client_ids.is_empty() => {
            return Err(ApiError::BadRequest(
                "scope clients needs at least one client in client_ids".into(),
            ))
        }
        _ => {}
    }
    for id in &body.site_ids {
        if state.store.site(id).await?.is_none() {
            return Err(ApiError::BadRequest(format!("site_ids: no site {id}")));
        }
    }
    for id in &body.client_ids {
        if state.store.client(id).await?.is_none() {
            return Err(ApiError::BadRequest(format!("client_ids: no client {id}")));
        }
    }
    let target = rollout::Rollout {
        os,
        arch,
        version,
        scope: body.scope,
        site_ids: body.site_ids,
        client_ids: body.client_ids,
        percent: body.percent,
        paused: body.paused,
        updated_at: now_ms(),
    };
    state
        .store
        .set_rollout(&target, Actor::user(&user.id))
        .await?;
    // Agents connected to any node hear of it now; legacy agents when they next poll.
    rollout::reevaluate(&state, &target.os, &target.arch);
    state.cluster.tell_others(Notice::RolloutChanged {
        os: target.os.clone(),
        arch: target.arch.clone(),
    });
    Ok(axum::Json(with_progress(&state, target).await?))
}

pub async fn agent_updates(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<AgentUpdate>>> {
    super::agents::load_agent(&state, &id).await?;
    let rows = state.store.agent_updates(&id).await?;
    Ok(axum::Json(rows.into_iter().map(Into::into).collect()))
}

/// A technician's update of one agent: any published version, an older one as a downgrade.
pub async fn request_update(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(body): Json<AgentUpdateBody>,
) -> ApiResult<(StatusCode, axum::Json<AgentUpdate>)> {
    let version = rollout::parse_version(&body.version)
        .map_err(ApiError::BadRequest)?
        .to_string();
    request(&state, &user, &id, &version).await
}

/// Tries the agent's last failed (or rolled back) update again.
pub async fn retry_update(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, axum::Json<AgentUpdate>)> {
    super::agents::load_agent(&state, &id).await?;
    let last = state.store.agent_updates(&id).await?.into_iter().next();
    let version = match last {
        Some(u) if u.status == status::FAILED || u.status == status::ROLLED_BACK => u.to_version,
        _ => {
            return Err(ApiError::Conflict(
                "the agent's last update did not fail: nothing to retry".into(),
            ))
        }
    };
    request(&state, &user, &id, &version).await
}

async fn request(
    state: &AppState,
    user: &AuthUser,
    id: &str,
    version: &str,
) -> ApiResult<(StatusCode, axum::Json<AgentUpdate>)> {
    let agent = super::agents::load_agent(state, id).await?;
    let (Some(os), Some(arch)) = (agent.os_type.as_deref(), agent.arch.as_deref()) else {
        return Err(ApiError::Conflict(
            "the agent has not said its os and arch yet".into(),
        ));
    };
    if state.store.release(version, os, arch).await?.is_none() {
        return Err(ApiError::BadRequest(format!(
            "no build of version {version} is published for {os} {arch}"
        )));
    }
    let order = agent
        .version
        .as_deref()
        .and_then(|have| rollout::compare(version, have));
    if order == Some(Ordering::Equal) {
        return Err(ApiError::Conflict(format!(
            "the agent already runs {version}"
        )));
    }
    let downgrade = order == Some(Ordering::Less);
    let row = state
        .store
        .request_update(
            id,
            agent.version.as_deref(),
            version,
            downgrade,
            Actor::user(&user.id),
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict { .. } => ApiError::Conflict(format!(
                "an update to {version} is already under way on this agent"
            )),
            other => other.into(),
        })?;
    rollout::publish(state, &row);
    // Connected here or to another node: it goes out now, with the download address of the
    // agent's own connection. Offline: when it next connects or polls.
    if !rollout::offer_if_connected(state, id).await? {
        state.cluster.tell_others(Notice::UpdateRequested {
            agent_id: id.to_owned(),
        });
    }
    let row = state
        .store
        .agent_updates(id)
        .await?
        .into_iter()
        .find(|r| r.id == row.id)
        .unwrap_or(row);
    Ok((StatusCode::CREATED, axum::Json(row.into())))
}
