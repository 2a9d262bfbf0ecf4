//! GuruRMM server: the REST API for technicians, the WebSocket hub for agents, the legacy
//! polling endpoints, and the dashboard host.
//!
//! Layout: `config` (settings), `db` (storage, both backends), `auth` (passwords, JWT, agent
//! keys), `session` (one agent session: enrollment, reports, command hand-out and results,
//! whatever the transport), `hub` (the WebSocket transport: live sockets and who is online),
//! `http` (routes and handlers; `http::legacy` is the polling transport), `cluster` (several
//! nodes on one database: notices, presence, leases), `scope` (fleet, client, site or agent:
//! where a policy, rule, window or route applies), `policy` (effective policies and their
//! delivery), `alerting` (rules, evaluation, alert lifecycle, maintenance windows), `notify`
//! (notification channels and the delivery worker), `upkeep` (timeouts and retention),
//! `backup` (SQLite backup and restore, the data-folder lock), `telemetry` (Prometheus
//! metrics on their own address), `testing` (a real server on port 0 for tests).

pub mod alerting;
pub mod auth;
pub mod backup;
pub mod cluster;
pub mod config;
pub mod db;
pub mod events;
pub mod http;
pub mod hub;
pub mod logging;
pub mod notify;
pub mod oidc;
pub mod policy;
pub mod private_files;
pub mod rate_limit;
pub mod release;
pub mod rollout;
pub mod schedules;
pub mod scope;
pub mod scripts;
pub mod session;
pub mod settings;
pub mod sign_in;
pub mod site_code;
pub mod state;
pub mod telemetry;
pub mod testing;
pub mod two_factor;
mod upkeep;

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;

pub use config::Config;
use state::{AppState, Inner};

/// Listens on `addr` for agents and browsers. The address is reused (a restart right after a
/// crash binds at once), the accept backlog is deep enough for a fleet reconnecting together,
/// and a port still held by a dying process is retried for a few seconds.
pub async fn listen(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    const BACKLOG: u32 = 8192;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(addr).and_then(|()| socket.listen(BACKLOG)) {
            Ok(listener) => return Ok(listener),
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && tokio::time::Instant::now() < deadline =>
            {
                tracing::warn!(%addr, "address in use (a previous server still stopping?); retrying");
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            Err(e) => anyhow::bail!("cannot listen on {addr}: {e}"),
        }
    }
}

/// Agent messages that may wait for the database at once (results, network state, watchdog
/// events): a few per agent of a large fleet through a short outage.
const DEFERRED_WRITES: usize = 50_000;
/// Live output pieces that may wait for the writer (a few per second per running command).
const LIVE_OUTPUT_QUEUE: usize = 20_000;

/// How long a stopping server waits for queued writes.
const SHUTDOWN_FLUSH: std::time::Duration = std::time::Duration::from_secs(10);

/// Opens and migrates the database and builds the application state.
pub async fn build_state(
    config: Config,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<AppState> {
    secure_data_dir(&config)?;
    let store = db::Store::connect_with_timeout(
        &config.effective_database_url(),
        config.database_timeout(),
    )
    .await?;
    store.migrate().await?;
    let secret = auth::load_or_create_secret(&config.jwt_secret, &config.data_dir)?;
    let metrics =
        session::metrics_writer::MetricsWriter::start(store.clone(), config.report_queue_capacity);
    Ok(AppState::new(Inner {
        metrics,
        live_output: session::live_output::LiveOutput::new(LIVE_OUTPUT_QUEUE),
        deferred: session::deferred::DeferredWrites::new(DEFERRED_WRITES),
        jwt: auth::JwtKeys::new(&secret),
        two_factor: two_factor::SecretBox::load_or_create(&config.data_dir)?,
        store,
        hub: Default::default(),
        cluster: cluster::Cluster::new(config.idle_timeout()),
        events: Default::default(),
        alerting: Default::default(),
        limiter: Default::default(),
        sign_in: Default::default(),
        settings: Default::default(),
        sso: Default::default(),
        release_public_key: release::load_public_key(&config),
        notifier: Default::default(),
        shutdown,
        config,
    }))
}

/// Creates the data folder owner-only, or tightens it (and says so) if it is open to others.
pub fn secure_data_dir(config: &Config) -> anyhow::Result<()> {
    let dir = &config.data_dir;
    let old = private_files::private_dir(dir)
        .map_err(|e| anyhow::anyhow!("cannot create data folder {}: {e}", dir.display()))?;
    private_files::log_tightened(dir, old);
    Ok(())
}

/// Serves on `listener` until `shutdown` completes, then closes agent sockets and event
/// streams and returns. Tests call this with a listener on 127.0.0.1:0.
pub async fn launch(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    launch_observed(config, listener, shutdown, |_| {}).await
}

/// [`launch`], handing the state to `observe` once built (tests read counters from it).
pub async fn launch_observed(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    observe: impl FnOnce(&AppState) + Send,
) -> anyhow::Result<()> {
    // On SQLite, held while serving: a restore or a second server on the folder is refused.
    let _data_lock = backup::lock_for_server(&config)?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let state = build_state(config, stop_rx).await?;
    // Not worth refusing to start over (two nodes starting at once may race on it).
    if let Err(e) = http::add_starter_scripts(&state).await {
        tracing::warn!(error = %e, "adding the starter scripts failed");
    }
    observe(&state);
    tracing::info!(addr = %listener.local_addr()?, backend = ?state.store.backend(), "GuruRMM server listening");
    if state.store.count_users().await? == 0 {
        tracing::warn!(
            "no user yet: create the first administrator with `{}`",
            http::auth::FIRST_ADMIN_COMMAND
        );
    }
    if state.store.backend() == db::Backend::Postgres {
        cluster::notify::start(&state, state.config.effective_database_url());
    }
    alerting::Alerting::start(&state).await;
    session::live_output::LiveOutput::start(&state);
    let presence = tokio::spawn(cluster::presence::run(state.clone()));
    let upkeep = tokio::spawn(upkeep::run(state.clone()));
    let notifications = tokio::spawn(notify::worker::run(state.clone()));
    let metrics_endpoint = telemetry::start(&state).await?;
    let app = http::router(state.clone());
    let signal = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(signal)
    .await?;
    upkeep.abort();
    notifications.abort();
    presence.abort();
    // What agents sent before their sockets closed is written before the process ends
    // (bounded: with the database away it cannot be, and agents keep their results).
    let left = state.deferred.drain(SHUTDOWN_FLUSH).await;
    if left > 0 {
        tracing::warn!(
            left,
            "stopping with agent messages not yet stored; agents send their results again"
        );
    }
    if tokio::time::timeout(SHUTDOWN_FLUSH, state.metrics.drain())
        .await
        .is_err()
    {
        tracing::warn!("stopping with metrics reports not yet stored (the database is away)");
    }
    metrics_endpoint.inspect(tokio::task::JoinHandle::abort);
    cluster::presence::leave(&state).await;
    state.store.close().await;
    tracing::info!("GuruRMM server stopped");
    Ok(())
}
