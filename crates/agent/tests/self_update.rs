//! Self-update of the real agent binary, against an in-test WebSocket peer that sends `update`
//! and a tiny HTTP server that serves the build (good, tampered, missing, cut halfway).
//!
//! The agent runs from a copy in its test folder, so the copy is what it replaces. The tests
//! that install a real second build need the builds `scripts/test.sh` makes (the agent built
//! with `GURURMM_AGENT_VERSION=99.0.0`, and once more with `GURURMM_AGENT_EXIT_AT_START=1`),
//! found through `GURURMM_UPDATE_BUILDS`; without them they say so loudly and pass.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{Agent, AGENT_BIN};
use futures_util::SinkExt;
use gururmm_protocol::{
    fixture, release, update_state, AgentMessage, Auth, ServerMessage, Update, UpdateStatus,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

use common::peer::{accept_auth, next_message_within, send, Ws};

const OLD_VERSION: &str = env!("CARGO_PKG_VERSION");

/// How the test HTTP server answers a path.
#[derive(Clone)]
enum Served {
    Whole(Arc<Vec<u8>>),
    /// Announces the whole length, sends half, closes.
    CutHalfway(Arc<Vec<u8>>),
    /// The whole file in 20 pieces, `Duration` apart.
    Slowly(Arc<Vec<u8>>, Duration),
}

/// Serves `routes` on 127.0.0.1; anything else is a 404. Honours `Range: bytes=N-`.
async fn file_server(routes: HashMap<String, Served>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            let routes = routes.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let from: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("range: bytes=")
                            .map(|r| r.trim_end_matches('-').trim().parse().unwrap_or(0))
                    })
                    .unwrap_or(0);
                let mut pause = Duration::ZERO;
                let (status, body, cut) = match routes.get(&path) {
                    None => ("404 Not Found", Vec::new(), false),
                    Some(Served::Slowly(b, between)) => {
                        pause = *between;
                        ("200 OK", b.to_vec(), false)
                    }
                    Some(Served::Whole(b)) => (
                        if from > 0 {
                            "206 Partial Content"
                        } else {
                            "200 OK"
                        },
                        b[from.min(b.len())..].to_vec(),
                        false,
                    ),
                    Some(Served::CutHalfway(b)) => ("200 OK", b.to_vec(), true),
                };
                let header = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tcp.write_all(header.as_bytes()).await;
                let send = if cut {
                    &body[..body.len() / 2]
                } else {
                    &body[..]
                };
                if pause.is_zero() {
                    let _ = tcp.write_all(send).await;
                } else {
                    for piece in send.chunks(send.len().div_ceil(20).max(1)) {
                        tokio::time::sleep(pause).await;
                        if tcp.write_all(piece).await.is_err() {
                            return;
                        }
                    }
                }
                let _ = tcp.flush().await;
            });
        }
    });
    base
}

async fn next_message(ws: &mut Ws) -> AgentMessage {
    next_message_within(ws, Duration::from_secs(60)).await
}

/// Reads the agent's `auth` and accepts it, naming `release_key` as the release public key.
async fn authenticate(ws: &mut Ws, release_key: Option<&str>) -> Auth {
    accept_auth(ws, None, release_key).await
}

/// The next `update_status`, skipping everything else.
async fn next_status(ws: &mut Ws) -> UpdateStatus {
    loop {
        if let AgentMessage::UpdateStatus(s) = next_message(ws).await {
            return s;
        }
    }
}

/// The agent still works: a shell command sent now is answered.
async fn answers_a_command(ws: &mut Ws) {
    ws.send(Message::text(fixture("command_shell")))
        .await
        .unwrap();
    loop {
        if let AgentMessage::CommandResult(r) = next_message(ws).await {
            assert_eq!((r.exit_code, r.stdout.as_str()), (0, "hello\n"));
            return;
        }
    }
}

/// An agent running from its own copy of `AGENT_BIN`, pointed at a new WebSocket peer.
struct Rig {
    listener: TcpListener,
    agent: Agent,
    exe: PathBuf,
    /// (private, public) release key, base64.
    key: (String, String),
}

impl Rig {
    async fn start() -> Rig {
        Rig::start_with_key(release::generate_key_pair().unwrap()).await
    }

    /// `key` is made before the agent starts, so an update for a large build can be signed
    /// (hashing a real build takes a while in a debug test) before the agent is waiting.
    async fn start_with_key(key: (String, String)) -> Rig {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/ws", listener.local_addr().unwrap());
        let mut agent = Agent::new(
            &url,
            "grmm_presetkey",
            "[update]\nconfirm_timeout_seconds = 60\ndownload_timeout_seconds = 60\n",
        );
        let bin = agent.dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let exe = bin.join("gururmm-agent");
        std::fs::copy(AGENT_BIN, &exe).unwrap();
        agent.start_exe(&exe);
        Rig {
            listener,
            agent,
            exe,
            key,
        }
    }

    /// An `update` to `version` for `bytes` at `url`, signed with `key`.
    fn update(&self, version: &str, url: &str, bytes: &[u8], key: &str) -> Update {
        update_for(version, url, bytes, key)
    }
}

fn update_for(version: &str, url: &str, bytes: &[u8], key: &str) -> Update {
    let digest = release::digest(bytes);
    let key = release::parse_private_key(key).unwrap();
    Update {
        version: version.into(),
        download_url: url.into(),
        checksum: release::hex(&digest),
        signature: Some(release::sign(&key, &digest)),
        update_id: Some("upd-1".into()),
        size: Some(bytes.len() as u64),
        allow_downgrade: false,
    }
}

impl Rig {
    fn previous(&self) -> PathBuf {
        let mut name = self.exe.file_name().unwrap().to_os_string();
        name.push(".previous");
        self.exe.with_file_name(name)
    }
}

fn update_builds() -> Option<(PathBuf, PathBuf)> {
    let dir = std::env::var_os("GURURMM_UPDATE_BUILDS").map(PathBuf::from);
    let found = dir.and_then(|d| {
        let new = d.join("gururmm-agent-99.0.0");
        let exits = d.join("gururmm-agent-exit-at-start");
        (new.exists() && exits.exists()).then_some((new, exits))
    });
    if found.is_none() {
        eprintln!(
            "\n\n!!! SKIPPED: GURURMM_UPDATE_BUILDS does not hold the second agent builds \
             (gururmm-agent-99.0.0, gururmm-agent-exit-at-start). Run ./scripts/test.sh, which \
             builds them. !!!\n\n"
        );
    }
    found
}

fn same_file(a: &Path, b: &Path) -> bool {
    std::fs::read(a).unwrap() == std::fs::read(b).unwrap()
}

/// A build that is refused for `reason`: reported failed, the agent keeps running the same
/// binary on the same connection.
async fn refused(
    update_for: impl FnOnce(&Rig, &str) -> Update,
    routes: HashMap<String, Served>,
    reason: &str,
) {
    let base = file_server(routes).await;
    let rig = Rig::start().await;
    let mut ws = common::accept_ws(&rig.listener, 15).await;
    let auth = authenticate(&mut ws, Some(&rig.key.1)).await;
    assert_eq!(auth.version, OLD_VERSION);
    let u = update_for(&rig, &base);
    send(&mut ws, ServerMessage::Update(u)).await;
    let first = next_status(&mut ws).await;
    let last = if first.state == update_state::DOWNLOADING {
        next_status(&mut ws).await
    } else {
        first
    };
    assert_eq!(last.state, update_state::FAILED, "{last:?}");
    assert_eq!(last.update_id.as_deref(), Some("upd-1"));
    let why = last.reason.unwrap_or_default();
    assert!(
        why.contains(reason),
        "reason {why:?} should name {reason:?}"
    );
    assert!(why.is_ascii());
    answers_a_command(&mut ws).await;
    assert!(
        same_file(&rig.exe, Path::new(AGENT_BIN)),
        "the binary was replaced"
    );
    assert!(!rig.previous().exists());
    assert!(rig.agent.log_text().is_ascii());
}

fn build_bytes() -> Arc<Vec<u8>> {
    Arc::new((0..300_000u32).map(|i| (i * 7 % 251) as u8).collect())
}

#[tokio::test]
async fn a_tampered_build_is_refused() {
    let bytes = build_bytes();
    let mut tampered = bytes.to_vec();
    tampered[1000] ^= 1;
    let routes = HashMap::from([("/b".to_owned(), Served::Whole(Arc::new(tampered)))]);
    refused(
        |rig, base| rig.update("99.0.0", &format!("{base}/b"), &bytes, &rig.key.0),
        routes,
        "checksum mismatch",
    )
    .await;
}

#[tokio::test]
async fn a_build_signed_by_another_key_is_refused() {
    let bytes = build_bytes();
    let routes = HashMap::from([("/b".to_owned(), Served::Whole(bytes.clone()))]);
    let (other, _) = release::generate_key_pair().unwrap();
    refused(
        |rig, base| rig.update("99.0.0", &format!("{base}/b"), &bytes, &other),
        routes,
        "signature refused",
    )
    .await;
}

#[tokio::test]
async fn a_missing_build_is_refused() {
    let bytes = build_bytes();
    refused(
        |rig, base| rig.update("99.0.0", &format!("{base}/gone"), &bytes, &rig.key.0),
        HashMap::new(),
        "404",
    )
    .await;
}

#[tokio::test]
async fn a_download_cut_halfway_is_refused() {
    let bytes = build_bytes();
    let routes = HashMap::from([("/b".to_owned(), Served::CutHalfway(bytes.clone()))]);
    refused(
        |rig, base| rig.update("99.0.0", &format!("{base}/b"), &bytes, &rig.key.0),
        routes,
        "cut off",
    )
    .await;
}

/// A full disk: the download is written to a file the kernel answers "no space left on device"
/// for (`/dev/full` in place of the part file). Refused, nothing replaced.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_full_disk_is_refused() {
    let bytes = build_bytes();
    let routes = HashMap::from([("/b".to_owned(), Served::Whole(bytes.clone()))]);
    refused(
        |rig, base| {
            let u = rig.update("99.0.0", &format!("{base}/b"), &bytes, &rig.key.0);
            let dir = rig.agent.state_dir().join("update");
            std::fs::create_dir_all(&dir).unwrap();
            std::os::unix::fs::symlink("/dev/full", dir.join(format!("{}.part", u.checksum)))
                .unwrap();
            u
        },
        routes,
        "No space left on device",
    )
    .await;
}

/// The download runs beside the session: a command sent while a slow download is under way is
/// answered before the download ends (here with a checksum mismatch, so nothing is replaced).
#[tokio::test]
async fn a_slow_download_does_not_hold_up_the_session() {
    let bytes = build_bytes();
    let mut tampered = bytes.to_vec();
    tampered[1000] ^= 1;
    let routes = HashMap::from([(
        "/slow".to_owned(),
        Served::Slowly(Arc::new(tampered), Duration::from_millis(200)),
    )]);
    let base = file_server(routes).await;
    let rig = Rig::start().await;
    let mut ws = common::accept_ws(&rig.listener, 15).await;
    authenticate(&mut ws, Some(&rig.key.1)).await;
    let u = rig.update("99.0.0", &format!("{base}/slow"), &bytes, &rig.key.0);
    send(&mut ws, ServerMessage::Update(u)).await;
    assert_eq!(next_status(&mut ws).await.state, update_state::DOWNLOADING);
    ws.send(Message::text(fixture("command_shell")))
        .await
        .unwrap();
    loop {
        match next_message(&mut ws).await {
            AgentMessage::CommandResult(r) => {
                assert_eq!(r.stdout, "hello\n");
                break;
            }
            AgentMessage::UpdateStatus(s) => {
                panic!("the download ended ({s:?}) before the command was answered")
            }
            _ => {}
        }
    }
    let last = next_status(&mut ws).await;
    assert_eq!(last.state, update_state::FAILED, "{last:?}");
    assert!(last
        .reason
        .unwrap_or_default()
        .contains("checksum mismatch"));
    assert!(same_file(&rig.exe, Path::new(AGENT_BIN)));
}

#[tokio::test]
async fn an_older_version_is_refused_without_allow_downgrade() {
    let bytes = build_bytes();
    let routes = HashMap::from([("/b".to_owned(), Served::Whole(bytes.clone()))]);
    refused(
        |rig, base| rig.update("0.0.1", &format!("{base}/b"), &bytes, &rig.key.0),
        routes,
        "not newer",
    )
    .await;
}

#[tokio::test]
async fn the_old_build_updates_itself_to_the_new_one() {
    let Some((new_build, _)) = update_builds() else {
        return;
    };
    let bytes = Arc::new(std::fs::read(&new_build).unwrap());
    let base = file_server(HashMap::from([(
        "/new".to_owned(),
        Served::Whole(bytes.clone()),
    )]))
    .await;
    let key = release::generate_key_pair().unwrap();
    let u = update_for("99.0.0", &format!("{base}/new"), &bytes, &key.0);
    let rig = Rig::start_with_key(key).await;
    let pid = rig.agent.pid();
    let mut ws = common::accept_ws(&rig.listener, 15).await;
    let auth = authenticate(&mut ws, Some(&rig.key.1)).await;
    assert_eq!(
        (auth.version.as_str(), auth.previous_version),
        (OLD_VERSION, None)
    );
    // The key from the first auth_response is kept, owner-only.
    let kept = rig.agent.state_dir().join("release_public_key");
    common::wait_for(10, "the kept release key", || async {
        std::fs::read_to_string(&kept).ok()
    })
    .await;
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&kept).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    send(&mut ws, ServerMessage::Update(u)).await;
    assert_eq!(next_status(&mut ws).await.state, update_state::DOWNLOADING);
    assert_eq!(next_status(&mut ws).await.state, update_state::INSTALLED);

    // The new build on trial connects with previous_version, then the restarted new build.
    for _ in 0..2 {
        let mut ws = common::accept_ws(&rig.listener, 60).await;
        let auth = authenticate(&mut ws, Some(&rig.key.1)).await;
        assert_eq!(auth.version, "99.0.0");
        assert_eq!(auth.previous_version.as_deref(), Some(OLD_VERSION));
        drop(ws);
    }
    // Once connected it stops naming the previous version, and keeps working.
    let mut ws = common::accept_ws(&rig.listener, 30).await;
    let auth = authenticate(&mut ws, Some(&rig.key.1)).await;
    assert_eq!(
        (auth.version.as_str(), auth.previous_version),
        ("99.0.0", None)
    );
    answers_a_command(&mut ws).await;
    // Foreground on Unix: the same process, now running the new binary.
    assert_eq!(rig.agent.pid(), pid);
    assert!(common::pid_alive(pid));
    assert!(same_file(&rig.exe, &new_build));
    assert!(same_file(&rig.previous(), Path::new(AGENT_BIN)));
    assert!(rig.agent.log_text().is_ascii());
}

#[tokio::test]
async fn a_build_that_exits_at_once_is_rolled_back_and_reported() {
    let Some((_, exits)) = update_builds() else {
        return;
    };
    let bytes = Arc::new(std::fs::read(&exits).unwrap());
    let base = file_server(HashMap::from([(
        "/new".to_owned(),
        Served::Whole(bytes.clone()),
    )]))
    .await;
    let key = release::generate_key_pair().unwrap();
    let u = update_for("99.0.0", &format!("{base}/new"), &bytes, &key.0);
    let rig = Rig::start_with_key(key).await;
    let mut ws = common::accept_ws(&rig.listener, 15).await;
    authenticate(&mut ws, Some(&rig.key.1)).await;
    send(&mut ws, ServerMessage::Update(u)).await;
    assert_eq!(next_status(&mut ws).await.state, update_state::DOWNLOADING);
    assert_eq!(next_status(&mut ws).await.state, update_state::INSTALLED);

    // The old build comes back and reports the rollback.
    let mut ws = common::accept_ws(&rig.listener, 60).await;
    let auth = authenticate(&mut ws, Some(&rig.key.1)).await;
    assert_eq!(
        (auth.version.as_str(), auth.previous_version),
        (OLD_VERSION, None)
    );
    let s = next_status(&mut ws).await;
    assert_eq!(s.state, update_state::ROLLED_BACK, "{s:?}");
    assert_eq!(s.update_id.as_deref(), Some("upd-1"));
    let why = s.reason.unwrap_or_default();
    assert!(why.contains("exited"), "{why}");
    assert!(why.is_ascii());
    answers_a_command(&mut ws).await;
    assert!(same_file(&rig.exe, Path::new(AGENT_BIN)));
    assert!(rig
        .agent
        .state_dir()
        .join("update_reports")
        .read_dir()
        .unwrap()
        .next()
        .is_none());
    assert!(rig.agent.log_text().is_ascii());
}

#[tokio::test]
async fn no_trusted_key_means_no_update() {
    let bytes = build_bytes();
    let base = file_server(HashMap::from([(
        "/b".to_owned(),
        Served::Whole(bytes.clone()),
    )]))
    .await;
    let rig = Rig::start().await;
    let mut ws = common::accept_ws(&rig.listener, 15).await;
    authenticate(&mut ws, None).await;
    let u = rig.update("99.0.0", &format!("{base}/b"), &bytes, &rig.key.0);
    send(&mut ws, ServerMessage::Update(u)).await;
    let s = next_status(&mut ws).await;
    assert_eq!(s.state, update_state::FAILED);
    assert!(s.reason.unwrap().contains("no release public key"));
    // A later key offer is kept; a different one after it is ignored.
    drop(ws);
    let mut ws = common::accept_ws(&rig.listener, 15).await;
    authenticate(&mut ws, Some(&rig.key.1)).await;
    answers_a_command(&mut ws).await;
    drop(ws);
    let (_, other) = release::generate_key_pair().unwrap();
    let mut ws = common::accept_ws(&rig.listener, 15).await;
    authenticate(&mut ws, Some(&other)).await;
    answers_a_command(&mut ws).await;
    let kept = std::fs::read_to_string(rig.agent.state_dir().join("release_public_key")).unwrap();
    assert_eq!(kept, rig.key.1);
}

/// The whole way, with the real server: a release key, the 99.0.0 build published with
/// `release add`, a rollout to everyone. The old agent binary enrolls, is sent the update on
/// its `auth`, downloads the build from the server's `/downloads/`, checks it, installs it on
/// trial, restarts into it and reconnects naming the previous version; the server marks the
/// update completed and lists the agent at 99.0.0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_on_the_real_server_updates_the_real_agent() {
    use gururmm_server::release::{self as server_release, AddRelease};
    use gururmm_server::testing::{TestDb, TestServer};
    use serde_json::json;

    let Some((new_build, _)) = update_builds() else {
        return;
    };
    let keys = tempfile::tempdir().unwrap();
    let (key_file, public_file, _) =
        server_release::keygen(&keys.path().join("release")).expect("release keygen");
    let server = TestServer::start_with(TestDb::Sqlite, |c| {
        c.release_public_key_file = Some(public_file);
    })
    .await;
    server_release::add(
        &server.config,
        AddRelease {
            file: &new_build,
            version: "99.0.0",
            os: "linux",
            arch: std::env::consts::ARCH,
            signature: None,
            key_file: Some(&key_file),
        },
    )
    .await
    .expect("release add");
    let (status, body) = server
        .request(
            reqwest::Method::PUT,
            &format!("/api/rollouts/linux/{}", std::env::consts::ARCH),
            Some(json!({"version": "99.0.0", "scope": "all"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, _, code) = server.create_site().await;

    let mut agent = Agent::new(
        &server.ws_url,
        &code,
        "[update]\nconfirm_timeout_seconds = 60\ndownload_timeout_seconds = 120\n",
    );
    let bin = agent.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let exe = bin.join("gururmm-agent");
    std::fs::copy(AGENT_BIN, &exe).unwrap();
    agent.start_exe(&exe);

    let agents = server
        .wait_for("/api/agents", Duration::from_secs(30), |v| {
            v.as_array().is_some_and(|a| a.len() == 1)
        })
        .await;
    let agent_id = agents[0]["id"].as_str().unwrap().to_owned();
    let updates = server
        .wait_for(
            &format!("/api/agents/{agent_id}/updates"),
            Duration::from_secs(120),
            |v| v[0]["status"] == json!("completed"),
        )
        .await;
    assert_eq!(updates[0]["to_version"], json!("99.0.0"), "{updates}");
    assert_eq!(updates[0]["from_version"], json!(OLD_VERSION), "{updates}");
    server
        .wait_for(
            &format!("/api/agents/{agent_id}"),
            Duration::from_secs(30),
            |a| a["version"] == json!("99.0.0") && a["online"] == json!(true),
        )
        .await;
    assert!(same_file(&exe, &new_build), "the new build is in place");
    assert!(agent.log_text().is_ascii());
}
