//! Schedules: when a saved job runs next, and running the slots that are due.
//!
//! The upkeep (on the node holding its lease) calls [`run_due`] every sweep. Each due slot is
//! claimed in the database (a conditional `UPDATE` of `next_run_at` in the transaction that
//! inserts the slot's job), so a slot runs once even if two processes look at once. The next
//! slot is the first one after *now*: a server that was down over several slots runs the
//! schedule once when it comes back, not once per missed slot.

use std::str::FromStr;

use chrono::{TimeZone, Utc};

use crate::db::Actor;
use crate::state::AppState;

/// The time zone of a schedule, by IANA name.
pub fn parse_zone(name: &str) -> Result<chrono_tz::Tz, String> {
    chrono_tz::Tz::from_str(name).map_err(|_| {
        format!("time_zone: {name:?} is not an IANA time zone (e.g. Europe/Berlin, UTC)")
    })
}

/// Checks a cron expression: five fields (minute hour day-of-month month day-of-week).
pub fn parse_cron(expr: &str) -> Result<croner::Cron, String> {
    if expr.split_whitespace().count() != 5 {
        return Err(format!(
            "cron: {expr:?} must have five fields: minute hour day-of-month month day-of-week"
        ));
    }
    croner::Cron::from_str(expr).map_err(|e| format!("cron: {expr:?}: {e}"))
}

/// The first slot of `cron` in `zone` strictly after `after_ms` (Unix ms).
pub fn next_slot(cron: &str, zone: &str, after_ms: i64) -> Result<i64, String> {
    let cron = parse_cron(cron)?;
    let tz = parse_zone(zone)?;
    let after = Utc
        .timestamp_millis_opt(after_ms)
        .single()
        .ok_or("time out of range")?
        .with_timezone(&tz);
    cron.find_next_occurrence(&after, false)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("cron: no next time: {e}"))
}

/// Runs every schedule whose slot is due, once each.
pub async fn run_due(state: &AppState) {
    let now = crate::db::now_ms();
    let due = match state.store.due_schedules(now).await {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "reading due schedules failed");
            return;
        }
    };
    for schedule in due {
        let Some(slot) = schedule.next_run_at else {
            continue;
        };
        let next = match &schedule.cron {
            Some(cron) => match next_slot(cron, &schedule.time_zone, now) {
                Ok(n) => Some(n),
                Err(e) => {
                    tracing::error!(schedule_id = %schedule.id, error = %e, "schedule has no next slot");
                    None
                }
            },
            None => None,
        };
        let body: crate::http::types::JobBody = match serde_json::from_str(&schedule.job_json) {
            Ok(b) => b,
            Err(e) => {
                let why = format!("stored job cannot be read: {e}");
                let _ = state
                    .store
                    .skip_schedule_run(&schedule.id, slot, next, now, &why)
                    .await;
                continue;
            }
        };
        let prepared = match crate::http::prepare_job(state, &body).await {
            Ok(p) => p,
            Err(e) => {
                let why = e.to_string();
                tracing::warn!(schedule_id = %schedule.id, reason = %why, "schedule slot started no job");
                if let Err(e) = state
                    .store
                    .skip_schedule_run(&schedule.id, slot, next, now, &why)
                    .await
                {
                    tracing::error!(error = %e, "recording a skipped schedule slot failed");
                }
                continue;
            }
        };
        let job = prepared.as_new(schedule.created_by.as_deref(), None, Some(&schedule.id));
        match state
            .store
            .run_schedule_slot(
                &schedule.id,
                slot,
                next,
                now,
                &job,
                &prepared.agent_ids,
                Actor::SYSTEM,
            )
            .await
        {
            Ok(Some(job_id)) => {
                tracing::info!(schedule_id = %schedule.id, job_id = %job_id, agents = prepared.agent_ids.len(), "scheduled job started");
                crate::http::job_started(state, &job_id, prepared.agent_ids);
            }
            Ok(None) => {
                tracing::debug!(schedule_id = %schedule.id, "slot already run by another process")
            }
            Err(e) => {
                tracing::error!(schedule_id = %schedule.id, error = %e, "starting a scheduled job failed")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_slots_follow_the_zone_and_refuse_bad_input() {
        // 2026-12-04 18:30:00 UTC; 19:30 in Berlin (UTC+1 in winter).
        let at = 1_796_409_000_000;
        let next = next_slot("0 20 * * *", "Europe/Berlin", at).unwrap();
        assert_eq!(next - at, 30 * 60 * 1000, "20:00 Berlin is 19:00 UTC");
        let next = next_slot("* * * * *", "UTC", at).unwrap();
        assert_eq!(next - at, 60_000, "strictly after");
        assert!(next_slot("* * * *", "UTC", at)
            .unwrap_err()
            .contains("five fields"));
        assert!(next_slot("61 * * * *", "UTC", at).is_err());
        assert!(next_slot("* * * * *", "Mars/Olympus", at)
            .unwrap_err()
            .contains("time_zone"));
    }
}
