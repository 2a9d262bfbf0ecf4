//! The real agent binary against a minimal in-test WebSocket peer that speaks the shared
//! protocol crate and nothing else: shows the agent's side of the wire contract (auth first,
//! key kept after enrollment, every malformed or unknown command answered, never dropped).
//! The full story against the real server is in `with_server.rs`.

mod common;

use std::time::Duration;

use common::Agent;
use futures_util::{SinkExt, StreamExt};
use gururmm_protocol::{fixture, AgentMessage, ServerMessage};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

use common::peer::{accept_auth, next_message_within, send, Ws};

/// A listener for the agent to connect to, and the agent (test config) pointed at it.
async fn agent_with_peer(api_key: &str) -> (TcpListener, Agent) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    (listener, Agent::start_new(&url, api_key, ""))
}

async fn accept(listener: &TcpListener) -> Ws {
    common::accept_ws(listener, 15).await
}

async fn next_message(ws: &mut Ws) -> AgentMessage {
    next_message_within(ws, Duration::from_secs(15)).await
}

/// The next command_result, skipping heartbeats, metrics and network state.
/// The next result, acknowledged as the server does once it stored it (an unacknowledged
/// result is sent again after a reconnect).
async fn next_result(ws: &mut Ws) -> gururmm_protocol::CommandResult {
    loop {
        if let AgentMessage::CommandResult(r) = next_message(ws).await {
            let ack = gururmm_protocol::ResultAck { id: r.id.clone() };
            send(ws, ServerMessage::ResultAck(ack)).await;
            return r;
        }
    }
}

/// Reads the agent's `auth` (which must come first) and accepts it, issuing `issue` as its key.
async fn authenticate(ws: &mut Ws, issue: Option<&str>) -> gururmm_protocol::Auth {
    accept_auth(ws, issue, None).await
}

#[tokio::test]
async fn enrolls_keeps_key_and_answers_every_command() {
    let (listener, agent) = agent_with_peer("AMBER-RIVER-4821").await;

    let mut ws = accept(&listener).await;
    let auth = authenticate(&mut ws, Some("grmm_issuedkey0123")).await;
    assert_eq!(auth.api_key, "AMBER-RIVER-4821");
    assert_eq!(auth.device_id.len(), 64);
    assert_eq!(auth.version, env!("CARGO_PKG_VERSION"));
    // Live output always; claude_task only with [claude] enabled = true (not here).
    assert_eq!(auth.capabilities, ["live_output", "command_environment"]);

    // Network state and a first metrics report follow the connect.
    let mut saw_network = false;
    let mut saw_metrics = false;
    while !(saw_network && saw_metrics) {
        match next_message(&mut ws).await {
            AgentMessage::NetworkState(n) => {
                assert_eq!(n.hash.len(), 64);
                saw_network = true;
            }
            AgentMessage::MetricsReport(m) => {
                assert!(m.memory_total_bytes.unwrap() > 0);
                saw_metrics = true;
            }
            _ => {}
        }
    }

    // The issued key is kept, owner-only.
    let key_file = agent.state_dir().join("agent_key");
    assert_eq!(
        std::fs::read_to_string(&key_file).unwrap(),
        "grmm_issuedkey0123"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A command that does not parse is answered with a failed result naming the problem.
    ws.send(Message::text(fixture("command_malformed")))
        .await
        .unwrap();
    let r = next_result(&mut ws).await;
    assert_eq!(r.id, "1a2b3c4d-0000-4000-8000-000000000008");
    assert_ne!(r.exit_code, 0);
    assert!(
        r.stderr.contains("could not read this command"),
        "{}",
        r.stderr
    );

    ws.send(Message::text(fixture("command_unknown_type")))
        .await
        .unwrap();
    let r = next_result(&mut ws).await;
    assert_ne!(r.exit_code, 0);
    assert!(r.stderr.contains("bash_v2"), "{}", r.stderr);

    ws.send(Message::text(fixture("command_claude_task")))
        .await
        .unwrap();
    let r = next_result(&mut ws).await;
    assert_eq!(r.exit_code, -1);
    assert_eq!(
        r.stderr,
        "the AI task executor is disabled on this agent ([claude] enabled = false)"
    );

    // An unknown message type is logged, and the agent goes on working.
    ws.send(Message::text(fixture("unsupported_type")))
        .await
        .unwrap();
    ws.send(Message::text(fixture("command_shell")))
        .await
        .unwrap();
    let r = next_result(&mut ws).await;
    assert_eq!((r.exit_code, r.stdout.as_str()), (0, "hello\n"));
    // The same command id again is not run again.
    ws.send(Message::text(fixture("command_shell")))
        .await
        .unwrap();

    // Drop the connection: the agent comes back and now uses its own key.
    drop(ws);
    let mut ws = accept(&listener).await;
    let auth = authenticate(&mut ws, None::<&str>).await;
    assert_eq!(auth.api_key, "grmm_issuedkey0123");
    // Nothing more for the duplicate within a few heartbeats.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < deadline {
        if let Ok(Some(Ok(Message::Text(t)))) =
            tokio::time::timeout(Duration::from_millis(500), ws.next()).await
        {
            let m = AgentMessage::from_json(&t).unwrap();
            assert!(
                !matches!(m, AgentMessage::CommandResult(_)),
                "a command id was run twice: {t}"
            );
        }
    }
    let log = agent.log_text();
    assert!(log.is_ascii());
    assert!(log.contains("not supported by this agent"), "{log}");
}

#[tokio::test]
async fn refused_auth_is_retried_with_backoff() {
    let (listener, _agent) = agent_with_peer("WRONG-CODE-1").await;
    for _ in 0..2 {
        let mut ws = accept(&listener).await;
        assert!(matches!(next_message(&mut ws).await, AgentMessage::Auth(_)));
        send(
            &mut ws,
            ServerMessage::from_json(&fixture("auth_response_failure")).unwrap(),
        )
        .await;
    }
}

#[tokio::test]
async fn silent_server_is_left_after_the_idle_timeout() {
    // idle_timeout_seconds is 6 in the test config.
    let (listener, _agent) = agent_with_peer("grmm_presetkey").await;
    let mut ws = accept(&listener).await;
    let auth = authenticate(&mut ws, None).await;
    // A configured grmm_ key is used as it is.
    assert_eq!(auth.api_key, "grmm_presetkey");
    // From now on the peer neither reads nor writes: no pong, no message.
    let started = tokio::time::Instant::now();
    let _second = accept(&listener).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(12),
        "reconnected after {waited:?}"
    );
    drop(ws);
}

#[tokio::test]
async fn heartbeats_flow_and_unchanged_network_state_is_sent_once() {
    // Test config: heartbeat and network check every 1 s, metrics every 10 s.
    let (listener, _agent) = agent_with_peer("grmm_presetkey").await;
    let mut ws = accept(&listener).await;
    authenticate(&mut ws, None).await;
    let (mut heartbeats, mut network, mut metrics) = (0, 0, 0);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(4500);
    while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, ws.next()).await {
        if let Message::Text(t) = frame {
            match AgentMessage::from_json(&t).unwrap() {
                AgentMessage::Heartbeat(h) => {
                    assert!(h.timestamp.unwrap() > 1_700_000_000);
                    heartbeats += 1;
                }
                AgentMessage::NetworkState(_) => network += 1,
                AgentMessage::MetricsReport(_) => metrics += 1,
                other => panic!("unexpected {}", other.message_type()),
            }
        }
    }
    assert!(heartbeats >= 3, "{heartbeats} heartbeats in 4.5 s");
    assert_eq!(
        network, 1,
        "network state is sent after connecting, then only on change"
    );
    assert_eq!(
        metrics, 1,
        "one report after connecting, the next after 10 s"
    );
}
