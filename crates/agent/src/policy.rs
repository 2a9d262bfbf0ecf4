//! Policies from the server: settings applied over agent.toml without a restart.
//!
//! A `policy` is laid over agent.toml's values and the result checked by the same validation
//! as the file ([`Config::validate`]), so a value agent.toml would refuse is refused here too,
//! with the key it names. An applied policy is kept in the state folder (`policy.json`) and
//! laid over agent.toml again at the next start; agent.toml alone applies until one arrives.

use std::time::Duration;

use gururmm_protocol::{Policy, PolicySettings, PolicyStatus};

use crate::agent::Ctx;
use crate::config::{Config, MetricsSection, WatchdogAction, WatchdogSection, WatchedService};
use crate::logging::ascii;
use crate::metrics::{CollectorKind, Metrics};

/// What a policy changes while the agent runs; the session and the watchdog follow it.
#[derive(Debug, Clone)]
pub struct Live {
    pub metrics: MetricsSection,
    pub heartbeat_interval: Duration,
    pub network_check_interval: Duration,
    pub watchdog: WatchdogSection,
    /// The applied policy's revision; None while agent.toml alone applies.
    pub revision: Option<String>,
}

impl Live {
    pub fn of(config: &Config, revision: Option<String>) -> Live {
        Live {
            metrics: config.metrics.clone(),
            heartbeat_interval: config.heartbeat_interval(),
            network_check_interval: config.network_check_interval(),
            watchdog: config.watchdog.clone(),
            revision,
        }
    }
}

/// agent.toml's values with the policy's settings laid over them, validated like the file.
/// The error names the setting (`metrics.interval_seconds`, ...).
pub fn overlay(base: &Config, policy: &Policy) -> Result<Config, String> {
    let s: &PolicySettings = &policy.settings;
    if policy.revision != s.revision() {
        return Err("revision: does not match the settings' hash".into());
    }
    s.check_limits()?;
    let mut c = base.clone();
    if let Some(v) = s.metrics_interval_seconds {
        c.metrics.interval_seconds = v;
    }
    if let Some(names) = &s.collectors {
        // check_limits took only known names; ALL order, each once.
        c.metrics.collectors = CollectorKind::ALL
            .into_iter()
            .filter(|k| names.iter().any(|n| CollectorKind::parse(n) == Some(*k)))
            .collect();
    }
    if let Some(v) = s.heartbeat_interval_seconds {
        c.agent.heartbeat_interval_seconds = v;
    }
    if let Some(v) = s.network_check_interval_seconds {
        c.agent.network_check_interval_seconds = v;
    }
    if let Some(services) = &s.watchdog_services {
        c.watchdog.enabled = !services.is_empty();
        c.watchdog.services = services
            .iter()
            .map(|p| {
                // A service agent.toml knows keeps how this machine checks and restarts it.
                let mut w = base
                    .watchdog
                    .services
                    .iter()
                    .find(|b| b.name == p.name)
                    .cloned()
                    .unwrap_or_else(|| WatchedService::named(&p.name));
                match p.action.as_deref() {
                    Some("alert") => w.action = WatchdogAction::Alert,
                    Some(_) => w.action = WatchdogAction::Restart,
                    None => {}
                }
                if let Some(m) = p.max_restarts {
                    w.max_restarts = m;
                }
                if let Some(c) = p.restart_cooldown_seconds {
                    w.restart_cooldown_seconds = c;
                }
                w
            })
            .collect();
    }
    c.validate().map_err(|e| e.to_string())?;
    Ok(c)
}

/// The policy kept from the last run, laid over `config`; agent.toml alone when there is
/// none or it no longer fits (agent.toml changed meanwhile).
pub fn startup(config: &Config, state: &crate::state::StateDir) -> (Config, Live) {
    let Some(policy) = state.policy() else {
        return (config.clone(), Live::of(config, None));
    };
    match overlay(config, &policy) {
        Ok(c) => {
            tracing::info!("running with the kept policy {}", short(&policy.revision));
            let live = Live::of(&c, Some(policy.revision));
            (c, live)
        }
        Err(e) => {
            tracing::warn!(
                "the kept policy no longer applies ({}); agent.toml applies until the server sends one",
                ascii(&e)
            );
            (config.clone(), Live::of(config, None))
        }
    }
}

fn short(revision: &str) -> &str {
    &revision[..12.min(revision.len())]
}

/// Applies a `policy` from the server: the answer to send back.
pub fn apply(ctx: &Ctx, policy: Policy) -> PolicyStatus {
    let revision = policy.revision.clone();
    let refused = |error: String| {
        tracing::warn!(
            "policy {} refused: {}",
            ascii(short(&revision)),
            ascii(&error)
        );
        PolicyStatus {
            revision: revision.clone(),
            applied: false,
            error: Some(error),
        }
    };
    let config = match overlay(&ctx.config, &policy) {
        Ok(c) => c,
        Err(e) => return refused(e),
    };
    if ctx.live.borrow().revision.as_deref() != Some(revision.as_str()) {
        if let Err(e) = ctx.state.save_policy(&policy) {
            return refused(format!("cannot keep the policy in the state folder: {e}"));
        }
        *ctx.metrics.lock().unwrap_or_else(|e| e.into_inner()) =
            Metrics::from_config(&config.metrics);
        ctx.live
            .send_replace(Live::of(&config, Some(revision.clone())));
        tracing::info!(
            "policy {} applied: metrics every {} s, heartbeat every {} s, {} watched service(s)",
            ascii(short(&revision)),
            config.metrics.interval_seconds,
            config.agent.heartbeat_interval_seconds,
            config.watchdog.services.len()
        );
    }
    PolicyStatus {
        revision,
        applied: true,
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gururmm_protocol::policy::PolicyService;

    fn base() -> Config {
        Config::parse("[server]\nurl = \"ws://127.0.0.1:1/ws\"\napi_key = \"A-B-1\"\n").unwrap()
    }

    #[test]
    fn settings_lie_over_agent_toml() {
        let p = Policy::new(PolicySettings {
            metrics_interval_seconds: Some(15),
            collectors: Some(vec!["memory".into(), "cpu".into()]),
            watchdog_services: Some(vec![PolicyService {
                name: "svc".into(),
                action: Some("alert".into()),
                max_restarts: None,
                restart_cooldown_seconds: Some(5),
            }]),
            ..Default::default()
        });
        let c = overlay(&base(), &p).unwrap();
        assert_eq!(c.metrics.interval_seconds, 15);
        assert_eq!(
            c.metrics.collectors,
            [CollectorKind::Cpu, CollectorKind::Memory]
        );
        assert_eq!(c.agent.heartbeat_interval_seconds, 30, "unset: agent.toml");
        assert!(c.watchdog.enabled);
        let w = &c.watchdog.services[0];
        assert_eq!(
            (w.action, w.max_restarts, w.restart_cooldown_seconds),
            (WatchdogAction::Alert, 3, 5)
        );
    }

    #[test]
    fn out_of_range_values_are_refused_naming_the_key() {
        let p = Policy::new(PolicySettings {
            metrics_interval_seconds: Some(5),
            ..Default::default()
        });
        let err = overlay(&base(), &p).unwrap_err();
        assert!(err.contains("metrics.interval_seconds"), "{err}");
        let p = Policy::new(PolicySettings {
            heartbeat_interval_seconds: Some(600),
            ..Default::default()
        });
        let err = overlay(&base(), &p).unwrap_err();
        assert!(err.contains("agent.idle_timeout_seconds"), "{err}");
        let mut p = Policy::new(PolicySettings::default());
        p.revision = "0".repeat(64);
        assert!(overlay(&base(), &p).unwrap_err().starts_with("revision"));
    }
}
