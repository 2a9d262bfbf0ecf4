//! Clients (the MSP's customers) and their sites, each site with its enrollment code.

use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::error::{ApiError, ApiResult};
use super::extract::{AuthUser, Json};
use super::types::{
    list, Client, ClientBody, EnrollmentToken, NewEnrollmentToken, NewSiteBody, NewTokenBody, Site,
    SiteBody,
};
use crate::auth::key_hash;
use crate::db::{Actor, StoreError};
use crate::site_code;
use crate::state::AppState;

fn clean_name(name: &str, what: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::BadRequest(format!(
            "{what} name must be 1 to 200 characters"
        )));
    }
    Ok(name.to_owned())
}

fn clean_notes(notes: Option<String>) -> ApiResult<Option<String>> {
    match notes {
        Some(n) if n.len() > 10_000 => Err(ApiError::BadRequest(
            "notes must be at most 10000 bytes".into(),
        )),
        Some(n) if n.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

pub async fn list_clients(State(state): State<AppState>) -> ApiResult<axum::Json<Vec<Client>>> {
    Ok(axum::Json(list(state.store.list_clients().await?)))
}

pub async fn create_client(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<ClientBody>,
) -> ApiResult<(StatusCode, axum::Json<Client>)> {
    let name = clean_name(&body.name, "client")?;
    let client = state
        .store
        .create_client(
            &name,
            clean_notes(body.notes)?.as_deref(),
            Actor::user(&user.id),
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(client.into())))
}

pub async fn get_client(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Client>> {
    super::error::found(state.store.client(&id).await?, "client")
}

pub async fn update_client(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(body): Json<ClientBody>,
) -> ApiResult<axum::Json<Client>> {
    let name = clean_name(&body.name, "client")?;
    state
        .store
        .update_client(
            &id,
            &name,
            clean_notes(body.notes)?.as_deref(),
            Actor::user(&user.id),
        )
        .await?;
    get_client(State(state), Path(id)).await
}

pub async fn delete_client(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_client(&id, Actor::user(&user.id))
        .await?;
    state.placement_changed().await;
    Ok(StatusCode::NO_CONTENT)
}

/// Sites as `user` may see them (site codes masked for viewers).
fn sites_for(user: &AuthUser, rows: Vec<crate::db::SiteRecord>) -> Vec<Site> {
    list::<_, Site>(rows)
        .into_iter()
        .map(|s| s.for_user(user))
        .collect()
}

pub async fn client_sites(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<Site>>> {
    if state.store.client(&id).await?.is_none() {
        return Err(ApiError::not_found("client"));
    }
    let sites = state.store.list_sites(Some(&id)).await?;
    Ok(axum::Json(sites_for(&user, sites)))
}

/// Tries fresh codes until one is free (a clash is rare: 78 * 78 * 9000 codes).
async fn with_unique_code<F, Fut, T>(mut attempt: F) -> ApiResult<T>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    for _ in 0..20 {
        match attempt(site_code::generate()).await {
            Err(e) if e.is_conflict() => continue,
            other => return other.map_err(Into::into),
        }
    }
    Err(ApiError::Internal(anyhow::anyhow!(
        "could not find a free site code"
    )))
}

pub async fn list_sites(
    State(state): State<AppState>,
    user: AuthUser,
) -> ApiResult<axum::Json<Vec<Site>>> {
    let sites = state.store.list_sites(None).await?;
    Ok(axum::Json(sites_for(&user, sites)))
}

pub async fn create_site(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<NewSiteBody>,
) -> ApiResult<(StatusCode, axum::Json<Site>)> {
    let name = clean_name(&body.name, "site")?;
    let notes = clean_notes(body.notes)?;
    if state.store.client(&body.client_id).await?.is_none() {
        return Err(ApiError::BadRequest(format!(
            "client {} does not exist",
            body.client_id
        )));
    }
    let store = &state.store;
    let by = Actor::user(&user.id);
    let id = with_unique_code(|code| {
        let (name, notes, client_id) = (&name, &notes, &body.client_id);
        async move {
            store
                .create_site(client_id, name, &code, notes.as_deref(), by)
                .await
        }
    })
    .await?;
    if body.require_approval {
        store.set_site_require_approval(&id, true, by).await?;
    }
    let site = state
        .store
        .site(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("site"))?;
    Ok((StatusCode::CREATED, axum::Json(site.into())))
}

pub async fn get_site(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Site>> {
    state
        .store
        .site(&id)
        .await?
        .map(|s| axum::Json(Site::from(s).for_user(&user)))
        .ok_or_else(|| ApiError::not_found("site"))
}

pub async fn update_site(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(body): Json<SiteBody>,
) -> ApiResult<axum::Json<Site>> {
    let name = clean_name(&body.name, "site")?;
    state
        .store
        .update_site(
            &id,
            &name,
            clean_notes(body.notes)?.as_deref(),
            Actor::user(&user.id),
        )
        .await?;
    if let Some(require) = body.require_approval {
        state
            .store
            .set_site_require_approval(&id, require, Actor::user(&user.id))
            .await?;
    }
    get_site(State(state), user, Path(id)).await
}

pub async fn delete_site(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.delete_site(&id, Actor::user(&user.id)).await?;
    state.placement_changed().await;
    Ok(StatusCode::NO_CONTENT)
}

/// A new enrollment code; the old one stops working at once. Enrolled agents keep their keys.
pub async fn regenerate_code(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Site>> {
    let store = &state.store;
    let by = Actor::user(&user.id);
    with_unique_code(|code| {
        let id = &id;
        async move { store.set_site_code(id, &code, by).await }
    })
    .await?;
    get_site(State(state), user, Path(id)).await
}

/// Creates an enrollment token for the site; the `grmt_` secret is shown in this answer only.
pub async fn create_token(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(body): Json<NewTokenBody>,
) -> ApiResult<(StatusCode, axum::Json<NewEnrollmentToken>)> {
    let hours = body.expires_in_hours.unwrap_or(72);
    if !(1..=8760).contains(&hours) {
        return Err(ApiError::BadRequest(
            "expires_in_hours must be 1..=8760".into(),
        ));
    }
    let max_uses = body.max_uses.unwrap_or(1);
    if !(1..=10_000).contains(&max_uses) {
        return Err(ApiError::BadRequest("max_uses must be 1..=10000".into()));
    }
    if state.store.site(&id).await?.is_none() {
        return Err(ApiError::not_found("site"));
    }
    let secret = crate::session::enroll::new_token();
    let hint: String = secret.chars().take(9).collect();
    let expires_at = crate::db::now_ms() + i64::from(hours) * 3_600_000;
    let token = state
        .store
        .create_token(
            &id,
            &key_hash(&secret),
            &hint,
            expires_at,
            i64::from(max_uses),
            Actor::user(&user.id),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(NewEnrollmentToken {
            token: token.into(),
            secret,
        }),
    ))
}

pub async fn list_tokens(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<EnrollmentToken>>> {
    if state.store.site(&id).await?.is_none() {
        return Err(ApiError::not_found("site"));
    }
    Ok(axum::Json(list(state.store.site_tokens(&id).await?)))
}

/// Revokes a token: it enrolls nothing from now on (machines it enrolled keep their keys).
pub async fn revoke_token(
    State(state): State<AppState>,
    user: AuthUser,
    Path((id, token_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .store
        .revoke_token(&id, &token_id, Actor::user(&user.id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
