//! Runs one command: picks the program for its type, starts it in its own process tree,
//! captures stdout and stderr (each up to a cap, with a marker where cut), measures exit code
//! and duration, and on timeout kills the whole tree (exit code 124, `timed_out`).
//!
//! When the command's main process ends, processes it left behind get a short grace period to
//! close their output and are then killed with the rest of the tree, so a finished command
//! leaves nothing running.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gururmm_protocol::{Command, CommandResult, CommandType};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::process_tree::{self, ProcessTree};

/// Exit code reported for a command killed at its timeout (as GNU `timeout` does).
pub const TIMEOUT_EXIT_CODE: i32 = 124;
/// Exit code reported for a command the agent could not or would not run.
pub const NOT_RUN_EXIT_CODE: i32 = -1;

/// How long leftover processes may hold the output pipes after the main process ended.
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct RunSettings {
    pub default_timeout: Duration,
    pub max_timeout: Duration,
    pub output_cap: usize,
    pub script_interpreter: String,
    /// Where script files are written.
    pub temp_dir: PathBuf,
}

/// A result for a command that was not run.
pub fn not_run(id: &str, message: impl Into<String>) -> CommandResult {
    CommandResult {
        id: id.to_owned(),
        exit_code: NOT_RUN_EXIT_CODE,
        stdout: String::new(),
        stderr: message.into(),
        duration_ms: 0,
        timed_out: false,
    }
}

/// Finds a program in PATH (on Windows also with `.exe`).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let p = Path::new(name);
    if p.components().count() > 1 {
        return p.is_file().then(|| p.to_owned());
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return Some(candidate);
        }
        if cfg!(windows) {
            let exe = dir.join(format!("{name}.exe"));
            if exe.is_file() {
                return Some(exe);
            }
        }
    }
    None
}

fn first_program(names: &[&str]) -> Option<PathBuf> {
    names.iter().find_map(|n| find_program(n))
}

/// What to start for a command.
struct Invocation {
    program: PathBuf,
    args: Vec<String>,
    /// The script file, deleted when dropped.
    _script: Option<tempfile::TempPath>,
    /// Windows `cmd.exe /C` takes the command line unquoted.
    #[cfg_attr(not(windows), allow(dead_code))]
    raw_tail: Option<String>,
}

fn invocation(cmd: &Command, settings: &RunSettings) -> Result<Invocation, String> {
    match &cmd.command_type {
        CommandType::Shell => {
            if cfg!(windows) {
                Ok(Invocation {
                    program: PathBuf::from("cmd.exe"),
                    args: vec!["/C".into()],
                    _script: None,
                    raw_tail: Some(cmd.command.clone()),
                })
            } else {
                Ok(Invocation {
                    program: PathBuf::from("/bin/sh"),
                    args: vec!["-c".into(), cmd.command.clone()],
                    _script: None,
                    raw_tail: None,
                })
            }
        }
        CommandType::Powershell => {
            let names: &[&str] = if cfg!(windows) {
                &["powershell", "pwsh"]
            } else {
                &["pwsh", "powershell"]
            };
            let program = first_program(names).ok_or_else(|| {
                "powershell command not run: neither pwsh nor powershell is installed on this machine"
                    .to_owned()
            })?;
            Ok(Invocation {
                program,
                args: vec![
                    "-NoProfile".into(),
                    "-NonInteractive".into(),
                    "-Command".into(),
                    cmd.command.clone(),
                ],
                _script: None,
                raw_tail: None,
            })
        }
        CommandType::Python => {
            let names: &[&str] = if cfg!(windows) {
                &["python", "python3"]
            } else {
                &["python3", "python"]
            };
            let program = first_program(names).ok_or_else(|| {
                "python command not run: neither python3 nor python is installed on this machine"
                    .to_owned()
            })?;
            Ok(Invocation {
                program,
                args: vec!["-c".into(), cmd.command.clone()],
                _script: None,
                raw_tail: None,
            })
        }
        CommandType::Script => script_invocation(cmd, settings),
        CommandType::ClaudeTask => Err("claude_task is not supported by this agent yet".to_owned()),
        CommandType::Other(name) => Err(format!(
            "unknown command type '{name}': this agent runs shell, powershell, python and script"
        )),
    }
}

fn script_invocation(cmd: &Command, settings: &RunSettings) -> Result<Invocation, String> {
    let interpreter = cmd
        .interpreter
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or(&settings.script_interpreter);
    let mut words = interpreter.split_whitespace();
    let name = words
        .next()
        .ok_or("script command not run: empty interpreter")?;
    let mut args: Vec<String> = words.map(str::to_owned).collect();
    let program = find_program(name).ok_or_else(|| {
        format!("script command not run: interpreter '{name}' is not installed on this machine")
    })?;
    let base = program
        .file_stem()
        .map(|s| s.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let suffix = if base.starts_with("powershell") || base.starts_with("pwsh") {
        if args.is_empty() {
            args = vec!["-NoProfile".into(), "-NonInteractive".into()];
            if cfg!(windows) {
                args.extend(["-ExecutionPolicy".into(), "Bypass".into()]);
            }
            args.push("-File".into());
        }
        ".ps1"
    } else if base == "cmd" {
        if args.is_empty() {
            args.push("/C".into());
        }
        ".cmd"
    } else if base.starts_with("python") {
        ".py"
    } else if cfg!(windows) {
        ".txt"
    } else {
        ".sh"
    };
    std::fs::create_dir_all(&settings.temp_dir)
        .map_err(|e| format!("script command not run: cannot create script folder: {e}"))?;
    let mut file = tempfile::Builder::new()
        .prefix("gururmm-script-")
        .suffix(suffix)
        .tempfile_in(&settings.temp_dir)
        .map_err(|e| format!("script command not run: cannot write script file: {e}"))?;
    std::io::Write::write_all(&mut file, cmd.command.as_bytes())
        .map_err(|e| format!("script command not run: cannot write script file: {e}"))?;
    let path = file.into_temp_path();
    args.push(path.to_string_lossy().into_owned());
    Ok(Invocation {
        program,
        args,
        _script: Some(path),
        raw_tail: None,
    })
}

#[derive(Default)]
struct Capture {
    bytes: Vec<u8>,
    omitted: u64,
}

impl Capture {
    fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.bytes).into_owned();
        if self.omitted > 0 {
            if !s.ends_with('\n') {
                s.push('\n');
            }
            s.push_str(&format!(
                "[output truncated by gururmm-agent: {} more bytes not captured]",
                self.omitted
            ));
        }
        s
    }
}

/// Reads a pipe to its end, keeping the first `cap` bytes and counting the rest.
async fn read_capped(mut pipe: impl AsyncRead + Unpin, cap: usize, into: Arc<Mutex<Capture>>) {
    let mut buf = vec![0u8; 8192];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let mut c = into.lock().unwrap_or_else(|e| e.into_inner());
                let room = cap.saturating_sub(c.bytes.len());
                let keep = room.min(n);
                c.bytes.extend_from_slice(&buf[..keep]);
                c.omitted += (n - keep) as u64;
            }
        }
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    if let Some(code) = status.code() {
        return code;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return 128 + sig;
        }
    }
    NOT_RUN_EXIT_CODE
}

/// The timeout a command runs under.
pub fn effective_timeout(cmd: &Command, settings: &RunSettings) -> Duration {
    if cmd.timeout_seconds == 0 {
        settings.default_timeout
    } else {
        Duration::from_secs(cmd.timeout_seconds).min(settings.max_timeout)
    }
}

/// Runs a command to its end (or its timeout) and returns its result. Never panics on bad
/// input: anything that stops the command from running becomes a failed result saying why.
/// `on_start` is told how to find the command's processes again ([`ProcessTree::identity`]).
pub async fn run(
    cmd: &Command,
    settings: &RunSettings,
    on_start: impl FnOnce(Option<String>),
) -> CommandResult {
    let inv = match invocation(cmd, settings) {
        Ok(i) => i,
        Err(message) => return not_run(&cmd.id, message),
    };
    let timeout = effective_timeout(cmd, settings);
    let mut command = tokio::process::Command::new(&inv.program);
    command
        .args(&inv.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(windows)]
    if let Some(tail) = &inv.raw_tail {
        command.raw_arg(tail);
    }
    process_tree::configure(&mut command);

    let started = Instant::now();
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            return not_run(
                &cmd.id,
                format!("cannot start {}: {e}", inv.program.display()),
            )
        }
    };
    let mut tree = ProcessTree::attach(&child);
    on_start(tree.identity());
    let out = Arc::new(Mutex::new(Capture::default()));
    let err = Arc::new(Mutex::new(Capture::default()));
    let mut readers = Vec::new();
    if let Some(p) = child.stdout.take() {
        readers.push(tokio::spawn(read_capped(
            p,
            settings.output_cap,
            out.clone(),
        )));
    }
    if let Some(p) = child.stderr.take() {
        readers.push(tokio::spawn(read_capped(
            p,
            settings.output_cap,
            err.clone(),
        )));
    }
    let waited = tokio::time::timeout(timeout, child.wait()).await;
    let (code, timed_out, note) = match waited {
        Ok(Ok(status)) => (exit_code(status), false, None),
        Ok(Err(e)) => (
            NOT_RUN_EXIT_CODE,
            false,
            Some(format!("cannot wait for the command: {e}")),
        ),
        Err(_) => {
            tree.kill();
            let _ = child.kill().await;
            (
                TIMEOUT_EXIT_CODE,
                true,
                Some(format!(
                    "command timed out after {} s; process tree killed",
                    timeout.as_secs()
                )),
            )
        }
    };
    let duration_ms = started.elapsed().as_millis() as u64;
    // Output still held open by leftovers gets a grace period; then the tree is killed.
    let all_readers = futures_util::future::join_all(readers.iter_mut());
    if tokio::time::timeout(OUTPUT_GRACE, all_readers)
        .await
        .is_err()
    {
        tree.kill();
        let remaining = futures_util::future::join_all(readers.iter_mut());
        if tokio::time::timeout(OUTPUT_GRACE, remaining).await.is_err() {
            for r in &readers {
                r.abort();
            }
        }
    }
    tree.kill();
    let stdout = out.lock().unwrap_or_else(|e| e.into_inner()).text();
    let mut stderr = err.lock().unwrap_or_else(|e| e.into_inner()).text();
    if let Some(note) = note {
        if !stderr.is_empty() && !stderr.ends_with('\n') {
            stderr.push('\n');
        }
        stderr.push_str(&note);
    }
    CommandResult {
        id: cmd.id.clone(),
        exit_code: code,
        stdout,
        stderr,
        duration_ms,
        timed_out,
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use gururmm_protocol::ServerMessage;

    fn settings(dir: &Path) -> RunSettings {
        RunSettings {
            default_timeout: Duration::from_secs(30),
            max_timeout: Duration::from_secs(3600),
            output_cap: 4096,
            script_interpreter: "/bin/sh".into(),
            temp_dir: dir.to_owned(),
        }
    }

    fn fixture_command(name: &str) -> Command {
        match ServerMessage::from_json(&gururmm_protocol::fixture(name)).unwrap() {
            ServerMessage::Command(c) => c,
            other => panic!("{name} is not a command: {other:?}"),
        }
    }

    fn shell(id: &str, text: &str, timeout: u64) -> Command {
        let mut c = fixture_command("command_shell");
        c.id = id.into();
        c.command = text.into();
        c.timeout_seconds = timeout;
        c
    }

    #[tokio::test]
    async fn shell_fixture_runs() {
        let dir = tempfile::tempdir().unwrap();
        let r = run(
            &fixture_command("command_shell"),
            &settings(dir.path()),
            |_| {},
        )
        .await;
        assert_eq!(r.exit_code, 0);
        assert_eq!(r.stdout, "hello\n");
        assert!(!r.timed_out);
    }

    #[tokio::test]
    async fn python_fixture_runs() {
        let dir = tempfile::tempdir().unwrap();
        let r = run(
            &fixture_command("command_python"),
            &settings(dir.path()),
            |_| {},
        )
        .await;
        assert_eq!(r.exit_code, 0, "{r:?}");
        assert_eq!(r.stdout.trim(), "42");
    }

    #[tokio::test]
    async fn script_fixture_uses_payload_interpreter() {
        let dir = tempfile::tempdir().unwrap();
        let r = run(
            &fixture_command("command_script"),
            &settings(dir.path()),
            |_| {},
        )
        .await;
        assert_eq!(r.exit_code, 0, "{r:?}");
        assert_eq!(r.stdout, "from a script\n");
        // The script file is gone afterwards.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn claude_task_and_unknown_type_fail_with_reason() {
        let dir = tempfile::tempdir().unwrap();
        let r = run(
            &fixture_command("command_claude_task"),
            &settings(dir.path()),
            |_| {},
        )
        .await;
        assert_ne!(r.exit_code, 0);
        assert_eq!(r.stderr, "claude_task is not supported by this agent yet");
        let r = run(
            &fixture_command("command_unknown_type"),
            &settings(dir.path()),
            |_| {},
        )
        .await;
        assert_ne!(r.exit_code, 0);
        assert!(r.stderr.contains("bash_v2"), "{}", r.stderr);
    }

    #[tokio::test]
    async fn exit_code_and_stderr_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let r = run(
            &shell("e", "echo oops >&2; exit 3", 10),
            &settings(dir.path()),
            |_| {},
        )
        .await;
        assert_eq!(r.exit_code, 3);
        assert_eq!(r.stderr, "oops\n");
    }

    #[tokio::test]
    async fn output_is_capped_with_marker() {
        let dir = tempfile::tempdir().unwrap();
        let r = run(
            &shell("big", "head -c 10000 /dev/zero | tr '\\0' a", 10),
            &settings(dir.path()),
            |_| {},
        )
        .await;
        assert_eq!(r.exit_code, 0);
        assert!(r.stdout.starts_with(&"a".repeat(4096)));
        assert!(
            r.stdout.contains("5904 more bytes not captured"),
            "{}",
            &r.stdout[4090..]
        );
    }

    #[tokio::test]
    async fn non_utf8_output_is_converted_lossily() {
        let dir = tempfile::tempdir().unwrap();
        let r = run(
            &shell("bin", "printf 'a\\377b'", 10),
            &settings(dir.path()),
            |_| {},
        )
        .await;
        assert_eq!(r.stdout, "a\u{fffd}b");
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_tree() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("pid");
        let text = format!("sleep 30 & echo $! > {}; wait", marker.display());
        let started = Instant::now();
        let r = run(&shell("slow", &text, 1), &settings(dir.path()), |_| {}).await;
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(r.timed_out);
        assert_eq!(r.exit_code, TIMEOUT_EXIT_CODE);
        assert!(r.stderr.contains("timed out after 1 s"), "{}", r.stderr);
        let pid: u32 = std::fs::read_to_string(&marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // SIGKILL is delivered at once, but the exit itself may take a moment.
        let deadline = Instant::now() + Duration::from_secs(3);
        while crate::commands::process_tree::pid_alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            !crate::commands::process_tree::pid_alive(pid),
            "the background sleep survived the timeout"
        );
    }

    #[tokio::test]
    async fn leftover_background_process_does_not_hold_the_result() {
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let r = run(
            &shell("bg", "sleep 30 & echo started", 20),
            &settings(dir.path()),
            |_| {},
        )
        .await;
        assert_eq!(r.exit_code, 0);
        assert_eq!(r.stdout, "started\n");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn missing_interpreter_is_a_clear_failure() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = fixture_command("command_script");
        c.interpreter = Some("no-such-interpreter-xyz".into());
        let r = run(&c, &settings(dir.path()), |_| {}).await;
        assert_eq!(r.exit_code, NOT_RUN_EXIT_CODE);
        assert!(r.stderr.contains("no-such-interpreter-xyz"), "{}", r.stderr);
    }

    #[tokio::test]
    async fn powershell_runs_or_says_why_not() {
        let dir = tempfile::tempdir().unwrap();
        let r = run(
            &fixture_command("command_powershell"),
            &settings(dir.path()),
            |_| {},
        )
        .await;
        if find_program("pwsh").is_none() && find_program("powershell").is_none() {
            assert_eq!(r.exit_code, NOT_RUN_EXIT_CODE);
            assert!(
                r.stderr.contains("neither pwsh nor powershell"),
                "{}",
                r.stderr
            );
        }
    }
}
