//! Policies: agent settings the server pushes (`policy`), and the agent's answer
//! (`policy_status`). Every setting is optional: unset means "keep what agent.toml says".
//!
//! The server checks only the shape and the hard bounds in [`limits`] (the input of a
//! technician, then of the wire); the agent checks each value against the same ranges as
//! agent.toml and refuses a policy whose value is outside them, naming the field.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Hard bounds of a policy's contents, enforced by the server on input and by the agent on
/// receipt (an agent never trusts a server further than these).
pub mod limits {
    /// Watchdog services in one policy.
    pub const MAX_WATCHDOG_SERVICES: usize = 64;
    /// Bytes of a service name.
    pub const MAX_SERVICE_NAME_BYTES: usize = 256;
    /// Any interval or cooldown, in seconds (one week).
    pub const MAX_SECONDS: u64 = 604_800;
    /// Restarts of one service.
    pub const MAX_RESTARTS: u32 = 1000;
    /// Collector names in one policy.
    pub const MAX_COLLECTORS: usize = 16;
}

/// The metric collectors an agent knows.
pub const COLLECTORS: [&str; 4] = ["cpu", "memory", "disk", "network"];

/// The watchdog actions an agent knows.
pub const WATCHDOG_ACTIONS: [&str; 2] = ["restart", "alert"];

/// One service the watchdog keeps running (as `[[watchdog.services]]` in agent.toml).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PolicyService {
    pub name: String,
    /// `restart` (the default) or `alert` (report only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_restarts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_cooldown_seconds: Option<u64>,
}

/// The settings of a policy. Unset fields inherit (from a less specific policy, else from
/// agent.toml). Field order is the canonical order [`PolicySettings::revision`] hashes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PolicySettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_interval_seconds: Option<u64>,
    /// The enabled collectors, by name (see [`COLLECTORS`]); the others are off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collectors: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_check_interval_seconds: Option<u64>,
    /// The watched services (replaces agent.toml's list; an empty list watches nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watchdog_services: Option<Vec<PolicyService>>,
    /// Alert thresholds, percent. Stored and shown; the agent does not use them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_alert_percent: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_alert_percent: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_alert_percent: Option<u8>,
}

impl PolicySettings {
    /// The field names, in canonical order.
    pub const FIELDS: [&'static str; 8] = [
        "metrics_interval_seconds",
        "collectors",
        "heartbeat_interval_seconds",
        "network_check_interval_seconds",
        "watchdog_services",
        "cpu_alert_percent",
        "memory_alert_percent",
        "disk_alert_percent",
    ];

    /// The canonical JSON: fields in declaration order, unset ones left out.
    pub fn canonical_json(&self) -> String {
        serde_json::to_string(self).expect("policy settings always serialize")
    }

    /// SHA-256 of [`PolicySettings::canonical_json`], lowercase hex.
    pub fn revision(&self) -> String {
        let digest: [u8; 32] = Sha256::digest(self.canonical_json().as_bytes()).into();
        crate::release::hex(&digest)
    }

    pub fn is_empty(&self) -> bool {
        *self == PolicySettings::default()
    }

    /// Checks the hard bounds of [`limits`], naming the field of the first problem. The
    /// agent checks the ranges of agent.toml on top of these.
    pub fn check_limits(&self) -> Result<(), String> {
        let seconds = |field: &str, v: Option<u64>| match v {
            Some(v) if v == 0 || v > limits::MAX_SECONDS => Err(format!(
                "{field}: out of range: allowed 1..={}",
                limits::MAX_SECONDS
            )),
            _ => Ok(()),
        };
        seconds("metrics_interval_seconds", self.metrics_interval_seconds)?;
        seconds(
            "heartbeat_interval_seconds",
            self.heartbeat_interval_seconds,
        )?;
        seconds(
            "network_check_interval_seconds",
            self.network_check_interval_seconds,
        )?;
        if let Some(c) = &self.collectors {
            if c.len() > limits::MAX_COLLECTORS {
                return Err(format!(
                    "collectors: at most {} entries",
                    limits::MAX_COLLECTORS
                ));
            }
            if let Some(bad) = c.iter().find(|n| !COLLECTORS.contains(&n.as_str())) {
                return Err(format!(
                    "collectors: unknown collector {bad:?}: known are {}",
                    COLLECTORS.join(", ")
                ));
            }
        }
        for (field, v) in [
            ("cpu_alert_percent", self.cpu_alert_percent),
            ("memory_alert_percent", self.memory_alert_percent),
            ("disk_alert_percent", self.disk_alert_percent),
        ] {
            if v.is_some_and(|v| v == 0 || v > 100) {
                return Err(format!("{field}: out of range: allowed 1..=100"));
            }
        }
        if let Some(services) = &self.watchdog_services {
            if services.len() > limits::MAX_WATCHDOG_SERVICES {
                return Err(format!(
                    "watchdog_services: at most {} services",
                    limits::MAX_WATCHDOG_SERVICES
                ));
            }
            for (i, s) in services.iter().enumerate() {
                let field = |f: &str| format!("watchdog_services[{i}].{f}");
                if s.name.trim().is_empty()
                    || s.name.len() > limits::MAX_SERVICE_NAME_BYTES
                    || s.name.chars().any(char::is_control)
                {
                    return Err(format!(
                        "{}: 1 to {} bytes, no control characters",
                        field("name"),
                        limits::MAX_SERVICE_NAME_BYTES
                    ));
                }
                if let Some(a) = &s.action {
                    if !WATCHDOG_ACTIONS.contains(&a.as_str()) {
                        return Err(format!("{}: must be restart or alert", field("action")));
                    }
                }
                if s.max_restarts.is_some_and(|m| m > limits::MAX_RESTARTS) {
                    return Err(format!(
                        "{}: out of range: allowed 0..={}",
                        field("max_restarts"),
                        limits::MAX_RESTARTS
                    ));
                }
                if s.restart_cooldown_seconds
                    .is_some_and(|c| c > limits::MAX_SECONDS)
                {
                    return Err(format!(
                        "{}: out of range: allowed 0..={}",
                        field("restart_cooldown_seconds"),
                        limits::MAX_SECONDS
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `policy`, server -> agent: the agent's effective settings (the merge of every policy that
/// applies to it) and their revision. The agent applies it without a restart and answers
/// `policy_status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Policy {
    /// [`PolicySettings::revision`] of `settings`.
    pub revision: String,
    pub settings: PolicySettings,
}

impl Policy {
    pub fn new(settings: PolicySettings) -> Policy {
        Policy {
            revision: settings.revision(),
            settings,
        }
    }
}

/// `policy_status`, agent -> server: the `policy` of `revision` was applied, or refused with
/// `error` (the agent then keeps what it had).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct PolicyStatus {
    pub revision: String,
    pub applied: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_is_the_hash_of_the_canonical_json() {
        let s = PolicySettings {
            metrics_interval_seconds: Some(30),
            ..Default::default()
        };
        assert_eq!(s.canonical_json(), r#"{"metrics_interval_seconds":30}"#);
        assert_eq!(s.revision().len(), 64);
        assert_ne!(s.revision(), PolicySettings::default().revision());
    }

    #[test]
    fn limits_name_the_field() {
        let s = PolicySettings {
            watchdog_services: Some(vec![PolicyService {
                name: "x".into(),
                action: Some("explode".into()),
                max_restarts: None,
                restart_cooldown_seconds: None,
            }]),
            ..Default::default()
        };
        let err = s.check_limits().unwrap_err();
        assert!(err.starts_with("watchdog_services[0].action"), "{err}");
        let s = PolicySettings {
            collectors: Some(vec!["gpu".into()]),
            ..Default::default()
        };
        assert!(s.check_limits().unwrap_err().starts_with("collectors"));
    }
}
