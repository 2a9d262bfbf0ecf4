//! The API contract: roles enforced exactly as the route table declares them, NUL bytes
//! refused at the edge, and the committed OpenAPI document equal to the served one.

use gururmm_server::http::{api_routes, Access};
use gururmm_server::testing::{TestDb, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

use crate::on_both_databases;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Caller {
    Anonymous,
    Viewer,
    Technician,
    Admin,
    Agent,
}

/// What the table promises: `None` allowed, `Some(status)` refused with that status.
fn expected(access: Access, caller: Caller) -> Option<u16> {
    use Caller::*;
    match (access, caller) {
        (Access::Anyone, _) => None,
        (Access::AgentKey, Agent) => None,
        (Access::AgentKey, _) => Some(401),
        (_, Anonymous | Agent) => Some(401),
        (Access::Viewer, _) => None,
        (Access::Technician, Viewer) => Some(403),
        (Access::Technician, _) => None,
        (Access::Admin, Admin) => None,
        (Access::Admin, _) => Some(403),
    }
}

async fn user_token(server: &TestServer, role: &str) -> String {
    let email = format!("{role}@example.com");
    server
        .post(
            "/api/users",
            json!({"email": email, "password": "walk-pass-123", "role": role}),
        )
        .await;
    server.login(&email, "walk-pass-123").await.unwrap()
}

/// Every route of the table, as every kind of caller: allowed or refused as declared.
async fn authorization_walk(db: TestDb) {
    let server = TestServer::start_with(db, |c| c.allow_registration = true).await;
    let viewer = user_token(&server, "viewer").await;
    let technician = user_token(&server, "technician").await;
    let registered = server
        .post("/api/agents", json!({"hostname": "walk-agent"}))
        .await;
    let agent_key = registered["api_key"].as_str().unwrap().to_owned();
    let mut callers = [
        (Caller::Anonymous, None),
        (Caller::Viewer, Some(viewer)),
        (Caller::Technician, Some(technician)),
        (Caller::Admin, Some(server.token.clone())),
        (Caller::Agent, Some(agent_key)),
    ];
    let routes = api_routes();
    assert!(routes.len() >= 38, "the whole table is walked");
    for r in &routes {
        let path = r.path.replace("{id}", "no-such-id");
        let method = Method::from_bytes(r.method.as_bytes()).unwrap();
        for (caller, token) in &mut callers {
            let mut req = server.client.request(method.clone(), server.url(&path));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            if matches!(r.method, "POST" | "PUT") {
                req = req.json(&json!({}));
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            drop(resp); // the event stream stays open otherwise
            if r.path == "/api/auth/logout" && status == 204 {
                // Signing out ended that session: sign in again for the rest of the walk.
                let (email, password) = match *caller {
                    Caller::Admin => (
                        gururmm_server::testing::ADMIN_EMAIL.to_owned(),
                        gururmm_server::testing::ADMIN_PASSWORD,
                    ),
                    other => (
                        format!("{}@example.com", format!("{other:?}").to_lowercase()),
                        "walk-pass-123",
                    ),
                };
                *token = Some(server.login(&email, password).await.unwrap());
            }
            let what = format!("{} {} as {caller:?}", r.method, r.path);
            match expected(r.access, *caller) {
                None => assert!(
                    status != 401 && status != 403 && status < 500,
                    "{what}: allowed by the table, got {status}"
                ),
                Some(want) => assert_eq!(status, want, "{what}: refused by the table"),
            }
        }
    }
    // The table says what the product promises: viewers read, technicians write, admins
    // manage users, agents use their own endpoints.
    let access = |method: &str, path: &str| {
        routes
            .iter()
            .find(|r| r.method == method && r.path == path)
            .map(|r| r.access)
            .unwrap()
    };
    assert_eq!(access("GET", "/api/clients"), Access::Viewer);
    assert_eq!(access("POST", "/api/clients"), Access::Technician);
    assert_eq!(
        access("POST", "/api/agents/{id}/command"),
        Access::Technician
    );
    assert_eq!(access("POST", "/api/users"), Access::Admin);
    assert_eq!(access("POST", "/api/agent/heartbeat"), Access::AgentKey);
}

async fn post_raw(server: &TestServer, path: &str, body: &str) -> (u16, Value) {
    let r = server
        .client
        .post(server.url(path))
        .bearer_auth(&server.token)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// PostgreSQL cannot store a NUL byte in text: every database answers 400 naming the field.
async fn nul_bytes_refused(db: TestDb) {
    let server = TestServer::start(db).await;
    let registered = server
        .post("/api/agents", json!({"hostname": "nul-test"}))
        .await;
    let agent_id = registered["agent"]["id"].as_str().unwrap().to_owned();
    let command_path = format!("/api/agents/{agent_id}/command");
    let cases = [
        (
            "/api/clients",
            r#"{"name": "Acme\u0000Corp"}"#,
            "name must not contain a NUL byte",
        ),
        (
            "/api/agents",
            r#"{"hostname": "host\u0000"}"#,
            "hostname must not contain a NUL byte",
        ),
        (
            command_path.as_str(),
            r#"{"command_type": "shell", "command": "echo \u0000"}"#,
            "command must not contain a NUL byte",
        ),
        (
            "/api/clients",
            r#"{"name": "x", "notes": "\u0000"}"#,
            "notes must not contain",
        ),
    ];
    for (path, body, needle) in cases {
        let (status, resp) = post_raw(&server, path, body).await;
        assert_eq!(status, 400, "{path} {body}: {resp}");
        assert!(
            resp["error"].as_str().unwrap().contains(needle),
            "{path} {body}: {resp}"
        );
    }
    for path in [
        "/api/agents?search=a%00b",
        "/api/commands?agent_id=%00",
        "/api/clients/ab%00cd",
    ] {
        let (status, resp) = server.request(Method::GET, path, None).await;
        assert_eq!(status, 400, "{path}: {resp}");
        assert!(resp["error"].as_str().unwrap().contains("NUL"), "{resp}");
    }
    // Nothing was stored, and the server still answers.
    assert_eq!(server.get("/api/clients").await, json!([]));
    assert_eq!(server.get("/api/agents").await.as_array().unwrap().len(), 1);
}

on_both_databases!(authorization_walk, nul_bytes_refused);

fn committed_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

/// docs/openapi.json is what the server serves. Regenerate with
/// `UPDATE_OPENAPI=1 cargo test -p gururmm-server --test api openapi_document_is_committed`.
#[tokio::test]
async fn openapi_document_is_committed() {
    let server = TestServer::start(TestDb::Sqlite).await;
    let served: Value = server
        .client
        .get(server.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = serde_json::to_string_pretty(&served).unwrap() + "\n";
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(committed_path(), &text).unwrap();
    }
    let committed = std::fs::read_to_string(committed_path()).unwrap_or_default();
    assert!(
        committed == text,
        "docs/openapi.json differs from what the server serves at /api/openapi.json. \
         Regenerate it with: UPDATE_OPENAPI=1 cargo test -p gururmm-server --test api \
         openapi_document_is_committed (then npm run gen:api in dashboard/)"
    );
}

/// Each operation documents its body, its success answer with a schema, its errors, who may
/// call it, and creates link to the `{id}` routes.
#[test]
fn openapi_documents_every_operation() {
    let doc = gururmm_server::http::openapi();
    let schemas = &doc["components"]["schemas"];
    for r in api_routes() {
        let what = format!("{} {}", r.method, r.path);
        let op = &doc["paths"][r.path][r.method.to_lowercase()];
        let responses = op["responses"].as_object().unwrap();
        // A 302 is the success of a browser redirect (single sign-on).
        let is_success = |k: &str| k.starts_with('2') || k == "302";
        let success: Vec<&String> = responses.keys().filter(|k| is_success(k)).collect();
        assert_eq!(success.len(), 1, "{what}");
        let ok = &responses[success[0].as_str()];
        match success[0].as_str() {
            // No content: a deletion, or an action with no body (signing out).
            "204" => assert!(
                r.method == "DELETE" || (r.method == "POST" && op["requestBody"].is_null()),
                "{what}"
            ),
            "302" => assert!(r.method == "GET" && ok["content"].is_null(), "{what}"),
            "201" => {
                assert_eq!(r.method, "POST", "{what}");
                assert!(ok["content"].is_object(), "{what}");
            }
            _ => assert!(ok["content"].is_object(), "{what}: success schema"),
        }
        if r.method == "DELETE" {
            assert!(responses.contains_key("204"), "{what}");
        }
        for (status, resp) in responses.iter().filter(|(k, _)| !is_success(k)) {
            assert_eq!(
                resp["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Error",
                "{what} {status}"
            );
        }
        let role = op["x-required-role"].as_str().unwrap();
        match r.access {
            Access::Anyone => assert_eq!(op["security"], json!([]), "{what}"),
            Access::AgentKey => assert_eq!(role, "agent"),
            _ => {
                assert_eq!(role, r.access.required_role().unwrap().as_str());
                assert!(responses.contains_key("401"), "{what}");
            }
        }
        if matches!(r.access, Access::Technician | Access::Admin) {
            assert!(responses.contains_key("403"), "{what}");
        }
        // Creations and updates take a body; a POST that starts something (a two-factor
        // setup) or acts on the caller's own session (sign out, an event ticket) may not.
        let bodiless = ["/api/auth/logout", "/api/auth/event-ticket"].contains(&r.path);
        if matches!(r.method, "PUT")
            || (r.method == "POST"
                && !r.path.contains('{')
                && !r.path.ends_with("/setup")
                && !bodiless)
        {
            assert!(
                op["requestBody"]["content"]["application/json"]["schema"].is_object(),
                "{what}"
            );
        }
        let mut text = op.to_string();
        while let Some(at) = text.find("#/components/schemas/") {
            text = text[at + 21..].to_owned();
            let name: String = text.chars().take_while(|c| *c != '"').collect();
            assert!(
                schemas.get(&name).is_some(),
                "{what}: schema {name} is defined"
            );
        }
    }
    let links = &doc["paths"]["/api/clients"]["post"]["responses"]["201"]["links"];
    for op in ["get_clients_id", "put_clients_id", "delete_clients_id"] {
        assert_eq!(
            links[op]["parameters"]["id"], "$response.body#/id",
            "{links}"
        );
    }
    assert_eq!(
        schemas["CommandStatus"]["enum"],
        json!([
            "pending",
            "running",
            "completed",
            "failed",
            "timed_out",
            "cancelled",
            "expired"
        ])
    );
    assert_eq!(
        schemas["Role"]["enum"],
        json!(["viewer", "technician", "admin"])
    );
    assert_eq!(
        schemas["CommandType"]["enum"],
        json!(["shell", "powershell", "python", "script", "claude_task"])
    );
    assert_eq!(schemas["AgentStatus"]["enum"], json!(["online", "offline"]));
}
