//! Policies, their assignments, and an agent's effective policy. Every change reaches the
//! connected agents it affects at once (`crate::policy::changed`).

use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::error::{ApiError, ApiResult};
use super::extract::{AuthUser, Json};
use super::types::{
    list, EffectivePolicy, NamedPolicy, NamedPolicyBody, PolicyAssignment, PolicyAssignmentBody,
};
use crate::db::Actor;
use crate::state::AppState;

/// Checks a body; answers the name and description to store.
fn checked(body: &NamedPolicyBody) -> ApiResult<(String, Option<String>)> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "name: 1 to 200 characters, no control characters".into(),
        ));
    }
    let description = match body.description.as_deref().map(str::trim) {
        Some(d) if d.len() > 10_000 => {
            return Err(ApiError::BadRequest(
                "description: at most 10000 bytes".into(),
            ))
        }
        Some("") | None => None,
        Some(d) => Some(d.to_owned()),
    };
    body.settings
        .check_limits()
        .map_err(|e| ApiError::BadRequest(format!("settings.{e}")))?;
    Ok((name.to_owned(), description))
}

pub async fn list_policies(
    State(state): State<AppState>,
) -> ApiResult<axum::Json<Vec<NamedPolicy>>> {
    Ok(axum::Json(list(state.store.list_policies().await?)))
}

pub async fn get_policy(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<NamedPolicy>> {
    super::error::found(state.store.policy(&id).await?, "policy")
}

pub async fn create_policy(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<NamedPolicyBody>,
) -> ApiResult<(StatusCode, axum::Json<NamedPolicy>)> {
    let (name, description) = checked(&body)?;
    let policy = state
        .store
        .create_policy(
            &name,
            description.as_deref(),
            &body.settings,
            Actor::user(&user.id),
        )
        .await?;
    // Not assigned anywhere yet: no agent is affected.
    Ok((StatusCode::CREATED, axum::Json(policy.into())))
}

pub async fn update_policy(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(body): Json<NamedPolicyBody>,
) -> ApiResult<axum::Json<NamedPolicy>> {
    let (name, description) = checked(&body)?;
    state
        .store
        .update_policy(
            &id,
            &name,
            description.as_deref(),
            &body.settings,
            Actor::user(&user.id),
        )
        .await?;
    crate::policy::changed(&state);
    get_policy(State(state), Path(id)).await
}

pub async fn delete_policy(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_policy(&id, Actor::user(&user.id))
        .await?;
    crate::policy::changed(&state);
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_assignments(
    State(state): State<AppState>,
) -> ApiResult<axum::Json<Vec<PolicyAssignment>>> {
    Ok(axum::Json(list(
        state.store.list_policy_assignments().await?,
    )))
}

pub async fn create_assignment(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<PolicyAssignmentBody>,
) -> ApiResult<(StatusCode, axum::Json<PolicyAssignment>)> {
    body.scope.check().map_err(ApiError::BadRequest)?;
    if !state.store.scope_target_exists(&body.scope).await? {
        return Err(ApiError::BadRequest(format!(
            "scope.id: no {} with id {}",
            body.scope.kind.as_str(),
            body.scope.id.as_deref().unwrap_or_default()
        )));
    }
    if state.store.policy(&body.policy_id).await?.is_none() {
        return Err(ApiError::BadRequest(format!(
            "policy_id: no policy with id {}",
            body.policy_id
        )));
    }
    let id = state
        .store
        .create_policy_assignment(&body.policy_id, &body.scope, Actor::user(&user.id))
        .await
        .map_err(|e| match e {
            crate::db::StoreError::Conflict { .. } => ApiError::Conflict(
                "this scope has a policy already: remove that assignment first".into(),
            ),
            other => other.into(),
        })?;
    crate::policy::changed(&state);
    let created = state
        .store
        .policy_assignment(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("policy assignment"))?;
    Ok((StatusCode::CREATED, axum::Json(created.into())))
}

pub async fn delete_assignment(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_policy_assignment(&id, Actor::user(&user.id))
        .await?;
    crate::policy::changed(&state);
    Ok(StatusCode::NO_CONTENT)
}

pub async fn agent_policy(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<EffectivePolicy>> {
    let eff = crate::policy::effective_for(&state, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent"))?;
    let status = state.store.policy_status(&id).await?;
    Ok(axum::Json(EffectivePolicy::new(id, eff, status)))
}
