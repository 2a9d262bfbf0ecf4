//! Sessions that end and sign-in limits that cannot be raced: after logout, a password change,
//! a role change, a password reset, deactivation and deletion the old token is refused at once
//! on the REST API and on the event stream (an open stream is closed); 100 concurrent wrong
//! passwords check at most the configured limit, and the real user still gets in.

use std::net::IpAddr;
use std::time::Duration;

use futures_util::StreamExt;
use gururmm_server::testing::{TestDb, TestServer, ADMIN_EMAIL, ADMIN_PASSWORD};
use reqwest::Method;
use serde_json::{json, Value};

use crate::on_both_databases;

const PASSWORD: &str = "tech-pass-123";

/// A request with `token`; (status, JSON body or Null).
async fn call(
    server: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = server
        .client
        .request(method, server.url(path))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A technician; returns their id.
async fn add_technician(server: &TestServer, email: &str) -> String {
    let user = server
        .post(
            "/api/users",
            json!({"email": email, "password": PASSWORD, "role": "technician"}),
        )
        .await;
    user["id"].as_str().unwrap().to_owned()
}

/// An event stream opened with a ticket from `token`'s session.
async fn open_stream(server: &TestServer, token: &str) -> reqwest::Response {
    let (status, ticket) = call(server, Method::POST, "/api/auth/event-ticket", token, None).await;
    assert_eq!(status, 200, "{ticket}");
    let r = server
        .events_with_ticket(ticket["ticket"].as_str().unwrap())
        .await;
    assert_eq!(r.status().as_u16(), 200);
    r
}

/// The open stream ends within a few seconds (keep-alives aside).
async fn assert_closed(stream: reqwest::Response, what: &str) {
    let mut stream = stream.bytes_stream();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(None) | Ok(Some(Err(_))) => return,
            Ok(Some(Ok(_))) => continue,
            Err(_) => panic!("{what}: the open event stream was not closed"),
        }
    }
}

/// The token is refused at once on the REST API and cannot open the event stream.
async fn assert_dead(server: &TestServer, token: &str, what: &str) {
    let (status, body) = call(server, Method::GET, "/api/auth/me", token, None).await;
    assert_eq!(
        status, 401,
        "{what}: REST still accepts the old token: {body}"
    );
    let (status, _) = call(server, Method::POST, "/api/auth/event-ticket", token, None).await;
    assert_eq!(
        status, 401,
        "{what}: the old token still gets event tickets"
    );
}

async fn assert_alive(server: &TestServer, token: &str) {
    let (status, body) = call(server, Method::GET, "/api/auth/me", token, None).await;
    assert_eq!(status, 200, "{body}");
}

async fn sessions_end(db: TestDb) {
    let server = TestServer::start(db).await;
    let id = add_technician(&server, "tech@example.com").await;
    let login = || server.login("tech@example.com", PASSWORD);

    // Logout ends this session only; a ticket issued before it is refused afterwards.
    let token = login().await.unwrap();
    let other = login().await.unwrap();
    let stream = open_stream(&server, &token).await;
    let (_, ticket) = call(
        &server,
        Method::POST,
        "/api/auth/event-ticket",
        &token,
        None,
    )
    .await;
    let (status, _) = call(&server, Method::POST, "/api/auth/logout", &token, None).await;
    assert_eq!(status, 204);
    assert_dead(&server, &token, "logout").await;
    assert_closed(stream, "logout").await;
    let r = server
        .events_with_ticket(ticket["ticket"].as_str().unwrap())
        .await;
    assert_eq!(r.status().as_u16(), 401, "a ticket of an ended session");
    assert_alive(&server, &other).await;

    // Own password change: every session ends, the answer is a fresh one.
    let stream = open_stream(&server, &other).await;
    let (status, body) = call(
        &server,
        Method::POST,
        "/api/auth/password",
        &other,
        Some(json!({"current_password": "not it", "new_password": "new-pass-456"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_alive(&server, &other).await;
    let second = login().await.unwrap();
    let (status, body) = call(
        &server,
        Method::POST,
        "/api/auth/password",
        &other,
        Some(json!({"current_password": PASSWORD, "new_password": "new-pass-456"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_dead(&server, &other, "password change").await;
    assert_dead(&server, &second, "password change, other session").await;
    assert_closed(stream, "password change").await;
    assert_alive(&server, body["token"].as_str().unwrap()).await;
    assert_eq!(login().await.unwrap_err().0, 401, "the old password");
    let fresh = server
        .login("tech@example.com", "new-pass-456")
        .await
        .unwrap();

    // An admin's role change.
    let stream = open_stream(&server, &fresh).await;
    let path = format!("/api/users/{id}");
    let (status, body) = server
        .request(Method::PUT, &path, Some(json!({"role": "viewer"})))
        .await;
    assert_eq!((status, body["role"].as_str()), (200, Some("viewer")));
    assert_dead(&server, &fresh, "role change").await;
    assert_closed(stream, "role change").await;

    // An admin's password reset.
    let token = server
        .login("tech@example.com", "new-pass-456")
        .await
        .unwrap();
    let stream = open_stream(&server, &token).await;
    let (status, _) = server
        .request(Method::PUT, &path, Some(json!({"password": PASSWORD})))
        .await;
    assert_eq!(status, 200);
    assert_dead(&server, &token, "password reset").await;
    assert_closed(stream, "password reset").await;

    // Deactivation: sessions end and signing in is refused until enabled again.
    let token = login().await.unwrap();
    let stream = open_stream(&server, &token).await;
    let (status, body) = server
        .request(Method::PUT, &path, Some(json!({"disabled": true})))
        .await;
    assert_eq!((status, &body["disabled"]), (200, &json!(true)), "{body}");
    assert_dead(&server, &token, "deactivation").await;
    assert_closed(stream, "deactivation").await;
    let (status, body) = login().await.unwrap_err();
    assert_eq!(status, 403, "{body}");
    let (status, _) = server
        .request(Method::PUT, &path, Some(json!({"disabled": false})))
        .await;
    assert_eq!(status, 200);

    // Deletion.
    let token = login().await.unwrap();
    let stream = open_stream(&server, &token).await;
    let (status, _) = server.request(Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    assert_dead(&server, &token, "deletion").await;
    assert_closed(stream, "deletion").await;

    // Bad changes: nothing to change, an unknown user, demoting or disabling yourself.
    let me = server.get("/api/auth/me").await;
    let me_path = format!("/api/users/{}", me["id"].as_str().unwrap());
    for (path, body, want) in [
        (path.as_str(), json!({}), 400),
        (me_path.as_str(), json!({}), 400),
        (me_path.as_str(), json!({"role": "viewer"}), 400),
        (me_path.as_str(), json!({"disabled": true}), 400),
        (me_path.as_str(), json!({"password": "short"}), 400),
    ] {
        let (status, resp) = server.request(Method::PUT, path, Some(body.clone())).await;
        assert_eq!(status, want, "{path} {body}: {resp}");
        assert!(resp["error"].is_string(), "{resp}");
    }
    let (status, _) = server
        .request(Method::PUT, &path, Some(json!({"role": "viewer"})))
        .await;
    assert_eq!(status, 404, "a deleted user");
    // Every change above left its audit row in the same transaction.
    assert_alive(&server, &server.token).await;
}

/// The user lists their sessions (this one marked), ends another one, cannot end someone
/// else's; a ticket is single-use.
async fn session_list(db: TestDb) {
    let server = TestServer::start(db).await;
    let phone = server.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.unwrap();
    let sessions = server.get("/api/auth/sessions").await;
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    let current: Vec<_> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["source_address"], "127.0.0.1");
    let (_, from_phone) = call(&server, Method::GET, "/api/auth/sessions", &phone, None).await;
    let phone_id = from_phone
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(phone_id, current[0]["id"].as_str().unwrap());

    // Someone else's session is not found for another user.
    add_technician(&server, "tech@example.com").await;
    let tech = server.login("tech@example.com", PASSWORD).await.unwrap();
    let (status, body) = call(
        &server,
        Method::DELETE,
        &format!("/api/auth/sessions/{phone_id}"),
        &tech,
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_alive(&server, &phone).await;

    let phone_path = format!("/api/auth/sessions/{phone_id}");
    let end_phone = || server.request(Method::DELETE, &phone_path, None);
    let (status, _) = end_phone().await;
    assert_eq!(status, 204);
    assert_dead(&server, &phone, "ended from the session list").await;
    assert_eq!(
        server
            .get("/api/auth/sessions")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let (status, _) = end_phone().await;
    assert_eq!(status, 404, "already ended");

    // A ticket opens one stream, once.
    let ticket = server.post("/api/auth/event-ticket", json!({})).await;
    let ticket = ticket["ticket"].as_str().unwrap();
    let first = server.events_with_ticket(ticket).await;
    assert_eq!(first.status().as_u16(), 200);
    drop(first);
    let second = server.events_with_ticket(ticket).await;
    assert_eq!(second.status().as_u16(), 401, "a ticket is single-use");
}

/// A client whose requests come from `ip` (any 127.x address reaches the server on Linux).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn try_login(server: &TestServer, client: &reqwest::Client, password: &str) -> u16 {
    client
        .post(server.url("/api/auth/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// 100 concurrent wrong passwords from one address: at most the limit is checked (the attempt
/// is counted before the slow hash), and the real user from another address still gets in.
async fn concurrent_guesses(db: TestDb) {
    let server = TestServer::start(db).await;
    let limit = server.config.login_attempts_per_account as u64;
    let state = server.state();
    let before = state.sign_in.password_checks();
    let attacker = client_from("127.0.0.1");
    let tries = (0..100).map(|i| {
        let (server, attacker) = (&server, &attacker);
        async move { try_login(server, attacker, &format!("guess-{i}")).await }
    });
    let statuses = futures_util::future::join_all(tries).await;
    let checked = state.sign_in.password_checks() - before;
    assert!(
        checked <= limit,
        "{checked} passwords checked, limit {limit}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count() as u64,
        checked
    );
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    // Even the right password from the attacking address waits out the window...
    assert_eq!(try_login(&server, &attacker, ADMIN_PASSWORD).await, 429);
    // ...but the real user elsewhere is not locked out.
    let real = client_from("127.0.0.2");
    assert_eq!(try_login(&server, &real, ADMIN_PASSWORD).await, 200);
}

/// Guessing one account from many addresses is slowed down, not locked: past the failure
/// threshold few guesses per second are checked, and the user from an address they signed in
/// from before gets in at once.
async fn distributed_guessing_is_slowed(db: TestDb) {
    let server = TestServer::start_with(db, |c| {
        c.login_slowdown_after_failures = 3;
        c.login_slowdown_interval_ms = 1000;
    })
    .await;
    let state = server.state();
    let first = client_from("127.0.0.2");
    for _ in 0..3 {
        assert_eq!(try_login(&server, &first, "wrong guess").await, 401);
    }
    let before = state.sign_in.password_checks();
    let started = std::time::Instant::now();
    let clients: Vec<_> = (3..23)
        .map(|i| client_from(&format!("127.0.0.{i}")))
        .collect();
    let guesses = futures_util::future::join_all(
        clients
            .iter()
            .map(|c| try_login(&server, c, "another guess")),
    );
    // Meanwhile the admin signs in from 127.0.0.1, where they signed in before.
    let real = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let t = std::time::Instant::now();
        let status = try_login(&server, &client_from("127.0.0.1"), ADMIN_PASSWORD).await;
        (status, t.elapsed())
    };
    let (statuses, (real_status, real_took)) = tokio::join!(guesses, real);
    let checked = state.sign_in.password_checks() - before - 1;
    assert_eq!(real_status, 200);
    assert!(real_took < Duration::from_secs(2), "{real_took:?}");
    // Slots 0, 1, ..., 5 s apart; a longer wait is refused.
    assert!(checked <= 6, "{checked} guesses checked: {statuses:?}");
    assert!(
        statuses.iter().filter(|s| **s == 429).count() >= 14,
        "{statuses:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(8));
}

/// A server with no user says how to create the first administrator.
async fn first_admin_hint(db: TestDb) {
    let server = TestServer::start(db).await;
    let status = server.get("/api/auth/status").await;
    assert_eq!(status["needs_first_admin"], false);
    let me = server.get("/api/auth/me").await;
    let store = gururmm_server::db::Store::connect(&server.config.effective_database_url())
        .await
        .unwrap();
    store
        .delete_user(
            me["id"].as_str().unwrap(),
            gururmm_server::db::Actor::SYSTEM,
        )
        .await
        .unwrap();
    assert_eq!(store.audit_count("user.login").await.unwrap(), 1);
    store.close().await;
    let r = server
        .client
        .get(server.url("/api/auth/status"))
        .send()
        .await
        .unwrap();
    let status: Value = r.json().await.unwrap();
    assert_eq!(status["needs_first_admin"], true);
    assert!(
        status["hint"]
            .as_str()
            .unwrap()
            .starts_with("gururmm-server user add --email"),
        "{status}"
    );
    let (code, _) = server.request(Method::GET, "/api/auth/me", None).await;
    assert_eq!(code, 401, "the deleted user's session went with them");
}

/// The operator's `user add` on an existing user (another process, same database): the user's
/// sessions end, an open event stream closes within seconds, and a disabled user is enabled.
async fn operator_reset(db: TestDb) {
    let server = TestServer::start(db).await;
    let id = add_technician(&server, "tech@example.com").await;
    let token = server.login("tech@example.com", PASSWORD).await.unwrap();
    let stream = open_stream(&server, &token).await;
    let (status, _) = server
        .request(
            Method::PUT,
            &format!("/api/users/{id}"),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(status, 200);
    assert_closed(stream, "deactivation").await;
    let token = server.token.clone();
    let me = server.get("/api/auth/me").await;
    let stream = open_stream(&server, &token).await;

    let store = gururmm_server::db::Store::connect(&server.config.effective_database_url())
        .await
        .unwrap();
    let hash = gururmm_server::auth::hash_password("operator-pass-1").unwrap();
    for (user, role) in [
        (id.as_str(), gururmm_server::auth::Role::Technician),
        (
            me["id"].as_str().unwrap(),
            gururmm_server::auth::Role::Admin,
        ),
    ] {
        store
            .set_user_password(user, &hash, role, gururmm_server::db::Actor::SYSTEM)
            .await
            .unwrap();
    }
    store.close().await;
    assert_dead(&server, &token, "operator reset").await;
    // No broadcast reaches the server from another process: the stream re-checks.
    let mut body = stream.bytes_stream();
    let closed = tokio::time::timeout(Duration::from_secs(8), async {
        while let Some(Ok(_)) = body.next().await {}
    })
    .await;
    assert!(closed.is_ok(), "the open stream was not closed");
    server
        .login("tech@example.com", "operator-pass-1")
        .await
        .expect("enabled again by the operator");
}

on_both_databases!(
    operator_reset,
    sessions_end,
    session_list,
    concurrent_guesses,
    distributed_guessing_is_slowed,
    first_admin_hint
);
