//! Agent reports are hostile input: NUL bytes (which PostgreSQL text refuses) are replaced, and
//! strings are bounded, before anything is stored. SQLite gets the same treatment so both
//! backends store the same text.

use gururmm_protocol::{CommandResult, MetricsReport, NetworkState, WatchdogEvent};

/// What a NUL byte becomes: U+FFFD, the replacement character.
pub const NUL_REPLACEMENT: char = '\u{FFFD}';

/// Replaces NUL bytes in place.
pub fn no_nul(s: &mut String) {
    if s.contains('\0') {
        *s = s.replace('\0', &NUL_REPLACEMENT.to_string());
    }
}

/// Cleans and cuts `s` to at most `max_chars` characters.
pub fn bounded(s: &mut String, max_chars: usize) {
    no_nul(s);
    if let Some((cut, _)) = s.char_indices().nth(max_chars) {
        s.truncate(cut);
    }
}

/// A short, ASCII-only rendering of agent text for a log line.
pub fn for_log(s: &str) -> String {
    s.chars()
        .take(200)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

pub fn command_result(r: &mut CommandResult) {
    bounded(&mut r.id, 64);
    // Output is capped by size where it is stored (results::cap_output).
    no_nul(&mut r.stdout);
    no_nul(&mut r.stderr);
}

pub fn watchdog_event(e: &mut WatchdogEvent) {
    bounded(&mut e.service, 255);
    bounded(&mut e.event, 64);
    if let Some(m) = &mut e.message {
        bounded(m, 4096);
    }
}

pub fn metrics(m: &mut MetricsReport) {
    m.disks.truncate(256);
    for d in &mut m.disks {
        bounded(&mut d.mount, 1024);
    }
}

pub fn network_state(n: &mut NetworkState) {
    bounded(&mut n.hash, 128);
    n.interfaces.truncate(256);
    for i in &mut n.interfaces {
        bounded(&mut i.name, 255);
        if let Some(mac) = &mut i.mac {
            bounded(mac, 64);
        }
        i.addresses.truncate(64);
        for a in &mut i.addresses {
            bounded(a, 128);
        }
    }
}

/// An `update_status`: bounded ids, version, state and reason.
pub fn update_status(u: &mut gururmm_protocol::UpdateStatus) {
    for (text, max) in [(&mut u.version, 64), (&mut u.state, 32)] {
        no_nul(text);
        bounded(text, max);
    }
    for (text, max) in [(&mut u.update_id, 64), (&mut u.reason, 1000)] {
        if let Some(text) = text.as_mut() {
            no_nul(text);
            bounded(text, max);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_replaced_and_length_bounded() {
        let mut s = "a\0b".to_owned();
        no_nul(&mut s);
        assert_eq!(s, "a\u{FFFD}b");
        let mut long = "\0é".repeat(10);
        bounded(&mut long, 5);
        assert_eq!(long, "\u{FFFD}é\u{FFFD}é\u{FFFD}");
        assert_eq!(for_log("ok\0\u{1b}[31m"), "ok??[31m");
    }
}
