//! Maintenance windows: while one covers an agent, no new alert opens for it (so nothing is
//! sent either). One-off (a start and an end) or weekly (weekdays, a start time and a length,
//! in a named time zone).

use chrono::{Datelike, TimeZone};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::scope::{Placement, Scope, ScopeKind};

/// A weekly recurrence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Weekly {
    /// ISO weekdays, 1 (Monday) to 7 (Sunday).
    pub weekdays: Vec<u8>,
    /// Local start time, `HH:MM`.
    pub start: String,
    /// 1 to 10080 (a week).
    pub duration_minutes: i64,
}

/// A window as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MaintenanceWindow {
    pub id: String,
    pub name: String,
    /// An agent, a site or a client.
    pub scope: Scope,
    /// One-off: RFC 3339.
    #[schema(required = true, value_type = Option<String>)]
    #[serde(with = "crate::db::rfc3339::option")]
    pub starts_at: Option<i64>,
    #[schema(required = true, value_type = Option<String>)]
    #[serde(with = "crate::db::rfc3339::option")]
    pub ends_at: Option<i64>,
    #[schema(required = true)]
    pub weekly: Option<Weekly>,
    /// IANA name (`Europe/Berlin`) or `UTC`; weekly windows are in this zone.
    pub time_zone: String,
    #[serde(with = "crate::db::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: i64,
    #[serde(with = "crate::db::rfc3339")]
    #[schema(value_type = String)]
    pub updated_at: i64,
}

/// A window to create or replace: `starts_at` and `ends_at`, or `weekly`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceWindowBody {
    /// 1 to 200 characters.
    pub name: String,
    /// An agent, a site or a client.
    pub scope: Scope,
    /// One-off start, RFC 3339.
    #[serde(default)]
    pub starts_at: Option<String>,
    /// One-off end, RFC 3339, after the start.
    #[serde(default)]
    pub ends_at: Option<String>,
    #[serde(default)]
    pub weekly: Option<Weekly>,
    /// IANA time zone name; default `UTC`.
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// A checked window, ready to store.
#[derive(Debug, Clone)]
pub struct WindowInput {
    pub name: String,
    pub scope: Scope,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub weekly: Option<Weekly>,
    pub time_zone: String,
}

fn parse_instant(field: &str, v: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| t.timestamp_millis())
        .map_err(|_| format!("{field}: must be an RFC 3339 time"))
}

/// `HH:MM` as minutes of the day.
pub fn parse_start(v: &str) -> Option<u32> {
    let (h, m) = v.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

pub fn parse_zone(v: &str) -> Option<chrono_tz::Tz> {
    v.parse().ok()
}

impl MaintenanceWindowBody {
    pub fn check(self) -> Result<WindowInput, String> {
        let name = self.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 200 {
            return Err("name: must be 1 to 200 characters".into());
        }
        if self.scope.kind == ScopeKind::Fleet {
            return Err("scope.kind: a window covers an agent, a site or a client".into());
        }
        self.scope.check()?;
        let time_zone = self.time_zone.unwrap_or_else(|| "UTC".into());
        if time_zone.len() > 64 || parse_zone(&time_zone).is_none() {
            return Err("time_zone: not a known IANA time zone name".into());
        }
        let (starts_at, ends_at) = match (&self.starts_at, &self.ends_at, &self.weekly) {
            (Some(s), Some(e), None) => {
                let (s, e) = (parse_instant("starts_at", s)?, parse_instant("ends_at", e)?);
                if e <= s {
                    return Err("ends_at: must be after starts_at".into());
                }
                (Some(s), Some(e))
            }
            (None, None, Some(w)) => {
                if w.weekdays.is_empty()
                    || w.weekdays.len() > 7
                    || w.weekdays.iter().any(|d| !(1..=7).contains(d))
                {
                    return Err(
                        "weekly.weekdays: 1 to 7 days, each 1 (Monday) to 7 (Sunday)".into(),
                    );
                }
                if parse_start(&w.start).is_none() {
                    return Err("weekly.start: must be HH:MM".into());
                }
                if !(1..=10_080).contains(&w.duration_minutes) {
                    return Err("weekly.duration_minutes: must be 1 to 10080".into());
                }
                (None, None)
            }
            (Some(_), None, None) => return Err("ends_at: required with starts_at".into()),
            (None, Some(_), None) => return Err("starts_at: required with ends_at".into()),
            (None, None, None) => {
                return Err("weekly: give starts_at and ends_at, or weekly".into())
            }
            _ => return Err("weekly: give starts_at and ends_at, or weekly, not both".into()),
        };
        let mut weekly = self.weekly;
        if let Some(w) = &mut weekly {
            w.weekdays.sort_unstable();
            w.weekdays.dedup();
        }
        Ok(WindowInput {
            name,
            scope: self.scope,
            starts_at,
            ends_at,
            weekly,
            time_zone,
        })
    }
}

impl MaintenanceWindow {
    /// Whether the window is on at `now` (Unix ms).
    pub fn active_at(&self, now: i64) -> bool {
        if let (Some(s), Some(e)) = (self.starts_at, self.ends_at) {
            return s <= now && now < e;
        }
        let (Some(w), Some(zone)) = (&self.weekly, parse_zone(&self.time_zone)) else {
            return false;
        };
        let Some(start) = parse_start(&w.start) else {
            return false;
        };
        let Some(now_utc) = chrono::DateTime::from_timestamp_millis(now) else {
            return false;
        };
        let today = now_utc.with_timezone(&zone).date_naive();
        let length = w.duration_minutes * 60_000;
        // An occurrence that started up to a week ago may still run.
        (0..=7).any(|back| {
            let Some(day) = today.checked_sub_days(chrono::Days::new(back)) else {
                return false;
            };
            if !w
                .weekdays
                .contains(&(day.weekday().number_from_monday() as u8))
            {
                return false;
            }
            let Some(local) = day.and_hms_opt(start / 60, start % 60, 0) else {
                return false;
            };
            // A start in a DST gap begins when the clocks have moved on.
            let began = match zone.from_local_datetime(&local) {
                chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => t,
                chrono::LocalResult::None => {
                    match zone.from_local_datetime(&(local + chrono::Duration::hours(1))) {
                        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => t,
                        chrono::LocalResult::None => return false,
                    }
                }
            }
            .timestamp_millis();
            began <= now && now < began + length
        })
    }

    pub fn covers(&self, placement: &Placement, now: i64) -> bool {
        placement.covers(&self.scope) && self.active_at(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weekly(days: Vec<u8>, start: &str, minutes: i64, zone: &str) -> MaintenanceWindow {
        MaintenanceWindow {
            id: "w".into(),
            name: "w".into(),
            scope: Scope {
                kind: ScopeKind::Agent,
                id: Some("a".into()),
            },
            starts_at: None,
            ends_at: None,
            weekly: Some(Weekly {
                weekdays: days,
                start: start.into(),
                duration_minutes: minutes,
            }),
            time_zone: zone.into(),
            created_at: 0,
            updated_at: 0,
        }
    }

    fn at(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn weekly_in_a_zone() {
        // 2026-12-05 is a Saturday. 22:00-02:00 Berlin time (UTC+1 in December).
        let w = weekly(vec![6], "22:00", 240, "Europe/Berlin");
        assert!(!w.active_at(at("2026-12-05T20:59:00Z")));
        assert!(w.active_at(at("2026-12-05T21:00:00Z")));
        // Past midnight, now Sunday: still the Saturday occurrence.
        assert!(w.active_at(at("2026-12-06T00:30:00Z")));
        assert!(!w.active_at(at("2026-12-06T01:00:00Z")));
        assert!(!w.active_at(at("2026-12-12T20:00:00Z")));
    }

    #[test]
    fn body_checks_name_the_field() {
        let body =
            |starts: Option<&str>, ends: Option<&str>, w: Option<Weekly>| MaintenanceWindowBody {
                name: "n".into(),
                scope: Scope {
                    kind: ScopeKind::Site,
                    id: Some("s".into()),
                },
                starts_at: starts.map(Into::into),
                ends_at: ends.map(Into::into),
                weekly: w,
                time_zone: None,
            };
        let e = body(
            Some("2026-01-02T00:00:00Z"),
            Some("2026-01-01T00:00:00Z"),
            None,
        );
        assert!(e.check().unwrap_err().starts_with("ends_at"));
        assert!(body(None, None, None)
            .check()
            .unwrap_err()
            .starts_with("weekly"));
        let bad_day = Weekly {
            weekdays: vec![8],
            start: "10:00".into(),
            duration_minutes: 5,
        };
        assert!(body(None, None, Some(bad_day))
            .check()
            .unwrap_err()
            .starts_with("weekly.weekdays"));
        let bad_start = Weekly {
            weekdays: vec![1],
            start: "24:00".into(),
            duration_minutes: 5,
        };
        assert!(body(None, None, Some(bad_start))
            .check()
            .unwrap_err()
            .starts_with("weekly.start"));
    }
}
