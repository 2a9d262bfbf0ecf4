//! One session with the server, the same whatever the transport: the outbox (results kept on
//! disk until the server took them), the inbox (commands from the server, run once per id),
//! and what goes out when (results, watchdog events, metrics, network state when its hash
//! changed, heartbeats). A transport ([`crate::transport::ws`], [`crate::transport::legacy`])
//! only moves messages: it implements [`Transport`], and a new agent message is written here
//! once.
//!
//! Text from the machine can hold NUL characters, which PostgreSQL text refuses: every message
//! passes [`scrub`] on its way out, which replaces each NUL with U+FFFD.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use gururmm_protocol::{update_state, AgentMessage, Command, Heartbeat, ServerMessage, Update};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::agent::{Ctx, Exit, Inbox};
use crate::commands::Finished;
use crate::logging::ascii;
use crate::metrics::{network_state, now_unix};
use crate::transport::backoff::Backoff;
use crate::update;

/// Why a connection ended; the session reconnects after a backoff delay.
#[derive(Debug)]
pub struct Lost(pub String);

impl From<String> for Lost {
    fn from(reason: String) -> Lost {
        Lost(reason)
    }
}

impl From<&str> for Lost {
    fn from(reason: &str) -> Lost {
        Lost(reason.to_owned())
    }
}

/// What a transport does for the session. Each call may fail with [`Lost`]: the session then
/// drops the connection and calls [`Transport::connect`] again after a backoff delay.
pub(crate) trait Transport {
    /// Opens a connection: WebSocket connect and `auth`; legacy enrolls when it has no key.
    async fn connect(&mut self) -> Result<(), Lost>;
    /// Hands one message to the server. A transport that polls may carry reports with its
    /// next heartbeat instead, keeping them until a heartbeat carrying them is accepted.
    async fn send(&mut self, msg: AgentMessage) -> Result<(), Lost>;
    /// The periodic heartbeat; returns the commands that came back with it (polling).
    async fn heartbeat(&mut self) -> Result<Vec<Command>, Lost>;
    /// The next text message from the server; a transport that only polls never returns.
    async fn recv(&mut self) -> Result<String, Lost>;
    /// Closes the connection on shutdown.
    async fn close(&mut self);
    /// Whether commands arrive only with heartbeats (so one goes out right after connecting).
    fn polls(&self) -> bool;
    /// Whether the server says separately (`result_ack`) that it stored a result; until then
    /// the result stays in the outbox. Otherwise a successful `send` means stored.
    fn acknowledges_results(&self) -> bool;
}

/// A result sent but not acknowledged for this long is sent again on the same connection
/// (the server may have dropped it while its database was away).
const RESEND_UNACKED_AFTER: Duration = Duration::from_secs(60);

/// Runs sessions over `transport` until `shutdown` turns true, reconnecting with backoff, or
/// until a self-update was installed and its trial confirmed ([`Exit::Updated`]).
pub(crate) async fn run<T: Transport>(
    ctx: &Ctx,
    inbox: &mut Inbox,
    mut transport: T,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Exit> {
    let mut backoff = Backoff::new(
        Duration::from_secs(ctx.config.agent.reconnect_delay_seconds),
        Duration::from_secs(ctx.config.agent.reconnect_max_delay_seconds),
    );
    let mut session = Session {
        ctx,
        inbox,
        network_hash: None,
        established: false,
        unacked: HashMap::new(),
        swapped: None,
        download: None,
    };
    loop {
        if *shutdown.borrow() {
            return Ok(Exit::Stopped);
        }
        session.established = false;
        let ended = match transport.connect().await {
            Err(e) => e,
            Ok(()) => {
                session.established = !transport.polls();
                let served = session.serve(&mut transport, &mut shutdown).await;
                // No connection, no live output: pieces are dropped until the next one.
                session.inbox.live.set_open(false);
                match served {
                    Ok(()) => {
                        transport.close().await;
                        return Ok(Exit::Stopped);
                    }
                    Err(e) => e,
                }
            }
        };
        if let Some((swapped, u)) = session.swapped.take() {
            // The connection is paused (closed) while the new build tries to connect.
            transport.close().await;
            let exe = swapped.exe.clone();
            if session.try_new_build(swapped, &u).await {
                return Ok(Exit::Updated(exe));
            }
            continue;
        }
        if session.established {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        tracing::warn!(
            "connection to the server lost: {}; reconnecting in {:.1} s",
            ascii(&ended.0),
            delay.as_secs_f64()
        );
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => return Ok(Exit::Stopped),
        }
    }
}

/// A build being downloaded and verified, with the `update` it is for.
type Download<'a> = Pin<Box<dyn Future<Output = (Update, Result<PathBuf, String>)> + 'a>>;

struct Session<'a> {
    /// A verified build swapped in on this connection, to be tried once it is closed.
    swapped: Option<(update::install::Swapped, Update)>,
    /// The download under way: polled beside the socket, so heartbeats, commands and results
    /// go on while it runs (a slow download must not look like a dead agent).
    download: Option<Download<'a>>,
    ctx: &'a Ctx,
    inbox: &'a mut Inbox,
    /// The hash of the network state last handed to the transport.
    network_hash: Option<String>,
    /// The server answered on this connection (a reconnect starts from the shortest delay).
    established: bool,
    /// Results sent on this connection and not yet acknowledged, with when they went.
    unacked: HashMap<String, Instant>,
}

impl Session<'_> {
    /// Serves one connection until it is lost (`Err`) or shutdown (`Ok`).
    async fn serve<T: Transport>(
        &mut self,
        link: &mut T,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), Lost> {
        if !link.polls() && self.connected_once() {
            return Ok(());
        }
        // Right after connecting: kept update reports, network state, kept results, a first
        // metrics report.
        self.unacked.clear();
        self.flush_update_reports(link).await?;
        self.send_network_state(link, true).await?;
        self.flush_outbox(link).await?;
        self.send_metrics(link).await?;
        if link.polls() {
            self.heartbeat(link).await?;
            if self.connected_once() {
                return Ok(());
            }
        }
        if !link.polls() {
            // Live output flows only over a connected WebSocket; pieces left from an earlier
            // connection are stale.
            while self.inbox.output.try_recv().is_ok() {}
            self.inbox.live.set_open(true);
        }
        let ctx = self.ctx;
        let start = Instant::now();
        let every = |d: Duration| {
            let mut i = tokio::time::interval_at(start + d, d);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        };
        let mut live = ctx.live.subscribe();
        let (mut heartbeat, mut metrics, mut netcheck) = {
            let l = live.borrow_and_update();
            (
                every(l.heartbeat_interval),
                every(Duration::from_secs(l.metrics.interval_seconds)),
                every(l.network_check_interval),
            )
        };
        loop {
            tokio::select! {
                // A policy changed the intervals: they run from now on.
                Ok(()) = live.changed() => {
                    let l = live.borrow_and_update().clone();
                    let from_now = |d: Duration| {
                        let mut i = tokio::time::interval_at(Instant::now() + d, d);
                        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                        i
                    };
                    heartbeat = from_now(l.heartbeat_interval);
                    metrics = from_now(Duration::from_secs(l.metrics.interval_seconds));
                    netcheck = from_now(l.network_check_interval);
                }
                text = link.recv() => self.handle_text(link, &text?).await?,
                _ = heartbeat.tick() => self.heartbeat(link).await?,
                _ = metrics.tick() => self.send_metrics(link).await?,
                _ = netcheck.tick() => self.send_network_state(link, false).await?,
                Some(f) = self.inbox.finished.recv() => self.deliver(link, f).await?,
                Some(piece) = self.inbox.output.recv() => self.send_output(link, piece).await?,
                Some(e) = self.inbox.events.recv() => {
                    send(link, AgentMessage::WatchdogEvent(e)).await?
                }
                (u, fetched) = next_download(&mut self.download) => {
                    self.downloaded(link, u, fetched).await?
                }
                _ = shutdown.changed() => return Ok(()),
            }
        }
    }

    async fn heartbeat<T: Transport>(&mut self, link: &mut T) -> Result<(), Lost> {
        let commands = link.heartbeat().await?;
        self.established = true;
        for cmd in commands {
            self.ctx.executor.submit(cmd);
        }
        self.resend_unacked(link).await
    }

    /// Sends again the results no `result_ack` came for within [`RESEND_UNACKED_AFTER`].
    async fn resend_unacked<T: Transport>(&mut self, link: &mut T) -> Result<(), Lost> {
        let overdue = |sent: &Instant| sent.elapsed() >= RESEND_UNACKED_AFTER;
        if !self.unacked.values().any(overdue) {
            return Ok(());
        }
        for (path, result) in self.ctx.state.outbox() {
            if self.unacked.get(&result.id).is_some_and(overdue) {
                let id = result.id.clone();
                self.send_result(link, &path, result).await?;
                tracing::info!("result of command {} sent again (no ack yet)", ascii(&id));
            }
        }
        Ok(())
    }

    /// Sends a result kept at `path` in the outbox; the file goes once the server has it.
    async fn send_result<T: Transport>(
        &mut self,
        link: &mut T,
        path: &std::path::Path,
        result: gururmm_protocol::CommandResult,
    ) -> Result<(), Lost> {
        let id = result.id.clone();
        send(link, AgentMessage::CommandResult(result)).await?;
        if link.acknowledges_results() {
            self.unacked.insert(id, Instant::now());
        } else {
            self.ctx.state.remove_outbox(path);
        }
        Ok(())
    }

    async fn send_metrics<T: Transport>(&self, link: &mut T) -> Result<(), Lost> {
        match self.ctx.collect_metrics().await {
            Some(report) => send(link, AgentMessage::MetricsReport(report)).await,
            None => Ok(()),
        }
    }

    /// Sends the network state when its hash changed (or always, with `force`).
    async fn send_network_state<T: Transport>(
        &mut self,
        link: &mut T,
        force: bool,
    ) -> Result<(), Lost> {
        let state = tokio::task::spawn_blocking(network_state::read)
            .await
            .map_err(|e| format!("network state read failed: {e}"))?;
        if force || self.network_hash.as_deref() != Some(state.hash.as_str()) {
            let hash = state.hash.clone();
            send(link, AgentMessage::NetworkState(state)).await?;
            if self.network_hash.is_some() && !force {
                tracing::info!("network state changed; sent");
            }
            self.network_hash = Some(hash);
        }
        Ok(())
    }

    /// Sends a piece of live output (WebSocket only; polling transports send none).
    async fn send_output<T: Transport>(
        &mut self,
        link: &mut T,
        piece: gururmm_protocol::CommandOutput,
    ) -> Result<(), Lost> {
        if link.polls() {
            return Ok(());
        }
        send(link, AgentMessage::CommandOutput(piece)).await
    }

    /// Sends a finished result (it waits in the outbox until the server has it), after the
    /// live output handed on before it.
    async fn deliver<T: Transport>(&mut self, link: &mut T, f: Finished) -> Result<(), Lost> {
        while let Ok(piece) = self.inbox.output.try_recv() {
            self.send_output(link, piece).await?;
        }
        let id = f.result.id.clone();
        match &f.outbox {
            // Gone: already sent from the outbox and acknowledged. Listed as unacked: already
            // sent from the outbox on this connection.
            Some(path) if !path.exists() || self.unacked.contains_key(&id) => return Ok(()),
            Some(path) => {
                let path = path.clone();
                self.send_result(link, &path, f.result).await?;
            }
            // Not kept on disk (the outbox could not be written): send and hope.
            None => send(link, AgentMessage::CommandResult(f.result)).await?,
        }
        tracing::info!("result of command {} sent", ascii(&id));
        Ok(())
    }

    /// Sends every kept result, oldest first; stops at the first failure (the rest stay).
    async fn flush_outbox<T: Transport>(&mut self, link: &mut T) -> Result<(), Lost> {
        for (path, result) in self.ctx.state.outbox() {
            let id = result.id.clone();
            self.send_result(link, &path, result).await?;
            tracing::info!("kept result of command {} sent", ascii(&id));
        }
        Ok(())
    }

    /// The server accepted this connection. A build on trial confirms and stops (`true`);
    /// a build just installed stops naming the version it replaced.
    fn connected_once(&mut self) -> bool {
        let ctx = self.ctx;
        if ctx.trial {
            let path = ctx.state.update_confirmed_path();
            match std::fs::write(&path, ctx.version) {
                Ok(()) => tracing::info!("update trial: connected; confirmed, stopping"),
                Err(e) => tracing::error!("update trial: cannot confirm: {e}"),
            }
            return true;
        }
        let mut previous = ctx
            .previous_version
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(v) = previous.take() {
            tracing::info!("updated from {} to {}; connected", ascii(&v), ctx.version);
            if let Err(e) = ctx.state.set_update_applied(None) {
                tracing::warn!("cannot clear update_applied: {e}");
            }
        }
        false
    }

    /// Sends the kept `update_status` reports (a failure or rollback not yet sent).
    async fn flush_update_reports<T: Transport>(&mut self, link: &mut T) -> Result<(), Lost> {
        for (path, report) in self.ctx.state.update_reports() {
            send(link, AgentMessage::UpdateStatus(report.clone())).await?;
            let _ = std::fs::remove_file(&path);
            tracing::info!(
                "kept update report sent: {} {}",
                ascii(&report.version),
                ascii(&report.state)
            );
        }
        Ok(())
    }

    /// Sends a report; one that does not go out is kept and sent on the next connection.
    async fn report<T: Transport>(
        &mut self,
        link: &mut T,
        report: gururmm_protocol::UpdateStatus,
    ) -> Result<(), Lost> {
        match &report.reason {
            Some(r) => tracing::warn!(
                "update to {}: {}: {}",
                ascii(&report.version),
                report.state,
                ascii(r)
            ),
            None => tracing::info!("update to {}: {}", ascii(&report.version), report.state),
        }
        if report.state == update_state::DOWNLOADING {
            return send(link, AgentMessage::UpdateStatus(report)).await;
        }
        let kept = self.ctx.state.put_update_report(&report);
        send(link, AgentMessage::UpdateStatus(report)).await?;
        if let Ok(path) = kept {
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    }

    /// An `update`: checked, then downloaded and verified beside the session (see
    /// [`Session::downloaded`] for the rest). A refusal is reported and changes nothing.
    async fn on_update<T: Transport>(&mut self, link: &mut T, u: Update) -> Result<(), Lost> {
        let ctx = self.ctx;
        if self.swapped.is_some() || self.download.is_some() {
            tracing::info!(
                "server offers version {}; an update is already under way",
                ascii(&u.version)
            );
            return Ok(());
        }
        tracing::info!(
            "server offers version {} (running {})",
            ascii(&u.version),
            ctx.version
        );
        let key = match update::check(ctx, &u) {
            Ok(key) => key,
            Err(reason) => return self.report(link, update::failed(&u, reason)).await,
        };
        self.report(link, update::status(&u, update_state::DOWNLOADING, None))
            .await?;
        // Bounded by download_timeout_seconds and max_download_bytes.
        self.download = Some(Box::pin(async move {
            let fetched = update::download::fetch(ctx, &u, &key).await;
            (u, fetched)
        }));
        Ok(())
    }

    /// The download ended: a verified build is swapped in and the connection closed, so that
    /// the trial runs (the `Err` after `installed`); any failure is reported and changes
    /// nothing.
    async fn downloaded<T: Transport>(
        &mut self,
        link: &mut T,
        u: Update,
        fetched: Result<PathBuf, String>,
    ) -> Result<(), Lost> {
        let verified = match fetched {
            Ok(path) => path,
            Err(reason) => return self.report(link, update::failed(&u, reason)).await,
        };
        let swapped = match update::install::swap(&verified) {
            Ok(s) => s,
            Err(reason) => return self.report(link, update::failed(&u, reason)).await,
        };
        tracing::info!(
            "version {} verified and swapped in ({}); starting it on trial",
            ascii(&u.version),
            swapped.exe.display()
        );
        let installed = update::status(&u, update_state::INSTALLED, None);
        self.swapped = Some((swapped, u));
        // Sent before the trial (the new build's `auth` with previous_version completes it);
        // a legacy server gets it with one more heartbeat.
        let sent = self.report(link, installed).await;
        if sent.is_ok() && link.polls() {
            let _ = self.heartbeat(link).await;
        }
        Err(Lost::from("installing an update"))
    }

    /// Runs the trial of a swapped-in build; puts the previous one back when it fails.
    /// `true`: confirmed, restart into it.
    async fn try_new_build(&mut self, swapped: update::install::Swapped, u: &Update) -> bool {
        let ctx = self.ctx;
        match update::install::trial(ctx, &swapped, u.update_id.as_deref()).await {
            Ok(()) => {
                tracing::info!(
                    "version {} connected on trial; restarting into it",
                    ascii(&u.version)
                );
                if let Err(e) = ctx.state.set_update_applied(Some(ctx.version)) {
                    tracing::warn!("cannot note the update in the state folder: {e}");
                }
                true
            }
            Err(reason) => {
                let reason = match update::install::rollback(&swapped) {
                    Ok(()) => format!("{reason}; version {} put back", ctx.version),
                    Err(e) => format!("{reason}; {e}"),
                };
                tracing::error!(
                    "update to {} rolled back: {}",
                    ascii(&u.version),
                    ascii(&reason)
                );
                update::keep_report(
                    &ctx.state,
                    &update::status(u, update_state::ROLLED_BACK, Some(reason)),
                );
                false
            }
        }
    }

    /// The server stored the result of command `id`: it leaves the outbox.
    fn acknowledged(&mut self, id: &str) {
        self.unacked.remove(id);
        self.ctx
            .state
            .remove_outbox(&self.ctx.state.outbox_path(id));
    }

    async fn handle_text<T: Transport>(&mut self, link: &mut T, text: &str) -> Result<(), Lost> {
        let ctx = self.ctx;
        match ServerMessage::from_json(text) {
            Ok(ServerMessage::Command(cmd)) => ctx.executor.submit(cmd),
            Ok(ServerMessage::ResultAck(ack)) => self.acknowledged(&ack.id),
            Ok(ServerMessage::Ping(_)) => {
                send(
                    link,
                    AgentMessage::Heartbeat(Heartbeat {
                        timestamp: Some(now_unix()),
                    }),
                )
                .await?
            }
            Ok(ServerMessage::Update(u)) => self.on_update(link, u).await?,
            Ok(ServerMessage::Policy(p)) => {
                let status = crate::policy::apply(ctx, p);
                send(link, AgentMessage::PolicyStatus(status)).await?
            }
            Ok(ServerMessage::AuthResponse(_)) => tracing::debug!("extra auth_response ignored"),
            Ok(ServerMessage::Unsupported(u)) => tracing::warn!(
                "message type '{}' from the server is not supported by this agent; ignored",
                ascii(&u.message_type)
            ),
            Err(e) => match &e.command_id {
                Some(id) => {
                    tracing::warn!(
                        "{}; answering command {} with a failed result",
                        ascii(&e.to_string()),
                        ascii(id)
                    );
                    ctx.executor
                        .reject(id, format!("the agent could not read this command: {e}"));
                }
                None => tracing::warn!("{}; ignored", ascii(&e.to_string())),
            },
        }
        Ok(())
    }
}

/// The end of the download under way; never ready when there is none.
async fn next_download(download: &mut Option<Download<'_>>) -> (Update, Result<PathBuf, String>) {
    match download.as_mut() {
        Some(running) => {
            let done = running.await;
            *download = None;
            done
        }
        None => std::future::pending().await,
    }
}

async fn send<T: Transport>(link: &mut T, msg: AgentMessage) -> Result<(), Lost> {
    link.send(scrub(msg)).await
}

/// What a NUL character becomes in text sent to the server.
pub const NUL_REPLACEMENT: char = '\u{FFFD}';

/// `text` with every NUL replaced by [`NUL_REPLACEMENT`].
pub fn replace_nul(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// The message with NUL replaced in every string it holds, whatever its type and fields.
pub fn scrub(msg: AgentMessage) -> AgentMessage {
    let mut value = msg.to_value();
    if !scrub_value(&mut value) {
        return msg;
    }
    match AgentMessage::from_json(&value.to_string()) {
        Ok(clean) => clean,
        Err(e) => {
            // Cannot happen for the agent's own messages; sending beats dropping.
            tracing::warn!(
                "'{}' message with NUL not re-read ({}); sent as it is",
                msg.message_type(),
                ascii(&e.to_string())
            );
            msg
        }
    }
}

/// Replaces NUL in every string (and key) of `value`; says whether there was any.
fn scrub_value(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::String(s) => match replace_nul(s) {
            Cow::Owned(clean) => {
                *s = clean;
                true
            }
            Cow::Borrowed(_) => false,
        },
        Value::Array(items) => items.iter_mut().fold(false, |acc, v| scrub_value(v) | acc),
        Value::Object(map) => {
            let mut changed = false;
            if map.keys().any(|k| k.contains('\0')) {
                let old = std::mem::take(map);
                for (k, v) in old {
                    map.insert(replace_nul(&k).into_owned(), v);
                }
                changed = true;
            }
            map.values_mut()
                .fold(changed, |acc, v| scrub_value(v) | acc)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gururmm_protocol::{CommandResult, NetworkInterface, NetworkState, WatchdogEvent};

    #[test]
    fn nul_is_replaced_in_every_field() {
        let r = scrub(AgentMessage::CommandResult(CommandResult {
            id: "c1".into(),
            exit_code: 0,
            stdout: "a\0b".into(),
            stderr: "\0".into(),
            duration_ms: 1,
            timed_out: false,
        }));
        let AgentMessage::CommandResult(r) = r else {
            panic!("type changed")
        };
        assert_eq!(
            (r.stdout.as_str(), r.stderr.as_str()),
            ("a\u{FFFD}b", "\u{FFFD}")
        );

        let n = scrub(AgentMessage::NetworkState(NetworkState {
            hash: "h".into(),
            interfaces: vec![NetworkInterface {
                name: "eth0\0".into(),
                mac: None,
                addresses: vec!["\0".into()],
            }],
        }));
        assert!(!n.to_json().contains("\\u0000"), "{}", n.to_json());

        let e = scrub(AgentMessage::WatchdogEvent(WatchdogEvent {
            service: "svc\0".into(),
            event: "stopped".into(),
            message: Some("x\0y".into()),
            timestamp: 1,
        }));
        assert_eq!(
            e.to_value()["payload"],
            serde_json::json!({"service": "svc\u{FFFD}", "event": "stopped", "message": "x\u{FFFD}y", "timestamp": 1})
        );
    }

    #[test]
    fn text_without_nul_is_untouched() {
        assert!(matches!(replace_nul("caf\u{e9}"), Cow::Borrowed(_)));
        let hb = AgentMessage::Heartbeat(Heartbeat { timestamp: Some(5) });
        assert_eq!(scrub(hb.clone()), hb);
    }
}

/// The session core through a fake transport: what goes out after connecting, the inbox's
/// one run per command id, and a result whose send failed going out again on the next connect.
#[cfg(all(test, unix))]
mod session_tests {
    use std::sync::{Arc, Mutex};

    use gururmm_protocol::{fixture, CommandResult};
    use tokio::sync::mpsc;

    use super::*;
    use crate::commands::{Executor, RunSettings};
    use crate::config::{Config, MetricsSection};
    use crate::metrics::{CollectorKind, Metrics};
    use crate::state::StateDir;

    /// Hands every sent message to the test; fails the sends the test asks to fail.
    struct Fake {
        sent: mpsc::UnboundedSender<AgentMessage>,
        incoming: mpsc::UnboundedReceiver<String>,
        fail_results: Arc<Mutex<usize>>,
        /// Like a WebSocket: results wait for `result_ack`.
        acks: bool,
        /// Like the legacy HTTP transport: commands come with heartbeats.
        polls: bool,
    }

    impl Transport for Fake {
        async fn connect(&mut self) -> Result<(), Lost> {
            Ok(())
        }
        async fn send(&mut self, msg: AgentMessage) -> Result<(), Lost> {
            if matches!(msg, AgentMessage::CommandResult(_)) {
                let mut fail = self.fail_results.lock().unwrap();
                if *fail > 0 {
                    *fail -= 1;
                    return Err(Lost::from("send failed"));
                }
            }
            let _ = self.sent.send(msg);
            Ok(())
        }
        async fn heartbeat(&mut self) -> Result<Vec<Command>, Lost> {
            Ok(Vec::new())
        }
        async fn recv(&mut self) -> Result<String, Lost> {
            match self.incoming.recv().await {
                Some(t) => Ok(t),
                None => std::future::pending().await,
            }
        }
        async fn close(&mut self) {}
        fn polls(&self) -> bool {
            self.polls
        }
        fn acknowledges_results(&self) -> bool {
            self.acks
        }
    }

    fn command(id: &str, text: &str) -> String {
        let mut v: serde_json::Value = serde_json::from_str(&fixture("command_shell")).unwrap();
        v["payload"]["id"] = id.into();
        v["payload"]["command"] = text.into();
        v.to_string()
    }

    async fn next_any(rx: &mut mpsc::UnboundedReceiver<AgentMessage>) -> AgentMessage {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a message within 10 s")
            .expect("session running")
    }

    /// The next message that is not live output.
    async fn next(rx: &mut mpsc::UnboundedReceiver<AgentMessage>) -> AgentMessage {
        loop {
            match next_any(rx).await {
                AgentMessage::CommandOutput(_) => {}
                m => return m,
            }
        }
    }

    async fn next_result(rx: &mut mpsc::UnboundedReceiver<AgentMessage>) -> CommandResult {
        loop {
            if let AgentMessage::CommandResult(r) = next(rx).await {
                return r;
            }
        }
    }

    /// What a session test drives: the context, the inbox, and the fake's ends.
    struct Rig {
        _dir: tempfile::TempDir,
        state: Arc<StateDir>,
        ctx: Ctx,
        inbox: Inbox,
        fake: Fake,
        sent: mpsc::UnboundedReceiver<AgentMessage>,
        to_agent: mpsc::UnboundedSender<String>,
        fail_results: Arc<Mutex<usize>>,
    }

    /// A session over the fake transport, with one result kept in the outbox from before.
    fn rig(acks: bool) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::parse(&format!(
            "[server]\nurl = \"ws://127.0.0.1:9/ws\"\napi_key = \"grmm_x\"\n\n[agent]\n\
             reconnect_delay_seconds = 1\nreconnect_max_delay_seconds = 1\nstate_dir = \"{}\"\n",
            dir.path().display()
        ))
        .unwrap();
        let state = Arc::new(StateDir::open(dir.path()).unwrap());
        let kept = CommandResult {
            id: "kept-1".into(),
            exit_code: 0,
            stdout: "from before\0".into(),
            stderr: String::new(),
            duration_ms: 1,
            timed_out: false,
        };
        state.put_outbox(&kept).unwrap();
        let settings = RunSettings {
            default_timeout: Duration::from_secs(30),
            max_timeout: Duration::from_secs(60),
            output_cap: 4096,
            script_interpreter: "/bin/sh".into(),
            temp_dir: dir.path().join("tmp"),
        };
        let (executor, finished) = Executor::new(state.clone(), settings);
        let (sink, output) = crate::commands::live::channel(64);
        let executor = executor.with_live_output(sink.clone());
        let metrics = Metrics::from_config(&MetricsSection::only(CollectorKind::Memory));
        let ctx = Ctx {
            state: state.clone(),
            executor,
            device_id: "d".into(),
            hostname: "h".into(),
            os_info: crate::identity::os_info(),
            version: "test",
            metrics: Arc::new(Mutex::new(metrics)),
            config_path: dir.path().join("agent.toml"),
            trial: false,
            previous_version: Mutex::new(None),
            live: watch::channel(crate::policy::Live::of(&config, None)).0,
            config,
        };
        let (_events_tx, events) = mpsc::channel(8);
        let inbox = Inbox {
            finished,
            events,
            output,
            live: sink,
        };
        let (sent_tx, sent) = mpsc::unbounded_channel();
        let (to_agent, incoming) = mpsc::unbounded_channel();
        let fail_results = Arc::new(Mutex::new(0));
        let fake = Fake {
            sent: sent_tx,
            incoming,
            fail_results: fail_results.clone(),
            acks,
            polls: false,
        };
        Rig {
            _dir: dir,
            state,
            ctx,
            inbox,
            fake,
            sent,
            to_agent,
            fail_results,
        }
    }

    #[tokio::test]
    async fn one_session_core() {
        let Rig {
            _dir,
            state,
            ctx,
            mut inbox,
            fake,
            mut sent,
            to_agent,
            fail_results,
        } = rig(false);
        let (stop, shutdown) = watch::channel(false);

        let test = async {
            // After connecting: network state, the kept result (NUL replaced), metrics.
            assert!(matches!(
                next(&mut sent).await,
                AgentMessage::NetworkState(_)
            ));
            let r = next_result(&mut sent).await;
            assert_eq!(
                (r.id.as_str(), r.stdout.as_str()),
                ("kept-1", "from before\u{FFFD}")
            );
            assert!(matches!(
                next(&mut sent).await,
                AgentMessage::MetricsReport(_)
            ));
            assert!(state.outbox().is_empty());

            // The same command id twice runs once.
            to_agent.send(command("c-1", "printf 'x\\000'")).unwrap();
            to_agent.send(command("c-1", "printf 'x\\000'")).unwrap();
            let r = next_result(&mut sent).await;
            assert_eq!((r.id.as_str(), r.stdout.as_str()), ("c-1", "x\u{FFFD}"));

            // A result whose send fails stays in the outbox and goes out after reconnecting.
            *fail_results.lock().unwrap() = 1;
            to_agent.send(command("c-2", "echo two")).unwrap();
            assert!(matches!(
                next(&mut sent).await,
                AgentMessage::NetworkState(_)
            ));
            let r = next_result(&mut sent).await;
            assert_eq!((r.id.as_str(), r.stdout.as_str()), ("c-2", "two\n"));
            assert!(state.outbox().is_empty());
            tokio::time::sleep(Duration::from_millis(300)).await;
            while let Ok(m) = sent.try_recv() {
                assert!(
                    !matches!(m, AgentMessage::CommandResult(_)),
                    "sent twice: {m:?}"
                );
            }
            stop.send(true).unwrap();
        };
        let (result, ()) = tokio::join!(run(&ctx, &mut inbox, fake, shutdown), test);
        result.unwrap();
    }

    #[tokio::test]
    async fn results_stay_in_the_outbox_until_the_server_acknowledges_them() {
        let Rig {
            _dir,
            state,
            ctx,
            mut inbox,
            fake,
            mut sent,
            to_agent,
            fail_results,
        } = rig(true);
        let (stop, shutdown) = watch::channel(false);
        let ack = |id: &str| format!(r#"{{"type":"result_ack","payload":{{"id":"{id}"}}}}"#);
        let kept = |state: &StateDir| -> Vec<String> {
            state.outbox().into_iter().map(|(_, r)| r.id).collect()
        };

        let test = async {
            assert_eq!(next_result(&mut sent).await.id, "kept-1");
            // Sent, not acknowledged: still kept.
            assert_eq!(kept(&state), vec!["kept-1".to_owned()]);
            to_agent.send(ack("kept-1")).unwrap();
            to_agent.send(command("c-1", "echo one")).unwrap();
            assert_eq!(next_result(&mut sent).await.id, "c-1");
            assert_eq!(kept(&state), vec!["c-1".to_owned()]);

            // The connection drops before any ack (the server could not store it): the
            // result goes out again on the next connection, then leaves with its ack.
            *fail_results.lock().unwrap() = 1;
            to_agent.send(command("c-2", "echo two")).unwrap();
            let mut again = Vec::new();
            while again.len() < 2 {
                again.push(next_result(&mut sent).await.id);
            }
            again.sort();
            assert_eq!(again, vec!["c-1".to_owned(), "c-2".to_owned()]);
            to_agent.send(ack("c-1")).unwrap();
            to_agent.send(ack("c-2")).unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            while !kept(&state).is_empty() {
                assert!(
                    Instant::now() < deadline,
                    "acknowledged results left the outbox"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            stop.send(true).unwrap();
        };
        let (result, ()) = tokio::join!(run(&ctx, &mut inbox, fake, shutdown), test);
        result.unwrap();
    }

    /// A command printing a line every 300 ms: its output reaches the server in several
    /// `command_output` pieces, in order, before its result, and the pieces add up to it.
    #[tokio::test]
    async fn live_output_goes_out_before_the_result() {
        let Rig {
            _dir,
            state: _,
            ctx,
            mut inbox,
            fake,
            mut sent,
            to_agent,
            fail_results: _,
        } = rig(false);
        let (stop, shutdown) = watch::channel(false);

        let test = async {
            to_agent
                .send(command(
                    "live-1",
                    "for i in 1 2 3 4 5; do echo line $i; echo warn $i >&2; sleep 0.3; done",
                ))
                .unwrap();
            let mut pieces = Vec::new();
            let result = loop {
                match next_any(&mut sent).await {
                    AgentMessage::CommandOutput(p) => {
                        assert_eq!(p.id, "live-1");
                        pieces.push(p);
                    }
                    AgentMessage::CommandResult(r) if r.id == "live-1" => break r,
                    _ => {}
                }
            };
            assert_eq!(result.exit_code, 0);
            let stdout: Vec<_> = pieces.iter().filter(|p| p.stream == "stdout").collect();
            assert!(stdout.len() >= 3, "only {} stdout pieces", stdout.len());
            let seqs: Vec<u64> = pieces.iter().map(|p| p.seq).collect();
            assert_eq!(seqs, (0..pieces.len() as u64).collect::<Vec<_>>());
            let joined = |stream: &str| -> String {
                pieces
                    .iter()
                    .filter(|p| p.stream == stream)
                    .map(|p| p.data.as_str())
                    .collect()
            };
            assert_eq!(joined("stdout"), result.stdout);
            assert_eq!(joined("stderr"), result.stderr);
            assert_eq!(result.stdout, "line 1\nline 2\nline 3\nline 4\nline 5\n");
            stop.send(true).unwrap();
        };
        let (result, ()) = tokio::join!(run(&ctx, &mut inbox, fake, shutdown), test);
        result.unwrap();
    }

    /// A polling (legacy HTTP) transport gets no live output, only the result.
    #[tokio::test]
    async fn a_polling_transport_gets_no_live_output() {
        let Rig {
            _dir,
            state: _,
            ctx,
            mut inbox,
            mut fake,
            mut sent,
            to_agent,
            fail_results: _,
        } = rig(false);
        fake.polls = true;
        let (stop, shutdown) = watch::channel(false);

        let test = async {
            to_agent
                .send(command(
                    "quiet-1",
                    "for i in 1 2 3; do echo line $i; sleep 0.3; done",
                ))
                .unwrap();
            let result = loop {
                match next_any(&mut sent).await {
                    AgentMessage::CommandOutput(p) => panic!("live output when polling: {p:?}"),
                    AgentMessage::CommandResult(r) if r.id == "quiet-1" => break r,
                    _ => {}
                }
            };
            assert_eq!(result.stdout, "line 1\nline 2\nline 3\n");
            stop.send(true).unwrap();
        };
        let (result, ()) = tokio::join!(run(&ctx, &mut inbox, fake, shutdown), test);
        result.unwrap();
    }
}
