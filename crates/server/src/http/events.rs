//! `GET /api/events`: server-sent events for the dashboard. EventSource cannot send headers,
//! so it authenticates with a single-use `?ticket=` (never the JWT). The stream closes when
//! its session ends: at once on the "session ended" broadcast, and within a few seconds when
//! it ended elsewhere (the `user add` command run against the same database).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use futures_util::StreamExt;
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::wrappers::BroadcastStream;

use super::error::ApiResult;
use super::extract::{AuthUser, Query};
use super::types::EventsQuery;
use crate::state::AppState;

/// How often an open stream re-checks that its session is still live.
const RECHECK_EVERY: Duration = Duration::from_secs(5);

pub async fn stream(
    State(state): State<AppState>,
    user: AuthUser,
    // Read by the access layer; declared here so the query is parsed like every other.
    Query(_): Query<EventsQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let events = BroadcastStream::new(state.events.subscribe())
        .filter_map(|e| std::future::ready(e.ok()))
        .map(|e| {
            Ok(SseEvent::default()
                .event(e.name())
                .json_data(&e)
                .unwrap_or_default())
        })
        // End the stream when its session ends, or when the server shuts down so graceful
        // shutdown completes.
        .take_until(session_over(state.clone(), user));
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

async fn session_over(state: AppState, user: AuthUser) {
    let mut shutdown = state.shutdown.clone();
    let stop = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    tokio::pin!(stop);
    let mut ended = state.sign_in.subscribe_ended();
    let mut recheck = tokio::time::interval(RECHECK_EVERY);
    recheck.tick().await;
    loop {
        tokio::select! {
            _ = &mut stop => return,
            msg = ended.recv() => match msg {
                Ok(e) if e.covers(&user.session_id, &user.id) => return,
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            },
            _ = recheck.tick() => {
                if let Ok(None) = state.store.live_session(&user.session_id).await {
                    return;
                }
            }
        }
    }
}
