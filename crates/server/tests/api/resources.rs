use gururmm_server::testing::{TestDb, TestServer};
use reqwest::Method;
use serde_json::json;

use crate::agent_sim::{new_device_id, SimAgent};
use crate::on_both_databases;

async fn clients_and_sites(db: TestDb) {
    let server = TestServer::start(db).await;
    let (client_id, site_id, code) = server.create_site().await;
    assert!(gururmm_server::site_code::is_site_code(&code), "{code}");

    let (status, c) = server
        .request(
            Method::PUT,
            &format!("/api/clients/{client_id}"),
            Some(json!({"name": "Renamed", "notes": "VIP"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(c["name"], "Renamed");
    assert_eq!(c["notes"], "VIP");
    assert_eq!(c["site_count"], 1);
    let sites = server.get(&format!("/api/clients/{client_id}/sites")).await;
    assert_eq!(sites[0]["id"], site_id.as_str());
    assert_eq!(sites[0]["client_name"], "Renamed");
    assert_eq!(server.get("/api/sites").await.as_array().unwrap().len(), 1);
    let (status, s) = server
        .request(
            Method::PUT,
            &format!("/api/sites/{site_id}"),
            Some(json!({"name": "Branch"})),
        )
        .await;
    assert_eq!((status, s["name"].as_str()), (200, Some("Branch")));

    // A new code: the old one stops enrolling, the new one works; enrolled agents keep working.
    let (_a, first) = SimAgent::enroll(&server.ws_url, &code, &new_device_id()).await;
    let regenerated = server
        .post(&format!("/api/sites/{site_id}/regenerate-key"), json!({}))
        .await;
    let new_code = regenerated["site_code"].as_str().unwrap();
    assert_ne!(new_code, code);
    let (_b, refused) = SimAgent::enroll(&server.ws_url, &code, &new_device_id()).await;
    assert_eq!(refused["success"], false);
    let (_c, accepted) = SimAgent::enroll(&server.ws_url, new_code, &new_device_id()).await;
    assert_eq!(accepted["success"], true);
    let (_d, by_key) = SimAgent::enroll(
        &server.ws_url,
        first["api_key"].as_str().unwrap(),
        "other-device",
    )
    .await;
    assert_eq!(by_key["success"], true);

    // Deleting the client takes its sites; its agents stay, unassigned.
    let (status, _) = server
        .request(Method::DELETE, &format!("/api/clients/{client_id}"), None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = server
        .request(Method::GET, &format!("/api/sites/{site_id}"), None)
        .await;
    assert_eq!(status, 404);
    let unassigned = server.get("/api/agents/unassigned").await;
    assert_eq!(unassigned.as_array().unwrap().len(), 2);
    let stats = server.get("/api/agents/stats").await;
    assert_eq!(stats["unassigned"], 2);
    assert_eq!(stats["by_os"]["linux"], 2);
}

async fn agents_register_move_delete(db: TestDb) {
    let server = TestServer::start(db).await;
    let (client_id, site_id, _) = server.create_site().await;
    let other = server
        .post(
            "/api/sites",
            json!({"client_id": client_id, "name": "Warehouse"}),
        )
        .await;
    let other_id = other["id"].as_str().unwrap();

    // A technician registers an agent; its key is shown once and works on the socket.
    let reg = server
        .post(
            "/api/agents",
            json!({"hostname": "kiosk-7", "site_id": site_id}),
        )
        .await;
    let key = reg["api_key"].as_str().unwrap();
    assert!(key.starts_with("grmm_"));
    let id = reg["agent"]["id"].as_str().unwrap().to_owned();
    assert!(
        server
            .get(&format!("/api/agents/{id}"))
            .await
            .get("api_key")
            .is_none(),
        "the key is never shown again"
    );
    let (_agent, auth) = SimAgent::enroll(&server.ws_url, key, &new_device_id()).await;
    assert_eq!(auth["agent_id"], id.as_str());

    let moved = server
        .post(
            &format!("/api/agents/{id}/move"),
            json!({"site_id": other_id}),
        )
        .await;
    assert_eq!(moved["site_id"], other_id);
    assert_eq!(moved["site_name"], "Warehouse");
    let listed = server.get(&format!("/api/agents?site_id={other_id}")).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(
        server
            .get(&format!("/api/agents?client_id={client_id}&status=online"))
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        server
            .get("/api/agents?status=offline")
            .await
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        server
            .get("/api/agents?search=FRONTDESK")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        server
            .get("/api/agents?search=nothing-like-it")
            .await
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let (status, body) = server
        .request(
            Method::POST,
            &format!("/api/agents/{id}/move"),
            Some(json!({"site_id": "nowhere"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");

    let (status, _) = server
        .request(Method::DELETE, &format!("/api/agents/{id}"), None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = server
        .request(Method::GET, &format!("/api/agents/{id}"), None)
        .await;
    assert_eq!(status, 404);
}

async fn users_and_roles(db: TestDb) {
    let server = TestServer::start(db).await;
    let viewer = server
        .post(
            "/api/users",
            json!({"email": "viewer@example.com", "password": "viewer-pass-1", "role": "viewer"}),
        )
        .await;
    assert_eq!(viewer["role"], "viewer");
    assert!(viewer.get("password_hash").is_none());
    let (status, body) = server.request(Method::POST, "/api/users", Some(json!({"email": "viewer@example.com", "password": "another-pass", "role": "viewer"}))).await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = server
        .request(
            Method::POST,
            "/api/users",
            Some(json!({"email": "x@example.com", "password": "short", "role": "viewer"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");

    let token = server
        .login("viewer@example.com", "viewer-pass-1")
        .await
        .unwrap();
    let as_viewer = |method: Method, path: &'static str, body: serde_json::Value| {
        server
            .client
            .request(method, server.url(path))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    assert_eq!(
        as_viewer(Method::GET, "/api/clients", json!({}))
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        as_viewer(Method::POST, "/api/clients", json!({"name": "x"}))
            .await
            .unwrap()
            .status()
            .as_u16(),
        403
    );
    assert_eq!(
        as_viewer(Method::GET, "/api/users", json!({}))
            .await
            .unwrap()
            .status()
            .as_u16(),
        403
    );

    let users = server.get("/api/users").await;
    assert_eq!(users.as_array().unwrap().len(), 2);
    let (status, _) = server
        .request(
            Method::DELETE,
            &format!("/api/users/{}", viewer["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        as_viewer(Method::GET, "/api/clients", json!({}))
            .await
            .unwrap()
            .status()
            .as_u16(),
        401,
        "a deleted user's session ends"
    );
}

/// The OpenAPI document is generated from the routes and names every one of them.
async fn openapi_lists_every_route(db: TestDb) {
    let server = TestServer::start(db).await;
    let doc: serde_json::Value = server
        .client
        .get(server.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for r in gururmm_server::http::api_routes() {
        let op = &doc["paths"][r.path][r.method.to_lowercase()];
        assert!(op["summary"].is_string(), "{} {} missing", r.method, r.path);
    }
    for spec_path in [
        "/api/agents/{id}/command",
        "/api/agent/heartbeat",
        "/api/sites/{id}/regenerate-key",
        "/api/metrics/summary",
    ] {
        assert!(doc["paths"].get(spec_path).is_some(), "{spec_path}");
    }
}

on_both_databases!(
    clients_and_sites,
    agents_register_move_delete,
    users_and_roles,
    openapi_lists_every_route
);

/// The dashboard's live stream: an agent coming online and a command changing state arrive as
/// server-sent events; the stream needs a single-use ticket, never the JWT in the URL.
async fn live_events_stream(db: TestDb) {
    use futures_util::StreamExt;
    let server = TestServer::start(db).await;
    let (_, _, code) = server.create_site().await;
    let r = server
        .client
        .get(server.url("/api/events?ticket=garbage"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = server
        .client
        .get(server.url(&format!("/api/events?access_token={}", server.token)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "the JWT is not taken from a URL");
    let ticket = server.post("/api/auth/event-ticket", json!({})).await;
    let r = server
        .events_with_ticket(ticket["ticket"].as_str().unwrap())
        .await;
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut stream = r.bytes_stream();

    let (_agent, auth) = SimAgent::enroll(&server.ws_url, &code, &new_device_id()).await;
    let id = auth["agent_id"].as_str().unwrap();
    let cmd = server
        .post(
            &format!("/api/agents/{id}/command"),
            json!({"command_type": "shell", "command": "uptime"}),
        )
        .await;

    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !(seen.contains("event: agent_status") && seen.contains("\"status\":\"running\"")) {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!("stream ended or timed out: {other:?}; seen: {seen}"),
        }
    }
    assert!(seen.contains(&format!("\"agent_id\":\"{id}\"")), "{seen}");
    assert!(seen.contains("\"online\":true"), "{seen}");
    assert!(seen.contains("event: command_updated"), "{seen}");
    assert!(seen.contains(cmd["id"].as_str().unwrap()), "{seen}");
}

on_both_databases!(live_events_stream);
