//! The evaluator as the server runs it: the rules, windows and where agents sit, cached in
//! memory and reloaded on change (on every node: `Notice::AlertRulesChanged`) and every
//! `RELOAD_EVERY`; decisions go through bounded queues to `WRITERS` writer tasks (an agent's
//! decisions always to the same one, so they stay in order), so a report never waits on the
//! database and a burst costs one transaction per alert, a few at a time.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use gururmm_protocol::MetricsReport;
use tokio::sync::mpsc;

use super::evaluate::{evaluate_metrics, AgentMemory, Change, Held, Snapshot};
use super::rules::{AlertRule, RuleKind};
use crate::db::{now_ms, retry_while_unavailable, AlertRecord, DbResult, NewAlert};
use crate::events::Event;
use crate::scope::Placement;
use crate::state::AppState;

/// Decisions waiting for the writer; beyond it they are dropped (counted) and judged again
/// on the next report.
const QUEUE_CAPACITY: usize = 20_000;
/// Writer tasks: alerts written at once (PostgreSQL overlaps them; SQLite takes them in turn).
const WRITERS: usize = 4;
/// The cache is read again this often, whatever notices were lost.
const RELOAD_EVERY: Duration = Duration::from_secs(30);
/// Subjects (service names) are bounded.
const MAX_SUBJECT_CHARS: usize = 200;

#[derive(Default)]
pub struct Alerting {
    snapshot: RwLock<Arc<Snapshot>>,
    placements: RwLock<HashMap<String, Placement>>,
    memory: Mutex<HashMap<String, AgentMemory>>,
    /// Agents whose placement is being read (one read each).
    loading: Mutex<HashSet<String>>,
    queues: OnceLock<Vec<mpsc::Sender<Change>>>,
    dropped: AtomicU64,
}

impl Alerting {
    /// Loads the cache and starts the writer and the periodic reload.
    pub async fn start(state: &AppState) {
        let mut queues = Vec::with_capacity(WRITERS);
        for _ in 0..WRITERS {
            let (tx, rx) = mpsc::channel(QUEUE_CAPACITY / WRITERS);
            queues.push(tx);
            tokio::spawn(write_changes(state.clone(), rx));
        }
        let _ = state.alerting.queues.set(queues);
        if let Err(e) = state.alerting.reload(state).await {
            tracing::warn!(error = %e, "alert rules not loaded; retried shortly");
        }
        let s = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RELOAD_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = s.alerting.reload(&s).await {
                    tracing::warn!(error = %e, "reloading alert rules failed");
                }
            }
        });
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.read().expect("alert snapshot").clone()
    }

    /// Decisions dropped because the writer's queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Reads rules, windows, placements and which alerts are open, and brings the memory in
    /// line: a condition whose alert is open in the database resolves when it clears.
    pub async fn reload(&self, state: &AppState) -> DbResult<()> {
        let store = &state.store;
        let snapshot = Snapshot::new(
            store.list_alert_rules().await?,
            store.list_maintenance_windows().await?,
        );
        let placements: HashMap<String, Placement> = store
            .placements()
            .await?
            .into_iter()
            .map(|p| (p.agent_id.clone(), p))
            .collect();
        let open: HashSet<(String, String, String)> = store
            .open_alert_keys(&[RuleKind::Cpu, RuleKind::Memory, RuleKind::Disk])
            .await?
            .into_iter()
            .collect();
        let live: HashSet<&str> = snapshot.rules.iter().map(|r| r.id.as_str()).collect();
        {
            let mut memory = self.memory.lock().expect("alert memory");
            memory.retain(|agent, conditions| {
                conditions.retain(|(rule, subject), held| {
                    held.opened = open.contains(&(rule.clone(), agent.clone(), subject.clone()));
                    live.contains(rule.as_str())
                });
                placements.contains_key(agent)
            });
            let now = now_ms();
            for (rule, agent, subject) in &open {
                if live.contains(rule.as_str()) {
                    memory
                        .entry(agent.clone())
                        .or_default()
                        .entry((rule.clone(), subject.clone()))
                        .or_insert(Held {
                            since: now,
                            opened: true,
                        });
                }
            }
        }
        *self.placements.write().expect("alert placements") = placements;
        *self.snapshot.write().expect("alert snapshot") = Arc::new(snapshot);
        Ok(())
    }

    /// After a change of rules or windows here: reload now, and tell the other nodes.
    pub async fn changed(&self, state: &AppState) {
        if let Err(e) = self.reload(state).await {
            tracing::warn!(error = %e, "reloading alert rules failed; retried shortly");
        }
        state
            .cluster
            .tell_others(crate::cluster::Notice::AlertRulesChanged);
    }

    /// Forgets a condition (its alert was resolved by hand): it opens again only after
    /// holding for the rule's duration anew.
    pub fn forget(&self, rule_id: &str, agent_id: &str, subject: &str) {
        if let Some(m) = self.memory.lock().expect("alert memory").get_mut(agent_id) {
            m.remove(&(rule_id.to_owned(), subject.to_owned()));
        }
    }

    fn placement(&self, agent_id: &str) -> Option<Placement> {
        self.placements
            .read()
            .expect("alert placements")
            .get(agent_id)
            .cloned()
    }

    /// The agent's placement from the cache, or read once in the background (an agent new
    /// since the last reload): this report is then not judged, the next one is.
    fn placement_or_load(&self, state: &AppState, agent_id: &str) -> Option<Placement> {
        if let Some(p) = self.placement(agent_id) {
            return Some(p);
        }
        if !self
            .loading
            .lock()
            .expect("alert loading")
            .insert(agent_id.to_owned())
        {
            return None;
        }
        let (state, agent_id) = (state.clone(), agent_id.to_owned());
        tokio::spawn(async move {
            if let Ok(Some(p)) = state.store.agent_placement(&agent_id).await {
                state
                    .alerting
                    .placements
                    .write()
                    .expect("alert placements")
                    .insert(agent_id.clone(), p);
            }
            state
                .alerting
                .loading
                .lock()
                .expect("alert loading")
                .remove(&agent_id);
        });
        None
    }

    /// An agent connected: its placement is read now if the cache lacks it, so its first
    /// report is judged.
    pub fn prime(&self, state: &AppState, agent_id: &str) {
        if self.snapshot().rules.is_empty() {
            return;
        }
        let _ = self.placement_or_load(state, agent_id);
    }

    async fn placement_now(&self, state: &AppState, agent_id: &str) -> Option<Placement> {
        match self.placement(agent_id) {
            Some(p) => Some(p),
            None => state.store.agent_placement(agent_id).await.ok().flatten(),
        }
    }

    /// A metrics report arrived (either transport). Never waits on the database.
    pub fn on_metrics(&self, state: &AppState, agent_id: &str, report: &MetricsReport) {
        let snapshot = self.snapshot();
        if !snapshot.has_metric_rules() {
            return;
        }
        let Some(placement) = self.placement_or_load(state, agent_id) else {
            return;
        };
        let mut changes = Vec::new();
        {
            let mut memory = self.memory.lock().expect("alert memory");
            let mine = memory.entry(agent_id.to_owned()).or_default();
            evaluate_metrics(&snapshot, &placement, report, now_ms(), mine, &mut changes);
        }
        for change in changes {
            self.submit(change);
        }
    }

    /// The watchdog gave up on `service`: its rules open an alert (resolved by hand).
    pub async fn on_watchdog_gave_up(&self, state: &AppState, agent_id: &str, service: &str) {
        let subject: String = service.chars().take(MAX_SUBJECT_CHARS).collect();
        let message = format!("the watchdog gave up restarting {subject}");
        self.open_for(
            state,
            agent_id,
            RuleKind::WatchdogGaveUp,
            &subject,
            &message,
            |_| true,
        )
        .await;
    }

    /// A command failed or timed out: its rules open an alert (resolved by hand).
    pub async fn on_command_failed(
        &self,
        state: &AppState,
        agent_id: &str,
        command_id: &str,
        timed_out: bool,
        exit_code: Option<i64>,
    ) {
        let message = match (timed_out, exit_code) {
            (true, _) => format!("command {command_id} timed out"),
            (false, Some(code)) => format!("command {command_id} failed with exit code {code}"),
            (false, None) => format!("command {command_id} failed"),
        };
        self.open_for(
            state,
            agent_id,
            RuleKind::CommandFailed,
            "",
            &message,
            |r| !timed_out || r.include_timeouts,
        )
        .await;
    }

    async fn open_for(
        &self,
        state: &AppState,
        agent_id: &str,
        kind: RuleKind,
        subject: &str,
        message: &str,
        wanted: impl Fn(&AlertRule) -> bool,
    ) {
        let snapshot = self.snapshot();
        if !snapshot.rules.iter().any(|r| r.kind == kind) {
            return;
        }
        let Some(placement) = self.placement_now(state, agent_id).await else {
            return;
        };
        if snapshot.in_maintenance(&placement, now_ms()) {
            return;
        }
        for rule in snapshot.rules_for(kind, &placement) {
            if wanted(rule) {
                self.submit(Change::Open {
                    rule: rule.clone(),
                    agent_id: agent_id.to_owned(),
                    subject: subject.to_owned(),
                    message: message.to_owned(),
                });
            }
        }
    }

    fn submit(&self, change: Change) {
        let Some(queues) = self.queues.get() else {
            return;
        };
        let agent_id = match &change {
            Change::Open { agent_id, .. } | Change::Resolve { agent_id, .. } => agent_id,
        };
        let shard = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            agent_id.hash(&mut h);
            h.finish() as usize % queues.len()
        };
        if let Err(e) = queues[shard].try_send(change) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("alert decision dropped: the alert writer is behind");
            // Judged again on the next report.
            if let mpsc::error::TrySendError::Full(Change::Open {
                rule,
                agent_id,
                subject,
                ..
            }) = e
            {
                self.forget(&rule.id, &agent_id, &subject);
            }
        }
    }
}

/// Tells the dashboards and the notification worker about an alert that changed.
pub fn announce(state: &AppState, alert: &AlertRecord) {
    state.publish(Event::Alert {
        id: alert.id.clone(),
        agent_id: alert.agent_id.clone(),
        status: alert.status.clone(),
        severity: alert.severity.as_str().to_owned(),
    });
    crate::notify::wake(state);
}

async fn write_changes(state: AppState, mut rx: mpsc::Receiver<Change>) {
    while let Some(change) = rx.recv().await {
        let outcome = match &change {
            Change::Open {
                rule,
                agent_id,
                subject,
                message,
            } => {
                let new = NewAlert {
                    rule,
                    agent_id,
                    subject,
                    message,
                };
                retry_while_unavailable("alerts", || state.store.open_alert(&new)).await
            }
            Change::Resolve {
                rule_id,
                agent_id,
                subject,
            } => {
                retry_while_unavailable("alerts", || {
                    state.store.resolve_alert_auto(rule_id, agent_id, subject)
                })
                .await
            }
        };
        match outcome {
            Ok(Some(alert)) => announce(&state, &alert),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "writing an alert failed"),
        }
    }
}

/// The timer's part (upkeep, on the node holding its lease): agents silent for an offline
/// rule's duration open its alert; agents heard from again resolve theirs.
pub async fn check_offline(state: &AppState) {
    if let Err(e) = check_offline_inner(state).await {
        tracing::error!(error = %e, "checking for offline agents failed");
    }
}

async fn check_offline_inner(state: &AppState) -> DbResult<()> {
    let snapshot = state.alerting.snapshot();
    let store = &state.store;
    for (id, opened_at, agent) in store.open_offline_alerts().await? {
        if state.is_online(&agent) || agent.last_seen.is_some_and(|seen| seen > opened_at) {
            if let Some(alert) = store
                .resolve_alert(&id, None, crate::db::Actor::SYSTEM)
                .await?
            {
                announce(state, &alert);
            }
        }
    }
    let now = now_ms();
    for rule in snapshot
        .rules
        .iter()
        .filter(|r| r.kind == RuleKind::Offline)
    {
        let cutoff = now - rule.duration_seconds * 1000;
        for agent in store.silent_agents(&rule.id, cutoff).await? {
            let placement = Placement {
                agent_id: agent.id.clone(),
                site_id: agent.site_id.clone(),
                client_id: agent.client_id.clone(),
            };
            if agent.approval != crate::db::Approval::Approved
                || !placement.covers(&rule.scope)
                || state.is_online(&agent)
                || snapshot.in_maintenance(&placement, now)
            {
                continue;
            }
            let message = format!(
                "{} not heard from for over {} s",
                agent.hostname, rule.duration_seconds
            );
            let new = NewAlert {
                rule,
                agent_id: &agent.id,
                subject: "",
                message: &message,
            };
            if let Some(alert) = store.open_alert(&new).await? {
                announce(state, &alert);
            }
        }
    }
    Ok(())
}
