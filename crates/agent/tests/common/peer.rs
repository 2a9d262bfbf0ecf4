//! A minimal in-test WebSocket peer for the real agent: speaks the protocol crate and nothing
//! else, so a test can send exactly the server messages it is about.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use gururmm_protocol::{AgentMessage, Auth, AuthResponse, ServerMessage};
use tokio_tungstenite::tungstenite::Message;

pub type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// The agent's next protocol message within `within` (panics otherwise, or when it is not
/// valid protocol).
pub async fn next_message_within(ws: &mut Ws, within: Duration) -> AgentMessage {
    loop {
        let frame = tokio::time::timeout(within, ws.next())
            .await
            .expect("a message from the agent")
            .expect("connection open")
            .unwrap();
        if let Message::Text(t) = frame {
            return AgentMessage::from_json(&t).expect("the agent sends valid protocol messages");
        }
    }
}

pub async fn send(ws: &mut Ws, msg: ServerMessage) {
    ws.send(Message::text(msg.to_json())).await.unwrap();
}

/// Reads the agent's `auth` (which must come first) and accepts it as "agent-1", issuing
/// `api_key` and naming `release_public_key`.
pub async fn accept_auth(
    ws: &mut Ws,
    api_key: Option<&str>,
    release_public_key: Option<&str>,
) -> Auth {
    let AgentMessage::Auth(auth) = next_message_within(ws, Duration::from_secs(15)).await else {
        panic!("auth must come first");
    };
    let reply = AuthResponse {
        success: true,
        agent_id: Some("agent-1".into()),
        api_key: api_key.map(str::to_owned),
        message: None,
        release_public_key: release_public_key.map(str::to_owned),
    };
    send(ws, ServerMessage::AuthResponse(reply)).await;
    auth
}
