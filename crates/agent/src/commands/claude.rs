//! The AI task executor: runs `claude_task` commands with the Claude Code CLI, one executor
//! per agent process (the [`super::Executor`] holds it).
//!
//! A task runs non-interactively as `<cli_path> -p <task> <extra_args...>` in its working
//! directory, with the context files piped on stdin (the documented `cat file | claude -p`
//! way), each preceded by a line `=== <path relative to working_root> ===`, and
//! `GURURMM_COMMAND_ID` set. Its output streams live like any command's, and its process
//! tree is killed at the timeout.
//!
//! Every guard holds here whatever the server sent; a refused task gets exit code -1 with the
//! reason in stderr and its process is never started:
//! - the working directory (relative to `working_root`; absent means the root) and every
//!   context file must, symlinks and `..` resolved, lie inside the resolved `working_root`;
//!   a context file must be an existing regular file, and all of them at most 1 MiB;
//! - the task text must not be empty nor hold `& | ; $ ( ) < >`, a backtick, a newline or a
//!   carriage return;
//! - at most 10 tasks started per sliding hour (refused tasks do not count) and 2 at once
//!   (the third is refused, not queued);
//! - `timeout_seconds` 0 means `default_timeout_seconds`; more than 600 is refused.
//!
//! Exit codes: 0 done (the CLI's 0), 1 failed (any other exit of the CLI), 124 timed out,
//! -1 refused.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gururmm_protocol::{claude_task, Command, CommandResult};

use super::live::Sink;
use super::runner::{self, Invocation, TIMEOUT_EXIT_CODE};
use crate::config::ClaudeSection;

/// The longest timeout a task may ask for, in seconds (the protocol's, which the server
/// checks too).
pub const MAX_TIMEOUT_SECONDS: u64 = claude_task::MAX_TIMEOUT_SECONDS;
/// Tasks started per sliding hour.
pub const TASKS_PER_HOUR: usize = 10;
/// Tasks running at once.
pub const MAX_RUNNING: usize = 2;
/// The most bytes of context (files and their header lines) piped to one task.
pub const MAX_CONTEXT_BYTES: u64 = 1024 * 1024;
/// Exit code of a task the CLI ended with anything but 0.
pub const FAILED_EXIT_CODE: i32 = 1;
/// The environment variable holding the command id.
pub const COMMAND_ID_ENV: &str = "GURURMM_COMMAND_ID";

/// The reason a task gets from an agent whose executor is off.
pub const DISABLED: &str =
    "the AI task executor is disabled on this agent ([claude] enabled = false)";

const WINDOW: Duration = Duration::from_secs(3600);

/// `[claude]` as the executor uses it (only when enabled).
#[derive(Debug, Clone)]
pub struct ClaudeSettings {
    pub cli_path: String,
    pub working_root: PathBuf,
    pub extra_args: Vec<String>,
    pub default_timeout: Duration,
}

impl ClaudeSettings {
    /// The settings of an enabled `[claude]` section; None when it is off.
    pub fn from_config(c: &ClaudeSection) -> Option<ClaudeSettings> {
        if !c.enabled {
            return None;
        }
        Some(ClaudeSettings {
            cli_path: c.cli_path.clone(),
            working_root: c.working_root.clone()?,
            extra_args: c.extra_args.clone(),
            default_timeout: Duration::from_secs(c.default_timeout_seconds),
        })
    }
}

/// Task starts in the last hour and tasks running now.
#[derive(Default)]
struct Slots {
    started: VecDeque<Instant>,
    running: usize,
}

/// A task's place among the running ones, and its start in the hour's count. Dropped: the
/// place is freed; a task whose process never started gives its start back too.
pub struct Permit {
    slots: Arc<Mutex<Slots>>,
    at: Instant,
    started: bool,
}

impl Permit {
    /// The process started: the task counts in the hour's limit for good.
    pub fn started(&mut self) {
        self.started = true;
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut s = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        s.running = s.running.saturating_sub(1);
        if !self.started {
            if let Some(i) = s.started.iter().position(|t| *t == self.at) {
                s.started.remove(i);
            }
        }
    }
}

/// A task that passed every check but the limits: what to start and for how long.
pub(crate) struct Prepared {
    pub(crate) invocation: Invocation,
    pub(crate) timeout: Duration,
}

pub struct AiExecutor {
    settings: Option<ClaudeSettings>,
    per_hour: usize,
    at_once: usize,
    slots: Arc<Mutex<Slots>>,
}

impl AiExecutor {
    /// An executor with the fixed limits (10 per hour, 2 at once); off when `settings` is None.
    pub fn new(settings: Option<ClaudeSettings>) -> AiExecutor {
        AiExecutor {
            settings,
            per_hour: TASKS_PER_HOUR,
            at_once: MAX_RUNNING,
            slots: Arc::default(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.settings.is_some()
    }

    /// Tasks running now.
    pub fn running(&self) -> usize {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).running
    }

    /// The timeout a task asks for, as the executor reads it (for logs; over 600 is refused).
    pub fn timeout_seconds(&self, cmd: &Command) -> u64 {
        match (&self.settings, cmd.timeout_seconds) {
            (Some(s), 0) => s.default_timeout.as_secs(),
            (_, t) => t,
        }
    }

    /// Takes a place for a task starting at `now`, or says which limit refuses it.
    pub fn admit(&self, now: Instant) -> Result<Permit, String> {
        let mut s = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        while s
            .started
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW)
        {
            s.started.pop_front();
        }
        if s.running >= self.at_once {
            return Err(format!(
                "claude_task refused: {} AI tasks are already running on this agent (at most {} at once); send it again later",
                s.running, self.at_once
            ));
        }
        if s.started.len() >= self.per_hour {
            let wait = s
                .started
                .front()
                .map(|t| {
                    WINDOW
                        .saturating_sub(now.saturating_duration_since(*t))
                        .as_secs()
                        + 1
                })
                .unwrap_or(1);
            return Err(format!(
                "claude_task refused: {} AI tasks were started on this agent in the last hour (at most {} per hour); the next may start in {} s",
                s.started.len(),
                self.per_hour,
                wait
            ));
        }
        s.started.push_back(now);
        s.running += 1;
        Ok(Permit {
            slots: self.slots.clone(),
            at: now,
            started: false,
        })
    }

    /// Every check that does not depend on other tasks; what to start if they pass.
    pub(crate) fn prepare(&self, cmd: &Command) -> Result<Prepared, String> {
        let settings = self.settings.as_ref().ok_or(DISABLED)?;
        let timeout = match cmd.timeout_seconds {
            0 => settings.default_timeout,
            t if t > MAX_TIMEOUT_SECONDS => {
                return Err(format!(
                    "claude_task refused: timeout_seconds {t} is more than {MAX_TIMEOUT_SECONDS}, the most an AI task may run"
                ))
            }
            t => Duration::from_secs(t),
        };
        check_task_text(&cmd.command)?;
        let root = settings.working_root.canonicalize().map_err(|e| {
            format!(
                "claude_task refused: the working root {} (claude.working_root) cannot be resolved: {e}",
                settings.working_root.display()
            )
        })?;
        let dir = match cmd.working_directory.as_deref() {
            None => root.clone(),
            Some(d) => inside(&root, d, "working directory")?,
        };
        if !dir.is_dir() {
            return Err(format!(
                "claude_task refused: working directory {} is not a directory",
                dir.display()
            ));
        }
        let stdin = match cmd.context_files.as_deref() {
            None | Some([]) => None,
            Some(files) => Some(context(&root, files)?),
        };
        let mut args = vec!["-p".to_owned(), cmd.command.clone()];
        args.extend(settings.extra_args.iter().cloned());
        let program = runner::find_program(&settings.cli_path)
            .unwrap_or_else(|| PathBuf::from(&settings.cli_path));
        Ok(Prepared {
            invocation: Invocation {
                program,
                args,
                cwd: Some(dir),
                env: vec![(COMMAND_ID_ENV.to_owned(), cmd.id.clone())],
                stdin,
                ..Default::default()
            },
            timeout,
        })
    }

    /// Runs a task to its end (or refuses it); see the module documentation.
    pub async fn run(
        &self,
        cmd: &Command,
        output_cap: usize,
        live: Option<&Sink>,
        on_start: impl FnOnce(Option<String>),
    ) -> CommandResult {
        self.run_at(cmd, output_cap, live, Instant::now(), on_start)
            .await
    }

    async fn run_at(
        &self,
        cmd: &Command,
        output_cap: usize,
        live: Option<&Sink>,
        now: Instant,
        on_start: impl FnOnce(Option<String>),
    ) -> CommandResult {
        let prepared = match self.prepare(cmd) {
            Ok(p) => p,
            Err(reason) => return runner::not_run(&cmd.id, reason),
        };
        let mut permit = match self.admit(now) {
            Ok(p) => p,
            Err(reason) => return runner::not_run(&cmd.id, reason),
        };
        let mut result = runner::run_invocation(
            &cmd.id,
            prepared.invocation,
            prepared.timeout,
            output_cap,
            live,
            |tree| {
                permit.started();
                on_start(tree);
            },
        )
        .await;
        let started = permit.started;
        drop(permit);
        if !started || result.timed_out || result.exit_code == 0 {
            // Not started (-1 with the reason), timed out (124) or done (0).
            debug_assert!(!result.timed_out || result.exit_code == TIMEOUT_EXIT_CODE);
            return result;
        }
        if !result.stderr.is_empty() && !result.stderr.ends_with('\n') {
            result.stderr.push('\n');
        }
        result.stderr.push_str(&format!(
            "the Claude CLI exited with code {}; the task failed",
            result.exit_code
        ));
        result.exit_code = FAILED_EXIT_CODE;
        result
    }
}

/// Refuses an empty task text or one holding a character of
/// [`claude_task::FORBIDDEN_CHARS`].
fn check_task_text(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("claude_task refused: the task text is empty".to_owned());
    }
    if let Some(c) = claude_task::forbidden_char(text) {
        return Err(format!(
            "claude_task refused: the task text holds {}, which the AI task executor does not accept (& | ; $ ( ) < > backtick, newline and carriage return are refused)",
            claude_task::describe(c)
        ));
    }
    Ok(())
}

/// `path` (relative to `root`, or absolute) resolved, if it lies inside the resolved `root`.
fn inside(root: &Path, path: &str, what: &str) -> Result<PathBuf, String> {
    let candidate = Path::new(path);
    let candidate = if candidate.is_absolute() {
        candidate.to_owned()
    } else {
        root.join(candidate)
    };
    let real = candidate
        .canonicalize()
        .map_err(|e| format!("claude_task refused: {what} {path} cannot be resolved: {e}"))?;
    if !real.starts_with(root) {
        return Err(format!(
            "claude_task refused: {what} {path} is outside the working root {} (symlinks and .. resolved)",
            root.display()
        ));
    }
    Ok(real)
}

/// The context files as piped on stdin: each preceded by `=== <path relative to root> ===`.
fn context(root: &Path, files: &[String]) -> Result<Vec<u8>, String> {
    let too_big = || {
        format!(
            "claude_task refused: the context files hold more than {MAX_CONTEXT_BYTES} bytes (1 MiB), the most piped to one task"
        )
    };
    let mut out = Vec::new();
    for f in files {
        let real = inside(root, f, "context file")?;
        let meta = std::fs::metadata(&real)
            .map_err(|e| format!("claude_task refused: context file {f} cannot be read: {e}"))?;
        if !meta.is_file() {
            return Err(format!(
                "claude_task refused: context file {f} is not a regular file"
            ));
        }
        let rel = real.strip_prefix(root).unwrap_or(&real);
        let header = format!("=== {} ===\n", rel.display());
        if out.len() as u64 + header.len() as u64 + meta.len() > MAX_CONTEXT_BYTES {
            return Err(too_big());
        }
        let body = std::fs::read(&real)
            .map_err(|e| format!("claude_task refused: context file {f} cannot be read: {e}"))?;
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&body);
        if !body.is_empty() && !body.ends_with(b"\n") {
            out.push(b'\n');
        }
        if out.len() as u64 > MAX_CONTEXT_BYTES {
            return Err(too_big());
        }
    }
    Ok(out)
}

/// The guards one by one, with a stand-in for the Claude CLI: the real one cannot run in the
/// tests (no network, no Anthropic account), so `tests/fixtures/fake-claude`, a shell script
/// that records its arguments, working directory, stdin and `GURURMM_COMMAND_ID` and answers
/// line by line, is put on `cli_path`.
#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use gururmm_protocol::ServerMessage;

    fn fake_cli() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake-claude")
    }

    /// A working root, a folder outside it, a record folder for the stand-in, an executor.
    struct Rig {
        root: tempfile::TempDir,
        outside: tempfile::TempDir,
        rec: tempfile::TempDir,
        ai: Arc<AiExecutor>,
    }

    fn rig_with_timeout(default_timeout: Duration) -> Rig {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let rec = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("reports")).unwrap();
        std::fs::write(
            root.path().join("reports/report.txt"),
            "disk C: 91% used\ndisk D: 12% used\n",
        )
        .unwrap();
        std::fs::write(outside.path().join("secret.txt"), "not for the AI\n").unwrap();
        let ai = AiExecutor::new(Some(ClaudeSettings {
            cli_path: fake_cli().display().to_string(),
            working_root: root.path().to_owned(),
            extra_args: vec![
                "--record-dir".into(),
                rec.path().display().to_string(),
                "--output-format".into(),
                "text".into(),
            ],
            default_timeout,
        }));
        Rig {
            root,
            outside,
            rec,
            ai: Arc::new(ai),
        }
    }

    fn rig() -> Rig {
        rig_with_timeout(Duration::from_secs(300))
    }

    fn task(text: &str) -> Command {
        let mut c =
            match ServerMessage::from_json(&gururmm_protocol::fixture("command_claude_task"))
                .unwrap()
            {
                ServerMessage::Command(c) => c,
                other => panic!("not a command: {other:?}"),
            };
        c.id = "ai-1".into();
        c.command = text.into();
        c.timeout_seconds = 30;
        c.working_directory = None;
        c.context_files = None;
        c
    }

    async fn run(ai: &AiExecutor, cmd: &Command) -> CommandResult {
        ai.run(cmd, 1024 * 1024, None, |_| {}).await
    }

    impl Rig {
        fn recorded(&self, name: &str) -> String {
            std::fs::read_to_string(self.rec.path().join(name))
                .unwrap_or_else(|e| panic!("the stand-in CLI recorded no {name}: {e}"))
        }

        fn started(&self) -> bool {
            self.rec.path().join("args").exists()
        }

        /// Asserts `cmd` is refused (-1) with a reason holding `why`, the CLI never started.
        async fn refused(&self, cmd: &Command, why: &str) -> CommandResult {
            let r = run(&self.ai, cmd).await;
            assert_eq!(r.exit_code, NOT_RUN, "{r:?}");
            assert!(r.stderr.contains(why), "{why:?} not in {:?}", r.stderr);
            assert!(!self.started(), "the CLI was started for a refused task");
            assert_eq!(self.ai.running(), 0);
            r
        }
    }

    const NOT_RUN: i32 = runner::NOT_RUN_EXIT_CODE;

    #[tokio::test]
    async fn disabled_executor_refuses() {
        let ai = AiExecutor::new(None);
        let r = run(&ai, &task("summarise the report")).await;
        assert_eq!(r.exit_code, NOT_RUN);
        assert_eq!(r.stderr, DISABLED);
        assert!(!ai.enabled());
    }

    #[tokio::test]
    async fn task_runs_in_its_folder_with_its_arguments_and_context_on_stdin() {
        let rig = rig();
        let mut cmd = task("Summarise the disk usage report in report.txt");
        cmd.id = "cmd-42".into();
        cmd.working_directory = Some("reports".into());
        cmd.context_files = Some(vec!["reports/report.txt".into()]);
        let r = run(&rig.ai, &cmd).await;
        assert_eq!(r.exit_code, 0, "{r:?}");
        assert!(!r.timed_out);
        assert_eq!(r.stdout, "answer line 1\nanswer line 2\n");
        assert_eq!(
            rig.recorded("args"),
            format!(
                "-p\nSummarise the disk usage report in report.txt\n--record-dir\n{}\n--output-format\ntext\n",
                rig.rec.path().display()
            )
        );
        let folder = rig.root.path().join("reports").canonicalize().unwrap();
        assert_eq!(rig.recorded("cwd").trim_end(), folder.to_str().unwrap());
        assert_eq!(
            rig.recorded("stdin"),
            "=== reports/report.txt ===\ndisk C: 91% used\ndisk D: 12% used\n"
        );
        assert_eq!(rig.recorded("command_id"), "cmd-42\n");
        assert_eq!(rig.ai.running(), 0);
    }

    #[tokio::test]
    async fn no_working_directory_means_the_root_and_files_follow_each_other() {
        let rig = rig();
        std::fs::write(rig.root.path().join("a.txt"), "no newline").unwrap();
        let mut cmd = task("compare the two files");
        cmd.context_files = Some(vec!["a.txt".into(), "reports/report.txt".into()]);
        let r = run(&rig.ai, &cmd).await;
        assert_eq!(r.exit_code, 0, "{r:?}");
        let root = rig.root.path().canonicalize().unwrap();
        assert_eq!(rig.recorded("cwd").trim_end(), root.to_str().unwrap());
        assert_eq!(
            rig.recorded("stdin"),
            "=== a.txt ===\nno newline\n=== reports/report.txt ===\ndisk C: 91% used\ndisk D: 12% used\n"
        );
    }

    #[tokio::test]
    async fn the_cli_failing_gives_1_with_its_stderr() {
        let rig = rig();
        let r = run(&rig.ai, &task("fail please")).await;
        assert_eq!(r.exit_code, FAILED_EXIT_CODE, "{r:?}");
        assert!(
            r.stderr.contains("fake-claude: cannot do that"),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains("exited with code 3"), "{}", r.stderr);
    }

    #[tokio::test]
    async fn working_directory_outside_the_root_is_refused() {
        let rig = rig();
        let mut cmd = task("look around");
        cmd.working_directory = Some(rig.outside.path().display().to_string());
        rig.refused(&cmd, "outside the working root").await;
        let mut cmd = task("look around");
        cmd.context_files = Some(vec![rig
            .outside
            .path()
            .join("secret.txt")
            .display()
            .to_string()]);
        rig.refused(&cmd, "outside the working root").await;
        // Inside, but not there: refused as well.
        let mut cmd = task("look around");
        cmd.working_directory = Some("no-such-folder".into());
        rig.refused(&cmd, "cannot be resolved").await;
    }

    #[tokio::test]
    async fn a_symlink_that_leaves_the_root_is_refused() {
        let rig = rig();
        std::os::unix::fs::symlink(rig.outside.path(), rig.root.path().join("escape")).unwrap();
        std::os::unix::fs::symlink(
            rig.outside.path().join("secret.txt"),
            rig.root.path().join("innocent.txt"),
        )
        .unwrap();
        let mut cmd = task("look around");
        cmd.working_directory = Some("escape".into());
        rig.refused(&cmd, "outside the working root").await;
        let mut cmd = task("read it");
        cmd.context_files = Some(vec!["innocent.txt".into()]);
        rig.refused(&cmd, "outside the working root").await;
        let mut cmd = task("read it");
        cmd.context_files = Some(vec!["escape/secret.txt".into()]);
        rig.refused(&cmd, "outside the working root").await;
    }

    #[tokio::test]
    async fn dot_dot_out_of_the_root_is_refused() {
        let rig = rig();
        let name = rig.outside.path().file_name().unwrap().to_str().unwrap();
        let mut cmd = task("look around");
        cmd.working_directory = Some(format!("reports/../../{name}"));
        rig.refused(&cmd, "outside the working root").await;
        let mut cmd = task("read it");
        cmd.context_files = Some(vec![format!("../{name}/secret.txt")]);
        rig.refused(&cmd, "outside the working root").await;
        // `..` that stays inside is fine.
        let mut cmd = task("look around");
        cmd.working_directory = Some("reports/..".into());
        assert_eq!(run(&rig.ai, &cmd).await.exit_code, 0);
    }

    #[tokio::test]
    async fn context_must_be_regular_files_within_1_mib() {
        let rig = rig();
        let mut cmd = task("read it");
        cmd.context_files = Some(vec!["reports".into()]);
        rig.refused(&cmd, "not a regular file").await;
        let mut cmd = task("read it");
        cmd.context_files = Some(vec!["missing.txt".into()]);
        rig.refused(&cmd, "cannot be resolved").await;
        let half = vec![b'x'; 600 * 1024];
        std::fs::write(rig.root.path().join("big1"), &half).unwrap();
        std::fs::write(rig.root.path().join("big2"), &half).unwrap();
        let mut cmd = task("read it");
        cmd.context_files = Some(vec!["big1".into(), "big2".into()]);
        rig.refused(&cmd, "more than 1048576 bytes").await;
    }

    #[tokio::test]
    async fn an_empty_task_is_refused() {
        let rig = rig();
        rig.refused(&task(""), "the task text is empty").await;
        rig.refused(&task("   "), "the task text is empty").await;
    }

    /// One test per refused character, each named.
    macro_rules! refuses_char {
        ($($name:ident: $text:expr, $shown:expr;)*) => {$(
            #[tokio::test]
            async fn $name() {
                let rig = rig();
                let r = rig.refused(&task($text), "the task text holds").await;
                assert!(r.stderr.contains($shown), "{:?} not named in {:?}", $shown, r.stderr);
            }
        )*};
    }

    refuses_char! {
        refuses_ampersand: "list files & rm -rf /", "holds '&'";
        refuses_pipe: "list files | mail x", "holds '|'";
        refuses_semicolon: "list files; reboot", "holds ';'";
        refuses_dollar: "print $HOME", "holds '$'";
        refuses_open_paren: "count (files", "holds '('";
        refuses_close_paren: "count files)", "holds ')'";
        refuses_less_than: "read < /etc/shadow", "holds '<'";
        refuses_greater_than: "write > /etc/passwd", "holds '>'";
        refuses_backtick: "run `id`", "holds a backtick";
        refuses_newline: "first line\nsecond line", "holds a newline";
        refuses_carriage_return: "first line\rsecond line", "holds a carriage return";
    }

    #[test]
    fn the_eleventh_task_in_an_hour_is_refused_and_the_window_slides() {
        let rig = rig();
        let t0 = Instant::now();
        let minute = Duration::from_secs(60);
        for i in 0..10 {
            let mut p = rig.ai.admit(t0 + minute * i).expect("within the limit");
            p.started();
        }
        let err = rig.ai.admit(t0 + minute * 30).err().expect("11th refused");
        assert!(err.contains("at most 10 per hour"), "{err}");
        // A refusal does not count: once the first start is an hour old, one more fits.
        assert!(rig.ai.admit(t0 + minute * 59).is_err());
        let mut p = rig
            .ai
            .admit(t0 + minute * 60)
            .expect("the first start left the window");
        p.started();
        drop(p);
        assert!(rig.ai.admit(t0 + minute * 60).is_err());
        // A task whose process never started gives its start back.
        let p = rig.ai.admit(t0 + minute * 61).expect("second start left");
        drop(p);
        assert!(rig.ai.admit(t0 + minute * 61).is_ok());
    }

    #[tokio::test]
    async fn the_eleventh_task_run_in_an_hour_is_refused_before_starting() {
        let rig = rig();
        let t0 = Instant::now();
        for i in 0..10 {
            let r = rig
                .ai
                .run_at(
                    &task("hello"),
                    4096,
                    None,
                    t0 + Duration::from_secs(i),
                    |_| {},
                )
                .await;
            assert_eq!(r.exit_code, 0, "{r:?}");
        }
        // Validation refusals in between take nothing from the hour.
        std::fs::remove_file(rig.rec.path().join("args")).unwrap();
        rig.refused(&task("bad; task"), "holds ';'").await;
        let r = rig
            .ai
            .run_at(
                &task("hello"),
                4096,
                None,
                t0 + Duration::from_secs(20),
                |_| {},
            )
            .await;
        assert_eq!(r.exit_code, NOT_RUN);
        assert!(r.stderr.contains("at most 10 per hour"), "{}", r.stderr);
        assert!(!rig.started());
    }

    #[tokio::test]
    async fn the_third_task_at_once_is_refused_not_queued() {
        let rig = rig();
        let mut running = Vec::new();
        for i in 0..2 {
            let ai = rig.ai.clone();
            running.push(tokio::spawn(async move {
                let mut c = task("sleep 3");
                c.id = format!("long-{i}");
                run(&ai, &c).await
            }));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while rig.ai.running() < 2 {
            assert!(Instant::now() < deadline, "two tasks running");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let started = Instant::now();
        let r = run(&rig.ai, &task("hello")).await;
        assert_eq!(r.exit_code, NOT_RUN, "{r:?}");
        assert!(r.stderr.contains("at most 2 at once"), "{}", r.stderr);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "refused at once, not queued"
        );
        for t in running {
            assert_eq!(t.await.unwrap().exit_code, 0);
        }
        assert_eq!(rig.ai.running(), 0);
        assert_eq!(run(&rig.ai, &task("hello")).await.exit_code, 0);
    }

    #[tokio::test]
    async fn a_timeout_kills_the_process_tree_with_124() {
        let rig = rig();
        let mut cmd = task("spawn a helper");
        cmd.timeout_seconds = 1;
        let started = Instant::now();
        let r = run(&rig.ai, &cmd).await;
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(r.timed_out, "{r:?}");
        assert_eq!(r.exit_code, TIMEOUT_EXIT_CODE);
        let pid: u32 = rig.recorded("child_pid").trim().parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(3);
        while super::super::process_tree::pid_alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            !super::super::process_tree::pid_alive(pid),
            "the CLI's child survived the timeout"
        );
    }

    #[tokio::test]
    async fn timeout_zero_means_the_configured_default() {
        let rig = rig_with_timeout(Duration::from_secs(1));
        let mut cmd = task("sleep 20");
        cmd.timeout_seconds = 0;
        let r = run(&rig.ai, &cmd).await;
        assert_eq!(r.exit_code, TIMEOUT_EXIT_CODE, "{r:?}");
        assert!(r.stderr.contains("timed out after 1 s"), "{}", r.stderr);
    }

    #[tokio::test]
    async fn a_timeout_over_600_s_is_refused() {
        let rig = rig();
        let mut cmd = task("hello");
        cmd.timeout_seconds = 601;
        rig.refused(&cmd, "more than 600").await;
        cmd.timeout_seconds = 600;
        assert_eq!(run(&rig.ai, &cmd).await.exit_code, 0);
    }
}
