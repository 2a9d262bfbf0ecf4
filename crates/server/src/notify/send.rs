//! One attempt at one delivery, in the channel's format: a signed JSON webhook, a Slack or
//! Teams incoming webhook, or an email over SMTP. Bounded by [`SEND_TIMEOUT`].

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use super::Payload;
use crate::alerting::Severity;
use crate::config::{Config, SmtpSecurity};
use crate::db::notifications::ChannelRecord;

/// The longest one attempt may take; a hanging receiver is an error after this.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

pub const SIGNATURE_HEADER: &str = "X-GuruRMM-Signature";
const TIMESTAMP_HEADER: &str = "X-GuruRMM-Timestamp";
const DELIVERY_HEADER: &str = "X-GuruRMM-Delivery";

/// How much of an answer is kept in the attempt log.
const RESPONSE_KEPT: usize = 1000;

/// `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`: what a receiver recomputes with the
/// shared secret to check a webhook (and the timestamp to refuse an old one replayed).
pub fn signature(secret: &[u8], timestamp: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The answer to one attempt, as logged.
#[derive(Debug, Default)]
pub struct Answer {
    pub ok: bool,
    pub status_code: Option<i64>,
    pub response: Option<String>,
    pub error: Option<String>,
}

impl Answer {
    fn error(e: impl std::fmt::Display) -> Answer {
        Answer {
            error: Some(truncate(&e.to_string())),
            ..Answer::default()
        }
    }
}

/// "error sending request: client error (Connect): tcp connect error: Connection refused"
/// rather than its first part only.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(RESPONSE_KEPT) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

/// One line saying what happened (an email subject too: no control characters, since the
/// hostname comes from the agent).
fn headline(p: &Payload) -> String {
    let what = match p.event.as_str() {
        "alert.opened" => "opened",
        "alert.resolved" => "resolved",
        _ => return one_line(&p.message),
    };
    one_line(&format!(
        "[{}] {} {what} on {}",
        p.severity.as_str(),
        p.rule_name.as_deref().unwrap_or("alert"),
        p.hostname.as_deref().unwrap_or("an agent"),
    ))
}

fn one_line(text: &str) -> String {
    text.chars()
        .take(200)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn slack_body(p: &Payload) -> serde_json::Value {
    let mut text = headline(p);
    if p.event != "test" {
        text.push_str(&format!(": {}", p.message));
    }
    // Slack reads `<...>` as links and mentions (`<!channel>`): agent text must not make one.
    let text = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    json!({ "text": text })
}

/// An Office 365 connector MessageCard, which Teams incoming webhooks take.
fn teams_body(p: &Payload) -> serde_json::Value {
    let color = match (p.event.as_str(), p.severity) {
        ("alert.resolved", _) => "2EB886",
        (_, Severity::Critical) => "D93F0B",
        (_, Severity::Warning) => "FBCA04",
        (_, Severity::Info) => "0366D6",
    };
    let mut facts = vec![json!({"name": "Severity", "value": p.severity.as_str()})];
    for (name, value) in [("Agent", &p.hostname), ("Rule", &p.rule_name)] {
        if let Some(value) = value {
            facts.push(json!({"name": name, "value": value}));
        }
    }
    json!({
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": headline(p),
        "themeColor": color,
        "title": headline(p),
        "text": p.message,
        "sections": [{"facts": facts}],
    })
}

/// Sends one attempt; never takes longer than [`SEND_TIMEOUT`] (plus a moment).
pub async fn send(
    config: &Config,
    http: &reqwest::Client,
    secrets: &crate::two_factor::SecretBox,
    channel: &ChannelRecord,
    body: &str,
) -> Answer {
    let payload: Payload = match serde_json::from_str(body) {
        Ok(p) => p,
        Err(e) => return Answer::error(format!("unreadable payload: {e}")),
    };
    let attempt = async {
        match channel.kind.as_str() {
            "webhook" => {
                // Never sent unsigned: a secret that cannot be unsealed (another data folder's
                // key) is an error the administrator fixes by setting the secret again.
                match channel
                    .secret_sealed
                    .as_deref()
                    .and_then(|s| secrets.open(s))
                {
                    Some(secret) => {
                        post(http, channel, body.to_owned(), &payload, Some(&secret)).await
                    }
                    None => Answer::error("the signing secret cannot be read; set it again"),
                }
            }
            "slack" => {
                post(
                    http,
                    channel,
                    slack_body(&payload).to_string(),
                    &payload,
                    None,
                )
                .await
            }
            "teams" => {
                post(
                    http,
                    channel,
                    teams_body(&payload).to_string(),
                    &payload,
                    None,
                )
                .await
            }
            "email" => email(config, channel, &payload).await,
            other => Answer::error(format!("unknown channel kind {other}")),
        }
    };
    tokio::time::timeout(SEND_TIMEOUT + Duration::from_secs(1), attempt)
        .await
        .unwrap_or_else(|_| Answer::error("timed out"))
}

async fn post(
    http: &reqwest::Client,
    channel: &ChannelRecord,
    body: String,
    payload: &Payload,
    secret: Option<&[u8]>,
) -> Answer {
    let Some(url) = channel.url.as_deref() else {
        return Answer::error("the channel has no URL");
    };
    let timestamp = (crate::db::now_ms() / 1000).to_string();
    let mut request = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(TIMESTAMP_HEADER, &timestamp)
        .header(DELIVERY_HEADER, &payload.delivery_id);
    if let Some(secret) = secret {
        request = request.header(SIGNATURE_HEADER, signature(secret, &timestamp, &body));
    }
    // Errors without the URL: a Slack or Teams URL is itself a secret.
    match request.body(body).send().await {
        Ok(mut response) => {
            let status = response.status();
            // Only the start of the answer is kept: read no more than that.
            let mut start = Vec::new();
            while start.len() < RESPONSE_KEPT * 4 {
                match response.chunk().await {
                    Ok(Some(chunk)) => start.extend_from_slice(&chunk),
                    _ => break,
                }
            }
            let text = String::from_utf8_lossy(&start);
            Answer {
                ok: status.is_success(),
                status_code: Some(status.as_u16().into()),
                response: (!text.is_empty()).then(|| truncate(&text)),
                error: (!status.is_success()).then(|| format!("answered {status}")),
            }
        }
        Err(e) => Answer::error(with_causes(&e.without_url())),
    }
}

async fn email(config: &Config, channel: &ChannelRecord, p: &Payload) -> Answer {
    use lettre::message::{header::ContentType, Mailbox};
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    if config.smtp_host.is_empty() {
        return Answer::error("smtp_host is not set in the server config");
    }
    let from: Mailbox = match config.smtp_from.parse() {
        Ok(from) => from,
        Err(e) => return Answer::error(format!("smtp_from: {e}")),
    };
    let mut message = Message::builder().from(from).subject(headline(p));
    for to in &channel.email_to {
        match to.parse::<Mailbox>() {
            Ok(to) => message = message.to(to),
            Err(e) => return Answer::error(format!("recipient {to}: {e}")),
        }
    }
    let text = format!(
        "{}\n\n{}\n\nSeverity: {}\nAgent: {}\nRule: {}\nAlert: {}\nDelivery: {}\n",
        headline(p),
        p.message,
        p.severity.as_str(),
        p.hostname.as_deref().unwrap_or("-"),
        p.rule_name.as_deref().unwrap_or("-"),
        p.alert_id.as_deref().unwrap_or("-"),
        p.delivery_id,
    );
    let message = match message.header(ContentType::TEXT_PLAIN).body(text) {
        Ok(m) => m,
        Err(e) => return Answer::error(e),
    };
    let host = config.smtp_host.as_str();
    let builder = match config.smtp_security {
        SmtpSecurity::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            host,
        )),
        SmtpSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
        SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
    };
    let mut builder = match builder {
        Ok(b) => b.port(config.smtp_port).timeout(Some(SEND_TIMEOUT)),
        Err(e) => return Answer::error(e),
    };
    if !config.smtp_username.is_empty() {
        builder = builder.credentials(Credentials::new(
            config.smtp_username.clone(),
            config.smtp_password.clone(),
        ));
    }
    match builder.build().send(message).await {
        Ok(reply) => Answer {
            ok: reply.is_positive(),
            status_code: reply.code().to_string().parse().ok(),
            response: Some(truncate(&reply.message().collect::<Vec<_>>().join(" "))),
            error: None,
        },
        Err(e) => Answer::error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_text_cannot_break_a_subject_or_mention_a_slack_channel() {
        let mut p = Payload::test("d1".into(), "c");
        p.event = "alert.opened".into();
        p.hostname = Some("evil\r\nBcc: x@example.com <!channel>".into());
        assert!(!headline(&p).contains(['\r', '\n']));
        let text = slack_body(&p)["text"].as_str().unwrap().to_owned();
        assert!(text.contains("&lt;!channel&gt;"), "{text}");
    }

    #[test]
    fn signature_is_hmac_of_timestamp_dot_body() {
        // From: printf '1700000000.{}' | openssl dgst -sha256 -hmac secret
        assert_eq!(
            signature(b"secret", "1700000000", "{}"),
            "sha256=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
    }
}
