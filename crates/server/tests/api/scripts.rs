//! The script library: saving, versions, checks, roles, search, export and import, and the
//! starter scripts a new installation gets.

use gururmm_server::testing::{TestDb, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

use crate::on_both_databases;

fn disk_report(body: &str) -> Value {
    json!({
        "name": "Disk report",
        "description": "Free space",
        "category": "Maintenance",
        "command_type": "shell",
        "body": body,
        "default_timeout_seconds": 60,
        "target_os": "linux",
        "parameters": [
            {"name": "MOUNT", "label": "Mount point", "kind": "string", "required": true},
            {"name": "LEVEL", "kind": "choice", "choices": ["short", "long"], "default": "short"}
        ]
    })
}

/// Each edit is a new version; every version stays readable with who saved it; each change
/// has its audit row; names are unique; bad definitions are refused naming the field.
async fn edits_are_versions(db: TestDb) {
    let server = TestServer::start(db).await;
    let created = server
        .post("/api/scripts", disk_report("df -h \"$MOUNT\""))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["version"], 1);
    assert_eq!(created["content"]["parameters"][1]["default"], "short");
    let (status, edited) = server
        .request(
            Method::PUT,
            &format!("/api/scripts/{id}"),
            Some(disk_report("df -h -- \"$MOUNT\"")),
        )
        .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["version"], 2);
    assert_eq!(edited["content"]["body"], "df -h -- \"$MOUNT\"");
    let versions = server.get(&format!("/api/scripts/{id}/versions")).await;
    let versions = versions.as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["version"], 2);
    assert_eq!(versions[1]["content"]["body"], "df -h \"$MOUNT\"");
    assert_eq!(versions[1]["created_by"], "admin@example.com");
    let store = server.state().store.clone();
    // The six starter scripts were created too (by the server).
    assert_eq!(store.audit_count("script.create").await.unwrap(), 7);
    assert_eq!(store.audit_count("script.update").await.unwrap(), 1);

    let (status, _) = server
        .request(Method::POST, "/api/scripts", Some(disk_report("true")))
        .await;
    assert_eq!(status, 409, "the name is taken");
    for (change, field) in [
        (json!({"body": " "}), "body"),
        (json!({"name": ""}), "name"),
        (
            json!({"default_timeout_seconds": 0}),
            "default_timeout_seconds",
        ),
        (
            json!({"parameters": [{"name": "PATH", "kind": "string"}]}),
            "parameters",
        ),
        (
            json!({"parameters": [{"name": "x", "kind": "choice"}]}),
            "parameters",
        ),
        (
            json!({"parameters": [{"name": "n", "kind": "number", "default": "lots"}]}),
            "parameters",
        ),
    ] {
        let mut body = disk_report("true");
        body["name"] = json!("Another");
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, answer) = server
            .request(Method::POST, "/api/scripts", Some(body))
            .await;
        assert_eq!(status, 400, "{change}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().starts_with(field),
            "{change}: {answer}"
        );
    }

    let (status, _) = server
        .request(Method::DELETE, &format!("/api/scripts/{id}"), None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(store.audit_count("script.delete").await.unwrap(), 1);
    let (status, _) = server
        .request(Method::GET, &format!("/api/scripts/{id}/versions"), None)
        .await;
    assert_eq!(status, 404);
}

/// A new installation has the starter scripts; search and category filter; an export
/// imported elsewhere gives the same library, and importing again changes nothing.
async fn starter_scripts_search_export_and_import(db: TestDb) {
    let server = TestServer::start(db).await;
    let all = server.get("/api/scripts").await;
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for expected in [
        "Disk usage report (Linux)",
        "Disk cleanup report (Windows)",
        "Pending reboot check (Windows)",
        "Pending reboot check (Linux)",
        "List services (Windows)",
        "List services (Linux)",
    ] {
        assert!(names.contains(&expected), "{names:?}");
    }
    let found = server.get("/api/scripts?search=REBOOT").await;
    assert_eq!(found.as_array().unwrap().len(), 2);
    let services = server.get("/api/scripts?category=Services").await;
    assert_eq!(services.as_array().unwrap().len(), 2);

    server
        .post("/api/scripts", disk_report("df -h \"$MOUNT\""))
        .await;
    let export = server.get("/api/scripts/export").await;
    assert_eq!(export["format"], "gururmm-scripts/1");
    let count = export["scripts"].as_array().unwrap().len();

    let other = TestServer::start(db).await;
    // Its starter scripts are the same: only the new one is created.
    let imported = other.post("/api/scripts/import", export.clone()).await;
    assert_eq!(imported["created"], json!(["Disk report"]), "{imported}");
    assert_eq!(imported["unchanged"].as_array().unwrap().len(), count - 1);
    assert_eq!(other.get("/api/scripts/export").await, export);
    // A changed body comes in as the next version.
    let mut changed = export.clone();
    for s in changed["scripts"].as_array_mut().unwrap() {
        if s["name"] == "Disk report" {
            s["body"] = json!("df -h");
        }
    }
    let imported = other.post("/api/scripts/import", changed).await;
    assert_eq!(imported["updated"], json!(["Disk report"]));
    let mine = other.get("/api/scripts?search=Disk%20report").await;
    let mine = mine
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "Disk report")
        .unwrap()
        .clone();
    assert_eq!(mine["version"], 2);
    // A bad script anywhere in the file refuses the whole file, naming it.
    let mut bad = export;
    bad["scripts"][2]["body"] = json!("");
    let (status, answer) = other
        .request(Method::POST, "/api/scripts/import", Some(bad))
        .await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("scripts[2].body"),
        "{answer}"
    );
}

/// Viewers read the library; technicians change it.
async fn viewers_read_technicians_change(db: TestDb) {
    let server = TestServer::start(db).await;
    server
        .post(
            "/api/users",
            json!({"email": "viewer@example.com", "password": "viewer-pass-1", "role": "viewer"}),
        )
        .await;
    let token = server
        .login("viewer@example.com", "viewer-pass-1")
        .await
        .unwrap();
    let status = |method: Method, path: &str, body: Option<Value>| {
        let mut req = server
            .client
            .request(method, server.url(path))
            .bearer_auth(&token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(Method::GET, "/api/scripts", None).await, 200);
    assert_eq!(status(Method::GET, "/api/scripts/export", None).await, 200);
    assert_eq!(
        status(Method::POST, "/api/scripts", Some(disk_report("true"))).await,
        403
    );
    let export = server.get("/api/scripts/export").await;
    assert_eq!(
        status(Method::POST, "/api/scripts/import", Some(export)).await,
        403
    );
}

on_both_databases!(
    edits_are_versions,
    starter_scripts_search_export_and_import,
    viewers_read_technicians_change,
);
