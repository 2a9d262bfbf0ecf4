//! Notification channels, their routes, and the delivery log (see `crate::notify`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiResult};
use super::extract::{AuthUser, Json, Query};
use crate::alerting::Severity;
use crate::auth::Role;
use crate::db::notifications::{
    AttemptRecord, ChannelChange, ChannelRecord, DeliveryFilter, DeliveryRecord, RouteRecord,
};
use crate::db::{rfc3339::format as time, Actor};
use crate::notify::Payload;
use crate::scope::Scope;
use crate::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// JSON POST signed with HMAC-SHA256 (`X-GuruRMM-Signature`).
    Webhook,
    /// A Slack incoming webhook.
    Slack,
    /// A Microsoft Teams incoming webhook (MessageCard).
    Teams,
    /// Email over the server's SMTP settings.
    Email,
}

impl ChannelKind {
    fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Slack => "slack",
            ChannelKind::Teams => "teams",
            ChannelKind::Email => "email",
        }
    }
}

/// A channel as created or changed.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "Ops webhook", "kind": "webhook", "url": "http://127.0.0.1:9/hook", "secret": "a-long-shared-secret"}))]
pub struct ChannelBody {
    pub name: String,
    pub kind: ChannelKind,
    /// `http://` or `https://` URL: webhook, slack and teams.
    #[serde(default)]
    pub url: Option<String>,
    /// Email recipients (1 to 20): email.
    #[serde(default)]
    pub email_to: Vec<String>,
    /// Webhook signing secret (16 to 256 characters): required when a webhook is created,
    /// kept when left out of a change; never shown again.
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

#[derive(Serialize, ToSchema)]
pub struct NotificationChannel {
    pub id: String,
    pub name: String,
    pub kind: ChannelKind,
    /// The full URL for admins (a Slack or Teams URL is itself a secret); its scheme, host and
    /// port for others.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub email_to: Vec<String>,
    /// Whether a webhook signing secret is set (the secret itself is never shown).
    pub has_secret: bool,
    pub enabled: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl NotificationChannel {
    fn for_user(c: ChannelRecord, user: &AuthUser) -> NotificationChannel {
        let url = c.url.map(|url| {
            if user.role == Role::Admin {
                url
            } else {
                reqwest::Url::parse(&url)
                    .map(|u| {
                        let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
                        format!("{}://{}{port}/…", u.scheme(), u.host_str().unwrap_or(""))
                    })
                    .unwrap_or_default()
            }
        });
        NotificationChannel {
            kind: parse_kind(&c.kind),
            id: c.id,
            name: c.name,
            url,
            email_to: c.email_to,
            has_secret: c.secret_sealed.is_some(),
            enabled: c.enabled,
            created_at: time(c.created_at),
            updated_at: time(c.updated_at),
        }
    }
}

fn parse_kind(kind: &str) -> ChannelKind {
    match kind {
        "slack" => ChannelKind::Slack,
        "teams" => ChannelKind::Teams,
        "email" => ChannelKind::Email,
        _ => ChannelKind::Webhook,
    }
}

/// Which alerts go to a channel: this severity and above, on agents the scope covers.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"channel_id": "<channel id>", "min_severity": "warning", "scope": {"kind": "fleet"}}))]
pub struct RouteBody {
    pub channel_id: String,
    pub min_severity: Severity,
    pub scope: Scope,
}

#[derive(Serialize, ToSchema)]
pub struct NotificationRoute {
    pub id: String,
    pub channel_id: String,
    pub min_severity: Severity,
    pub scope: Scope,
    pub created_at: String,
    pub updated_at: String,
}

impl From<RouteRecord> for NotificationRoute {
    fn from(r: RouteRecord) -> NotificationRoute {
        NotificationRoute {
            id: r.id,
            channel_id: r.channel_id,
            min_severity: r.min_severity,
            scope: r.scope,
            created_at: time(r.created_at),
            updated_at: time(r.updated_at),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> DeliveryStatus {
        match s {
            "delivered" => DeliveryStatus::Delivered,
            "failed" => DeliveryStatus::Failed,
            _ => DeliveryStatus::Pending,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    pub channel_id: Option<String>,
    pub status: Option<DeliveryStatus>,
    pub alert_id: Option<String>,
    /// At most this many, newest first (1 to 500, default 100).
    pub limit: Option<u32>,
}

/// One attempt at a delivery and the answer it got.
#[derive(Serialize, ToSchema)]
pub struct DeliveryAttempt {
    pub attempt: i64,
    pub at: String,
    /// The HTTP status, or the SMTP reply code.
    pub status_code: Option<i64>,
    /// The start of the answer: HTTP body or SMTP reply text.
    pub response: Option<String>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

#[derive(Serialize, ToSchema)]
pub struct NotificationDelivery {
    /// Also sent as `X-GuruRMM-Delivery`; the same across retries.
    pub id: String,
    pub channel_id: String,
    /// None for a test delivery.
    pub alert_id: Option<String>,
    pub status: DeliveryStatus,
    pub attempt_count: i64,
    /// When it is tried next, while pending.
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
    /// What is sent (the webhook body).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub attempts: Vec<DeliveryAttempt>,
}

impl From<(DeliveryRecord, Vec<AttemptRecord>)> for NotificationDelivery {
    fn from((d, attempts): (DeliveryRecord, Vec<AttemptRecord>)) -> NotificationDelivery {
        let status = DeliveryStatus::parse(&d.status);
        NotificationDelivery {
            id: d.id,
            channel_id: d.channel_id,
            alert_id: d.alert_id,
            status,
            attempt_count: d.attempts,
            next_attempt_at: (status == DeliveryStatus::Pending).then(|| time(d.next_attempt_at)),
            last_error: d.last_error,
            created_at: time(d.created_at),
            delivered_at: d.delivered_at.map(time),
            payload: serde_json::from_str(&d.payload).unwrap_or_default(),
            attempts: attempts
                .into_iter()
                .map(|a| DeliveryAttempt {
                    attempt: a.attempt,
                    at: time(a.at),
                    status_code: a.status_code,
                    response: a.response,
                    error: a.error,
                    duration_ms: a.duration_ms,
                })
                .collect(),
        }
    }
}

// ---- channels

struct CheckedChannel {
    name: String,
    url: Option<String>,
    email_to: Vec<String>,
    secret_sealed: Option<String>,
}

fn check_channel(
    state: &AppState,
    body: &ChannelBody,
    existing: Option<&ChannelRecord>,
) -> ApiResult<CheckedChannel> {
    let bad = |m: &str| Err(ApiError::BadRequest(m.to_owned()));
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return bad("name: must be 1 to 200 characters");
    }
    let mut checked = CheckedChannel {
        name: name.to_owned(),
        url: None,
        email_to: Vec::new(),
        secret_sealed: None,
    };
    if body.kind == ChannelKind::Email {
        if body.url.is_some() {
            return bad("url: an email channel has no URL; use email_to");
        }
        if state.config.smtp_host.is_empty() {
            return bad("kind: email channels need smtp_host in the server config");
        }
        if body.email_to.is_empty() || body.email_to.len() > 20 {
            return bad("email_to: 1 to 20 addresses");
        }
        for to in &body.email_to {
            let to = to.trim();
            if to.len() > 254 || to.contains(',') || to.parse::<lettre::message::Mailbox>().is_err()
            {
                return bad("email_to: each must be an email address");
            }
            checked.email_to.push(to.to_owned());
        }
    } else {
        if !body.email_to.is_empty() {
            return bad("email_to: only email channels have recipients");
        }
        let Some(url) = body.url.as_deref() else {
            return bad("url: required for webhook, slack and teams channels");
        };
        let parsed = reqwest::Url::parse(url).ok().filter(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.host_str().is_some_and(|h| !h.is_empty())
                && u.username().is_empty()
                && u.password().is_none()
        });
        if url.len() > 2048 || parsed.is_none() {
            return bad(
                "url: must be an http:// or https:// URL with a host (at most 2048 characters)",
            );
        }
        checked.url = Some(url.to_owned());
    }
    match (body.kind, body.secret.as_deref()) {
        (ChannelKind::Webhook, Some(secret)) => {
            let n = secret.chars().count();
            if !(16..=256).contains(&n) {
                return bad("secret: must be 16 to 256 characters");
            }
            checked.secret_sealed = Some(state.two_factor.seal(secret.as_bytes()));
        }
        (ChannelKind::Webhook, None) => {
            let has_one =
                existing.is_some_and(|c| c.kind == "webhook" && c.secret_sealed.is_some());
            if !has_one {
                return bad("secret: required for a webhook (16 to 256 characters)");
            }
        }
        (_, Some(_)) => return bad("secret: only webhooks are signed"),
        (_, None) => {}
    }
    Ok(checked)
}

fn change<'a>(body: &'a ChannelBody, c: &'a CheckedChannel) -> ChannelChange<'a> {
    ChannelChange {
        name: &c.name,
        kind: body.kind.as_str(),
        url: c.url.as_deref(),
        email_to: &c.email_to,
        secret_sealed: c.secret_sealed.as_deref(),
        enabled: body.enabled,
    }
}

pub async fn list_channels(
    State(state): State<AppState>,
    user: AuthUser,
) -> ApiResult<axum::Json<Vec<NotificationChannel>>> {
    let channels = state.store.list_channels().await?;
    Ok(axum::Json(
        channels
            .into_iter()
            .map(|c| NotificationChannel::for_user(c, &user))
            .collect(),
    ))
}

pub async fn get_channel(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<NotificationChannel>> {
    state
        .store
        .channel(&id)
        .await?
        .map(|c| axum::Json(NotificationChannel::for_user(c, &user)))
        .ok_or_else(|| ApiError::not_found("notification channel"))
}

pub async fn create_channel(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<ChannelBody>,
) -> ApiResult<(StatusCode, axum::Json<NotificationChannel>)> {
    let checked = check_channel(&state, &body, None)?;
    let id = state
        .store
        .create_channel(&change(&body, &checked), Actor::user(&user.id))
        .await?;
    let created = get_channel(State(state), user, Path(id)).await?;
    Ok((StatusCode::CREATED, created))
}

pub async fn update_channel(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(body): Json<ChannelBody>,
) -> ApiResult<axum::Json<NotificationChannel>> {
    let existing = state
        .store
        .channel(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("notification channel"))?;
    let checked = check_channel(&state, &body, Some(&existing))?;
    state
        .store
        .update_channel(&id, &change(&body, &checked), Actor::user(&user.id))
        .await?;
    get_channel(State(state), user, Path(id)).await
}

pub async fn delete_channel(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_channel(&id, Actor::user(&user.id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// "Send test": a test notice queued through the same path as alerts; answers the delivery.
pub async fn test_channel(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, axum::Json<NotificationDelivery>)> {
    let channel = state
        .store
        .channel(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("notification channel"))?;
    let delivery_id = crate::db::new_id();
    let payload = Payload::test(delivery_id.clone(), &channel.name).to_json();
    state
        .store
        .queue_test_delivery(&delivery_id, &id, &payload, Actor::user(&user.id))
        .await?;
    crate::notify::wake(&state);
    let delivery = get_delivery(State(state), Path(delivery_id)).await?;
    Ok((StatusCode::CREATED, delivery))
}

// ---- routes

async fn check_route(state: &AppState, body: &RouteBody) -> ApiResult<()> {
    body.scope.check().map_err(ApiError::BadRequest)?;
    if state.store.channel(&body.channel_id).await?.is_none() {
        return Err(ApiError::BadRequest(
            "channel_id: no such notification channel".into(),
        ));
    }
    if !state.store.scope_target_exists(&body.scope).await? {
        return Err(ApiError::BadRequest(format!(
            "scope.id: no such {}",
            body.scope.kind.as_str()
        )));
    }
    Ok(())
}

pub async fn list_routes(
    State(state): State<AppState>,
) -> ApiResult<axum::Json<Vec<NotificationRoute>>> {
    Ok(axum::Json(super::types::list(
        state.store.list_routes().await?,
    )))
}

pub async fn get_route(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<NotificationRoute>> {
    super::error::found(state.store.route(&id).await?, "notification route")
}

pub async fn create_route(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<RouteBody>,
) -> ApiResult<(StatusCode, axum::Json<NotificationRoute>)> {
    check_route(&state, &body).await?;
    let id = state
        .store
        .save_route(
            None,
            &body.channel_id,
            body.min_severity,
            &body.scope,
            Actor::user(&user.id),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        get_route(State(state), Path(id)).await?,
    ))
}

pub async fn update_route(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(body): Json<RouteBody>,
) -> ApiResult<axum::Json<NotificationRoute>> {
    if state.store.route(&id).await?.is_none() {
        return Err(ApiError::not_found("notification route"));
    }
    check_route(&state, &body).await?;
    state
        .store
        .save_route(
            Some(&id),
            &body.channel_id,
            body.min_severity,
            &body.scope,
            Actor::user(&user.id),
        )
        .await?;
    get_route(State(state), Path(id)).await
}

pub async fn delete_route(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.delete_route(&id, Actor::user(&user.id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- deliveries

pub async fn list_deliveries(
    State(state): State<AppState>,
    Query(q): Query<DeliveryQuery>,
) -> ApiResult<axum::Json<Vec<NotificationDelivery>>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::BadRequest("limit: must be 1 to 500".into()));
    }
    let rows = state
        .store
        .list_deliveries(&DeliveryFilter {
            channel_id: q.channel_id.as_deref(),
            status: q.status.map(DeliveryStatus::as_str),
            alert_id: q.alert_id.as_deref(),
            limit: limit.into(),
        })
        .await?;
    Ok(axum::Json(super::types::list(rows)))
}

pub async fn get_delivery(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<NotificationDelivery>> {
    super::error::found(state.store.delivery(&id).await?, "notification delivery")
}
