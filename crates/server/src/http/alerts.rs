//! Alert rules, alerts (list, acknowledge, resolve, the header's counts) and maintenance
//! windows.

use std::future::Future;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::agents::parse_time;
use super::error::{ApiError, ApiResult};
use super::extract::{AuthUser, Json, Query};
use crate::alerting::engine::announce;
use crate::alerting::maintenance::{MaintenanceWindow, MaintenanceWindowBody};
use crate::alerting::rules::{AlertRule, AlertRuleBody, RuleKind};
use crate::alerting::Severity;
use crate::db::{rfc3339, Actor, AlertFilter, AlertRecord, DbResult, Store};
use crate::scope::Scope;
use crate::state::AppState;

/// Where an alert stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Open,
    Acknowledged,
    Resolved,
}

impl AlertStatus {
    fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Open => "open",
            AlertStatus::Acknowledged => "acknowledged",
            AlertStatus::Resolved => "resolved",
        }
    }

    fn parse(s: &str) -> AlertStatus {
        match s {
            "open" => AlertStatus::Open,
            "acknowledged" => AlertStatus::Acknowledged,
            _ => AlertStatus::Resolved,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Alert {
    pub id: String,
    /// Null when the rule was deleted since.
    #[schema(required = true)]
    pub rule_id: Option<String>,
    pub rule_name: String,
    pub agent_id: String,
    pub hostname: String,
    #[schema(required = true)]
    pub site_id: Option<String>,
    #[schema(required = true)]
    pub client_id: Option<String>,
    pub kind: RuleKind,
    /// The disk's mount or the service name; empty when the kind has none.
    pub subject: String,
    pub severity: Severity,
    pub status: AlertStatus,
    pub message: String,
    pub opened_at: String,
    #[schema(required = true)]
    pub acknowledged_at: Option<String>,
    /// The user who acknowledged it.
    #[schema(required = true)]
    pub acknowledged_by: Option<String>,
    /// That user's email (null once the user is deleted).
    #[schema(required = true)]
    pub acknowledged_by_email: Option<String>,
    #[schema(required = true)]
    pub acknowledged_note: Option<String>,
    #[schema(required = true)]
    pub resolved_at: Option<String>,
    /// The user who resolved it; null when it resolved by itself (or is not resolved).
    #[schema(required = true)]
    pub resolved_by: Option<String>,
    /// That user's email (null once the user is deleted).
    #[schema(required = true)]
    pub resolved_by_email: Option<String>,
    #[schema(required = true)]
    pub resolved_note: Option<String>,
}

impl From<AlertRecord> for Alert {
    fn from(r: AlertRecord) -> Alert {
        Alert {
            id: r.id,
            rule_id: r.rule_id,
            rule_name: r.rule_name,
            agent_id: r.agent_id,
            hostname: r.hostname,
            site_id: r.site_id,
            client_id: r.client_id,
            kind: r.kind,
            subject: r.subject,
            severity: r.severity,
            status: AlertStatus::parse(&r.status),
            message: r.message,
            opened_at: rfc3339::format(r.opened_at),
            acknowledged_at: r.acknowledged_at.map(rfc3339::format),
            acknowledged_by: r.acknowledged_by,
            acknowledged_by_email: r.acknowledged_by_email,
            acknowledged_note: r.acknowledged_note,
            resolved_at: r.resolved_at.map(rfc3339::format),
            resolved_by: r.resolved_by,
            resolved_by_email: r.resolved_by_email,
            resolved_note: r.resolved_note,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertListQuery {
    #[serde(default, deserialize_with = "super::types::empty_as_none")]
    #[param(inline)]
    pub status: Option<AlertStatus>,
    #[serde(default, deserialize_with = "super::types::empty_as_none")]
    #[param(inline)]
    pub severity: Option<Severity>,
    pub client_id: Option<String>,
    pub site_id: Option<String>,
    pub agent_id: Option<String>,
    pub rule_id: Option<String>,
    /// Opened at or after: RFC 3339 or Unix seconds.
    pub since: Option<String>,
    /// Opened before: RFC 3339 or Unix seconds.
    pub until: Option<String>,
    /// 1..=1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Skip this many (paging); default 0.
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

/// Unresolved alerts: open ones by severity, and how many are acknowledged.
#[derive(Serialize, ToSchema)]
pub struct AlertSummary {
    /// Open (not acknowledged) alerts.
    pub open: i64,
    pub critical: i64,
    pub warning: i64,
    pub info: i64,
    pub acknowledged: i64,
    /// The highest severity among open alerts; null when none.
    #[schema(required = true)]
    pub highest: Option<Severity>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertNoteBody {
    /// Up to 2000 characters.
    #[serde(default)]
    pub note: Option<String>,
}

fn clean_note(note: Option<String>) -> ApiResult<Option<String>> {
    match note.map(|n| n.trim().to_owned()) {
        Some(n) if n.chars().count() > 2000 => Err(ApiError::BadRequest(
            "note: must be at most 2000 characters".into(),
        )),
        Some(n) if n.is_empty() => Ok(None),
        other => Ok(other),
    }
}

fn no_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

async fn check_scope(state: &AppState, scope: &Scope) -> ApiResult<()> {
    if !state.store.scope_target_exists(scope).await? {
        return Err(ApiError::BadRequest(format!(
            "scope.id: no such {}",
            scope.kind.as_str()
        )));
    }
    Ok(())
}

// ---- rules and maintenance windows: edited alike

/// Checked, the scope's target checked, saved with its audit row; then every node reloads.
pub trait Editable: Serialize + Sized + Send + 'static {
    type Body: serde::de::DeserializeOwned + Send + 'static;
    type Input: Send + Sync;
    const WHAT: &'static str;
    fn check(body: Self::Body) -> Result<Self::Input, String>;
    fn scope(input: &Self::Input) -> &Scope;
    fn list(store: &Store) -> impl Future<Output = DbResult<Vec<Self>>> + Send + '_;
    fn load<'a>(
        store: &'a Store,
        id: &'a str,
    ) -> impl Future<Output = DbResult<Option<Self>>> + Send + 'a;
    fn save<'a>(
        store: &'a Store,
        id: Option<&'a str>,
        input: &'a Self::Input,
        by: Actor<'a>,
    ) -> impl Future<Output = DbResult<Self>> + Send + 'a;
    fn delete<'a>(
        store: &'a Store,
        id: &'a str,
        by: Actor<'a>,
    ) -> impl Future<Output = DbResult<()>> + Send + 'a;
}

impl Editable for AlertRule {
    type Body = AlertRuleBody;
    type Input = crate::alerting::rules::RuleInput;
    const WHAT: &'static str = "alert rule";
    fn check(body: AlertRuleBody) -> Result<Self::Input, String> {
        body.check()
    }
    fn scope(input: &Self::Input) -> &Scope {
        &input.scope
    }
    fn list(store: &Store) -> impl Future<Output = DbResult<Vec<Self>>> + Send + '_ {
        store.list_alert_rules()
    }
    fn load<'a>(
        store: &'a Store,
        id: &'a str,
    ) -> impl Future<Output = DbResult<Option<Self>>> + Send + 'a {
        store.alert_rule(id)
    }
    fn save<'a>(
        store: &'a Store,
        id: Option<&'a str>,
        input: &'a Self::Input,
        by: Actor<'a>,
    ) -> impl Future<Output = DbResult<Self>> + Send + 'a {
        store.save_alert_rule(id, input, by)
    }
    fn delete<'a>(
        store: &'a Store,
        id: &'a str,
        by: Actor<'a>,
    ) -> impl Future<Output = DbResult<()>> + Send + 'a {
        store.delete_alert_rule(id, by)
    }
}

impl Editable for MaintenanceWindow {
    type Body = MaintenanceWindowBody;
    type Input = crate::alerting::maintenance::WindowInput;
    const WHAT: &'static str = "maintenance window";
    fn check(body: MaintenanceWindowBody) -> Result<Self::Input, String> {
        body.check()
    }
    fn scope(input: &Self::Input) -> &Scope {
        &input.scope
    }
    fn list(store: &Store) -> impl Future<Output = DbResult<Vec<Self>>> + Send + '_ {
        store.list_maintenance_windows()
    }
    fn load<'a>(
        store: &'a Store,
        id: &'a str,
    ) -> impl Future<Output = DbResult<Option<Self>>> + Send + 'a {
        store.maintenance_window(id)
    }
    fn save<'a>(
        store: &'a Store,
        id: Option<&'a str>,
        input: &'a Self::Input,
        by: Actor<'a>,
    ) -> impl Future<Output = DbResult<Self>> + Send + 'a {
        store.save_maintenance_window(id, input, by)
    }
    fn delete<'a>(
        store: &'a Store,
        id: &'a str,
        by: Actor<'a>,
    ) -> impl Future<Output = DbResult<()>> + Send + 'a {
        store.delete_maintenance_window(id, by)
    }
}

pub async fn list_of<T: Editable>(State(state): State<AppState>) -> ApiResult<axum::Json<Vec<T>>> {
    Ok(axum::Json(T::list(&state.store).await?))
}

pub async fn get_of<T: Editable>(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<T>> {
    T::load(&state.store, &id)
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found(T::WHAT))
}

async fn save_of<T: Editable>(
    state: &AppState,
    user: &AuthUser,
    id: Option<&str>,
    body: T::Body,
) -> ApiResult<T> {
    let input = T::check(body).map_err(ApiError::BadRequest)?;
    check_scope(state, T::scope(&input)).await?;
    let saved = T::save(&state.store, id, &input, Actor::user(&user.id)).await?;
    state.alerting.changed(state).await;
    Ok(saved)
}

pub async fn create_of<T: Editable>(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<T::Body>,
) -> ApiResult<(StatusCode, axum::Json<T>)> {
    let saved = save_of::<T>(&state, &user, None, body).await?;
    Ok((StatusCode::CREATED, axum::Json(saved)))
}

pub async fn update_of<T: Editable>(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(body): Json<T::Body>,
) -> ApiResult<axum::Json<T>> {
    Ok(axum::Json(
        save_of::<T>(&state, &user, Some(&id), body).await?,
    ))
}

pub async fn delete_of<T: Editable>(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    T::delete(&state.store, &id, Actor::user(&user.id)).await?;
    state.alerting.changed(&state).await;
    Ok(StatusCode::NO_CONTENT)
}

// ---- alerts

pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<AlertListQuery>,
) -> ApiResult<axum::Json<Vec<Alert>>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest("limit: must be 1..=1000".into()));
    }
    let offset = q.offset.unwrap_or(0);
    if !(0..=1_000_000).contains(&offset) {
        return Err(ApiError::BadRequest("offset: must be 0..=1000000".into()));
    }
    let filter = AlertFilter {
        status: q.status.map(|s| s.as_str().to_owned()),
        severity: q.severity,
        client_id: no_empty(q.client_id),
        site_id: no_empty(q.site_id),
        agent_id: no_empty(q.agent_id),
        rule_id: no_empty(q.rule_id),
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
        offset,
    };
    let rows = state.store.list_alerts(&filter).await?;
    Ok(axum::Json(rows.into_iter().map(Alert::from).collect()))
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Alert>> {
    super::error::found(state.store.alert(&id).await?, "alert")
}

pub async fn summary(State(state): State<AppState>) -> ApiResult<axum::Json<AlertSummary>> {
    let c = state.store.alert_counts().await?;
    let highest = [
        (c.critical, Severity::Critical),
        (c.warning, Severity::Warning),
        (c.info, Severity::Info),
    ]
    .into_iter()
    .find(|(n, _)| *n > 0)
    .map(|(_, s)| s);
    Ok(axum::Json(AlertSummary {
        open: c.critical + c.warning + c.info,
        critical: c.critical,
        warning: c.warning,
        info: c.info,
        acknowledged: c.acknowledged,
        highest,
    }))
}

/// 404 for an unknown alert, 409 when it is not in a state the change applies to.
async fn refused(state: &AppState, id: &str, what: &str) -> ApiError {
    match state.store.alert(id).await {
        Ok(Some(a)) => ApiError::Conflict(format!("cannot {what} an alert that is {}", a.status)),
        Ok(None) => ApiError::not_found("alert"),
        Err(e) => e.into(),
    }
}

pub async fn acknowledge(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(body): Json<AlertNoteBody>,
) -> ApiResult<axum::Json<Alert>> {
    let note = clean_note(body.note)?;
    match state
        .store
        .acknowledge_alert(&id, note.as_deref(), Actor::user(&user.id))
        .await?
    {
        Some(alert) => {
            announce(&state, &alert);
            Ok(axum::Json(alert.into()))
        }
        None => Err(refused(&state, &id, "acknowledge").await),
    }
}

pub async fn resolve(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(body): Json<AlertNoteBody>,
) -> ApiResult<axum::Json<Alert>> {
    let note = clean_note(body.note)?;
    match state
        .store
        .resolve_alert(&id, note.as_deref(), Actor::user(&user.id))
        .await?
    {
        Some(alert) => {
            if let Some(rule_id) = &alert.rule_id {
                state
                    .alerting
                    .forget(rule_id, &alert.agent_id, &alert.subject);
            }
            announce(&state, &alert);
            Ok(axum::Json(alert.into()))
        }
        None => Err(refused(&state, &id, "resolve").await),
    }
}
