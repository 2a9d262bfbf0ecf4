//! The server binary alone is the whole product: copied into an empty folder and started
//! there, it serves the dashboard built into it and the API, and keeps its data in ./data.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the server when the test ends, also when it fails.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

async fn wait_healthy(client: &reqwest::Client, base: &str, server: &mut Running) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(format!("{base}/api/health")).send().await {
            assert_eq!(r.status(), 200, "/api/health");
            return;
        }
        if let Some(status) = server.0.try_wait().expect("server status") {
            panic!("the server exited before answering: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "the server did not answer in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn content_type(r: &reqwest::Response) -> String {
    r.headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The `src` of the module script in index.html: `<script type="module" crossorigin src="/assets/index-XXXX.js">`.
fn script_src(index: &str) -> Option<&str> {
    index.split("<script").skip(1).find_map(|tag| {
        let tag = &tag[..tag.find('>')?];
        let src = &tag[tag.find("src=\"")? + 5..];
        let src = &src[..src.find('"')?];
        (src.starts_with("/assets/") && src.ends_with(".js")).then_some(src)
    })
}

#[tokio::test]
async fn the_binary_alone_serves_dashboard_and_api() {
    let folder = tempfile::tempdir().expect("temp dir");
    let binary = folder.path().join("gururmm-server");
    std::fs::copy(env!("CARGO_BIN_EXE_gururmm-server"), &binary).expect("copy the binary");

    let port = free_port();
    let mut command = Command::new(&binary);
    command
        .current_dir(folder.path())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    // Only the defaults: nothing from the developer's or CI's environment.
    for (key, _) in std::env::vars() {
        if key == "DATABASE_URL" || key.starts_with("GURURMM_") {
            command.env_remove(key);
        }
    }
    command
        .env("GURURMM_LISTEN", format!("127.0.0.1:{port}"))
        .env("GURURMM_LOG", "warn");
    let mut server = Running(command.spawn().expect("start the copied server"));

    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    wait_healthy(&client, &base, &mut server).await;

    let index = client.get(format!("{base}/")).send().await.unwrap();
    let status = index.status();
    let kind = content_type(&index);
    let body = index.text().await.unwrap();
    assert!(
        !body.contains("dashboard is not built"),
        "gururmm-server was compiled without the dashboard. Build the dashboard first \
         (cd dashboard && npm ci && npm run build), then run the Rust tests again; \
         scripts/test.sh does it in that order."
    );
    assert_eq!(status, 200, "GET /: {body}");
    assert!(kind.starts_with("text/html"), "GET / content type {kind}");
    assert!(
        body.contains("<div id=\"root\">"),
        "GET / is the dashboard: {body}"
    );

    let src = script_src(&body).unwrap_or_else(|| panic!("no /assets/*.js script in {body}"));
    let script = client.get(format!("{base}{src}")).send().await.unwrap();
    assert_eq!(script.status(), 200, "GET {src}");
    let kind = content_type(&script);
    assert!(kind.contains("javascript"), "GET {src} content type {kind}");
    assert!(
        script.bytes().await.unwrap().len() > 1000,
        "{src} is the bundle"
    );

    // A client-side route survives a reload; unknown API paths stay JSON errors.
    let route = client.get(format!("{base}/agents")).send().await.unwrap();
    assert_eq!(route.status(), 200);
    assert!(route.text().await.unwrap().contains(src));
    let api = client
        .get(format!("{base}/api/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 404);

    // Everything it keeps is under ./data: the database, the JWT secret, the downloads.
    let data = folder.path().join("data");
    for kept in ["gururmm.db", "jwt_secret", "downloads"] {
        assert!(data.join(kept).exists(), "data/{kept} missing");
    }
    std::fs::write(data.join("downloads").join("agent.bin"), b"agent build").unwrap();
    let download = client
        .get(format!("{base}/downloads/agent.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(download.bytes().await.unwrap().as_ref(), b"agent build");
    let mut entries: Vec<String> = std::fs::read_dir(folder.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(
        entries,
        ["data", "gururmm-server"],
        "nothing outside ./data"
    );
    assert!(Path::new(&binary).exists());
}

/// Logged at trace level (every library's too), to stderr and to the log file, no secret
/// reaches a log: not a password (sign-in, `user add`), the JWT, an event-stream ticket, the
/// JWT secret, an agent's key (enrollment with a site code, then sign-in with the key over a
/// real WebSocket), nor the site code. A server with no user says in its log how to create the
/// first administrator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_any_log_at_trace_level() {
    let folder = tempfile::tempdir().expect("temp dir");
    let log_path = folder.path().join("server.log");
    let log_dir = folder.path().join("logs");
    let server_cmd = || {
        let mut command = bare_server(folder.path());
        // Port 0: a port picked beforehand could be taken by a parallel test's server.
        command
            .env("GURURMM_LISTEN", "127.0.0.1:0")
            .env("GURURMM_LOG", "trace")
            .env("GURURMM_LOG_DIR", &log_dir);
        command
    };
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = Running(
        server_cmd()
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start the server"),
    );
    let addr = listening_on(&log_path, &mut server).await;
    let base = format!("http://{addr}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    wait_healthy(&client, &base, &mut server).await;
    let status: serde_json::Value = client
        .get(format!("{base}/api/auth/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["needs_first_admin"], true);

    let password = "log-test-password-1";
    let added = server_cmd()
        .args([
            "user",
            "add",
            "--email",
            "log@example.com",
            "--role",
            "admin",
        ])
        .env("GURURMM_USER_PASSWORD", password)
        .output()
        .expect("user add");
    assert!(added.status.success(), "{added:?}");
    let api =
        gururmm_fleet_sim::Api::login(std::slice::from_ref(&base), "log@example.com", password)
            .await
            .expect("password sign-in");
    let token = api.token().to_owned();
    let ticket: serde_json::Value = client
        .post(format!("{base}/api/auth/event-ticket"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ticket = ticket["ticket"].as_str().unwrap().to_owned();
    let stream = client
        .get(format!("{base}/api/events?ticket={ticket}"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    drop(stream);
    let refused = client
        .get(format!("{base}/api/events?access_token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    // Agents enroll with the site code, then (a second run) sign in with their keys.
    let (_, client_row) = api
        .request(
            0,
            reqwest::Method::POST,
            "/api/clients",
            Some(serde_json::json!({"name": "Logs"})),
        )
        .await
        .unwrap();
    let (_, site) = api
        .request(
            0,
            reqwest::Method::POST,
            "/api/sites",
            Some(serde_json::json!({"client_id": client_row["id"], "name": "Logs"})),
        )
        .await
        .unwrap();
    let site_code = site["site_code"].as_str().expect("site code").to_owned();
    let keys_file = folder.path().join("keys.jsonl");
    for run in ["enroll", "sign in with the key"] {
        let fleet = gururmm_fleet_sim::Fleet::start(gururmm_fleet_sim::FleetConfig {
            servers: vec![format!("ws://{addr}/ws")],
            agents: 2,
            site_code: Some(site_code.clone()),
            keys_file: Some(keys_file.clone()),
            metrics: Duration::from_millis(500),
            ..Default::default()
        })
        .await
        .expect("fleet");
        assert!(
            fleet.wait_connected(2, Duration::from_secs(30)).await,
            "{run}: {}",
            fleet.snapshot().line()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        let counters = fleet.stop().await;
        assert_eq!(counters.auth_failures, 0, "{run}: {}", counters.line());
    }
    let keys = gururmm_fleet_sim::keys::load(&keys_file).unwrap();
    assert_eq!(keys.len(), 2, "two agents enrolled once each");
    drop(server);

    let jwt_secret = std::fs::read_to_string(folder.path().join("data/jwt_secret")).unwrap();
    let mut logs = vec![
        (
            "stderr",
            without_colors(&std::fs::read_to_string(&log_path).unwrap()),
        ),
        (
            "user add's stderr",
            String::from_utf8_lossy(&added.stderr).into_owned(),
        ),
    ];
    for entry in std::fs::read_dir(&log_dir).unwrap() {
        let path = entry.unwrap().path();
        logs.push(("the log file", std::fs::read_to_string(&path).unwrap()));
    }
    let text = &logs[0].1;
    assert!(
        text.contains("gururmm-server user add --email"),
        "no first-admin hint in the log:\n{text}"
    );
    assert!(
        text.contains("/api/events") && text.contains("TRACE"),
        "requests are logged at trace:\n{text}"
    );
    assert!(logs.len() > 2, "no log file in {}", log_dir.display());
    let signature = token.rsplit('.').next().unwrap().to_owned();
    let mut secrets = vec![
        ("the JWT", token.clone()),
        ("the JWT's signature", signature),
        ("the ticket", ticket.clone()),
        ("the password", password.to_owned()),
        ("the JWT secret", jwt_secret.trim().to_owned()),
        ("the site code", site_code.clone()),
    ];
    for key in keys.values() {
        secrets.push(("an agent key", key.api_key.clone()));
        // As a frame dump would print it.
        let hex: String = key.api_key.bytes().map(|b| format!("{b:02x}")).collect();
        secrets.push(("an agent key in hex", hex));
    }
    for (log, text) in &logs {
        for (what, secret) in &secrets {
            assert!(!secret.is_empty());
            assert!(!text.contains(secret.as_str()), "{what} is in {log}");
        }
    }
}

/// The address the server logs it listens on (`... listening addr=127.0.0.1:PORT ...`).
async fn listening_on(log: &Path, server: &mut Running) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = without_colors(&std::fs::read_to_string(log).unwrap_or_default());
        if let Some(line) = text.lines().find(|l| l.contains("listening")) {
            // A JSON line (`log_json`): `"fields":{"addr":"127.0.0.1:PORT",...}`.
            if let Ok(json) = serde_json::from_str::<serde_json::Value>(line) {
                if let Some(addr) = json["fields"]["addr"].as_str() {
                    return addr.to_owned();
                }
            }
            if let Some(at) = line.find("addr=") {
                let rest = &line[at + 5..];
                return rest.split_whitespace().next().unwrap().to_owned();
            }
        }
        if let Some(status) = server.0.try_wait().expect("server status") {
            panic!("the server exited before listening: {status}\n{text}");
        }
        assert!(
            Instant::now() < deadline,
            "the server did not listen in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The text without ANSI colour sequences (`ESC [ ... m`).
fn without_colors(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The server binary run in `folder`, with nothing from the caller's environment.
fn bare_server(folder: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gururmm-server"));
    command.current_dir(folder);
    for (key, _) in std::env::vars() {
        if key == "DATABASE_URL" || key.starts_with("GURURMM_") {
            command.env_remove(key);
        }
    }
    command
}

/// `gururmm-server` on the data folder `data` (in an existing folder), logging warnings.
fn server_in(data: &Path) -> Command {
    let mut command = bare_server(data.parent().expect("data folder's parent"));
    command
        .env("GURURMM_DATA_DIR", data)
        .env("GURURMM_LOG", "warn");
    command
}

/// Runs a subcommand to its end; returns (success, stdout, stderr).
fn run(mut command: Command) -> (bool, String, String) {
    let out = command.output().expect("run gururmm-server");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn user_add(data: &Path, email: &str, password: &str) {
    let mut command = server_in(data);
    command
        .args(["user", "add", "--email", email, "--role", "admin"])
        .env("GURURMM_USER_PASSWORD", password);
    let (ok, out, err) = run(command);
    assert!(ok, "user add {email}: {out}{err}");
}

async fn serve(data: &Path) -> (Running, String) {
    let port = free_port();
    let mut command = server_in(data);
    command
        .env("GURURMM_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let mut server = Running(command.spawn().expect("start the server"));
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&reqwest::Client::new(), &base, &mut server).await;
    (server, base)
}

async fn login_status(base: &str, email: &str, password: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{base}/api/auth/login"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The backup and restore commands as an operator uses them, with their refusals: a backup
/// never overwrites a file; restore refuses while the server runs, and refuses a file that is
/// not a GuruRMM database; a second server on the same data folder refuses to start; a
/// restore keeps the replaced database (with what its write-ahead log held) and the restored
/// server has the backup's users; on PostgreSQL both point to pg_dump.
#[tokio::test]
async fn backup_and_restore_from_the_command_line() {
    let folder = tempfile::tempdir().unwrap();
    let data = folder.path().join("data");
    let (server, base) = serve(&data).await;
    user_add(&data, "before@example.com", "password-before-1");

    let backup = folder.path().join("nightly.db");
    let mut command = server_in(&data);
    command.arg("backup").arg("--out").arg(&backup);
    let (ok, out, err) = run(command);
    assert!(ok && out.contains("backup written"), "{out}{err}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the backup is owner-only");
    }
    let size = std::fs::metadata(&backup).unwrap().len();
    let mut command = server_in(&data);
    command.arg("backup").arg("--out").arg(&backup);
    let (ok, _, err) = run(command);
    assert!(!ok && err.contains("already exists"), "{err}");
    assert_eq!(std::fs::metadata(&backup).unwrap().len(), size, "kept");

    // Changes after the backup.
    user_add(&data, "after@example.com", "password-after-1");
    assert_eq!(
        login_status(&base, "after@example.com", "password-after-1").await,
        200
    );

    let restore = |from: &Path| {
        let mut command = server_in(&data);
        command.arg("restore").arg("--from").arg(from);
        run(command)
    };
    let (ok, _, err) = restore(&backup);
    assert!(!ok && err.contains("stop it before restoring"), "{err}");
    let mut second = server_in(&data);
    second.env("GURURMM_LISTEN", format!("127.0.0.1:{}", free_port()));
    let (ok, _, err) = run(second);
    assert!(!ok && err.contains("already serving data folder"), "{err}");

    // Killed, as a crash: whatever its write-ahead log holds must survive in the kept copy.
    drop(server);
    let not_a_database = folder.path().join("notes.txt");
    std::fs::write(&not_a_database, "not a database, long enough to have a header ..........................................................................................").unwrap();
    let (ok, _, err) = restore(&not_a_database);
    assert!(
        !ok && err.contains("is not a GuruRMM SQLite database"),
        "{err}"
    );
    let (ok, out, err) = restore(&folder.path().join("missing.db"));
    assert!(!ok && err.contains("no backup file"), "{out}{err}");

    let (ok, out, err) = restore(&backup);
    assert!(ok, "restore: {out}{err}");
    let kept: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("gururmm.db"))
        .collect();
    assert_eq!(
        kept.len(),
        2,
        "the restored database and the kept one: {kept:?}"
    );
    let previous = kept
        .iter()
        .find(|n| n.starts_with("gururmm.db.before-restore-"))
        .unwrap_or_else(|| panic!("no kept database in {kept:?}"));
    assert!(out.contains(previous.as_str()), "{out}");
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}", data.join(previous).display());
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        users, 2,
        "the kept database has the user added after the backup"
    );
    pool.close().await;

    let (_server, base) = serve(&data).await;
    assert_eq!(
        login_status(&base, "before@example.com", "password-before-1").await,
        200
    );
    assert_eq!(
        login_status(&base, "after@example.com", "password-after-1").await,
        401
    );

    // PostgreSQL: no attempt, a pointer to pg_dump.
    for args in [["backup", "--out"], ["restore", "--from"]] {
        let mut command = server_in(&data);
        command
            .args(args)
            .arg(folder.path().join("pg.db"))
            .env("GURURMM_DATABASE_URL", "postgres://rmm@127.0.0.1:1/rmm");
        let (ok, _, err) = run(command);
        assert!(
            !ok && err.contains("pg_dump") && err.contains("docs/OPERATIONS.md"),
            "{args:?}: {err}"
        );
    }
}

/// A server started with only `env` added to an empty environment, its stderr to `stderr`.
fn spawn_logging(folder: &Path, stderr: &Path, env: &[(&str, &str)]) -> Running {
    let mut command = bare_server(folder);
    command.env("GURURMM_LISTEN", "127.0.0.1:0");
    for (key, value) in env {
        command.env(key, value);
    }
    let log = std::fs::File::create(stderr).unwrap();
    Running(
        command
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start the server"),
    )
}

/// With `log_json`, every line on stderr is one JSON object with a time, a level and the
/// event's fields, what Loki, Elastic or journald ingest.
#[tokio::test]
async fn json_log_lines_parse_as_json() {
    let folder = tempfile::tempdir().unwrap();
    let stderr = folder.path().join("stderr.log");
    let mut server = spawn_logging(
        folder.path(),
        &stderr,
        &[("GURURMM_LOG_JSON", "true"), ("GURURMM_LOG", "debug")],
    );
    let addr = listening_on(&stderr, &mut server).await;
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");
    wait_healthy(&client, &base, &mut server).await;
    let refused = client
        .post(format!("{base}/api/auth/login"))
        .json(&serde_json::json!({"email": "nobody@example.com", "password": "wrong-password-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    drop(server);

    let text = std::fs::read_to_string(&stderr).unwrap();
    let mut levels = std::collections::HashSet::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let json: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(json["timestamp"].is_string(), "{line}");
        assert!(json["fields"].is_object(), "{line}");
        levels.insert(json["level"].as_str().expect("level").to_owned());
    }
    assert!(
        levels.contains("INFO") && levels.contains("DEBUG"),
        "lines at info and debug: {levels:?}\n{text}"
    );
}

/// The rotating log file: old files beyond `log_max_files` are deleted at start (pre-made
/// files named like older rotations stand for earlier minutes), a new file starts at the next
/// minute with `log_rotation = minutely`, and only `log_max_files` files are kept. Other files
/// in the folder are left alone. Waits for one minute boundary.
#[tokio::test]
async fn log_files_rotate_and_only_log_max_files_are_kept() {
    let folder = tempfile::tempdir().unwrap();
    let logs = folder.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    for day in 1..=5 {
        std::fs::write(
            logs.join(format!("gururmm-server.2020-01-0{day}-00-00.log")),
            "{}\n",
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(logs.join("operator-notes.txt"), "mine").unwrap();
    let log_files = || {
        let mut names: Vec<String> = std::fs::read_dir(&logs)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("gururmm-server.") && n.ends_with(".log"))
            .collect();
        names.sort();
        names
    };

    let stderr = folder.path().join("stderr.log");
    let logs_text = logs.to_string_lossy().into_owned();
    let mut server = spawn_logging(
        folder.path(),
        &stderr,
        &[
            ("GURURMM_LOG_DIR", logs_text.as_str()),
            ("GURURMM_LOG_ROTATION", "minutely"),
            ("GURURMM_LOG_MAX_FILES", "3"),
            ("GURURMM_LOG", "debug"),
        ],
    );
    let addr = listening_on(&stderr, &mut server).await;
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");
    wait_healthy(&client, &base, &mut server).await;
    let at_start = log_files();
    assert_eq!(at_start.len(), 3, "{at_start:?}");
    assert!(
        !at_start.iter().any(|n| n.contains("2020-01-01")
            || n.contains("2020-01-02")
            || n.contains("2020-01-03")),
        "the oldest went at start: {at_start:?}"
    );
    let first = at_start.last().unwrap().clone();
    assert!(!first.contains("2020-"), "the current file: {at_start:?}");

    // Requests keep logging (at debug) until a line lands in the next minute's file.
    let deadline = Instant::now() + Duration::from_secs(80);
    let rotated = loop {
        let _ = client.get(format!("{base}/api/health")).send().await;
        let files = log_files();
        if files.iter().any(|n| *n > first) {
            break files;
        }
        assert!(Instant::now() < deadline, "no rotation in 80 s: {files:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    drop(server);
    assert_eq!(rotated.len(), 3, "{rotated:?}");
    assert!(rotated.contains(&first), "{rotated:?}");
    assert!(
        rotated.iter().any(|n| n.contains("2020-01-05")),
        "the newest older file is kept, the one before it went: {rotated:?}"
    );
    assert!(logs.join("operator-notes.txt").exists());
    for name in &rotated[1..] {
        for line in std::fs::read_to_string(logs.join(name)).unwrap().lines() {
            serde_json::from_str::<serde_json::Value>(line)
                .unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {line}"));
        }
    }
}
