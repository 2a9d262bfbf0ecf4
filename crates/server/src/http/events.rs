//! `GET /api/events`: server-sent events for the dashboard. EventSource cannot send headers,
//! so the JWT may come as `?access_token=`.

use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use futures_util::StreamExt;
use tokio_stream::wrappers::BroadcastStream;

use super::error::ApiResult;
use super::extract::{AuthUser, Query};
use super::types::EventsQuery;
use crate::state::AppState;

pub async fn stream(
    State(state): State<AppState>,
    _user: AuthUser,
    // Read by the access layer; declared here so the query is parsed like every other.
    Query(_): Query<EventsQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
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
