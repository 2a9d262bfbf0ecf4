//! Two-factor sign-in (TOTP, RFC 6238) through the real server on both databases: codes are
//! computed here from the enrolled secret, as an authenticator app would.

use gururmm_server::testing::{TestDb, TestServer, ADMIN_EMAIL, ADMIN_PASSWORD};
use reqwest::Method;
use serde_json::{json, Value};

use crate::on_both_databases;

/// The code an authenticator app shows `offset_steps` steps (30 s each) from now.
fn code(secret_base32: &str, offset_steps: i64) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret_base32).expect("base32 secret");
    let totp = totp_rs::Builder::new()
        .with_secret(secret.as_bytes().to_vec())
        .with_digits(6)
        .with_step_duration(30)
        .build()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    totp.generate((now + offset_steps * 30) as u64).to_string()
}

async fn login(server: &TestServer, email: &str, password: &str, extra: Value) -> (u16, Value) {
    let mut body = json!({"email": email, "password": password});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let r = server
        .client
        .post(server.url("/api/auth/login"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Sets up and confirms TOTP for the server's signed-in admin; returns the secret and the
/// recovery codes.
async fn enroll(server: &TestServer) -> (String, Vec<String>) {
    let setup = server.post("/api/auth/two-factor/setup", json!({})).await;
    let secret = setup["secret"].as_str().unwrap().to_owned();
    assert!(setup["otpauth_uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/GuruRMM:"));
    let (status, body) = server
        .request(
            Method::POST,
            "/api/auth/two-factor/confirm",
            Some(json!({"code": "000000"})),
        )
        .await;
    if status != 200 {
        assert_eq!(status, 400, "a wrong code is refused: {body}");
    }
    let confirmed = server
        .post(
            "/api/auth/two-factor/confirm",
            json!({"code": code(&secret, 0)}),
        )
        .await;
    let codes: Vec<String> = confirmed["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (secret, codes)
}

async fn sign_in_needs_a_code_and_each_code_works_once(db: TestDb) {
    let server = TestServer::start(db).await;
    let status = server.get("/api/auth/two-factor").await;
    assert_eq!(status["enabled"], false);
    let (secret, recovery) = enroll(&server).await;
    assert_eq!(recovery.len(), 10);
    assert_eq!(server.get("/api/auth/me").await["two_factor"], true);
    assert_eq!(
        server.get("/api/auth/two-factor").await["recovery_codes_left"],
        10
    );

    // The secret is stored sealed, never as the base32 the app got.
    let store = gururmm_server::db::Store::connect(&server.config.effective_database_url())
        .await
        .unwrap();
    let stored: Option<String> =
        sqlx::query_scalar("SELECT totp_secret FROM users WHERE email = $1")
            .bind(ADMIN_EMAIL)
            .fetch_one(store.pool())
            .await
            .unwrap();
    let stored = stored.expect("a secret is stored");
    assert!(!stored.contains(&secret) && stored.len() > 20, "{stored}");
    store.close().await;

    let (s, body) = login(&server, ADMIN_EMAIL, ADMIN_PASSWORD, json!({})).await;
    assert_eq!(
        (s, &body["two_factor_required"]),
        (401, &json!(true)),
        "{body}"
    );
    // The code that confirmed the setup is used up.
    let (s, _) = login(
        &server,
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
        json!({"totp_code": code(&secret, 0)}),
    )
    .await;
    assert_eq!(s, 401, "a code is accepted once");
    let next = code(&secret, 1);
    let (s, body) = login(
        &server,
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
        json!({"totp_code": next}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(body["token"].as_str().is_some());
    let (s, _) = login(
        &server,
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
        json!({"totp_code": next}),
    )
    .await;
    assert_eq!(s, 401, "the same code again is refused");
    let (s, _) = login(
        &server,
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
        json!({"totp_code": "123"}),
    )
    .await;
    assert_eq!(s, 401);
    let (s, _) = login(
        &server,
        ADMIN_EMAIL,
        "wrong password!",
        json!({"totp_code": code(&secret, 1)}),
    )
    .await;
    assert_eq!(s, 401, "a code does not replace the password");

    // A recovery code works once, however it is typed.
    let typed = recovery[3].to_uppercase();
    let (s, _) = login(
        &server,
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
        json!({"recovery_code": typed}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = login(
        &server,
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
        json!({"recovery_code": recovery[3]}),
    )
    .await;
    assert_eq!(s, 401, "a recovery code works once");
    assert_eq!(
        server.get("/api/auth/two-factor").await["recovery_codes_left"],
        9
    );

    // Turning it off needs a code; then the password alone signs in again.
    let (s, _) = server
        .request(
            Method::POST,
            "/api/auth/two-factor/disable",
            Some(json!({"code": "999999"})),
        )
        .await;
    assert_eq!(s, 400);
    let (s, body) = server
        .request(
            Method::POST,
            "/api/auth/two-factor/disable",
            Some(json!({"code": recovery[0]})),
        )
        .await;
    assert_eq!((s, &body["enabled"]), (200, &json!(false)), "{body}");
    let (s, _) = login(&server, ADMIN_EMAIL, ADMIN_PASSWORD, json!({})).await;
    assert_eq!(s, 200);
}

async fn an_admin_can_turn_a_users_second_factor_off(db: TestDb) {
    let mut server = TestServer::start(db).await;
    let user = server
        .post(
            "/api/users",
            json!({"email": "tech@example.com", "password": "tech password 1", "role": "technician"}),
        )
        .await;
    let tech_token = server
        .login("tech@example.com", "tech password 1")
        .await
        .unwrap();
    let admin_token = std::mem::replace(&mut server.token, tech_token);
    enroll(&server).await;
    let (s, _) = login(&server, "tech@example.com", "tech password 1", json!({})).await;
    assert_eq!(s, 401, "the technician now needs a code");
    server.token = admin_token;
    let (s, _) = server
        .request(
            Method::DELETE,
            &format!("/api/users/{}/two-factor", user["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, _) = login(&server, "tech@example.com", "tech password 1", json!({})).await;
    assert_eq!(s, 200, "after the admin's reset the password alone works");
}

/// With `require_two_factor`, a user without a second factor can reach only its setup.
async fn a_server_can_require_it(db: TestDb) {
    let server = TestServer::start_with(db, |c| c.require_two_factor = true).await;
    let (_, body) = login(&server, ADMIN_EMAIL, ADMIN_PASSWORD, json!({})).await;
    assert_eq!(body["two_factor_setup_required"], true);
    let (s, body) = server.request(Method::GET, "/api/clients", None).await;
    assert_eq!(s, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("two-factor"));
    assert_eq!(server.get("/api/auth/two-factor").await["required"], true);
    let (secret, _) = enroll(&server).await;
    // The same session is let through once the second factor is set up.
    server.get("/api/clients").await;
    let (s, _) = server
        .request(
            Method::POST,
            "/api/auth/two-factor/disable",
            Some(json!({"code": code(&secret, 1)})),
        )
        .await;
    assert_eq!(s, 409, "it cannot be turned off where it is required");
}

/// An administrator requires it from the dashboard: first for themselves, then for everyone.
async fn an_admin_can_require_it_for_everyone(db: TestDb) {
    let mut server = TestServer::start(db).await;
    server
        .post(
            "/api/users",
            json!({"email": "tech@example.com", "password": "tech password 1", "role": "technician"}),
        )
        .await;
    let (s, body) = server
        .request(
            Method::PUT,
            "/api/settings",
            Some(json!({"require_two_factor": true})),
        )
        .await;
    assert_eq!(s, 409, "not before the admin has it: {body}");
    enroll(&server).await;
    let (s, body) = server
        .request(
            Method::PUT,
            "/api/settings",
            Some(json!({"require_two_factor": true})),
        )
        .await;
    assert_eq!(
        (s, &body["require_two_factor"]),
        (200, &json!(true)),
        "{body}"
    );

    // A technician without a second factor now reaches only its setup.
    let (_, login_body) = login(&server, "tech@example.com", "tech password 1", json!({})).await;
    assert_eq!(login_body["two_factor_setup_required"], true);
    let admin_token = std::mem::replace(
        &mut server.token,
        login_body["token"].as_str().unwrap().to_owned(),
    );
    let (s, _) = server.request(Method::GET, "/api/clients", None).await;
    assert_eq!(s, 403);
    assert_eq!(server.get("/api/auth/two-factor").await["required"], true);

    // Turned off again, the technician is let through.
    server.token = admin_token;
    server
        .request(
            Method::PUT,
            "/api/settings",
            Some(json!({"require_two_factor": false})),
        )
        .await;
    server.token = login_body["token"].as_str().unwrap().to_owned();
    server.get("/api/clients").await;
}

on_both_databases!(
    an_admin_can_require_it_for_everyone,
    sign_in_needs_a_code_and_each_code_works_once,
    an_admin_can_turn_a_users_second_factor_off,
    a_server_can_require_it,
);
