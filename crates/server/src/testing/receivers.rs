//! Real receivers for notification tests, on 127.0.0.1: an HTTP endpoint (webhook, Slack,
//! Teams) that records what it gets and can fail or hang on purpose, and a minimal SMTP
//! server that accepts every message.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: String,
}

impl Received {
    /// Whether `X-GuruRMM-Signature` is the HMAC-SHA256 of `"<timestamp>.<body>"` under `secret`.
    pub fn signed_with(&self, secret: &str) -> bool {
        let (Some(timestamp), Some(signature)) = (
            self.headers.get("x-gururmm-timestamp"),
            self.headers.get("x-gururmm-signature"),
        ) else {
            return false;
        };
        let (Ok(timestamp), Ok(signature)) = (timestamp.to_str(), signature.to_str()) else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key size");
        mac.update(format!("{timestamp}.{}", self.body).as_bytes());
        signature == format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }
}

/// An HTTP receiver that answers 500 to its first `failures` requests and 200 after; with
/// `hang`, it never answers at all.
pub struct WebhookReceiver {
    pub url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl WebhookReceiver {
    pub async fn start(failures: usize, hang: bool) -> WebhookReceiver {
        let got: Arc<Mutex<Vec<Received>>> = Default::default();
        let seen = Arc::clone(&got);
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: String| {
            let seen = Arc::clone(&seen);
            async move {
                let n = {
                    let mut seen = seen.lock().unwrap();
                    seen.push(Received { headers, body });
                    seen.len()
                };
                if hang {
                    std::future::pending::<()>().await;
                }
                if n <= failures {
                    (StatusCode::INTERNAL_SERVER_ERROR, "try later")
                } else {
                    (StatusCode::OK, "thanks")
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        WebhookReceiver { url, got }
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

/// A minimal SMTP server: accepts every message and hands over its DATA. Answers the port.
pub async fn smtp_server() -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                if write.write_all(b"220 test ESMTP\r\n").await.is_err() {
                    return;
                }
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 test\r\n",
                        "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
                        "DATA" => {
                            if write.write_all(b"354 go ahead\r\n").await.is_err() {
                                return;
                            }
                            let mut data = String::new();
                            while let Ok(Some(line)) = lines.next_line().await {
                                if line == "." {
                                    break;
                                }
                                data.push_str(&line);
                                data.push('\n');
                            }
                            let _ = tx.send(data);
                            b"250 queued as 1\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            break;
                        }
                        _ => b"502 not here\r\n",
                    };
                    if write.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, rx)
}
