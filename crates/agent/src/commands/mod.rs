//! Commands from the server: each runs in its own task, several at once, exactly once.
//!
//! Order of events for one command, so a crash at any point loses nothing and repeats nothing:
//! 1. its id is appended to `command_ids` on disk (a known id is not run again);
//! 2. a `running/` marker is written;
//! 3. the command runs;
//! 4. its result is written to the outbox on disk and the marker removed;
//! 5. the transport sends the result and only then deletes the outbox file.
//!
//! A marker found at start-up means the agent died during step 3: that command is reported as
//! failed (interrupted), not run again, and on Linux what is left of its process group is
//! killed (the marker holds the group id and the leader's start time).

pub mod claude;
pub mod live;
pub mod process_tree;
pub mod runner;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use gururmm_protocol::{Command, CommandResult, CommandType};
use tokio::sync::mpsc;

use crate::logging::ascii;
use crate::state::StateDir;
pub use runner::RunSettings;

/// A finished result for the transport to deliver. `outbox` is the file holding it (`None`
/// when it could not be written to disk); delete it once sent.
#[derive(Debug)]
pub struct Finished {
    pub result: CommandResult,
    pub outbox: Option<PathBuf>,
}

#[derive(Clone)]
pub struct Executor {
    state: Arc<StateDir>,
    settings: Arc<RunSettings>,
    done: mpsc::UnboundedSender<Finished>,
    running: Arc<AtomicUsize>,
    /// The AI task executor: one per agent process, shared by every clone.
    claude: Arc<claude::AiExecutor>,
    /// Where live output goes (none: not streamed).
    live: Option<live::Sink>,
}

impl Executor {
    /// Also returns the receiving end of finished results.
    pub fn new(
        state: Arc<StateDir>,
        settings: RunSettings,
    ) -> (Executor, mpsc::UnboundedReceiver<Finished>) {
        let (done, rx) = mpsc::unbounded_channel();
        (
            Executor {
                state,
                settings: Arc::new(settings),
                done,
                running: Arc::new(AtomicUsize::new(0)),
                claude: Arc::new(claude::AiExecutor::new(None)),
                live: None,
            },
            rx,
        )
    }

    /// Runs `claude_task` commands with this AI task executor (else they are refused).
    pub fn with_claude(mut self, ai: claude::AiExecutor) -> Executor {
        self.claude = Arc::new(ai);
        self
    }

    /// Streams the output of running commands to `sink`.
    pub fn with_live_output(mut self, sink: live::Sink) -> Executor {
        self.live = Some(sink);
        self
    }

    /// Whether `claude_task` commands can run here (the `claude_task` capability).
    pub fn claude_enabled(&self) -> bool {
        self.claude.enabled()
    }

    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// Reports commands that were running when the agent last stopped, and ends what is left
    /// of their processes.
    pub fn recover_interrupted(&self) {
        for (id, detail) in self.state.interrupted_commands() {
            tracing::warn!(
                "command {} was running when the agent stopped; reporting it failed, not running it again",
                ascii(&id)
            );
            if process_tree::kill_leftover(&detail) {
                tracing::warn!("killed the leftover processes of command {}", ascii(&id));
            }
            let result = runner::not_run(
                &id,
                "the agent stopped while this command was running; it was not run again and its output is lost",
            );
            self.finish(result);
        }
    }

    /// Starts a command in its own task unless its id was seen before.
    pub fn submit(&self, cmd: Command) {
        let id = cmd.id.clone();
        match self.state.claim_command(&id) {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(
                    "command {} was received before; not running it again",
                    ascii(&id)
                );
                return;
            }
            Err(e) => {
                tracing::error!("cannot record command id {}: {e}", ascii(&id));
                self.finish(runner::not_run(
                    &id,
                    format!("the agent cannot record the command id in its state folder ({e}), so it does not run the command"),
                ));
                return;
            }
        }
        if let Err(e) = self.state.mark_running(&id, "") {
            tracing::warn!("cannot write running marker for {}: {e}", ascii(&id));
        }
        if cmd.elevated {
            tracing::debug!(
                "command {} asks for elevation; the agent already runs as a service account",
                ascii(&id)
            );
        }
        let is_ai_task = cmd.command_type == CommandType::ClaudeTask;
        tracing::info!(
            "running {} command {} (timeout {} s)",
            ascii(cmd.command_type.as_str()),
            ascii(&id),
            if is_ai_task {
                self.claude.timeout_seconds(&cmd)
            } else {
                runner::effective_timeout(&cmd, &self.settings).as_secs()
            }
        );
        let this = self.clone();
        this.running.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let state = this.state.clone();
            let on_start = |tree: Option<String>| {
                if let Some(tree) = tree {
                    let _ = state.mark_running(&cmd.id, &tree);
                }
            };
            let live = this.live.as_ref();
            let result = if is_ai_task {
                let r = this
                    .claude
                    .run(&cmd, this.settings.output_cap, live, on_start)
                    .await;
                if r.exit_code == runner::NOT_RUN_EXIT_CODE {
                    tracing::warn!("claude_task {} not run: {}", ascii(&r.id), ascii(&r.stderr));
                }
                r
            } else {
                runner::run_live(&cmd, &this.settings, live, on_start).await
            };
            tracing::info!(
                "command {} finished: exit code {}{}, {} ms",
                ascii(&result.id),
                result.exit_code,
                if result.timed_out { " (timed out)" } else { "" },
                result.duration_ms
            );
            this.finish(result);
            this.running.fetch_sub(1, Ordering::SeqCst);
        });
    }

    /// Answers a command that could not be parsed (or not run at all) with a failed result.
    pub fn reject(&self, id: &str, message: String) {
        match self.state.claim_command(id) {
            Ok(false) => {
                tracing::info!("command {} was answered before", ascii(id));
            }
            _ => self.finish(runner::not_run(id, message)),
        }
    }

    /// Keeps a result on disk, then hands it to the transport.
    fn finish(&self, result: CommandResult) {
        let outbox = match self.state.put_outbox(&result) {
            Ok(path) => Some(path),
            Err(e) => {
                tracing::error!(
                    "cannot write result of {} to the outbox: {e}; it is sent from memory",
                    ascii(&result.id)
                );
                None
            }
        };
        self.state.clear_running(&result.id);
        let _ = self.done.send(Finished { result, outbox });
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::time::Duration;

    fn settings(dir: &std::path::Path) -> RunSettings {
        RunSettings {
            default_timeout: Duration::from_secs(30),
            max_timeout: Duration::from_secs(60),
            output_cap: 4096,
            script_interpreter: "/bin/sh".into(),
            temp_dir: dir.join("tmp"),
        }
    }

    fn cmd(id: &str, text: &str) -> Command {
        let mut c = match gururmm_protocol::ServerMessage::from_json(&gururmm_protocol::fixture(
            "command_shell",
        ))
        .unwrap()
        {
            gururmm_protocol::ServerMessage::Command(c) => c,
            _ => unreachable!(),
        };
        c.id = id.into();
        c.command = text.into();
        c
    }

    #[tokio::test]
    async fn same_id_runs_once_and_result_is_in_outbox() {
        let dir = tempfile::tempdir().unwrap();
        let state = Arc::new(StateDir::open(dir.path()).unwrap());
        let counter = dir.path().join("count");
        let (exec, mut rx) = Executor::new(state.clone(), settings(dir.path()));
        let text = format!("echo x >> {}", counter.display());
        exec.submit(cmd("dup-1", &text));
        exec.submit(cmd("dup-1", &text));
        let done = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(done.result.exit_code, 0);
        let file = done.outbox.expect("written to the outbox");
        assert!(file.exists());
        assert_eq!(state.outbox().len(), 1);
        // A new executor over the same state folder (an agent restart) refuses the id too.
        let (exec2, _rx2) = Executor::new(
            Arc::new(StateDir::open(dir.path()).unwrap()),
            settings(dir.path()),
        );
        exec2.submit(cmd("dup-1", &text));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(std::fs::read_to_string(&counter).unwrap(), "x\n");
    }

    #[tokio::test]
    async fn interrupted_command_is_reported_not_rerun() {
        let dir = tempfile::tempdir().unwrap();
        let state = Arc::new(StateDir::open(dir.path()).unwrap());
        assert!(state.claim_command("int-1").unwrap());
        state.mark_running("int-1", "").unwrap();
        let (exec, mut rx) = Executor::new(state.clone(), settings(dir.path()));
        exec.recover_interrupted();
        let done = rx.recv().await.unwrap();
        assert_eq!(done.result.id, "int-1");
        assert_ne!(done.result.exit_code, 0);
        assert!(done.result.stderr.contains("agent stopped"));
        assert!(state.interrupted_commands().is_empty());
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn processes_left_by_a_crashed_agent_are_killed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let state = Arc::new(StateDir::open(dir.path()).unwrap());
        // What a crashed agent leaves: a running command's process group and its marker.
        let mut orphan = tokio::process::Command::new("sleep");
        orphan.arg("600");
        process_tree::configure(&mut orphan);
        let mut child = orphan.spawn().unwrap();
        let tree = process_tree::ProcessTree::attach(&child);
        let identity = tree.identity().expect("linux identity");
        std::mem::forget(tree);
        state.mark_running("crashed-1", &identity).unwrap();
        // A marker whose process group id was reused by someone else is not acted on.
        let mut other = std::process::Command::new("sleep")
            .arg("600")
            .spawn()
            .unwrap();
        state
            .mark_running("crashed-2", &format!("{} 1", other.id()))
            .unwrap();

        let (exec, mut rx) = Executor::new(state, settings(dir.path()));
        exec.recover_interrupted();
        for _ in 0..2 {
            rx.recv().await.unwrap();
        }
        let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .expect("the orphan was killed")
            .unwrap();
        assert!(!status.success());
        assert!(
            other.try_wait().unwrap().is_none(),
            "an unrelated process was killed"
        );
        other.kill().unwrap();
        other.wait().unwrap();
    }

    #[tokio::test]
    async fn several_commands_run_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let state = Arc::new(StateDir::open(dir.path()).unwrap());
        let (exec, mut rx) = Executor::new(state, settings(dir.path()));
        let started = std::time::Instant::now();
        for i in 0..4 {
            exec.submit(cmd(&format!("par-{i}"), "sleep 2"));
        }
        for _ in 0..4 {
            rx.recv().await.unwrap();
        }
        // One after another would take 8 s.
        assert!(started.elapsed() < Duration::from_secs(7));
    }
}
