//! Hardening: security headers, owner-only files, the cap on unauthenticated sockets, and a
//! deleted agent losing its socket and its key at once.

use std::time::Duration;

use futures_util::StreamExt;
use gururmm_protocol::fixture;
use gururmm_server::testing::{TestDb, TestServer};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::agent_sim::{new_device_id, SimAgent};
use crate::on_both_databases;

/// A dashboard folder like Vite's output: one script and one stylesheet, nothing inline.
fn fake_dashboard() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("assets")).unwrap();
    std::fs::write(
        dir.path().join("index.html"),
        r#"<!doctype html><html><head><script type="module" src="/assets/app.js"></script></head><body><div id="root"></div></body></html>"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("assets/app.js"), "console.log(1)").unwrap();
    dir
}

fn assert_common_headers(what: &str, h: &reqwest::header::HeaderMap) {
    assert_eq!(h["x-frame-options"], "DENY", "{what}");
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(h["referrer-policy"], "no-referrer", "{what}");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-eval"), "{what}: {csp}");
}

async fn security_headers_on_dashboard_assets_and_api(db: TestDb) {
    let dashboard = fake_dashboard();
    let dir = dashboard.path().to_owned();
    let server = TestServer::start_with(db, |c| c.dashboard_dir = Some(dir)).await;

    for path in ["/", "/agents/some-id", "/assets/app.js"] {
        let r = server.client.get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        assert_common_headers(path, r.headers());
        let csp = r.headers()["content-security-policy"].to_str().unwrap();
        for directive in [
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {directive} in {csp}");
        }
    }

    // API answers, a success and errors alike.
    let get = |path: &'static str, signed_in: bool| {
        let mut req = server.client.get(server.url(path));
        if signed_in {
            req = req.bearer_auth(&server.token);
        }
        async move { req.send().await.unwrap() }
    };
    let ok = get("/api/agents", true).await;
    assert_eq!(ok.status().as_u16(), 200);
    let unauthorized = get("/api/agents", false).await;
    assert_eq!(unauthorized.status().as_u16(), 401);
    let missing = get("/api/no-such-thing", false).await;
    assert_eq!(missing.status().as_u16(), 404);
    for (what, r) in [("200", ok), ("401", unauthorized), ("404", missing)] {
        assert_common_headers(what, r.headers());
        assert_eq!(
            r.headers()["content-security-policy"],
            "default-src 'none'; frame-ancestors 'none'",
            "{what}"
        );
    }
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// A fresh data folder: everything the server writes is owner-only.
#[cfg(unix)]
async fn data_files_are_owner_only(db: TestDb) {
    let mut server = TestServer::start(db).await;
    let data = server.config.data_dir.clone();
    // Writes, so SQLite's -wal and -shm exist.
    server.create_site().await;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("jwt_secret")), 0o600);
    if db == TestDb::Sqlite {
        let file = data.join("test.db");
        assert_eq!(mode(&file), 0o600);
        for companion in ["test.db-wal", "test.db-shm"] {
            let path = data.join(companion);
            assert!(path.exists(), "{companion} exists in WAL mode");
            assert_eq!(mode(&path), 0o600, "{companion}");
        }
    }
    server.stop().await;
}

/// A data folder left open by an older version (0755, a 0644 database and secret) is
/// tightened when the server starts.
#[cfg(unix)]
async fn open_data_folder_is_tightened_at_start(db: TestDb) {
    use std::os::unix::fs::PermissionsExt;
    let server = TestServer::start_with(db, |c| {
        let data = &c.data_dir;
        std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o755)).unwrap();
        let secret = data.join("jwt_secret");
        std::fs::write(&secret, "s".repeat(64)).unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        if db == TestDb::Sqlite {
            let file = data.join("test.db");
            std::fs::write(&file, b"").unwrap();
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    })
    .await;
    let data = server.config.data_dir.clone();
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("jwt_secret")), 0o600);
    if db == TestDb::Sqlite {
        assert_eq!(mode(&data.join("test.db")), 0o600);
    }
    // The old secret is still the one in use: the admin's token works.
    server.get("/api/auth/me").await;
}

/// A WebSocket connection from a chosen loopback address, or the HTTP status it was refused with.
async fn open_socket(
    server: &TestServer,
    from: &str,
) -> Result<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>, u16> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    match tokio_tungstenite::client_async(server.ws_url.as_str(), stream).await {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("unexpected socket error: {e}"),
    }
}

/// Sockets that never authenticate: at most 2 per address and 3 in all (tiny caps for the
/// test); past them the upgrade is refused before any WebSocket is made, and a socket that
/// authenticates or goes away frees its place.
async fn unauthenticated_sockets_are_capped(db: TestDb) {
    let server = TestServer::start_with(db, |c| {
        c.max_pending_sockets_per_address = 2;
        c.max_pending_sockets = 3;
        c.auth_timeout_seconds = 30;
    })
    .await;
    let (_, _, code) = server.create_site().await;

    let a1 = open_socket(&server, "127.0.0.1").await.expect("first");
    let mut a2 = open_socket(&server, "127.0.0.1").await.expect("second");
    assert_eq!(open_socket(&server, "127.0.0.1").await.err(), Some(429));
    let _b1 = open_socket(&server, "127.0.0.2")
        .await
        .expect("another address has its own share");
    assert_eq!(
        open_socket(&server, "127.0.0.2").await.err(),
        Some(503),
        "the total is reached"
    );

    // One authenticates: it no longer counts.
    use futures_util::SinkExt;
    a2.send(Message::text(crate::agent_sim::auth_frame(
        &code,
        &new_device_id(),
    )))
    .await
    .unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(10), a2.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let reply: Value = serde_json::from_str(reply.to_text().unwrap()).unwrap();
    assert_eq!(reply["payload"]["success"], true, "{reply}");
    let _a3 = open_socket(&server, "127.0.0.1")
        .await
        .expect("the authenticated socket freed its place");

    // One goes away: its place is free again soon.
    drop(a1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match open_socket(&server, "127.0.0.2").await {
            Ok(_) => break,
            Err(status) if tokio::time::Instant::now() < deadline => {
                assert_eq!(status, 503);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => panic!("a closed socket kept its place: {status}"),
        }
    }
}

/// The close frame the server sends, if it closes within `within`.
async fn close_frame(agent: &mut SimAgent, within: Duration) -> Option<(CloseCode, String)> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, agent.ws.next()).await {
            Err(_) | Ok(None) | Ok(Some(Err(_))) => return None,
            Ok(Some(Ok(Message::Close(frame)))) => {
                return frame.map(|f| (f.code, f.reason.to_string()))
            }
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// Deleting an agent closes its live socket at once and its key stops working, on the
/// socket and on the legacy endpoints.
async fn deleting_an_agent_closes_its_socket_and_kills_its_key(db: TestDb) {
    let server = TestServer::start(db).await;
    let (_, _, code) = server.create_site().await;
    let device = new_device_id();
    let (mut agent, auth) = SimAgent::enroll(&server.ws_url, &code, &device).await;
    assert_eq!(auth["success"], true, "{auth}");
    let agent_id = auth["agent_id"].as_str().unwrap().to_owned();
    let key = auth["api_key"].as_str().unwrap().to_owned();
    server
        .wait_for(
            &format!("/api/agents/{agent_id}"),
            Duration::from_secs(5),
            |a| a["online"] == true,
        )
        .await;

    let started = std::time::Instant::now();
    let (status, _) = server
        .request(
            reqwest::Method::DELETE,
            &format!("/api/agents/{agent_id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (close_code, reason) = close_frame(&mut agent, Duration::from_secs(3))
        .await
        .expect("the server closes the deleted agent's socket");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(close_code, CloseCode::from(4003));
    assert_eq!(reason, "agent deleted");

    // Its key no longer authenticates.
    let mut again = SimAgent::connect(&server.ws_url).await;
    again
        .send_text(&crate::agent_sim::auth_frame(&key, &device))
        .await;
    let reply = again.recv_json(Duration::from_secs(5)).await.unwrap();
    assert_eq!(reply["payload"]["success"], false, "{reply}");

    // A legacy agent's key: working, then 401 right after the delete.
    let mut reg: Value = serde_json::from_str(&fixture("legacy_register")).unwrap();
    reg["site_code"] = json!(code);
    let enrolled: Value = server
        .client
        .post(server.url("/api/agent/register-legacy"))
        .json(&reg)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let legacy_key = enrolled["api_key"].as_str().unwrap().to_owned();
    let legacy_id = enrolled["agent_id"].as_str().unwrap().to_owned();
    let heartbeat = || async {
        server
            .client
            .post(server.url("/api/agent/heartbeat"))
            .bearer_auth(&legacy_key)
            .json(&json!({}))
            .send()
            .await
            .unwrap()
    };
    assert_eq!(heartbeat().await.status().as_u16(), 200);
    let (status, _) = server
        .request(
            reqwest::Method::DELETE,
            &format!("/api/agents/{legacy_id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let refused = heartbeat().await;
    assert_eq!(refused.status().as_u16(), 401);
    let body: Value = refused.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
}

on_both_databases!(
    security_headers_on_dashboard_assets_and_api,
    unauthenticated_sockets_are_capped,
    deleting_an_agent_closes_its_socket_and_kills_its_key,
);
#[cfg(unix)]
on_both_databases!(
    data_files_are_owner_only,
    open_data_folder_is_tightened_at_start
);
