//! `claude_task` end to end: the real server (`TestServer`, in this process) and the real
//! agent binary with its AI task executor enabled.
//!
//! The real Claude Code CLI cannot run here (no network, no Anthropic account), so the
//! stand-in `tests/fixtures/fake-claude` is put on `[claude] cli_path`: a shell script that
//! records its arguments, working directory, stdin and `GURURMM_COMMAND_ID` in the folder
//! given by `--record-dir` (passed through `[claude] extra_args`) and answers line by line.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{wait_for, Agent};
use futures_util::StreamExt;
use gururmm_server::testing::{TestDb, TestServer};
use serde_json::{json, Value};

fn fake_cli() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake-claude")
}

/// The folders of one test: the working root (with `reports/report.txt`) and where the
/// stand-in records how it was started.
struct Folders {
    root: tempfile::TempDir,
    rec: tempfile::TempDir,
}

impl Folders {
    fn new() -> Folders {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("reports")).unwrap();
        std::fs::write(root.path().join("reports/report.txt"), "disk C: 91% used\n").unwrap();
        Folders {
            root,
            rec: tempfile::tempdir().unwrap(),
        }
    }

    fn config(&self) -> String {
        format!(
            "[claude]\nenabled = true\ncli_path = '{}'\nworking_root = '{}'\n\
             extra_args = ['--record-dir', '{}']\n",
            fake_cli().display(),
            self.root.path().display(),
            self.rec.path().display()
        )
    }

    fn recorded(&self, name: &str) -> String {
        std::fs::read_to_string(self.rec.path().join(name))
            .unwrap_or_else(|e| panic!("the stand-in CLI recorded no {name}: {e}"))
    }
}

/// A server with one site and the agent enrolled and online: (server, agent, agent id).
async fn enrolled(extra: &str) -> (TestServer, Agent, String) {
    let server = TestServer::start(TestDb::Sqlite).await;
    let (_, _, code) = server.create_site().await;
    let agent = Agent::start_new(&server.ws_url, &code, extra);
    let list = server
        .wait_for("/api/agents", Duration::from_secs(20), |v| {
            v.as_array()
                .is_some_and(|a| a.len() == 1 && a[0]["online"] == json!(true))
        })
        .await;
    let id = list[0]["id"].as_str().unwrap().to_owned();
    (server, agent, id)
}

/// The task runs in its folder with its arguments and context, its output is seen on the
/// server while it runs (the command's endpoint and the `command_output` events), and its
/// result comes back.
#[tokio::test]
async fn claude_task_runs_on_the_agent_and_streams_its_answer() {
    let folders = Folders::new();
    let (server, _agent, agent_id) = enrolled(&folders.config()).await;
    let shown = server.get(&format!("/api/agents/{agent_id}")).await;
    assert_eq!(
        shown["capabilities"],
        json!(["claude_task", "command_environment", "live_output"]),
        "{shown}"
    );

    let ticket = server.post("/api/auth/event-ticket", json!({})).await;
    let mut events = server
        .events_with_ticket(ticket["ticket"].as_str().unwrap())
        .await
        .bytes_stream();
    let task = "slowly summarise the disk report in report.txt";
    let created = server
        .post(
            &format!("/api/agents/{agent_id}/command"),
            json!({"command_type": "claude_task", "command": task, "timeout_seconds": 60,
                "working_directory": "reports", "context_files": ["reports/report.txt"]}),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();

    // While it runs, the first answer lines are on the server already.
    let live = server
        .wait_for(
            &format!("/api/commands/{id}"),
            Duration::from_secs(20),
            |c| {
                c["status"] != json!("running")
                    || c["stdout"]
                        .as_str()
                        .is_some_and(|s| s.starts_with("answer line 1\n"))
            },
        )
        .await;
    assert_eq!(
        live["status"],
        json!("running"),
        "seen only after it ended: {live}"
    );
    assert!(live["live_seq"].as_u64().is_some(), "{live}");

    let done = server
        .wait_for(
            &format!("/api/commands/{id}"),
            Duration::from_secs(30),
            |c| c["status"] != json!("running") && c["status"] != json!("pending"),
        )
        .await;
    assert_eq!(done["status"], json!("completed"), "{done}");
    assert_eq!(done["exit_code"], json!(0));
    let answer: String = (1..=5).map(|n| format!("answer line {n}\n")).collect();
    assert_eq!(done["stdout"], json!(answer));

    // How the agent started the CLI.
    assert_eq!(
        folders.recorded("args"),
        format!(
            "-p\n{task}\n--record-dir\n{}\n",
            folders.rec.path().display()
        )
    );
    let folder = folders.root.path().join("reports").canonicalize().unwrap();
    assert_eq!(folders.recorded("cwd").trim_end(), folder.to_str().unwrap());
    assert_eq!(
        folders.recorded("stdin"),
        "=== reports/report.txt ===\ndisk C: 91% used\n"
    );
    assert_eq!(folders.recorded("command_id").trim_end(), id);

    // The technician's event stream got the pieces, in order, adding up to the answer.
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let streamed = loop {
        let pieces: Vec<Value> = seen
            .split("\n\n")
            .filter(|e| e.contains("event: command_output"))
            .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter(|p| p["id"] == json!(id))
            .collect();
        let text: String = pieces
            .iter()
            .filter(|p| p["stream"] == json!("stdout"))
            .map(|p| p["data"].as_str().unwrap_or_default().to_owned())
            .collect();
        if text == answer {
            break pieces;
        }
        let chunk = tokio::time::timeout_at(deadline, events.next())
            .await
            .unwrap_or_else(|_| panic!("command_output events within 10 s; saw {seen}"))
            .expect("stream open")
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    };
    assert!(streamed.len() >= 3, "{streamed:?}");
    let seqs: Vec<u64> = streamed
        .iter()
        .map(|p| p["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..streamed.len() as u64).collect::<Vec<_>>());
}

/// What the server cannot know is refused by the agent: a folder outside its working root.
#[tokio::test]
async fn the_agent_refuses_a_folder_outside_its_root() {
    let folders = Folders::new();
    let outside = tempfile::tempdir().unwrap();
    let (server, _agent, agent_id) = enrolled(&folders.config()).await;
    let created = server
        .post(
            &format!("/api/agents/{agent_id}/command"),
            json!({"command_type": "claude_task", "command": "summarise it",
                "working_directory": outside.path().display().to_string()}),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let done = server
        .wait_for(
            &format!("/api/commands/{id}"),
            Duration::from_secs(20),
            |c| !c["exit_code"].is_null(),
        )
        .await;
    assert_eq!(done["status"], json!("failed"), "{done}");
    assert_eq!(done["exit_code"], json!(-1));
    assert!(
        done["stderr"]
            .as_str()
            .unwrap()
            .contains("outside the working root"),
        "{done}"
    );
    assert!(!folders.rec.path().join("args").exists(), "the CLI started");
}

/// An agent without `[claude]` does not list `claude_task`, so the server refuses the task.
#[tokio::test]
async fn an_agent_without_the_executor_is_not_offered_tasks() {
    let (server, _agent, agent_id) = enrolled("").await;
    let shown = wait_for(10, "the agent's capabilities", || {
        let server = &server;
        let agent_id = agent_id.clone();
        async move {
            let a = server.get(&format!("/api/agents/{agent_id}")).await;
            (a["capabilities"] != json!([])).then_some(a)
        }
    })
    .await;
    assert_eq!(
        shown["capabilities"],
        json!(["command_environment", "live_output"]),
        "{shown}"
    );
    let (status, body) = server
        .request(
            reqwest::Method::POST,
            &format!("/api/agents/{agent_id}/command"),
            Some(json!({"command_type": "claude_task", "command": "summarise it"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
}
