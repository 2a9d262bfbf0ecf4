//! Runs one command: picks the program for its type, starts it in its own process tree,
//! captures stdout and stderr (each up to a cap, with a marker where cut), measures exit code
//! and duration, and on timeout kills the whole tree (exit code 124, `timed_out`).
//!
//! When the command's main process ends, processes it left behind get a short grace period to
//! close their output and are then killed with the rest of the tree, so a finished command
//! leaves nothing running.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gururmm_protocol::{Command, CommandResult, CommandType};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::live::{Capture, Shared, Sink, Streamer};
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
#[derive(Default)]
pub(crate) struct Invocation {
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<String>,
    /// The script file, deleted when dropped.
    pub(crate) _script: Option<tempfile::TempPath>,
    /// Windows `cmd.exe /C` takes the command line unquoted.
    #[cfg_attr(not(windows), allow(dead_code))]
    pub(crate) raw_tail: Option<String>,
    /// The current directory (else the agent's).
    pub(crate) cwd: Option<PathBuf>,
    /// Extra environment variables.
    pub(crate) env: Vec<(String, String)>,
    /// Written to the process's stdin, which is then closed (else stdin is empty).
    pub(crate) stdin: Option<Vec<u8>>,
}

fn invocation(cmd: &Command, settings: &RunSettings) -> Result<Invocation, String> {
    match &cmd.command_type {
        CommandType::Shell => {
            if cfg!(windows) {
                Ok(Invocation {
                    program: PathBuf::from("cmd.exe"),
                    args: vec!["/C".into()],
                    raw_tail: Some(cmd.command.clone()),
                    ..Default::default()
                })
            } else {
                Ok(Invocation {
                    program: PathBuf::from("/bin/sh"),
                    args: vec!["-c".into(), cmd.command.clone()],
                    ..Default::default()
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
                ..Default::default()
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
                ..Default::default()
            })
        }
        CommandType::Script => script_invocation(cmd, settings),
        // Routed to the AI task executor by `Executor::submit`, never run as a plain command.
        CommandType::ClaudeTask => {
            Err("claude_task runs only through the agent's AI task executor".to_owned())
        }
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
        ..Default::default()
    })
}

/// Reads a pipe to its end, keeping the first `cap` bytes and counting the rest; wakes the
/// live streamer when bytes were kept.
async fn read_capped(
    mut pipe: impl AsyncRead + Unpin,
    cap: usize,
    into: Shared,
    live: Option<Arc<Streamer>>,
) {
    let mut buf = vec![0u8; 8192];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let keep = {
                    let mut c = into.lock().unwrap_or_else(|e| e.into_inner());
                    let room = cap.saturating_sub(c.bytes.len());
                    let keep = room.min(n);
                    c.bytes.extend_from_slice(&buf[..keep]);
                    c.omitted += (n - keep) as u64;
                    keep
                };
                if keep > 0 {
                    if let Some(s) = &live {
                        s.wake.notify_one();
                    }
                }
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
    run_live(cmd, settings, None, on_start).await
}

/// [`run`], streaming the output to `live` while the command runs.
pub async fn run_live(
    cmd: &Command,
    settings: &RunSettings,
    live: Option<&Sink>,
    on_start: impl FnOnce(Option<String>),
) -> CommandResult {
    let mut inv = match invocation(cmd, settings) {
        Ok(i) => i,
        Err(message) => return not_run(&cmd.id, message),
    };
    // A saved script's parameters: environment variables, never part of the command's text.
    for (name, value) in &cmd.environment {
        let valid = !name.is_empty() && !name.contains(['=', '\0']) && !value.contains('\0');
        if !valid {
            return not_run(
                &cmd.id,
                format!(
                    "not run: environment variable {} is not valid (a name without '=' or NUL, a value without NUL)",
                    crate::logging::ascii(name)
                ),
            );
        }
        inv.env.push((name.clone(), value.clone()));
    }
    let timeout = effective_timeout(cmd, settings);
    run_invocation(&cmd.id, inv, timeout, settings.output_cap, live, on_start).await
}

/// Starts `inv` in its own process tree and waits for it (or kills the tree at `timeout`).
pub(crate) async fn run_invocation(
    id: &str,
    inv: Invocation,
    timeout: Duration,
    output_cap: usize,
    live: Option<&Sink>,
    on_start: impl FnOnce(Option<String>),
) -> CommandResult {
    let mut command = tokio::process::Command::new(&inv.program);
    command
        .args(&inv.args)
        .stdin(if inv.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(windows)]
    if let Some(tail) = &inv.raw_tail {
        command.raw_arg(tail);
    }
    if let Some(dir) = &inv.cwd {
        command.current_dir(dir);
    }
    for (k, v) in &inv.env {
        command.env(k, v);
    }
    process_tree::configure(&mut command);

    let started = Instant::now();
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => return not_run(id, format!("cannot start {}: {e}", inv.program.display())),
    };
    let mut tree = ProcessTree::attach(&child);
    on_start(tree.identity());
    if let (Some(mut pipe), Some(data)) = (child.stdin.take(), inv.stdin) {
        // A process that does not read its stdin must not block the agent: written aside,
        // a broken pipe ignored.
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let _ = pipe.write_all(&data).await;
            let _ = pipe.shutdown().await;
        });
    }
    let out: Shared = Arc::new(Mutex::new(Capture::default()));
    let err: Shared = Arc::new(Mutex::new(Capture::default()));
    let streamer = live.map(|sink| Streamer::new(id, sink.clone(), out.clone(), err.clone()));
    let streaming_done = Arc::new(AtomicBool::new(false));
    let streaming = streamer
        .clone()
        .map(|s| tokio::spawn(s.run(streaming_done.clone())));
    let mut readers = Vec::new();
    if let Some(p) = child.stdout.take() {
        readers.push(tokio::spawn(read_capped(
            p,
            output_cap,
            out.clone(),
            streamer.clone(),
        )));
    }
    if let Some(p) = child.stderr.take() {
        readers.push(tokio::spawn(read_capped(
            p,
            output_cap,
            err.clone(),
            streamer.clone(),
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
    if let (Some(s), Some(task)) = (&streamer, streaming) {
        streaming_done.store(true, Ordering::SeqCst);
        s.wake.notify_one();
        let _ = task.await;
        s.finish().await;
    }
    let stdout = out.lock().unwrap_or_else(|e| e.into_inner()).text();
    let mut stderr = err.lock().unwrap_or_else(|e| e.into_inner()).text();
    if let Some(note) = note {
        if !stderr.is_empty() && !stderr.ends_with('\n') {
            stderr.push('\n');
        }
        stderr.push_str(&note);
    }
    CommandResult {
        id: id.to_owned(),
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

    /// A script's parameters arrive as environment variables: a value with quotes, `;` and
    /// `$(...)` is literal text to the script, never run.
    #[tokio::test]
    async fn environment_values_reach_the_script_as_literal_text() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("pwned");
        let mut c = fixture_command("command_with_environment");
        let literal = format!(
            "it's \"quoted\"; $(touch {}) `touch {}`",
            marker.display(),
            marker.display()
        );
        c.command = "printf '%s|%s' \"$TOP_PATH\" \"$COUNT\"".into();
        c.environment.insert("TOP_PATH".into(), literal.clone());
        let r = run(&c, &settings(dir.path()), |_| {}).await;
        assert_eq!(r.exit_code, 0, "{r:?}");
        assert_eq!(r.stdout, format!("{literal}|10"));
        assert!(!marker.exists(), "a parameter value was run");

        c.environment.insert("BAD=NAME".into(), "x".into());
        let r = run(&c, &settings(dir.path()), |_| {}).await;
        assert_eq!(r.exit_code, NOT_RUN_EXIT_CODE);
        assert!(r.stderr.contains("BAD=NAME"), "{}", r.stderr);
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
        assert_eq!(r.exit_code, NOT_RUN_EXIT_CODE);
        assert!(r.stderr.contains("AI task executor"), "{}", r.stderr);
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

    /// A fast 1 MB output: at most the cap is streamed, no piece over 4000 bytes, no more
    /// than one piece per stream every 250 ms, and what was streamed is the result's start.
    #[tokio::test]
    async fn live_output_streams_at_most_the_cap_within_the_rate_limit() {
        use gururmm_protocol::output_chunk;
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path());
        s.output_cap = 20_000;
        let (sink, mut rx) = super::super::live::channel(1024);
        sink.set_open(true);
        let collect = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(p) = rx.recv().await {
                got.push((Instant::now(), p));
            }
            got
        });
        let started = Instant::now();
        let r = run_live(
            &shell("big", "head -c 1000000 /dev/zero | tr '\\0' a; sleep 2", 20),
            &s,
            Some(&sink),
            |_| {},
        )
        .await;
        let elapsed = started.elapsed();
        drop(sink);
        let got = collect.await.unwrap();
        assert_eq!(r.exit_code, 0);
        assert!(r.stdout.contains("980000 more bytes not captured"));
        let streamed: String = got.iter().map(|(_, p)| p.data.as_str()).collect();
        assert_eq!(streamed.len(), 20_000, "the whole cap, no more");
        assert!(r.stdout.starts_with(&streamed));
        for (_, p) in &got {
            assert!(p.data.len() <= output_chunk::MAX_BYTES);
            assert_eq!(p.stream, "stdout");
        }
        let seqs: Vec<u64> = got.iter().map(|(_, p)| p.seq).collect();
        assert_eq!(seqs, (0..got.len() as u64).collect::<Vec<_>>());
        // 20000 bytes are 5 pieces, so at least 4 intervals between the first and the last.
        assert_eq!(got.len(), 5);
        let span = got[got.len() - 1].0 - got[0].0;
        assert!(
            span >= Duration::from_millis(900),
            "5 pieces within {span:?}"
        );
        let most = (elapsed.as_millis() / output_chunk::INTERVAL_MS as u128) + 1;
        assert!(got.len() as u128 <= most);
    }

    #[tokio::test]
    async fn no_live_output_while_the_sink_is_closed() {
        let dir = tempfile::tempdir().unwrap();
        let (sink, mut rx) = super::super::live::channel(16);
        let r = run_live(
            &shell("quiet", "echo hi", 10),
            &settings(dir.path()),
            Some(&sink),
            |_| {},
        )
        .await;
        assert_eq!(r.stdout, "hi\n");
        assert!(
            rx.try_recv().is_err(),
            "a piece went out with no connection"
        );
    }
}
