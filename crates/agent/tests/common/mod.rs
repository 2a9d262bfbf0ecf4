//! Starting the real agent binary as a child process with a test config.
#![allow(dead_code)]

pub mod own_postgres;
pub mod peer;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const AGENT_BIN: &str = env!("CARGO_BIN_EXE_gururmm-agent");

/// One agent installation: a folder with its config, state and logs. The process can be
/// stopped and started again over the same folder (an agent restart).
pub struct Agent {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
}

/// Short intervals so the suite is quick.
pub fn config_text(dir: &Path, url: &str, api_key: &str, extra: &str) -> String {
    format!(
        "[server]\nurl = \"{url}\"\napi_key = \"{api_key}\"\n\n[agent]\n{extra_agent}\
heartbeat_interval_seconds = 1\nnetwork_check_interval_seconds = 1\nidle_timeout_seconds = 6\n\
auth_timeout_seconds = 3\nreconnect_delay_seconds = 1\nreconnect_max_delay_seconds = 2\n\
state_dir = \"{state}\"\nlog_dir = \"{logs}\"\nlog_level = \"info\"\n\n[metrics]\ninterval_seconds = 10\n\n{rest}",
        extra_agent = agent_lines(extra),
        state = dir.join("state").display(),
        logs = dir.join("logs").display(),
        rest = non_agent_lines(extra),
    )
}

/// `extra` may hold `[agent]` lines (merged into the test's [agent] section) and other sections.
fn split_extra(extra: &str) -> (String, String) {
    let mut agent = String::new();
    let mut rest = String::new();
    let mut in_agent = false;
    for line in extra.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_agent = t == "[agent]";
            if in_agent {
                continue;
            }
        }
        let target = if in_agent { &mut agent } else { &mut rest };
        target.push_str(line);
        target.push('\n');
    }
    (agent, rest)
}

fn agent_lines(extra: &str) -> String {
    split_extra(extra).0
}

fn non_agent_lines(extra: &str) -> String {
    split_extra(extra).1
}

impl Agent {
    pub fn new(url: &str, api_key: &str, extra: &str) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("agent.toml"),
            config_text(dir.path(), url, api_key, extra),
        )
        .unwrap();
        Agent { dir, child: None }
    }

    /// Creates the folder and starts the agent.
    pub fn start_new(url: &str, api_key: &str, extra: &str) -> Agent {
        let mut a = Agent::new(url, api_key, extra);
        a.start();
        a
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("agent.toml")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn start(&mut self) {
        self.start_exe(Path::new(AGENT_BIN));
    }

    /// Starts the agent from another executable (a copy that may update itself).
    pub fn start_exe(&mut self, exe: &Path) {
        assert!(self.child.is_none(), "agent already running");
        let show = std::env::var_os("TEST_LOG").is_some();
        let child = Command::new(exe)
            .env_remove("GURURMM_AGENT_UNDER_SYSTEMD")
            .arg("run")
            .arg("--config")
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(if show {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("start the agent binary");
        self.child = Some(child);
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL: no chance to clean up (a crash or power loss).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait: the normal stop.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
            panic!("agent did not stop within 10 s of SIGTERM");
        }
    }

    pub fn outbox_files(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.state_dir().join("outbox"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "json"))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Everything the agent logged to its file so far.
    pub fn log_text(&self) -> String {
        let mut text = String::new();
        if let Ok(dir) = std::fs::read_dir(self.dir.path().join("logs")) {
            for e in dir.flatten() {
                text.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        text
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Polls `f` every 100 ms until it returns `Some` or `secs` pass.
pub async fn wait_for<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {secs} s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub use gururmm_agent::commands::process_tree::pid_alive;

/// Live processes whose command line contains `needle`.
pub fn processes_with(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) && pid_alive(pid) {
            out.push(pid);
        }
    }
    out
}

/// The key the agent saved in its state folder after enrolling.
pub async fn saved_key(agent: &Agent) -> String {
    let path = agent.state_dir().join("agent_key");
    wait_for(10, "the saved agent key", || async {
        std::fs::read_to_string(&path).ok()
    })
    .await
}

/// Sends `echo back` to the agent through the server; it must complete with that output.
pub async fn runs_echo(server: &gururmm_server::testing::TestServer, agent_id: &str) {
    let c = server
        .post(
            &format!("/api/agents/{agent_id}/command"),
            serde_json::json!({"command_type": "shell", "command": "echo back", "timeout_seconds": 20}),
        )
        .await;
    let done = server
        .wait_for(
            &format!("/api/commands/{}", c["id"].as_str().unwrap()),
            Duration::from_secs(30),
            |c| c["status"] == serde_json::json!("completed"),
        )
        .await;
    assert_eq!(done["stdout"], serde_json::json!("back\n"));
}

/// Accepts the agent's next WebSocket connection on `listener` (within `secs`).
pub async fn accept_ws(
    listener: &tokio::net::TcpListener,
    secs: u64,
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let (tcp, _) = tokio::time::timeout(Duration::from_secs(secs), listener.accept())
        .await
        .expect("agent connects")
        .unwrap();
    tokio_tungstenite::accept_async(tcp).await.unwrap()
}
