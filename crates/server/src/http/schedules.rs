//! Schedules: a job run once at a time, or on a cron expression in a time zone.

use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::error::{ApiError, ApiResult};
use super::extract::{AuthUser, Json};
use super::types::{Schedule, ScheduleBody};
use crate::db::{Actor, ScheduleFields, ScheduleRecord};
use crate::schedules::{next_slot, parse_zone};
use crate::state::AppState;

/// A stored schedule as the API shows it (its job was checked when saved).
fn shown(r: ScheduleRecord) -> ApiResult<Schedule> {
    Schedule::try_from(r).map_err(|e| ApiError::Internal(anyhow::anyhow!("stored schedule: {e}")))
}

/// The checked fields, with the first slot from now.
struct Checked {
    name: String,
    job_json: String,
    cron: Option<String>,
    time_zone: String,
    run_at: Option<i64>,
    next_run_at: Option<i64>,
}

async fn checked(state: &AppState, body: &ScheduleBody) -> ApiResult<Checked> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "name: 1 to 200 characters, no control characters".into(),
        ));
    }
    let time_zone = body.time_zone.as_deref().map(str::trim).unwrap_or("UTC");
    parse_zone(time_zone).map_err(ApiError::BadRequest)?;
    // The job is checked now as it would start (script, parameters, target), except that its
    // target may match no agent yet.
    super::jobs::prepare_for(state, &body.job, false).await?;
    let now = crate::db::now_ms();
    let (cron, run_at, next_run_at) = match (&body.cron, &body.run_at) {
        (Some(cron), None) => {
            let cron = cron.trim().to_owned();
            let next = next_slot(&cron, time_zone, now).map_err(ApiError::BadRequest)?;
            (Some(cron), None, Some(next))
        }
        (None, Some(at)) => {
            let at = chrono::DateTime::parse_from_rfc3339(at)
                .map_err(|_| {
                    ApiError::BadRequest(format!("run_at: {at:?} is not an RFC 3339 time"))
                })?
                .timestamp_millis();
            if at <= now {
                return Err(ApiError::BadRequest("run_at: must be in the future".into()));
            }
            (None, Some(at), Some(at))
        }
        _ => {
            return Err(ApiError::BadRequest(
                "give either cron (repeating) or run_at (once)".into(),
            ))
        }
    };
    Ok(Checked {
        name: name.to_owned(),
        job_json: serde_json::to_string(&body.job).unwrap_or_default(),
        cron,
        time_zone: time_zone.to_owned(),
        run_at,
        next_run_at,
    })
}

impl Checked {
    fn fields(&self, paused: bool) -> ScheduleFields<'_> {
        ScheduleFields {
            name: &self.name,
            job_json: &self.job_json,
            cron: self.cron.as_deref(),
            time_zone: &self.time_zone,
            run_at: self.run_at,
            paused,
            next_run_at: self.next_run_at,
        }
    }
}

pub async fn list(State(state): State<AppState>) -> ApiResult<axum::Json<Vec<Schedule>>> {
    let rows = state.store.list_schedules().await?;
    Ok(axum::Json(
        rows.into_iter().map(shown).collect::<ApiResult<_>>()?,
    ))
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Schedule>> {
    let row = state
        .store
        .schedule(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("schedule"))?;
    Ok(axum::Json(shown(row)?))
}

pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<ScheduleBody>,
) -> ApiResult<(StatusCode, axum::Json<Schedule>)> {
    let c = checked(&state, &body).await?;
    let id = state
        .store
        .create_schedule(
            &c.fields(body.paused),
            Some(&user.email),
            Actor::user(&user.id),
        )
        .await?;
    let axum::Json(schedule) = get(State(state), Path(id)).await?;
    Ok((StatusCode::CREATED, axum::Json(schedule)))
}

/// Replaces a schedule. Its next slot is worked out again from now, so resuming a paused
/// schedule does not run the slots it missed while paused.
pub async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(body): Json<ScheduleBody>,
) -> ApiResult<axum::Json<Schedule>> {
    let c = checked(&state, &body).await?;
    state
        .store
        .update_schedule(&id, &c.fields(body.paused), Actor::user(&user.id))
        .await?;
    get(State(state), Path(id)).await
}

pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_schedule(&id, Actor::user(&user.id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
