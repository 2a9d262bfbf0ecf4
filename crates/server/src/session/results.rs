//! Command results, whichever transport brought them: capped and stored the same way.

use gururmm_protocol::command_status::{COMPLETED, FAILED, TIMED_OUT};
use gururmm_protocol::CommandResult;

use crate::db::DbResult;
use crate::events::Event;
use crate::state::AppState;

/// The status a result puts its command in.
pub fn status_for(result: &CommandResult) -> &'static str {
    if result.timed_out {
        TIMED_OUT
    } else if result.exit_code == 0 {
        COMPLETED
    } else {
        FAILED
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary and says where and how much.
pub fn cap_output(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}\n[output truncated by the server: {} of {} bytes kept]",
        &text[..cut],
        cut,
        text.len()
    )
}

/// Stores a result reported by `agent_id` (already cleaned of NUL bytes) and tells the
/// dashboard. Returns the command's new status, or None when the agent has no such command
/// (logged, nothing stored).
pub(crate) async fn record(
    state: &AppState,
    agent_id: &str,
    result: &CommandResult,
) -> DbResult<Option<String>> {
    let max = state.config.max_output_bytes;
    let status = state
        .store
        .store_result(
            agent_id,
            &result.id,
            status_for(result),
            i64::from(result.exit_code),
            &cap_output(&result.stdout, max),
            &cap_output(&result.stderr, max),
            i64::try_from(result.duration_ms).unwrap_or(i64::MAX),
        )
        .await?;
    match &status {
        Some(status) => {
            state.publish(Event::CommandUpdated {
                id: result.id.clone(),
                agent_id: agent_id.to_owned(),
                status: status.clone(),
            });
            if status == FAILED || status == TIMED_OUT {
                state
                    .alerting
                    .on_command_failed(
                        state,
                        agent_id,
                        &result.id,
                        status == TIMED_OUT,
                        Some(i64::from(result.exit_code)),
                    )
                    .await;
            }
        }
        None => {
            tracing::warn!(agent_id, command_id = %super::sanitize::for_log(&result.id), "result for a command this agent does not have")
        }
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_cap_marks_the_cut() {
        assert_eq!(cap_output("short", 100), "short");
        let long = "é".repeat(100); // 200 bytes
        let capped = cap_output(&long, 51);
        assert!(capped.starts_with(&"é".repeat(25)));
        assert!(
            capped.contains("[output truncated by the server: 50 of 200 bytes kept]"),
            "{capped}"
        );
    }

    #[test]
    fn status_from_result() {
        let mut r = CommandResult {
            id: "x".into(),
            exit_code: 0,
            stdout: String::new(),
            stderr: String::new(),
            duration_ms: 1,
            timed_out: false,
        };
        assert_eq!(status_for(&r), "completed");
        r.exit_code = 2;
        assert_eq!(status_for(&r), "failed");
        r.timed_out = true;
        assert_eq!(status_for(&r), "timed_out");
    }
}
