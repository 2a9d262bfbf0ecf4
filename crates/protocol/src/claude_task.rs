//! The limits of `claude_task` that both sides check: the server refuses a bad task when it
//! is submitted, and the agent refuses it again whatever the server sent.

/// Timeout of a task that names none (`timeout_seconds` 0), in seconds.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 300;
/// The longest timeout a task may have, in seconds.
pub const MAX_TIMEOUT_SECONDS: u64 = 600;

/// Characters a task text may not hold: they would mean something to a shell.
pub const FORBIDDEN_CHARS: [char; 12] = [
    '&', '|', ';', '$', '(', ')', '<', '>', '`', '\n', '\r', '\0',
];

/// The first forbidden character in `task`, if any.
pub fn forbidden_char(task: &str) -> Option<char> {
    task.chars().find(|c| FORBIDDEN_CHARS.contains(c))
}

/// A forbidden character as a person reads it in an error message.
pub fn describe(c: char) -> String {
    match c {
        '\n' => "a newline".to_owned(),
        '\r' => "a carriage return".to_owned(),
        '\0' => "a NUL byte".to_owned(),
        '`' => "a backtick".to_owned(),
        other => format!("'{other}'"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_character_is_found() {
        for c in ['&', '|', ';', '$', '(', ')', '<', '>', '`', '\n', '\r'] {
            let task = format!("summarise report{c}txt");
            assert_eq!(forbidden_char(&task), Some(c), "{c:?}");
        }
        assert_eq!(
            forbidden_char("Summarise the disk report in reports/a.txt, briefly."),
            None
        );
        assert_eq!(describe('\n'), "a newline");
        assert_eq!(describe('$'), "'$'");
    }
}
