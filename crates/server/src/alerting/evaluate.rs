//! Judging reports against the rules, in memory. Per (rule, agent, subject) the evaluator
//! remembers since when the condition holds and whether its alert is open; a report costs a
//! look at the rules covering the agent, never a database query.

use std::collections::HashMap;
use std::sync::Arc;

use gururmm_protocol::MetricsReport;

use super::maintenance::MaintenanceWindow;
use super::rules::{AlertRule, RuleKind};
use crate::scope::Placement;

/// Most disks of one report judged (agent input is hostile).
const MAX_DISKS: usize = 64;

/// The rules and windows in force, as cached on every node.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Enabled rules only.
    pub rules: Vec<Arc<AlertRule>>,
    pub windows: Vec<MaintenanceWindow>,
}

impl Snapshot {
    pub fn new(rules: Vec<AlertRule>, windows: Vec<MaintenanceWindow>) -> Snapshot {
        Snapshot {
            rules: rules
                .into_iter()
                .filter(|r| r.enabled)
                .map(Arc::new)
                .collect(),
            windows,
        }
    }

    /// Whether a maintenance window covers the agent now: no alert opens then.
    pub fn in_maintenance(&self, placement: &Placement, now: i64) -> bool {
        self.windows.iter().any(|w| w.covers(placement, now))
    }

    /// Enabled rules of `kind` covering the agent.
    pub fn rules_for<'a>(
        &'a self,
        kind: RuleKind,
        placement: &'a Placement,
    ) -> impl Iterator<Item = &'a Arc<AlertRule>> + 'a {
        self.rules
            .iter()
            .filter(move |r| r.kind == kind && placement.covers(&r.scope))
    }

    pub fn has_metric_rules(&self) -> bool {
        self.rules.iter().any(|r| r.kind.is_metric())
    }
}

/// One condition's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// Since when (Unix ms) the condition holds.
    pub since: i64,
    /// Its alert is open (or was asked to open).
    pub opened: bool,
}

/// One agent's conditions, by (rule id, subject).
pub type AgentMemory = HashMap<(String, String), Held>;

/// What the evaluator decided.
#[derive(Debug, Clone)]
pub enum Change {
    Open {
        rule: Arc<AlertRule>,
        agent_id: String,
        subject: String,
        message: String,
    },
    Resolve {
        rule_id: String,
        agent_id: String,
        subject: String,
    },
}

fn percent(used: u64, total: u64) -> Option<f64> {
    (total > 0).then(|| used as f64 * 100.0 / total as f64)
}

/// Judges one metrics report of `placement`'s agent at `now`, appending what changes.
pub fn evaluate_metrics(
    snapshot: &Snapshot,
    placement: &Placement,
    report: &MetricsReport,
    now: i64,
    memory: &mut AgentMemory,
    out: &mut Vec<Change>,
) {
    let mut quiet: Option<bool> = None;
    for rule in snapshot.rules.iter().filter(|r| r.kind.is_metric()) {
        if !placement.covers(&rule.scope) {
            continue;
        }
        let Some(threshold) = rule.threshold else {
            continue;
        };
        let values: Vec<(&str, f64)> = match rule.kind {
            RuleKind::Cpu => report.cpu_percent.map(|v| ("", v)).into_iter().collect(),
            RuleKind::Memory => report
                .memory_used_bytes
                .zip(report.memory_total_bytes)
                .and_then(|(u, t)| percent(u, t))
                .map(|v| ("", v))
                .into_iter()
                .collect(),
            RuleKind::Disk => report
                .disks
                .iter()
                .take(MAX_DISKS)
                .filter_map(|d| Some((d.mount.as_str(), percent(d.used_bytes, d.total_bytes)?)))
                .collect(),
            _ => continue,
        };
        for (subject, value) in values {
            if !value.is_finite() {
                continue;
            }
            let key = (rule.id.clone(), subject.to_owned());
            // Strictly above: a rule at 100% never fires.
            if value > threshold {
                let held = memory.entry(key).or_insert(Held {
                    since: now,
                    opened: false,
                });
                if held.opened || now - held.since < rule.duration_seconds * 1000 {
                    continue;
                }
                // Asked once per report at most, and only when an alert would open.
                if *quiet.get_or_insert_with(|| snapshot.in_maintenance(placement, now)) {
                    continue;
                }
                held.opened = true;
                out.push(Change::Open {
                    rule: rule.clone(),
                    agent_id: placement.agent_id.clone(),
                    subject: subject.to_owned(),
                    message: metric_message(rule, subject, value, threshold),
                });
            } else if let Some(held) = memory.remove(&key) {
                if held.opened {
                    out.push(Change::Resolve {
                        rule_id: rule.id.clone(),
                        agent_id: placement.agent_id.clone(),
                        subject: subject.to_owned(),
                    });
                }
            }
        }
    }
}

fn metric_message(rule: &AlertRule, subject: &str, value: f64, threshold: f64) -> String {
    let what = match rule.kind {
        RuleKind::Cpu => "CPU".to_owned(),
        RuleKind::Memory => "memory".to_owned(),
        _ => format!("disk {subject}"),
    };
    format!(
        "{what} use at {value:.1}% (above {threshold}% for {} s)",
        rule.duration_seconds
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::Severity;
    use crate::scope::Scope;

    fn rule(kind: RuleKind, threshold: f64, duration_seconds: i64) -> AlertRule {
        AlertRule {
            id: format!("r-{}", kind.as_str()),
            name: "r".into(),
            kind,
            threshold: Some(threshold),
            duration_seconds,
            include_timeouts: false,
            severity: Severity::Warning,
            scope: Scope::fleet(),
            enabled: true,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn report(cpu: f64) -> MetricsReport {
        MetricsReport {
            timestamp: 0,
            cpu_percent: Some(cpu),
            memory_used_bytes: Some(50),
            memory_total_bytes: Some(100),
            disks: vec![gururmm_protocol::DiskUsage {
                mount: "/".into(),
                total_bytes: 100,
                used_bytes: 95,
            }],
            network: None,
        }
    }

    fn placement() -> Placement {
        Placement {
            agent_id: "a".into(),
            site_id: None,
            client_id: None,
        }
    }

    #[test]
    fn opens_after_the_duration_once_and_resolves_when_clear() {
        let snap = Snapshot::new(vec![rule(RuleKind::Cpu, 90.0, 10)], vec![]);
        let (p, mut mem, mut out) = (placement(), AgentMemory::new(), Vec::new());
        evaluate_metrics(&snap, &p, &report(95.0), 0, &mut mem, &mut out);
        assert!(out.is_empty());
        evaluate_metrics(&snap, &p, &report(95.0), 10_000, &mut mem, &mut out);
        assert!(matches!(out.as_slice(), [Change::Open { .. }]));
        // Held: no storm.
        evaluate_metrics(&snap, &p, &report(99.0), 20_000, &mut mem, &mut out);
        assert_eq!(out.len(), 1);
        evaluate_metrics(&snap, &p, &report(10.0), 30_000, &mut mem, &mut out);
        assert!(matches!(out.as_slice(), [_, Change::Resolve { .. }]));
    }

    #[test]
    fn a_dip_restarts_the_duration() {
        let snap = Snapshot::new(vec![rule(RuleKind::Cpu, 90.0, 10)], vec![]);
        let (p, mut mem, mut out) = (placement(), AgentMemory::new(), Vec::new());
        evaluate_metrics(&snap, &p, &report(95.0), 0, &mut mem, &mut out);
        evaluate_metrics(&snap, &p, &report(5.0), 5_000, &mut mem, &mut out);
        evaluate_metrics(&snap, &p, &report(95.0), 11_000, &mut mem, &mut out);
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn disks_are_judged_one_by_one_and_memory_as_a_percent() {
        let snap = Snapshot::new(
            vec![
                rule(RuleKind::Disk, 90.0, 0),
                rule(RuleKind::Memory, 60.0, 0),
            ],
            vec![],
        );
        let (p, mut mem, mut out) = (placement(), AgentMemory::new(), Vec::new());
        evaluate_metrics(&snap, &p, &report(1.0), 0, &mut mem, &mut out);
        match out.as_slice() {
            [Change::Open { subject, .. }] => assert_eq!(subject, "/"),
            other => panic!("{other:?}"),
        }
    }
}
