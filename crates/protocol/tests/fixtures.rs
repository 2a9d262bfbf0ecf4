//! Every fixture round-trips: parse, serialize, and compare as JSON values, so a renamed field
//! or a changed shape fails here before it reaches either side of the wire.

use gururmm_protocol::legacy::{HeartbeatRequest, HeartbeatResponse, RegisterRequest};
use gururmm_protocol::{fixture, AgentMessage, CommandType, ServerMessage};
use serde_json::Value;

const AGENT_FIXTURES: &[&str] = &[
    "auth",
    "auth_after_update",
    "heartbeat",
    "metrics_report",
    "network_state",
    "command_result",
    "command_result_timed_out",
    "watchdog_event",
    "update_status",
    "auth_with_policy",
    "policy_status",
    "policy_status_refused",
    "command_output",
    "auth_with_capabilities",
];

const SERVER_FIXTURES: &[&str] = &[
    "auth_response",
    "auth_response_failure",
    "command_shell",
    "command_powershell",
    "command_python",
    "command_script",
    "command_claude_task",
    "command_with_environment",
    "update",
    "update_signed",
    "ping",
    "result_ack",
    "policy",
];

fn as_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[test]
fn agent_fixtures_round_trip() {
    for name in AGENT_FIXTURES {
        let text = fixture(name);
        let msg = AgentMessage::from_json(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!matches!(msg, AgentMessage::Unsupported(_)), "{name}");
        assert_eq!(msg.to_value(), as_value(&text), "{name}");
    }
}

#[test]
fn server_fixtures_round_trip() {
    for name in SERVER_FIXTURES {
        let text = fixture(name);
        let msg = ServerMessage::from_json(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!matches!(msg, ServerMessage::Unsupported(_)), "{name}");
        assert_eq!(msg.to_value(), as_value(&text), "{name}");
    }
}

#[test]
fn every_message_type_has_a_fixture() {
    let covered: Vec<String> = AGENT_FIXTURES
        .iter()
        .chain(SERVER_FIXTURES)
        .map(|n| as_value(&fixture(n))["type"].as_str().unwrap().to_owned())
        .collect();
    for t in AgentMessage::TYPES.iter().chain(ServerMessage::TYPES) {
        assert!(covered.iter().any(|c| c == t), "no fixture for {t}");
    }
}

#[test]
fn every_command_type_is_a_plain_string_with_a_fixture() {
    for kind in CommandType::KNOWN {
        let text = fixture(&format!("command_{}", kind.as_str()));
        assert_eq!(
            as_value(&text)["payload"]["command_type"],
            Value::String(kind.to_string())
        );
        match ServerMessage::from_json(&text).unwrap() {
            ServerMessage::Command(c) => assert_eq!(c.command_type, kind),
            other => panic!("expected a command, got {other:?}"),
        }
    }
}

#[test]
fn unknown_message_type_is_explicit_not_dropped() {
    let text = fixture("unsupported_type");
    for parsed in [
        ServerMessage::from_json(&text).map(|m| m.message_type().to_owned()),
        AgentMessage::from_json(&text).map(|m| m.message_type().to_owned()),
    ] {
        assert_eq!(parsed.unwrap(), "reboot_now");
    }
    match ServerMessage::from_json(&text).unwrap() {
        ServerMessage::Unsupported(u) => assert_eq!(u.payload["delay_seconds"], 5),
        other => panic!("expected unsupported, got {other:?}"),
    }
}

#[test]
fn unknown_command_type_keeps_its_name() {
    match ServerMessage::from_json(&fixture("command_unknown_type")).unwrap() {
        ServerMessage::Command(c) => {
            assert_eq!(c.command_type, CommandType::Other("bash_v2".into()));
            assert!(!c.command_type.is_known());
            // and it goes back out unchanged
            assert_eq!(serde_json::to_value(&c.command_type).unwrap(), "bash_v2");
        }
        other => panic!("expected a command, got {other:?}"),
    }
}

#[test]
fn malformed_command_names_type_and_id() {
    let err = ServerMessage::from_json(&fixture("command_malformed")).unwrap_err();
    assert_eq!(err.message_type.as_deref(), Some("command"));
    assert_eq!(
        err.command_id.as_deref(),
        Some("1a2b3c4d-0000-4000-8000-000000000008")
    );
    assert!(
        err.to_string().contains("malformed 'command' message"),
        "{err}"
    );
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    for text in [
        "",
        "not json",
        "[]",
        "{}",
        "{\"type\": 5}",
        "{\"payload\": {}}",
        "null",
    ] {
        let err = AgentMessage::from_json(text).unwrap_err();
        assert!(err.command_id.is_none(), "{text}");
    }
}

#[test]
fn payload_may_be_omitted_for_empty_messages() {
    assert_eq!(
        ServerMessage::from_json(r#"{"type":"ping"}"#).unwrap(),
        ServerMessage::Ping(Default::default())
    );
    assert!(matches!(
        AgentMessage::from_json(r#"{"type":"heartbeat"}"#).unwrap(),
        AgentMessage::Heartbeat(_)
    ));
}

#[test]
fn metrics_from_disabled_collectors_are_null_not_zero() {
    let text = r#"{"type":"metrics_report","payload":{"timestamp":1,"cpu_percent":null,
        "memory_used_bytes":null,"memory_total_bytes":null,"disks":[],"network":null}}"#;
    match AgentMessage::from_json(text).unwrap() {
        AgentMessage::MetricsReport(m) => {
            assert_eq!(m.cpu_percent, None);
            assert_eq!(m.network, None);
            let again = AgentMessage::MetricsReport(m).to_value();
            assert!(again["payload"]["cpu_percent"].is_null());
            assert!(again["payload"].get("cpu_percent").is_some());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn legacy_bodies_round_trip() {
    let reg: RegisterRequest = serde_json::from_str(&fixture("legacy_register")).unwrap();
    assert_eq!(
        serde_json::to_value(&reg).unwrap(),
        as_value(&fixture("legacy_register"))
    );
    let hb: HeartbeatRequest = serde_json::from_str(&fixture("legacy_heartbeat")).unwrap();
    assert_eq!(
        serde_json::to_value(&hb).unwrap(),
        as_value(&fixture("legacy_heartbeat"))
    );
    let resp: HeartbeatResponse =
        serde_json::from_str(&fixture("legacy_heartbeat_response")).unwrap();
    assert_eq!(resp.commands[0].command_type, CommandType::Shell);
    assert_eq!(
        serde_json::to_value(&resp).unwrap(),
        as_value(&fixture("legacy_heartbeat_response"))
    );
    let hb: HeartbeatRequest = serde_json::from_str(&fixture("legacy_heartbeat_policy")).unwrap();
    assert_eq!(
        serde_json::to_value(&hb).unwrap(),
        as_value(&fixture("legacy_heartbeat_policy"))
    );
    let resp: HeartbeatResponse =
        serde_json::from_str(&fixture("legacy_heartbeat_response_policy")).unwrap();
    let policy = resp.policy.clone().unwrap();
    assert_eq!(policy.revision, policy.settings.revision());
    assert_eq!(
        serde_json::to_value(&resp).unwrap(),
        as_value(&fixture("legacy_heartbeat_response_policy"))
    );
}

#[test]
fn policy_fixture_revision_is_the_hash_of_its_settings() {
    match ServerMessage::from_json(&fixture("policy")).unwrap() {
        ServerMessage::Policy(p) => {
            assert_eq!(p.revision, p.settings.revision());
            p.settings.check_limits().unwrap();
        }
        other => panic!("expected a policy, got {other:?}"),
    }
}

/// docs/PROTOCOL.md shows every fixture, so the public page cannot drift from the tests.
#[test]
fn protocol_doc_shows_every_fixture() {
    let doc_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/PROTOCOL.md");
    let doc = std::fs::read_to_string(&doc_path).expect("docs/PROTOCOL.md");
    let blocks: Vec<Value> = doc
        .split("```json")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .map(|b| serde_json::from_str(b).expect("every JSON example parses"))
        .collect();
    let mut names: Vec<String> = std::fs::read_dir(gururmm_protocol::fixtures_dir())
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    for name in names {
        if matches!(
            name.as_str(),
            "unsupported_type" | "command_unknown_type" | "command_malformed"
        ) {
            continue; // negative fixtures, described in prose
        }
        let value = as_value(&fixture(&name));
        assert!(
            blocks.contains(&value),
            "docs/PROTOCOL.md lacks the {name} example"
        );
    }
}
