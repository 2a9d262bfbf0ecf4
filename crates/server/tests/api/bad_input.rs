//! Bad input never crashes the server or gets a 500: each case gets a clear 4xx (or a closed
//! socket), and the next request is answered correctly.

use std::time::Duration;

use futures_util::SinkExt;
use gururmm_server::testing::{TestDb, TestServer, ADMIN_EMAIL};
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::agent_sim::{auth_frame, new_device_id, SimAgent};
use crate::on_both_databases;

async fn still_healthy(server: &TestServer) {
    assert_eq!(server.get("/api/auth/me").await["email"], ADMIN_EMAIL);
}

async fn raw(
    server: &TestServer,
    method: Method,
    path: &str,
    body: &'static str,
    token: Option<&str>,
) -> (u16, Value) {
    let mut req = server
        .client
        .request(method, server.url(path))
        .header("content-type", "application/json")
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn bad_http_input(db: TestDb) {
    let server = TestServer::start(db).await;
    let t = Some(server.token.as_str());
    let cases: &[(Method, &str, &str, u16)] = &[
        (Method::POST, "/api/clients", "{\"name\": ", 400),
        (Method::POST, "/api/clients", "{\"name\": 42}", 400),
        (Method::POST, "/api/clients", "[]", 400),
        (Method::POST, "/api/clients", "{\"name\": \"   \"}", 400),
        (
            Method::POST,
            "/api/sites",
            "{\"client_id\": \"nope\", \"name\": \"x\"}",
            400,
        ),
        (Method::GET, "/api/clients/does-not-exist", "", 404),
        (Method::GET, "/api/agents/does-not-exist", "", 404),
        (Method::GET, "/api/commands/does-not-exist", "", 404),
        (
            Method::POST,
            "/api/agents/does-not-exist/command",
            "{\"command_type\": \"shell\", \"command\": \"x\"}",
            404,
        ),
        (Method::GET, "/api/agents?status=sideways", "", 400),
        (Method::GET, "/api/commands?limit=abc", "", 400),
        (Method::GET, "/api/no-such-endpoint", "", 404),
        (Method::PATCH, "/api/clients", "{}", 405),
    ];
    for (method, path, body, want) in cases {
        let (status, resp) = raw(&server, method.clone(), path, body, t).await;
        assert_eq!(status, *want, "{method} {path} {body}: {resp}");
        assert!(
            resp["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{method} {path}: JSON error expected, got {resp}"
        );
        still_healthy(&server).await;
    }

    // Command validation names the problem.
    let (_, _, code) = server.create_site().await;
    let (_agent, auth) = SimAgent::enroll(&server.ws_url, &code, &new_device_id()).await;
    let path = format!("/api/agents/{}/command", auth["agent_id"].as_str().unwrap());
    for (body, needle) in [
        (
            json!({"command_type": "telnet", "command": "x"}),
            "command_type must be one of shell, powershell",
        ),
        (
            json!({"command_type": "shell", "command": ""}),
            "command must not be empty",
        ),
        (
            json!({"command_type": "shell", "command": "x", "timeout_seconds": 0}),
            "timeout_seconds",
        ),
        (json!({"command_type": "shell"}), "command"),
    ] {
        let (status, resp) = server
            .request(Method::POST, &path, Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{body}: {resp}");
        assert!(
            resp["error"].as_str().unwrap().contains(needle),
            "{body}: {resp}"
        );
    }
    still_healthy(&server).await;
}

async fn bad_credentials(db: TestDb) {
    let server = TestServer::start_with(db, |c| c.login_attempts_per_account = 3).await;
    let (status, body) = server
        .login(ADMIN_EMAIL, "wrong password")
        .await
        .unwrap_err();
    assert_eq!(status, 401);
    assert_eq!(body["error"], "wrong email or password");
    let (status, _) = server
        .login("nobody@example.com", "whatever123")
        .await
        .unwrap_err();
    assert_eq!(
        status, 401,
        "an unknown account looks the same as a wrong password"
    );

    // No token, a garbage token, an expired token, a token signed with another secret.
    let (status, body) = raw(&server, Method::GET, "/api/agents", "", None).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = raw(&server, Method::GET, "/api/agents", "", Some("garbage")).await;
    assert_eq!(status, 401);
    let secret = std::fs::read_to_string(server.config.data_dir.join("jwt_secret")).unwrap();
    let keys = gururmm_server::auth::JwtKeys::new(secret.trim().as_bytes());
    let me = server.get("/api/auth/me").await;
    let now = chrono::Utc::now().timestamp();
    let (expired, _) = keys
        .issue_at(
            me["id"].as_str().unwrap(),
            "admin",
            "some-session",
            now - 90_000,
            now - 3600,
        )
        .unwrap();
    let (status, body) = raw(&server, Method::GET, "/api/agents", "", Some(&expired)).await;
    assert_eq!(status, 401);
    assert!(
        body["error"].as_str().unwrap().contains("expired"),
        "{body}"
    );
    let (forged, _) = gururmm_server::auth::JwtKeys::new(&[1u8; 48])
        .issue(me["id"].as_str().unwrap(), "admin", "some-session")
        .unwrap();
    let (status, _) = raw(&server, Method::GET, "/api/agents", "", Some(&forged)).await;
    assert_eq!(status, 401);

    // Guessing is rate-limited per account, even with the right password afterwards.
    for _ in 0..3 {
        let _ = server.login(ADMIN_EMAIL, "still wrong").await;
    }
    let (status, body) = server
        .login(ADMIN_EMAIL, gururmm_server::testing::ADMIN_PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(status, 429, "{body}");
    still_healthy(&server).await;

    // Registration is off by default.
    let (status, body) = raw(
        &server,
        Method::POST,
        "/api/auth/register",
        "{\"email\":\"x@example.com\",\"password\":\"longenough\"}",
        None,
    )
    .await;
    assert_eq!(status, 403, "{body}");
}

async fn bad_sockets(db: TestDb) {
    let server = TestServer::start_with(db, |c| c.max_frame_bytes = 64 * 1024).await;
    let (_, _, code) = server.create_site().await;

    // A wrong key: refused with a reason, then closed.
    let mut a = SimAgent::connect(&server.ws_url).await;
    a.send_text(&auth_frame("grmm_0000", &new_device_id()))
        .await;
    let reply = a.recv_json(Duration::from_secs(5)).await.unwrap();
    assert_eq!(reply["payload"]["success"], false);
    assert!(reply["payload"]["message"]
        .as_str()
        .unwrap()
        .contains("unknown"));
    assert!(a.closed_within(Duration::from_secs(5)).await);
    // A site code that does not exist, and something that is neither key nor code.
    for key in ["NOPE-NOPE-1234", "letmein"] {
        let (_a, auth) = SimAgent::enroll(&server.ws_url, key, &new_device_id()).await;
        assert_eq!(auth["success"], false);
    }
    // Never authenticating: closed after the auth timeout (2 s in tests).
    let mut silent = SimAgent::connect(&server.ws_url).await;
    assert!(silent.closed_within(Duration::from_secs(6)).await);
    // A first message that is not auth.
    let mut rude = SimAgent::connect(&server.ws_url).await;
    rude.send_text(&gururmm_protocol::fixture("heartbeat"))
        .await;
    assert_eq!(
        rude.recv_json(Duration::from_secs(5)).await.unwrap()["payload"]["success"],
        false
    );
    still_healthy(&server).await;

    // Garbage on an authenticated socket: logged, ignored, the socket and server live on.
    let (mut agent, auth) = SimAgent::enroll(&server.ws_url, &code, &new_device_id()).await;
    let id = auth["agent_id"].as_str().unwrap().to_owned();
    for junk in [
        "not json",
        "{}",
        "[1,2]",
        "{\"type\": \"metrics_report\", \"payload\": {\"cpu_percent\": \"hot\"}}",
        "{\"type\": \"teleport\", \"payload\": {}}",
    ] {
        agent.send_text(junk).await;
    }
    agent
        .ws
        .send(Message::binary(vec![0u8, 159, 146, 150]))
        .await
        .unwrap();
    // A malformed result that names its command turns that command into a failed result.
    let c = server
        .post(
            &format!("/api/agents/{id}/command"),
            json!({"command_type": "shell", "command": "ls"}),
        )
        .await;
    let cid = c["id"].as_str().unwrap();
    agent
        .recv_json(Duration::from_secs(5))
        .await
        .expect("command");
    agent
        .send(&json!({"type": "command_result", "payload": {"id": cid, "exit_code": "zero"}}))
        .await;
    let failed = server
        .wait_for(
            &format!("/api/commands/{cid}"),
            Duration::from_secs(5),
            |c| c["status"] == "failed",
        )
        .await;
    assert!(
        failed["stderr"]
            .as_str()
            .unwrap()
            .contains("could not read"),
        "{failed}"
    );
    assert_eq!(
        server.get(&format!("/api/agents/{id}")).await["online"],
        true,
        "garbage does not drop the agent"
    );

    // An oversized frame closes that socket only.
    let big = format!(
        "{{\"type\":\"heartbeat\",\"payload\":{{\"pad\":\"{}\"}}}}",
        "x".repeat(100 * 1024)
    );
    let _ = agent.ws.send(Message::text(big)).await;
    assert!(agent.closed_within(Duration::from_secs(5)).await);
    server
        .wait_for(&format!("/api/agents/{id}"), Duration::from_secs(5), |a| {
            a["online"] == false
        })
        .await;
    still_healthy(&server).await;
    let (_again, auth) = SimAgent::enroll(&server.ws_url, &code, &new_device_id()).await;
    assert_eq!(auth["success"], true);
}

/// CORS: no cross-origin access unless configured, then only for the configured origin.
async fn cors_is_restricted(db: TestDb) {
    let server = TestServer::start_with(db, |c| {
        c.cors_origins = vec!["https://dash.example.com".into()]
    })
    .await;
    let ask = |origin: &'static str| {
        server
            .client
            .request(Method::OPTIONS, server.url("/api/agents"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send()
    };
    let ok = ask("https://dash.example.com").await.unwrap();
    assert_eq!(
        ok.headers().get("access-control-allow-origin").unwrap(),
        "https://dash.example.com"
    );
    let evil = ask("https://evil.example.net").await.unwrap();
    assert!(evil.headers().get("access-control-allow-origin").is_none());

    let default = TestServer::start(db).await;
    let r = default
        .client
        .get(default.url("/api/health"))
        .header("origin", "https://dash.example.com")
        .send()
        .await
        .unwrap();
    assert!(
        r.headers().get("access-control-allow-origin").is_none(),
        "same-origin only by default"
    );
}

on_both_databases!(
    bad_http_input,
    bad_credentials,
    bad_sockets,
    cors_is_restricted
);
