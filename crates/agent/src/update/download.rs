//! Fetching a build: into `update/<checksum>.part` in the state folder, resumed with a Range
//! request when a part of the same build is there, never past the update's `size` or
//! `[update] max_download_bytes`, within `download_timeout_seconds`; then the SHA-256 and the
//! signature over it are checked. A build that fails either check is deleted.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use gururmm_protocol::{release, Update};
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::agent::Ctx;
use crate::logging::ascii;

/// Downloads and verifies `u`'s build; returns the verified file. `key` is the trusted
/// release public key (base64). The error is the reason reported to the server.
pub async fn fetch(ctx: &Ctx, u: &Update, key: &str) -> Result<PathBuf, String> {
    let max = ctx.config.update.max_download_bytes;
    if let Some(size) = u.size {
        if size > max {
            return Err(format!(
                "the build is {size} bytes, more than update.max_download_bytes ({max})"
            ));
        }
    }
    let limit = u.size.unwrap_or(max).min(max);
    let checksum = u.checksum.trim().to_ascii_lowercase();
    let dir = ctx
        .state
        .update_dir()
        .map_err(|e| format!("cannot use the state folder for the download: {e}"))?;
    let part = dir.join(format!("{checksum}.part"));
    remove_other_parts(&dir, &part);
    let url = absolute_url(&ctx.config.server.url, &u.download_url)?;
    let client = crate::transport::tls::http_client_builder(ctx)?
        .build()
        .map_err(|e| format!("cannot set up the download: {e}"))?;
    let timeout = ctx.config.download_timeout();
    tokio::time::timeout(timeout, get(&client, &url, &part, limit, u.size))
        .await
        .map_err(|_| {
            format!(
                "the download did not finish within {} s (update.download_timeout_seconds)",
                timeout.as_secs()
            )
        })??;
    let file = part.clone();
    let digest = tokio::task::spawn_blocking(move || sha256_file(&file))
        .await
        .map_err(|e| format!("checksum failed: {e}"))?
        .map_err(|e| format!("cannot read the download: {e}"))?;
    if release::hex(&digest) != checksum {
        let _ = std::fs::remove_file(&part);
        return Err(format!(
            "checksum mismatch: the download's SHA-256 is {}, the update says {checksum}",
            release::hex(&digest)
        ));
    }
    let public = release::parse_public_key(key)?;
    if let Err(e) = release::verify(&public, &digest, u.signature.as_deref().unwrap_or("")) {
        let _ = std::fs::remove_file(&part);
        return Err(format!("signature refused: {e}"));
    }
    Ok(part)
}

/// A relative URL (`/downloads/...`) is on the agent's own server.
fn absolute_url(server_url: &str, url: &str) -> Result<String, String> {
    if url.starts_with('/') {
        Ok(format!(
            "{}{url}",
            crate::transport::legacy::base_url(server_url)?
        ))
    } else if url.starts_with("https://") || url.starts_with("http://") {
        Ok(url.to_owned())
    } else {
        Err(format!(
            "download_url '{}' is not an http(s) URL",
            ascii(url)
        ))
    }
}

/// Parts of other builds are stale: only one download is kept.
fn remove_other_parts(dir: &Path, keep: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path() != keep {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

async fn get(
    client: &reqwest::Client,
    url: &str,
    part: &Path,
    limit: u64,
    size: Option<u64>,
) -> Result<(), String> {
    let mut have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    if have > limit || size.is_some_and(|s| have > s) {
        let _ = std::fs::remove_file(part);
        have = 0;
    }
    if size.is_some_and(|s| s == have && have > 0) {
        return Ok(());
    }
    let mut req = client.get(url);
    if have > 0 {
        req = req.header(reqwest::header::RANGE, format!("bytes={have}-"));
    }
    let mut resp = req
        .send()
        .await
        .map_err(|e| format!("download from {} failed: {e}", ascii(url)))?;
    let status = resp.status();
    let append = match status {
        StatusCode::PARTIAL_CONTENT if have > 0 => {
            tracing::info!("resuming the download at byte {have}");
            true
        }
        StatusCode::OK => false,
        StatusCode::RANGE_NOT_SATISFIABLE if have > 0 => {
            // The part is longer than the build: start again next time.
            let _ = std::fs::remove_file(part);
            return Err("the kept partial download does not fit the build; removed".into());
        }
        _ => return Err(format!("download from {} answered {status}", ascii(url))),
    };
    let start = if append { have } else { 0 };
    if let Some(len) = resp.content_length() {
        if start + len > limit {
            return Err(format!(
                "the download is {} bytes, more than allowed ({limit})",
                start + len
            ));
        }
    }
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(part)
        .await
        .map_err(|e| format!("cannot write the download: {e}"))?;
    let mut total = start;
    loop {
        let chunk = resp
            .chunk()
            .await
            .map_err(|e| format!("the download was cut off after {total} bytes: {e}"))?;
        let Some(chunk) = chunk else { break };
        total += chunk.len() as u64;
        if total > limit {
            drop(file);
            let _ = std::fs::remove_file(part);
            return Err(format!(
                "the download grew past {limit} bytes (the update's size or update.max_download_bytes)"
            ));
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| format!("cannot write the download: {e}"))?;
    }
    file.sync_all()
        .await
        .map_err(|e| format!("cannot write the download: {e}"))?;
    if let Some(size) = size {
        if total < size {
            return Err(format!(
                "the download was cut off at {total} of {size} bytes"
            ));
        }
    }
    Ok(())
}

fn sha256_file(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_urls_are_on_the_agents_server() {
        assert_eq!(
            absolute_url("wss://rmm.example.com/ws", "/downloads/a").unwrap(),
            "https://rmm.example.com/downloads/a"
        );
        assert_eq!(
            absolute_url("ws://127.0.0.1:3001/ws", "http://x/y").unwrap(),
            "http://x/y"
        );
        assert!(absolute_url("ws://h/ws", "file:///etc/passwd").is_err());
    }
}
