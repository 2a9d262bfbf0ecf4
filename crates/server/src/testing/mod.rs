//! A real server for tests: listens on 127.0.0.1 (port 0 the first time), on a fresh
//! database (a SQLite file in a temp folder, or a UUID-named PostgreSQL database), with an
//! admin user signed in. Used by this crate's tests and by the agent's and dashboard's.

pub mod receivers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestDb {
    Sqlite,
    Postgres,
}

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "correct horse battery";

/// Where the test PostgreSQL server is: `GURURMM_TEST_POSTGRES_URL`, default the local one.
pub fn postgres_base_url() -> String {
    std::env::var("GURURMM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Creates an empty PostgreSQL database named by a UUID; returns its URL.
pub async fn fresh_postgres_database() -> String {
    use sqlx::Connection;
    let base = postgres_base_url();
    let name = format!("gururmm_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL must be running for the tests ({base}): {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let _ = conn.close().await;
    match base.rfind('/') {
        Some(slash) if base[..slash].contains("://") && slash > base.find("://").unwrap() + 2 => {
            format!("{}/{}", &base[..slash], name)
        }
        _ => format!("{base}/{name}"),
    }
}

/// Rows in the `metrics` table, read straight from the database at `url` (the server may
/// still be writing its batches).
pub async fn count_metrics(url: &str) -> i64 {
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .expect("connect to the server's database");
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM metrics")
        .fetch_one(&pool)
        .await
        .expect("count metrics");
    pool.close().await;
    n
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub base_url: String,
    pub ws_url: String,
    /// The admin's JWT.
    pub token: String,
    pub client: reqwest::Client,
    pub config: Config,
    pub db: TestDb,
    /// Shared by the nodes of one cluster (they share the JWT secret and the two-factor key).
    _data: std::sync::Arc<tempfile::TempDir>,
    state: std::sync::Arc<std::sync::Mutex<Option<crate::state::AppState>>>,
    running: Option<(oneshot::Sender<()>, JoinHandle<anyhow::Result<()>>)>,
}

impl TestServer {
    /// Settings tuned for tests: short sweeps, a short auth timeout.
    pub async fn start(db: TestDb) -> TestServer {
        Self::start_with(db, |_| {}).await
    }

    pub async fn start_with(db: TestDb, adjust: impl FnOnce(&mut Config)) -> TestServer {
        let data = tempfile::tempdir().expect("temp dir");
        let database_url = match db {
            TestDb::Sqlite => format!("sqlite://{}", data.path().join("test.db").display()),
            TestDb::Postgres => fresh_postgres_database().await,
        };
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data.path().to_owned(),
            database_url,
            dashboard_dir: Some(PathBuf::from("/nonexistent-dashboard")),
            auth_timeout_seconds: 2,
            sweep_interval_seconds: 1,
            command_grace_seconds: 1,
            ..Config::default()
        };
        adjust(&mut config);
        config.validate().expect("test config is valid");

        // The admin is created the way an operator does it: straight into the database.
        let store = crate::db::Store::connect(&config.effective_database_url())
            .await
            .expect("connect");
        store.migrate().await.expect("migrate");
        let hash = crate::auth::hash_password(ADMIN_PASSWORD).unwrap();
        store
            .create_user(
                ADMIN_EMAIL,
                &hash,
                crate::auth::Role::Admin,
                crate::db::Actor::SYSTEM,
            )
            .await
            .expect("admin");
        store.close().await;

        let mut server = TestServer {
            addr: config.listen,
            base_url: String::new(),
            ws_url: String::new(),
            token: String::new(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            config,
            db,
            _data: std::sync::Arc::new(data),
            state: Default::default(),
            running: None,
        };
        server.launch().await;
        server.token = server
            .login(ADMIN_EMAIL, ADMIN_PASSWORD)
            .await
            .expect("admin login");
        server
    }

    async fn launch(&mut self) {
        // Rebinding the same port after a restart may need a moment while the old socket closes.
        let mut listener = None;
        for _ in 0..50 {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => {
                    listener = Some(l);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let listener = listener.expect("bind test server");
        self.addr = listener.local_addr().unwrap();
        self.base_url = format!("http://{}", self.addr);
        self.ws_url = format!("ws://{}/ws", self.addr);
        let (tx, rx) = oneshot::channel::<()>();
        let config = self.config.clone();
        let slot = self.state.clone();
        let handle = tokio::spawn(crate::launch_observed(
            config,
            listener,
            async move {
                let _ = rx.await;
            },
            move |state| *slot.lock().expect("state slot") = Some(state.clone()),
        ));
        // Ready when health answers.
        for _ in 0..100 {
            if let Ok(r) = self
                .client
                .get(format!("{}/api/health", self.base_url))
                .send()
                .await
            {
                if r.status().is_success() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.running = Some((tx, handle));
    }

    /// Another server node on the same database and data folder (so the same JWT secret and
    /// two-factor key), on its own port: a cluster in one test process.
    pub async fn another_node(&self) -> TestServer {
        let mut config = self.config.clone();
        config.listen = "127.0.0.1:0".parse().unwrap();
        let mut node = TestServer {
            addr: config.listen,
            base_url: String::new(),
            ws_url: String::new(),
            token: self.token.clone(),
            client: self.client.clone(),
            config,
            db: self.db,
            _data: self._data.clone(),
            state: Default::default(),
            running: None,
        };
        node.launch().await;
        node
    }

    /// Stops the server (agent sockets are closed) and keeps the database.
    pub async fn stop(&mut self) {
        if let Some((tx, handle)) = self.running.take() {
            let _ = tx.send(());
            match tokio::time::timeout(Duration::from_secs(15), handle).await {
                Ok(Ok(Ok(()))) => {}
                other => panic!("test server did not stop cleanly: {other:?}"),
            }
        }
    }

    /// Stops and starts again on the same port and the same database.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.launch().await;
    }

    /// The running server's state (counters tests read).
    pub fn state(&self) -> crate::state::AppState {
        self.state
            .lock()
            .expect("state slot")
            .clone()
            .expect("the server is running")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    pub async fn login(&self, email: &str, password: &str) -> Result<String, (u16, Value)> {
        let r = self
            .client
            .post(self.url("/api/auth/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .expect("login request");
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if status == 200 {
            Ok(body["token"].as_str().expect("token").to_owned())
        } else {
            Err((status, body))
        }
    }

    /// An authenticated request; returns the status and the JSON body (Null if none).
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `GET /api/events?ticket=` (the response stays open while it is kept).
    pub async fn events_with_ticket(&self, ticket: &str) -> reqwest::Response {
        self.client
            .get(self.url(&format!("/api/events?ticket={ticket}")))
            .send()
            .await
            .expect("events request")
    }

    /// Authenticated GET; panics unless 2xx.
    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.request(reqwest::Method::GET, path, None).await;
        assert!((200..300).contains(&status), "GET {path}: {status} {body}");
        body
    }

    /// Authenticated POST; panics unless 2xx.
    pub async fn post(&self, path: &str, body: Value) -> Value {
        let (status, resp) = self.request(reqwest::Method::POST, path, Some(body)).await;
        assert!((200..300).contains(&status), "POST {path}: {status} {resp}");
        resp
    }

    /// A client and a site; returns (client_id, site_id, site_code).
    pub async fn create_site(&self) -> (String, String, String) {
        let client = self
            .post("/api/clients", json!({"name": "Test Client"}))
            .await;
        let client_id = client["id"].as_str().unwrap().to_owned();
        let site = self
            .post(
                "/api/sites",
                json!({"client_id": client_id, "name": "Main Office"}),
            )
            .await;
        (
            client_id,
            site["id"].as_str().unwrap().to_owned(),
            site["site_code"].as_str().unwrap().to_owned(),
        )
    }

    /// Polls `GET path` until `check` accepts the body, or panics after `timeout`.
    pub async fn wait_for(
        &self,
        path: &str,
        timeout: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let body = self.get(path).await;
            if check(&body) {
                return body;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("timed out waiting on {path}; last body: {body}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some((tx, _)) = self.running.take() {
            let _ = tx.send(());
        }
    }
}
