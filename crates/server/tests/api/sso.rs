//! Single sign-on against a small OpenID Connect provider played by the test (discovery, JWKS,
//! RS256 ID tokens, a token endpoint that checks the PKCE verifier). The browser test
//! (dashboard/e2e/sso.mjs) runs the same flow against the real `oidc-provider`; here the
//! provider can also misbehave: a wrong nonce, an unverified email.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, State};
use axum::routing::{get, post};
use axum::Json;
use base64::Engine;
use gururmm_server::testing::{TestDb, TestServer};
use gururmm_server::Config;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::on_both_databases;

/// A test-only RSA key; its public half is the JWKS below.
const KEY_PEM: &str = include_str!("sso_test_key.pem");
const KEY_N: &str = "tN24M3fj5mhYshNLSQy4lIFKSgbY3SmhhDEx7t2J1LQZIuaw_fGcTJPqWOgEZVss0NktS81SZe8H2N1hmqrZyeyQmOESMckBiF_NUMRa0e5oiuwJkmYBsD28vM8zBcVPoee8EWPmXF-mixesaenPcpYVshRrXaVuXk0noLkszh0AgpZfXgGfW4JhP_kruDGHMQ_Cf3TkNqTUwEnl10MHBL7Fsy0S9gzP6T76oz0ofTSt-3BfFfTBnED-dM6FRkBzc3KfiNPLLWW8F1xidUAs5fAskNW4Dv44Dtslb98ynbsgWe5HDAOmqltZT8LEasFig3P5VkIGiPf_uSXL_njCiw";
const CLIENT_ID: &str = "gururmm-test";
const CLIENT_SECRET: &str = "test-client-secret";
/// Where browsers reach the server (as behind a proxy): the dashboard redirect goes there.
const PUBLIC_URL: &str = "http://rmm.example.test";

/// What the next sign-in at the fake provider says about the user.
#[derive(Clone)]
struct NextUser {
    claims: Value,
    /// Put this nonce into the ID token instead of the one asked for.
    wrong_nonce: bool,
}

#[derive(Clone)]
struct Fake {
    issuer: String,
    /// code -> (ID token, PKCE challenge)
    codes: Arc<Mutex<HashMap<String, (String, String)>>>,
}

async fn start_fake() -> Fake {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let fake = Fake {
        issuer: issuer.clone(),
        codes: Default::default(),
    };
    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(|| async { Json(json!({"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": "k1", "n": KEY_N, "e": "AQAB"}]})) }))
        .route("/token", post(token))
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    fake
}

async fn discovery(State(fake): State<Fake>) -> Json<Value> {
    let i = &fake.issuer;
    Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "jwks_uri": format!("{i}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}

async fn token(
    State(fake): State<Fake>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Json<Value>, (axum::http::StatusCode, Json<Value>)> {
    let refuse = |what: &str| {
        (
            axum::http::StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": what})),
        )
    };
    let code = form.get("code").cloned().unwrap_or_default();
    let (id_token, challenge) = fake
        .codes
        .lock()
        .unwrap()
        .remove(&code)
        .ok_or_else(|| refuse("unknown code"))?;
    let verifier = form
        .get("code_verifier")
        .ok_or_else(|| refuse("no PKCE verifier"))?;
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    if computed != challenge {
        return Err(refuse("PKCE verifier does not match"));
    }
    Ok(Json(json!({
        "access_token": "access", "token_type": "Bearer", "expires_in": 300, "id_token": id_token,
    })))
}

impl Fake {
    /// The provider's side of a sign-in: reads the authorization URL the server sent the
    /// browser to, and returns the query the provider redirects back with.
    fn authorize(&self, auth_url: &str, user: NextUser) -> String {
        let url = reqwest::Url::parse(auth_url).unwrap();
        assert!(
            auth_url.starts_with(&format!("{}/authorize", self.issuer)),
            "{auth_url}"
        );
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(q["client_id"], CLIENT_ID);
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["code_challenge_method"], "S256", "PKCE with S256");
        assert!(q["scope"].split(' ').any(|s| s == "openid"));
        assert_eq!(
            q["redirect_uri"],
            format!("{PUBLIC_URL}/api/auth/oidc/callback")
        );
        let nonce = if user.wrong_nonce {
            "not-the-nonce".to_owned()
        } else {
            q["nonce"].clone()
        };
        let now = chrono::Utc::now().timestamp();
        let mut claims = json!({
            "iss": self.issuer, "aud": CLIENT_ID, "sub": uuid::Uuid::new_v4().to_string(),
            "iat": now, "exp": now + 300, "nonce": nonce,
        });
        for (k, v) in user.claims.as_object().unwrap() {
            claims[k] = v.clone();
        }
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some("k1".into());
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(KEY_PEM.as_bytes()).unwrap();
        let id_token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
        let code = uuid::Uuid::new_v4().simple().to_string();
        self.codes
            .lock()
            .unwrap()
            .insert(code.clone(), (id_token, q["code_challenge"].clone()));
        format!("code={code}&state={}", q["state"])
    }
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn start(db: TestDb, fake: &Fake, group_roles: &[&str], default_role: &str) -> TestServer {
    let group_roles: Vec<String> = group_roles.iter().map(|s| s.to_string()).collect();
    let default_role = default_role.to_owned();
    start_with(db, fake, move |c| {
        c.oidc_group_roles = group_roles;
        c.oidc_default_role = default_role;
    })
    .await
}

async fn start_with(db: TestDb, fake: &Fake, adjust: impl FnOnce(&mut Config)) -> TestServer {
    let issuer = fake.issuer.clone();
    TestServer::start_with(db, move |c| {
        c.oidc_issuer = issuer;
        c.oidc_client_id = CLIENT_ID.into();
        c.oidc_client_secret = CLIENT_SECRET.into();
        c.oidc_redirect_url = format!("{PUBLIC_URL}/api/auth/oidc/callback");
        adjust(c);
    })
    .await
}

/// The server's login redirect, the provider, and the callback: (status, body or Location).
async fn sign_in(server: &TestServer, fake: &Fake, user: NextUser) -> (u16, String) {
    let http = no_redirects();
    let r = http
        .get(server.url("/api/auth/oidc/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 302);
    let auth_url = r.headers()["location"].to_str().unwrap().to_owned();
    let back = fake.authorize(&auth_url, user);
    callback(server, &back).await
}

async fn callback(server: &TestServer, query: &str) -> (u16, String) {
    let r = no_redirects()
        .get(server.url(&format!("/api/auth/oidc/callback?{query}")))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    (status, location.unwrap_or(r.text().await.unwrap()))
}

/// The dashboard's half: the code from `/#/sso?code=` for a session.
async fn exchange(server: &TestServer, location: &str) -> (u16, Value) {
    let code = location
        .strip_prefix(&format!("{PUBLIC_URL}/#/sso?code="))
        .unwrap_or_else(|| panic!("dashboard redirect: {location}"));
    let r = server
        .client
        .post(server.url("/api/auth/oidc/exchange"))
        .json(&json!({"code": code}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn user(claims: Value) -> NextUser {
    NextUser {
        claims,
        wrong_nonce: false,
    }
}

async fn role_of(server: &TestServer, email: &str) -> Option<String> {
    let users = server.get("/api/users").await;
    users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == email)
        .map(|u| u["role"].as_str().unwrap().to_owned())
}

/// A first sign-in creates the user with the default role and hands the dashboard a
/// one-time code (no token in any URL) that becomes an ordinary session, once.
async fn first_sign_in_creates_the_user(db: TestDb) {
    let fake = start_fake().await;
    let server = start(db, &fake, &[], "viewer").await;
    let providers = server.get("/api/auth/providers").await;
    assert_eq!(providers["oidc"]["display_name"], "Microsoft");
    assert_eq!(providers["oidc"]["login_url"], "/api/auth/oidc/login");

    let (status, location) = sign_in(
        &server,
        &fake,
        user(json!({"email": "Alice@Example.com", "email_verified": true})),
    )
    .await;
    assert_eq!(status, 302, "{location}");
    let (status, session) = exchange(&server, &location).await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["user"]["email"], "alice@example.com");
    assert_eq!(session["user"]["role"], "viewer");
    let token = session["token"].as_str().unwrap();
    let me = server
        .client
        .get(server.url("/api/auth/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status().as_u16(), 200);
    assert_eq!(
        exchange(&server, &location).await.0,
        400,
        "the code works once"
    );
    let store = &server.state().store;
    assert_eq!(store.audit_count("user.sso_create").await.unwrap(), 1);
    assert_eq!(store.audit_count("user.sso_login").await.unwrap(), 1);
    // No password signs in to an account created by single sign-on.
    assert_eq!(
        server
            .login("alice@example.com", "!sso")
            .await
            .unwrap_err()
            .0,
        401
    );

    // Signing in again finds the same user.
    let (_, location) = sign_in(
        &server,
        &fake,
        user(json!({"email": "alice@example.com", "email_verified": true})),
    )
    .await;
    assert_eq!(exchange(&server, &location).await.0, 200);
    assert_eq!(store.audit_count("user.sso_create").await.unwrap(), 1);
}

/// The state is used once and must be one the server issued; a wrong nonce in the ID token,
/// or an email the provider does not vouch for, is refused.
async fn forged_or_unverified_sign_ins_are_refused(db: TestDb) {
    let fake = start_fake().await;
    let server = start(db, &fake, &[], "viewer").await;
    let http = no_redirects();

    // A state the server never issued, and none at all.
    let (status, body) = callback(&server, "code=x&state=made-up").await;
    assert_eq!(status, 400);
    assert!(body.contains("state"), "{body}");
    assert_eq!(callback(&server, "code=x").await.0, 400);

    // A state used twice: the second time is refused.
    let r = http
        .get(server.url("/api/auth/oidc/login"))
        .send()
        .await
        .unwrap();
    let back = fake.authorize(
        r.headers()["location"].to_str().unwrap(),
        user(json!({"email": "a@example.com", "email_verified": true})),
    );
    assert_eq!(callback(&server, &back).await.0, 302);
    let (status, body) = callback(&server, &back).await;
    assert_eq!(status, 400, "{body}");

    // An ID token for another sign-in (its nonce is not this one's).
    let (status, body) = sign_in(
        &server,
        &fake,
        NextUser {
            claims: json!({"email": "mallory@example.com", "email_verified": true}),
            wrong_nonce: true,
        },
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("nonce"), "{body}");

    let (status, body) = sign_in(
        &server,
        &fake,
        user(json!({"email": "unverified@example.com", "email_verified": false})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = sign_in(&server, &fake, user(json!({"name": "no email"}))).await;
    assert_eq!(status, 403);
    assert_eq!(role_of(&server, "mallory@example.com").await, None);
    assert_eq!(role_of(&server, "unverified@example.com").await, None);

    // Entra ID sends no email_verified: its preferred_username names the user.
    let (status, location) = sign_in(
        &server,
        &fake,
        user(json!({"preferred_username": "Entra.User@contoso.example"})),
    )
    .await;
    assert_eq!(status, 302, "{location}");
    assert_eq!(exchange(&server, &location).await.0, 200);
    assert_eq!(
        role_of(&server, "entra.user@contoso.example")
            .await
            .as_deref(),
        Some("viewer")
    );
}

/// Groups map to roles (the highest wins) at every sign-in; a changed role ends the user's
/// sessions. With `none` as the default, unknown users are refused; disabled users are too.
async fn groups_decide_the_role(db: TestDb) {
    let fake = start_fake().await;
    let server = start(db, &fake, &["techs=technician", "admins=admin"], "none").await;
    let bob = |groups: Value| {
        user(json!({"email": "bob@example.com", "email_verified": true, "groups": groups}))
    };
    let (status, body) = sign_in(&server, &fake, bob(json!(["others"]))).await;
    assert_eq!(status, 403, "no mapped group and no default role: {body}");

    let (_, location) = sign_in(&server, &fake, bob(json!(["techs", "admins"]))).await;
    let (status, session) = exchange(&server, &location).await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["user"]["role"], "admin");
    let admin_token = session["token"].as_str().unwrap().to_owned();

    let (_, location) = sign_in(&server, &fake, bob(json!(["techs"]))).await;
    let (_, session) = exchange(&server, &location).await;
    assert_eq!(session["user"]["role"], "technician");
    assert_eq!(
        role_of(&server, "bob@example.com").await.as_deref(),
        Some("technician")
    );
    let old = server
        .client
        .get(server.url("/api/auth/me"))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        old.status().as_u16(),
        401,
        "the admin session ended with the role"
    );

    // A local user (the test's admin) may use single sign-on even with `none`; when
    // disabled, not.
    let (status, location) = sign_in(
        &server,
        &fake,
        user(json!({"email": gururmm_server::testing::ADMIN_EMAIL, "email_verified": true, "groups": ["admins"]})),
    )
    .await;
    assert_eq!(status, 302, "{location}");
    let users = server.get("/api/users").await;
    let bob_id = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "bob@example.com")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .request(
            reqwest::Method::PUT,
            &format!("/api/users/{bob_id}"),
            Some(json!({"disabled": true})),
        )
        .await;
    let (status, body) = sign_in(&server, &fake, bob(json!(["admins"]))).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("disabled"), "{body}");
}

/// The provider does the second factor: with `require_two_factor`, a single sign-on session
/// works at once, while a password session without local two-factor is held at its setup.
async fn single_sign_on_skips_the_local_second_factor(db: TestDb) {
    let fake = start_fake().await;
    let server = start_with(db, &fake, |c| c.require_two_factor = true).await;
    let (_, location) = sign_in(
        &server,
        &fake,
        user(json!({"email": "carol@example.com", "email_verified": true})),
    )
    .await;
    let (status, session) = exchange(&server, &location).await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["two_factor_setup_required"], false);
    let sso = server
        .client
        .get(server.url("/api/clients"))
        .bearer_auth(session["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(sso.status().as_u16(), 200);
    let (status, _) = server
        .request(reqwest::Method::GET, "/api/clients", None)
        .await;
    assert_eq!(
        status, 403,
        "the password session still needs its second factor"
    );
}

/// Every start stores a pending sign-in, so starts are limited per address like sign-ins.
async fn starting_sign_ins_is_limited_per_address(db: TestDb) {
    let fake = start_fake().await;
    let server = start_with(db, &fake, |c| c.login_attempts_per_address = 3).await;
    let http = no_redirects();
    for _ in 0..3 {
        let r = http
            .get(server.url("/api/auth/oidc/login"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 302);
    }
    let r = http
        .get(server.url("/api/auth/oidc/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().contains_key("retry-after"));
}

/// With single sign-on off the routes say so: no provider, 404 JSON.
async fn off_by_default(db: TestDb) {
    let server = TestServer::start(db).await;
    assert_eq!(
        server.get("/api/auth/providers").await,
        json!({"oidc": null})
    );
    for path in [
        "/api/auth/oidc/login",
        "/api/auth/oidc/callback?code=x&state=y",
    ] {
        let r = no_redirects().get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 404, "{path}");
        let body: Value = r.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains("not configured"));
    }
}

on_both_databases!(
    first_sign_in_creates_the_user,
    forged_or_unverified_sign_ins_are_refused,
    groups_decide_the_role,
    single_sign_on_skips_the_local_second_factor,
    starting_sign_ins_is_limited_per_address,
    off_by_default,
);
