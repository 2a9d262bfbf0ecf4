//! Live command output (`command_output` pieces), output previews in lists, and the server's
//! checks of `claude_task`.

use std::time::Duration;

use futures_util::StreamExt;
use gururmm_server::testing::{TestDb, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

use crate::agent_sim::{auth_frame, new_device_id, SimAgent};
use crate::on_both_databases;

const WAIT: Duration = Duration::from_secs(10);

fn piece(id: &str, stream: &str, seq: u64, data: &str) -> Value {
    json!({"type": "command_output", "payload": {"id": id, "stream": stream, "seq": seq, "data": data}})
}

/// Enrolls an agent that lists `capabilities` in its auth; returns it and its id.
async fn agent_with(server: &TestServer, code: &str, capabilities: &[&str]) -> (SimAgent, String) {
    let mut agent = SimAgent::connect(&server.ws_url).await;
    let mut auth: Value = serde_json::from_str(&auth_frame(code, &new_device_id())).unwrap();
    auth["payload"]["capabilities"] = json!(capabilities);
    agent.send(&auth).await;
    let reply = agent.recv_json(WAIT).await.expect("auth_response");
    assert_eq!(reply["payload"]["success"], true, "{reply}");
    let id = reply["payload"]["agent_id"].as_str().unwrap().to_owned();
    (agent, id)
}

/// Sends a shell command to `agent_id` and reads it off the agent's socket; returns its id.
async fn running_command(server: &TestServer, agent: &mut SimAgent, agent_id: &str) -> String {
    let c = server
        .post(
            &format!("/api/agents/{agent_id}/command"),
            json!({"command_type": "shell", "command": "for i in 1 2 3; do echo line $i; sleep 1; done"}),
        )
        .await;
    let id = c["id"].as_str().unwrap().to_owned();
    let frame = agent.recv_json(WAIT).await.expect("the command");
    assert_eq!(frame["payload"]["id"], id.as_str());
    id
}

/// Pieces of a running command are kept (a page opened later reads them from the command's
/// endpoint) and relayed to the event stream; duplicates, unknown streams, pieces for another
/// agent's command and pieces after the result are not; the result replaces them.
async fn live_output_is_kept_relayed_and_replaced_by_the_result(db: TestDb) {
    let server = TestServer::start(db).await;
    let (_, _, code) = server.create_site().await;
    let ticket = server.post("/api/auth/event-ticket", json!({})).await;
    let mut events = server
        .events_with_ticket(ticket["ticket"].as_str().unwrap())
        .await
        .bytes_stream();
    let (mut agent, agent_id) = agent_with(&server, &code, &["live_output"]).await;
    let (mut other, other_id) = agent_with(&server, &code, &[]).await;
    let id = running_command(&server, &mut agent, &agent_id).await;
    let others = running_command(&server, &mut other, &other_id).await;

    agent.send(&piece(&id, "stdout", 0, "line 1\n")).await;
    agent.send(&piece(&id, "stdout", 1, "line 2\n")).await;
    agent.send(&piece(&id, "stderr", 2, "warn\n")).await;
    agent
        .send(&piece(&id, "stdout", 1, "a repeat of seq 1\n"))
        .await;
    agent
        .send(&piece(&id, "stdin", 3, "no such stream\n"))
        .await;
    agent
        .send(&piece(&others, "stdout", 0, "not this agent's\n"))
        .await;
    let live = server
        .wait_for(&format!("/api/commands/{id}"), WAIT, |c| c["live_seq"] == 2)
        .await;
    assert_eq!(live["status"], "running");
    assert_eq!(live["stdout"], "line 1\nline 2\n");
    assert_eq!(live["stderr"], "warn\n");
    assert_eq!(live["stdout_length"], 14);
    let theirs = server.get(&format!("/api/commands/{others}")).await;
    assert!(theirs["stdout"].is_null(), "{theirs}");
    assert!(theirs["live_seq"].is_null());

    // The technician's stream saw each kept piece once, in order.
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !seen.contains("warn") {
        let chunk = tokio::time::timeout_at(deadline, events.next())
            .await
            .expect("command_output events within 10 s")
            .expect("stream open")
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let pieces: Vec<Value> = seen
        .split("\n\n")
        .filter(|e| e.contains("event: command_output"))
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let seqs: Vec<i64> = pieces.iter().map(|p| p["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, vec![0, 1, 2], "{seen}");
    assert_eq!(pieces[1]["data"], "line 2\n");
    assert_eq!(pieces[1]["agent_id"], agent_id.as_str());
    assert_eq!(pieces[2]["stream"], "stderr");

    // The result is the record; pieces that come after it are ignored.
    agent.answer(&id, 0, "line 1\nline 2\nline 3\n").await;
    let done = server
        .wait_for(&format!("/api/commands/{id}"), WAIT, |c| {
            c["status"] == "completed"
        })
        .await;
    assert_eq!(done["stdout"], "line 1\nline 2\nline 3\n");
    assert!(done["live_seq"].is_null());
    agent.send(&piece(&id, "stdout", 3, "late\n")).await;
    // The upkeep removes the pieces of finished commands: those of `id` go, the other
    // (still running) command's stay (it has none kept).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let removed = server.state().store.purge_finished_output().await.unwrap();
    assert_eq!(removed, 3, "the three kept pieces of the finished command");
    assert_eq!(
        server.state().store.live_output(&id).await.unwrap().2,
        None,
        "no piece of a finished command is left"
    );
}

/// A piece is cut to 4,000 bytes, and one command's pieces stop at the output cap.
async fn pieces_are_bounded(db: TestDb) {
    let server = TestServer::start_with(db, |c| c.max_output_bytes = 10_000).await;
    let (_, _, code) = server.create_site().await;
    let (mut agent, agent_id) = agent_with(&server, &code, &["live_output"]).await;
    let id = running_command(&server, &mut agent, &agent_id).await;
    for seq in 0..5 {
        agent
            .send(&piece(&id, "stdout", seq, &"x".repeat(9_000)))
            .await;
    }
    agent
        .send(&piece(&id, "stderr", 5, "still room here"))
        .await;
    let live = server
        .wait_for(&format!("/api/commands/{id}"), WAIT, |c| c["live_seq"] == 5)
        .await;
    // 4,000 bytes a piece; two fit under the 10,000-byte cap, the third does not.
    assert_eq!(live["stdout"].as_str().unwrap().len(), 8_000);
    assert_eq!(live["stderr"], "still room here");
}

/// Lists carry the first 500 characters of each output and say so; the command's endpoint
/// and `full_output=true` carry all of it.
async fn lists_show_previews(db: TestDb) {
    let server = TestServer::start(db).await;
    let (_, _, code) = server.create_site().await;
    let (mut agent, agent_id) = agent_with(&server, &code, &[]).await;
    let id = running_command(&server, &mut agent, &agent_id).await;
    let long = "0123456789".repeat(200);
    agent.answer(&id, 0, &long).await;
    let full = server
        .wait_for(&format!("/api/commands/{id}"), WAIT, |c| {
            c["status"] == "completed"
        })
        .await;
    assert_eq!(full["stdout"], long.as_str());
    assert_eq!(full["output_preview"], false);
    let list = server
        .get(&format!("/api/commands?agent_id={agent_id}"))
        .await;
    let row = &list[0];
    assert_eq!(row["stdout"].as_str().unwrap(), &long[..500]);
    assert_eq!(row["stdout_length"], 2000);
    assert_eq!(row["output_preview"], true);
    let list = server
        .get(&format!(
            "/api/commands?agent_id={agent_id}&full_output=true"
        ))
        .await;
    assert_eq!(list[0]["stdout"], long.as_str());
    assert_eq!(list[0]["output_preview"], false);
}

/// claude_task: refused with the reason for each shell character, a timeout over 600 s, paths
/// of no length or too many files, and for an agent whose executor is not enabled; accepted
/// ones reach the agent with their folder and files.
async fn claude_task_is_checked_and_needs_the_capability(db: TestDb) {
    let server = TestServer::start(db).await;
    let (_, _, code) = server.create_site().await;
    let (mut agent, agent_id) =
        agent_with(&server, &code, &["live_output", "claude_task", "teleport"]).await;
    let (_plain, plain_id) = agent_with(&server, &code, &["live_output"]).await;
    let shown = server.get(&format!("/api/agents/{agent_id}")).await;
    assert_eq!(
        shown["capabilities"],
        json!(["claude_task", "live_output"]),
        "known names only"
    );

    let path = format!("/api/agents/{agent_id}/command");
    let refused = |body: Value| {
        let server = &server;
        let path = path.clone();
        async move {
            let (status, answer) = server.request(Method::POST, &path, Some(body)).await;
            (
                status,
                answer["error"].as_str().unwrap_or_default().to_owned(),
            )
        }
    };
    for (c, named) in [
        ("&", "'&'"),
        ("|", "'|'"),
        (";", "';'"),
        ("$", "'$'"),
        ("(", "'('"),
        (")", "')'"),
        ("<", "'<'"),
        (">", "'>'"),
        ("`", "a backtick"),
        ("\n", "a newline"),
        ("\r", "a carriage return"),
    ] {
        let (status, error) =
            refused(json!({"command_type": "claude_task", "command": format!("summarise a{c}b")}))
                .await;
        assert_eq!(status, 400, "{c:?}: {error}");
        assert!(error.contains(named), "{c:?}: {error}");
    }
    let (status, error) = refused(
        json!({"command_type": "claude_task", "command": "summarise", "timeout_seconds": 601}),
    )
    .await;
    assert_eq!((status, error.contains("1..=600")), (400, true), "{error}");
    let (status, _) = refused(
        json!({"command_type": "claude_task", "command": "summarise",
        "context_files": vec!["a.txt"; 33]}),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = refused(
        json!({"command_type": "claude_task", "command": "summarise", "working_directory": " "}),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) =
        refused(json!({"command_type": "shell", "command": "ls", "working_directory": "reports"}))
            .await;
    assert_eq!(status, 400, "working_directory is for claude_task only");
    let (status, error) = server
        .request(
            Method::POST,
            &format!("/api/agents/{plain_id}/command"),
            Some(json!({"command_type": "claude_task", "command": "summarise the report"})),
        )
        .await;
    assert_eq!(status, 409, "{error}");
    assert!(error["error"]
        .as_str()
        .unwrap()
        .contains("[claude] enabled = true"));

    let accepted = server
        .post(
            &path,
            json!({"command_type": "claude_task", "command": "Summarise the disk report, briefly.",
                "working_directory": "reports", "context_files": ["reports/disk.txt"]}),
        )
        .await;
    assert_eq!(accepted["timeout_seconds"], 300, "the executor's default");
    assert_eq!(accepted["working_directory"], "reports");
    assert_eq!(accepted["context_files"], json!(["reports/disk.txt"]));
    let frame = agent.recv_json(WAIT).await.expect("the task");
    assert_eq!(frame["payload"]["command_type"], "claude_task");
    assert_eq!(frame["payload"]["working_directory"], "reports");
    assert_eq!(
        frame["payload"]["context_files"],
        json!(["reports/disk.txt"])
    );
}

on_both_databases!(
    live_output_is_kept_relayed_and_replaced_by_the_result,
    pieces_are_bounded,
    lists_show_previews,
    claude_task_is_checked_and_needs_the_capability,
);
