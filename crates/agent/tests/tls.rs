//! wss:// (and https:// in legacy mode) with a private CA: the real agent binary trusts the CA
//! in `server.ca_file` (in addition to the system's roots), and refuses the same server
//! without it.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Agent;
use futures_util::StreamExt;
use gururmm_protocol::AgentMessage;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// A TLS WebSocket listener on 127.0.0.1 with a fresh self-signed certificate for
/// `localhost`; returns the listener, the acceptor and the certificate in PEM.
async fn tls_listener() -> (TcpListener, tokio_rustls::TlsAcceptor, String) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![ck.cert.der().clone()], key)
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    (
        listener,
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        ck.cert.pem(),
    )
}

/// The agent (test config) at `url`, trusting `ca_file` when given.
fn agent_at(url: &str, extra: &str, ca_file: Option<&std::path::Path>) -> Agent {
    let mut agent = Agent::new(url, "AMBER-RIVER-4821", extra);
    if let Some(ca) = ca_file {
        let path = agent.config_path();
        let text = std::fs::read_to_string(&path).unwrap().replacen(
            "api_key = \"AMBER-RIVER-4821\"\n",
            &format!(
                "api_key = \"AMBER-RIVER-4821\"\nca_file = \"{}\"\n",
                ca.display()
            ),
            1,
        );
        std::fs::write(&path, text).unwrap();
    }
    agent.start();
    agent
}

/// The CA certificate written to a PEM file (kept while the folder lives).
fn ca_file(pem: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, pem).unwrap();
    (dir, path)
}

async fn accept_tls(
    listener: &TcpListener,
    acceptor: &tokio_rustls::TlsAcceptor,
) -> std::io::Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
    let (tcp, _) = tokio::time::timeout(Duration::from_secs(15), listener.accept())
        .await
        .expect("the agent connects")
        .unwrap();
    acceptor.accept(tcp).await
}

#[tokio::test]
async fn wss_with_the_configured_ca_file() {
    let (listener, acceptor, pem) = tls_listener().await;
    let (_dir, ca) = ca_file(&pem);
    let port = listener.local_addr().unwrap().port();
    let _agent = agent_at(&format!("wss://localhost:{port}/ws"), "", Some(&ca));

    let tls = accept_tls(&listener, &acceptor)
        .await
        .expect("TLS handshake");
    let mut ws = tokio_tungstenite::accept_async(tls).await.unwrap();
    let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let Message::Text(text) = frame else {
        panic!("text frame expected");
    };
    assert!(matches!(
        AgentMessage::from_json(&text).unwrap(),
        AgentMessage::Auth(_)
    ));
}

#[tokio::test]
async fn wss_without_the_ca_file_refuses_an_unknown_certificate() {
    let (listener, acceptor, _pem) = tls_listener().await;
    let port = listener.local_addr().unwrap().port();
    let agent = agent_at(&format!("wss://localhost:{port}/ws"), "", None);
    // The agent connects and aborts the handshake; it tries again later and fails again.
    for _ in 0..2 {
        assert!(
            accept_tls(&listener, &acceptor).await.is_err(),
            "the agent accepted a certificate no trusted CA signed"
        );
    }
    let log = agent.log_text();
    assert!(log.contains("cannot connect"), "{log}");
}

#[tokio::test]
async fn legacy_https_trusts_the_configured_ca_file() {
    use tokio::io::AsyncReadExt;
    let (listener, acceptor, pem) = tls_listener().await;
    let (_dir, ca) = ca_file(&pem);
    let port = listener.local_addr().unwrap().port();
    let _agent = agent_at(
        &format!("https://localhost:{port}"),
        "[agent]\nmode = \"legacy\"\n",
        Some(&ca),
    );
    let mut tls = accept_tls(&listener, &acceptor)
        .await
        .expect("TLS handshake");
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "connection closed before a request");
        request.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&request);
    assert!(
        head.starts_with("POST /api/agent/register-legacy HTTP/1.1"),
        "{head}"
    );
}
