//! Alerting: rules, their evaluation as reports arrive and by a timer for absence, and the
//! lifecycle of an alert (open, acknowledged, resolved).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How urgent an alert is; rules carry one and notification routes filter by it. Ordered:
/// `critical` is the highest.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s {
            "info" => Severity::Info,
            "warning" => Severity::Warning,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }
}

pub mod engine;
pub mod evaluate;
pub mod maintenance;
pub mod rules;

pub use engine::Alerting;
