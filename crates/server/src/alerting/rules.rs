//! Alert rules: what condition, how long, how urgent, for which agents.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Severity;
use crate::scope::Scope;

/// What a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// CPU use above `threshold` percent for `duration_seconds`.
    Cpu,
    /// Memory use above `threshold` percent for `duration_seconds`.
    Memory,
    /// One disk's use above `threshold` percent for `duration_seconds` (one alert per disk).
    Disk,
    /// Not heard from for `duration_seconds`.
    Offline,
    /// The watchdog gave up restarting a service (one alert per service).
    WatchdogGaveUp,
    /// A command failed (or timed out, with `include_timeouts`).
    CommandFailed,
}

impl RuleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Cpu => "cpu",
            RuleKind::Memory => "memory",
            RuleKind::Disk => "disk",
            RuleKind::Offline => "offline",
            RuleKind::WatchdogGaveUp => "watchdog_gave_up",
            RuleKind::CommandFailed => "command_failed",
        }
    }

    pub fn parse(s: &str) -> Option<RuleKind> {
        Some(match s {
            "cpu" => RuleKind::Cpu,
            "memory" => RuleKind::Memory,
            "disk" => RuleKind::Disk,
            "offline" => RuleKind::Offline,
            "watchdog_gave_up" => RuleKind::WatchdogGaveUp,
            "command_failed" => RuleKind::CommandFailed,
            _ => return None,
        })
    }

    /// Judged on each metrics report, with a threshold.
    pub fn is_metric(self) -> bool {
        matches!(self, RuleKind::Cpu | RuleKind::Memory | RuleKind::Disk)
    }
}

/// The longest a condition may be required to hold: a week.
pub const MAX_DURATION_SECONDS: i64 = 7 * 86_400;

/// A rule as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AlertRule {
    pub id: String,
    pub name: String,
    pub kind: RuleKind,
    /// Percent (cpu, memory, disk); absent for the other kinds.
    #[schema(required = true)]
    pub threshold: Option<f64>,
    /// How long the condition must hold (metric kinds, offline); 0 for the others.
    pub duration_seconds: i64,
    /// command_failed: timed-out commands count too.
    pub include_timeouts: bool,
    pub severity: Severity,
    pub scope: Scope,
    pub enabled: bool,
    #[serde(with = "crate::db::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: i64,
    #[serde(with = "crate::db::rfc3339")]
    #[schema(value_type = String)]
    pub updated_at: i64,
}

/// A rule to create or replace.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRuleBody {
    /// 1 to 200 characters.
    pub name: String,
    #[serde(deserialize_with = "named_kind")]
    pub kind: RuleKind,
    /// Percent, 0 to 100: required for cpu, memory and disk, refused for the others.
    #[serde(default)]
    pub threshold: Option<f64>,
    /// Seconds, 0 to 604800 (metric kinds; default 300), 1 to 604800 (offline; default 300);
    /// refused for the others.
    #[serde(default)]
    pub duration_seconds: Option<i64>,
    /// command_failed only: timed-out commands count too (default false).
    #[serde(default)]
    pub include_timeouts: Option<bool>,
    #[serde(deserialize_with = "named_severity")]
    pub severity: Severity,
    pub scope: Scope,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// An unknown kind is refused naming the field (serde's own message does not).
fn named_kind<'de, D: serde::Deserializer<'de>>(d: D) -> Result<RuleKind, D::Error> {
    let text = String::deserialize(d)?;
    RuleKind::parse(&text).ok_or_else(|| {
        serde::de::Error::custom(
            "kind: must be cpu, memory, disk, offline, watchdog_gave_up or command_failed",
        )
    })
}

fn named_severity<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Severity, D::Error> {
    let text = String::deserialize(d)?;
    Severity::parse(&text)
        .ok_or_else(|| serde::de::Error::custom("severity: must be info, warning or critical"))
}

/// A checked rule body, ready to store.
#[derive(Debug, Clone)]
pub struct RuleInput {
    pub name: String,
    pub kind: RuleKind,
    pub threshold: Option<f64>,
    pub duration_seconds: i64,
    pub include_timeouts: bool,
    pub severity: Severity,
    pub scope: Scope,
    pub enabled: bool,
}

const DEFAULT_DURATION_SECONDS: i64 = 300;

impl AlertRuleBody {
    /// Checks the body; the error names the field. Whether the scope's target exists is
    /// checked by the caller.
    pub fn check(self) -> Result<RuleInput, String> {
        let name = self.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 200 {
            return Err("name: must be 1 to 200 characters".into());
        }
        self.scope.check()?;
        let kind = self.kind;
        let threshold = match (kind.is_metric(), self.threshold) {
            (true, Some(t)) if t.is_finite() && (0.0..=100.0).contains(&t) => Some(t),
            (true, Some(_)) => return Err("threshold: must be a percent, 0 to 100".into()),
            (true, None) => {
                return Err(format!("threshold: required for a {} rule", kind.as_str()))
            }
            (false, Some(_)) => {
                return Err("threshold: only cpu, memory and disk rules have one".into())
            }
            (false, None) => None,
        };
        let timed = kind.is_metric() || kind == RuleKind::Offline;
        let duration_seconds = match (timed, self.duration_seconds) {
            (true, None) => DEFAULT_DURATION_SECONDS,
            (true, Some(d)) if (0..=MAX_DURATION_SECONDS).contains(&d) => {
                if kind == RuleKind::Offline && d == 0 {
                    return Err("duration_seconds: an offline rule needs at least 1".into());
                }
                d
            }
            (true, Some(_)) => {
                return Err(format!(
                    "duration_seconds: must be 0 to {MAX_DURATION_SECONDS}"
                ))
            }
            (false, Some(_)) => {
                return Err(
                    "duration_seconds: only cpu, memory, disk and offline rules have one".into(),
                )
            }
            (false, None) => 0,
        };
        let include_timeouts = match (kind, self.include_timeouts) {
            (RuleKind::CommandFailed, v) => v.unwrap_or(false),
            (_, Some(_)) => {
                return Err("include_timeouts: only command_failed rules have it".into())
            }
            (_, None) => false,
        };
        Ok(RuleInput {
            name,
            kind,
            threshold,
            duration_seconds,
            include_timeouts,
            severity: self.severity,
            scope: self.scope,
            enabled: self.enabled.unwrap_or(true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::ScopeKind;

    fn body(kind: RuleKind) -> AlertRuleBody {
        AlertRuleBody {
            name: "r".into(),
            kind,
            threshold: None,
            duration_seconds: None,
            include_timeouts: None,
            severity: Severity::Warning,
            scope: Scope::fleet(),
            enabled: None,
        }
    }

    #[test]
    fn metric_rules_need_a_percent() {
        assert!(body(RuleKind::Cpu)
            .check()
            .unwrap_err()
            .starts_with("threshold"));
        let ok = AlertRuleBody {
            threshold: Some(90.0),
            ..body(RuleKind::Cpu)
        };
        assert_eq!(ok.check().unwrap().duration_seconds, 300);
        let bad = AlertRuleBody {
            threshold: Some(101.0),
            ..body(RuleKind::Disk)
        };
        assert!(bad.check().unwrap_err().starts_with("threshold"));
    }

    #[test]
    fn fields_of_other_kinds_are_refused() {
        let t = AlertRuleBody {
            threshold: Some(1.0),
            ..body(RuleKind::Offline)
        };
        assert!(t.check().unwrap_err().starts_with("threshold"));
        let d = AlertRuleBody {
            duration_seconds: Some(5),
            ..body(RuleKind::WatchdogGaveUp)
        };
        assert!(d.check().unwrap_err().starts_with("duration_seconds"));
        let i = AlertRuleBody {
            include_timeouts: Some(true),
            ..body(RuleKind::Offline)
        };
        assert!(i.check().unwrap_err().starts_with("include_timeouts"));
        let s = AlertRuleBody {
            scope: Scope {
                kind: ScopeKind::Site,
                id: None,
            },
            ..body(RuleKind::Offline)
        };
        assert!(s.check().unwrap_err().starts_with("scope.id"));
    }
}
