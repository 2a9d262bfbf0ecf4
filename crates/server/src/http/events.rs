//! `GET /api/events`: server-sent events for the dashboard. EventSource cannot send headers,
//! so the JWT may come as `?access_token=`.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::request::Parts;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use futures_util::StreamExt;
use serde::Deserialize;
use tokio_stream::wrappers::BroadcastStream;

use super::error::{ApiError, ApiResult};
use super::extract::{bearer, user_from_token, Query};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct EventsQuery {
    access_token: Option<String>,
}

pub async fn stream(
    State(state): State<AppState>,
    parts: Parts,
    Query(q): Query<EventsQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let token = bearer(&parts)
        .map(str::to_owned)
        .or(q.access_token)
        .ok_or_else(|| ApiError::Unauthorized("sign in first: missing token".into()))?;
    user_from_token(&state, &token).await?;
    let mut shutdown = state.shutdown.clone();
    let events = BroadcastStream::new(state.events.subscribe())
        .filter_map(|e| std::future::ready(e.ok()))
        .map(|e| {
            Ok(SseEvent::default()
                .event(e.name())
                .json_data(&e)
                .unwrap_or_default())
        })
        // End the stream when the server shuts down so graceful shutdown completes.
        .take_until(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
