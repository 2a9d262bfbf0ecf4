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

/// Logged at debug level, a session's secrets never reach the log: not the password, not the
/// JWT, not an event-stream ticket. A server with no user says in its log how to create the
/// first administrator.
#[tokio::test]
async fn the_log_holds_no_token_or_ticket() {
    let folder = tempfile::tempdir().expect("temp dir");
    let log_path = folder.path().join("server.log");
    let server_cmd = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gururmm-server"));
        command.current_dir(folder.path());
        for (key, _) in std::env::vars() {
            if key == "DATABASE_URL" || key.starts_with("GURURMM_") {
                command.env_remove(key);
            }
        }
        // Port 0: a port picked beforehand could be taken by a parallel test's server.
        command
            .env("GURURMM_LISTEN", "127.0.0.1:0")
            .env("GURURMM_LOG", "debug");
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
    let login: serde_json::Value = client
        .post(format!("{base}/api/auth/login"))
        .json(&serde_json::json!({"email": "log@example.com", "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().expect("token").to_owned();
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
    drop(server);

    let text = without_colors(&std::fs::read_to_string(&log_path).unwrap());
    assert!(
        text.contains("gururmm-server user add --email"),
        "no first-admin hint in the log:\n{text}"
    );
    assert!(
        text.contains("/api/events"),
        "requests are logged at debug:\n{text}"
    );
    let signature = token.rsplit('.').next().unwrap();
    for (what, secret) in [
        ("the JWT", signature),
        ("the ticket", ticket.as_str()),
        ("the password", password),
    ] {
        assert!(!text.contains(secret), "{what} is in the log:\n{text}");
    }
}

/// The address the server logs it listens on (`... listening addr=127.0.0.1:PORT ...`).
async fn listening_on(log: &Path, server: &mut Running) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = without_colors(&std::fs::read_to_string(log).unwrap_or_default());
        if let Some(line) = text.lines().find(|l| l.contains("listening")) {
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
