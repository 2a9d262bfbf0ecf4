//! The watchdog: checks the configured services at its interval and restarts stopped ones,
//! at most `max_restarts` times within `restart_window_seconds` and never twice within
//! `restart_cooldown_seconds`, reporting `stopped`, `restarted`, `restart_failed` and `gave_up`.

pub mod manager;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use gururmm_protocol::{watchdog_event_kind, WatchdogEvent};
use tokio::sync::{mpsc, watch};

use crate::config::{WatchdogAction, WatchdogSection, WatchedService};
use crate::logging::ascii;
use crate::metrics::now_unix;
pub use manager::ServiceManager;

/// What the watchdog reports about a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Stopped,
    Restarted,
    RestartFailed,
    GaveUp,
}

impl EventKind {
    /// The wire name (`event` of a `watchdog_event`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Stopped => watchdog_event_kind::STOPPED,
            EventKind::Restarted => watchdog_event_kind::RESTARTED,
            EventKind::RestartFailed => watchdog_event_kind::RESTART_FAILED,
            EventKind::GaveUp => watchdog_event_kind::GAVE_UP,
        }
    }
}

/// The watchdog's memory of one service.
pub struct ServiceWatch {
    config: WatchedService,
    manager: Box<dyn ServiceManager>,
    restarts: VecDeque<Instant>,
    down: bool,
    gave_up: bool,
    check_error_logged: bool,
}

impl ServiceWatch {
    pub fn new(config: WatchedService, manager: Box<dyn ServiceManager>) -> ServiceWatch {
        ServiceWatch {
            config,
            manager,
            restarts: VecDeque::new(),
            down: false,
            gave_up: false,
            check_error_logged: false,
        }
    }

    fn event(&self, kind: EventKind, message: String) -> WatchdogEvent {
        tracing::warn!(
            "watchdog: service {} {}: {}",
            ascii(&self.config.name),
            kind.as_str(),
            ascii(&message)
        );
        WatchdogEvent {
            service: self.config.name.clone(),
            event: kind.as_str().to_owned(),
            message: Some(message),
            timestamp: now_unix(),
        }
    }

    /// One check at time `now`; returns the events it caused. Blocks while the manager runs.
    pub fn check(&mut self, now: Instant) -> Vec<WatchdogEvent> {
        let name = self.config.name.clone();
        let active = match self.manager.is_active(&name) {
            Ok(a) => {
                self.check_error_logged = false;
                a
            }
            Err(e) => {
                if !self.check_error_logged {
                    tracing::warn!("watchdog: cannot check {}: {}", ascii(&name), ascii(&e));
                    self.check_error_logged = true;
                }
                return Vec::new();
            }
        };
        let mut events = Vec::new();
        if active {
            if self.gave_up {
                tracing::info!("watchdog: {} runs again; watching it afresh", ascii(&name));
                self.gave_up = false;
                self.restarts.clear();
            }
            self.down = false;
            return events;
        }
        if !self.down {
            self.down = true;
            events.push(self.event(EventKind::Stopped, "service is not running".to_owned()));
        }
        if self.config.action != WatchdogAction::Restart || self.gave_up {
            return events;
        }
        let window = Duration::from_secs(self.config.restart_window_seconds);
        while self
            .restarts
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= window)
        {
            self.restarts.pop_front();
        }
        let max = self.config.max_restarts;
        if self.restarts.len() as u64 >= u64::from(max) {
            self.gave_up = true;
            events.push(self.event(
                EventKind::GaveUp,
                format!(
                    "restarted {max} times within {} s and still stopped; not restarting it again until it runs",
                    window.as_secs()
                ),
            ));
            return events;
        }
        let cooldown = Duration::from_secs(self.config.restart_cooldown_seconds);
        if let Some(last) = self.restarts.back() {
            if now.saturating_duration_since(*last) < cooldown {
                return events;
            }
        }
        self.restarts.push_back(now);
        let n = self.restarts.len();
        match self.manager.restart(&name) {
            Ok(()) => {
                // Seen running again: the next stop is reported as a new stop.
                self.down = false;
                events.push(self.event(
                    EventKind::Restarted,
                    format!("service was stopped; restart {n} of {max}"),
                ));
            }
            Err(e) => events.push(self.event(
                EventKind::RestartFailed,
                format!("restart {n} of {max} failed: {e}"),
            )),
        }
        events
    }
}

/// Runs the watchdog until shutdown, sending events into `events`. Follows the services a
/// policy sets (`live`): a change starts watching the new list afresh.
pub async fn run(
    mut live: watch::Receiver<crate::policy::Live>,
    events: mpsc::Sender<WatchdogEvent>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let section = live.borrow_and_update().watchdog.clone();
        tokio::select! {
            _ = watch_services(section, &events) => return,
            changed = live.changed() => {
                if changed.is_err() {
                    return;
                }
                tracing::info!("watchdog: the policy changed the watched services");
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// Watches `section`'s services until dropped (never returns: with nothing to watch, it
/// waits for the caller's change or shutdown).
async fn watch_services(section: WatchdogSection, events: &mpsc::Sender<WatchdogEvent>) {
    if !section.enabled || section.services.is_empty() {
        return std::future::pending().await;
    }
    let mut watches: Vec<ServiceWatch> = section
        .services
        .iter()
        .map(|s| ServiceWatch::new(s.clone(), manager::for_service(s)))
        .collect();
    let interval = Duration::from_secs(section.check_interval_seconds);
    tracing::info!(
        "watchdog: watching {} service(s) every {} s",
        watches.len(),
        interval.as_secs()
    );
    loop {
        let round = tokio::task::spawn_blocking(move || {
            let now = Instant::now();
            let mut out = Vec::new();
            for w in &mut watches {
                out.extend(w.check(now));
            }
            (watches, out)
        })
        .await;
        let Ok((back, out)) = round else {
            tracing::error!("watchdog round failed; watchdog stopped");
            return std::future::pending().await;
        };
        watches = back;
        for e in out {
            if events.try_send(e).is_err() {
                tracing::warn!("watchdog event queue full; event dropped");
            }
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::process::{Child, Command};
    use std::sync::Mutex;

    /// A real process stands in for the service: CI has no systemd, so "running" means this
    /// child process is alive and "restart" spawns a new one.
    struct ProcessService {
        child: Mutex<Option<Child>>,
        fail_restart: bool,
    }

    impl ProcessService {
        fn start() -> ProcessService {
            ProcessService {
                child: Mutex::new(Some(Command::new("sleep").arg("600").spawn().unwrap())),
                fail_restart: false,
            }
        }
        fn kill(&self) {
            if let Some(c) = self.child.lock().unwrap().as_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    impl Drop for ProcessService {
        fn drop(&mut self) {
            self.kill();
        }
    }

    impl ServiceManager for std::sync::Arc<ProcessService> {
        fn is_active(&self, _: &str) -> Result<bool, String> {
            let mut guard = self.child.lock().unwrap();
            Ok(match guard.as_mut() {
                Some(c) => c.try_wait().map_err(|e| e.to_string())?.is_none(),
                None => false,
            })
        }
        fn restart(&self, _: &str) -> Result<(), String> {
            if self.fail_restart {
                return Err("permission denied".into());
            }
            let child = Command::new("sleep")
                .arg("600")
                .spawn()
                .map_err(|e| e.to_string())?;
            *self.child.lock().unwrap() = Some(child);
            Ok(())
        }
    }

    fn config(max: u32, cooldown: u64) -> WatchedService {
        WatchedService {
            name: "fake-svc".into(),
            action: WatchdogAction::Restart,
            max_restarts: max,
            restart_cooldown_seconds: cooldown,
            restart_window_seconds: 3600,
            check_command: None,
            restart_command: None,
        }
    }

    fn kinds(events: &[WatchdogEvent]) -> Vec<&str> {
        events.iter().map(|e| e.event.as_str()).collect()
    }

    #[test]
    fn restarts_up_to_max_then_gives_up() {
        let svc = std::sync::Arc::new(ProcessService::start());
        let mut w = ServiceWatch::new(config(2, 10), Box::new(svc.clone()));
        let t0 = Instant::now();
        assert!(w.check(t0).is_empty(), "running service: no event");

        svc.kill();
        let ev = w.check(t0);
        assert_eq!(kinds(&ev), ["stopped", "restarted"]);
        assert_eq!(
            ev[1].message.as_deref(),
            Some("service was stopped; restart 1 of 2")
        );
        assert!(
            w.check(t0 + Duration::from_secs(1)).is_empty(),
            "restarted process runs"
        );

        // Stopped again within the cooldown: reported, but not restarted yet.
        svc.kill();
        assert_eq!(kinds(&w.check(t0 + Duration::from_secs(2))), ["stopped"]);
        assert_eq!(kinds(&w.check(t0 + Duration::from_secs(11))), ["restarted"]);

        svc.kill();
        let ev = w.check(t0 + Duration::from_secs(30));
        assert_eq!(kinds(&ev), ["stopped", "gave_up"]);
        assert!(
            w.check(t0 + Duration::from_secs(60)).is_empty(),
            "gave up: quiet"
        );
    }

    #[test]
    fn failed_restart_is_reported() {
        let svc = std::sync::Arc::new(ProcessService {
            child: Mutex::new(None),
            fail_restart: true,
        });
        let mut w = ServiceWatch::new(config(3, 0), Box::new(svc));
        let ev = w.check(Instant::now());
        assert_eq!(kinds(&ev), ["stopped", "restart_failed"]);
        assert!(ev[1]
            .message
            .as_deref()
            .unwrap()
            .contains("permission denied"));
    }

    #[test]
    fn restarts_outside_the_window_do_not_count() {
        let svc = std::sync::Arc::new(ProcessService::start());
        let mut cfg = config(1, 0);
        cfg.restart_window_seconds = 60;
        let mut w = ServiceWatch::new(cfg, Box::new(svc.clone()));
        let t0 = Instant::now();
        svc.kill();
        assert_eq!(kinds(&w.check(t0)), ["stopped", "restarted"]);
        svc.kill();
        assert_eq!(
            kinds(&w.check(t0 + Duration::from_secs(120))),
            ["stopped", "restarted"]
        );
    }

    #[test]
    fn alert_action_only_reports() {
        let svc = std::sync::Arc::new(ProcessService::start());
        let mut cfg = config(3, 0);
        cfg.action = WatchdogAction::Alert;
        let mut w = ServiceWatch::new(cfg, Box::new(svc.clone()));
        svc.kill();
        assert_eq!(kinds(&w.check(Instant::now())), ["stopped"]);
        assert!(!w.manager.is_active("x").unwrap());
    }

    #[test]
    fn command_manager_uses_a_real_pidfile_process() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("svc.pid");
        let m = manager::CommandManager {
            // Alive and not a zombie (PID 1 in CI containers may not reap orphans).
            check: format!(
                "grep -Eqs '^State:[[:space:]]+[^Z[:space:]]' /proc/$(cat {p})/status",
                p = pidfile.display()
            ),
            restart: format!("sleep 600 & echo $! > {p}", p = pidfile.display()),
        };
        assert!(!m.is_active("svc").unwrap());
        m.restart("svc").unwrap();
        assert!(m.is_active("svc").unwrap());
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        Command::new("kill").arg(pid.trim()).status().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert!(!m.is_active("svc").unwrap());
    }
}
