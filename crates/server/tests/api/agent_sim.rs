//! A stand-in agent that speaks raw JSON over a real WebSocket.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use gururmm_protocol::fixture;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct SimAgent {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Ids of the `result_ack`s received so far (`recv_json` sets them aside).
    pub acks: Vec<String>,
}

/// The `auth` fixture with this key and device id.
pub fn auth_frame(api_key: &str, device_id: &str) -> String {
    let mut auth: Value = serde_json::from_str(&fixture("auth")).unwrap();
    auth["payload"]["api_key"] = json!(api_key);
    auth["payload"]["device_id"] = json!(device_id);
    auth.to_string()
}

impl SimAgent {
    pub async fn connect(ws_url: &str) -> SimAgent {
        let (ws, _) = tokio_tungstenite::connect_async(ws_url)
            .await
            .expect("ws connect");
        SimAgent {
            ws,
            acks: Vec::new(),
        }
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("ws send");
    }

    pub async fn send(&mut self, v: &Value) {
        self.send_text(&v.to_string()).await
    }

    /// The next JSON text frame (pings skipped, result_acks noted in `acks`), or None if the
    /// socket closed or nothing came.
    pub async fn recv_json(&mut self, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()??;
            match msg {
                Ok(Message::Text(t)) => {
                    let v: Value = serde_json::from_str(&t).expect("server sends JSON");
                    if v["type"] == "ping" {
                        continue;
                    }
                    if v["type"] == "result_ack" {
                        self.acks
                            .push(v["payload"]["id"].as_str().unwrap_or_default().to_owned());
                        continue;
                    }
                    return Some(v);
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }

    /// Whether the server closes the socket within `within`.
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return true,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// Connects and authenticates; returns the agent and its auth_response payload.
    pub async fn enroll(ws_url: &str, api_key: &str, device_id: &str) -> (SimAgent, Value) {
        let mut agent = SimAgent::connect(ws_url).await;
        agent.send_text(&auth_frame(api_key, device_id)).await;
        let reply = agent
            .recv_json(Duration::from_secs(10))
            .await
            .expect("auth_response");
        assert_eq!(reply["type"], "auth_response", "{reply}");
        (agent, reply["payload"].clone())
    }

    /// Answers a `command` frame with a result built from the `command_result` fixture.
    pub async fn answer(&mut self, command_id: &str, exit_code: i64, stdout: &str) {
        let mut result: Value = serde_json::from_str(&fixture("command_result")).unwrap();
        result["payload"]["id"] = json!(command_id);
        result["payload"]["exit_code"] = json!(exit_code);
        result["payload"]["stdout"] = json!(stdout);
        self.send(&result).await;
    }
}

pub fn new_device_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
