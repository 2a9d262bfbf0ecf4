//! `gururmm-server release ...`: the release key and publishing agent builds.
//!
//! - `keygen --out PREFIX`: a new Ed25519 key pair, `PREFIX.key` (the private seed, base64,
//!   owner-only) and `PREFIX.pub` (the public key, base64). Keep the private key off the
//!   server; the server needs only the public one (`release_public_key_file`).
//! - `sign --key FILE --file BIN`: the base64 signature of a build (no server, no database).
//! - `add --file BIN --version V --os OS --arch ARCH (--signature SIG | --key FILE)`: copies
//!   the build into the downloads folder, checks its signature against the server's public
//!   key, and records it in `releases`; the stable name the install commands fetch
//!   (`gururmm-agent-linux-x86_64`) is refreshed when this is the newest version.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use gururmm_protocol::release as keys;

use crate::config::Config;
use crate::db::{new_id, now_ms, Actor, ReleaseRecord, Store};
use crate::rollout;

/// Writes `PREFIX.key` (0600) and `PREFIX.pub`; refuses to overwrite either. Returns both
/// paths and the public key.
pub fn keygen(prefix: &Path) -> anyhow::Result<(PathBuf, PathBuf, String)> {
    let key_file = with_suffix(prefix, "key");
    let pub_file = with_suffix(prefix, "pub");
    for f in [&key_file, &pub_file] {
        anyhow::ensure!(
            !f.exists(),
            "{} exists; not overwriting a release key",
            f.display()
        );
    }
    if let Some(dir) = key_file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let (private, public) = keys::generate_key_pair().map_err(anyhow::Error::msg)?;
    write_private(&key_file, &format!("{private}\n"))?;
    std::fs::write(&pub_file, format!("{public}\n"))
        .with_context(|| format!("write {}", pub_file.display()))?;
    Ok((key_file, pub_file, public))
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

/// Created owner-only (0600) from the start, never readable by others even for a moment.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

/// The base64 signature of the build at `file` by the private key in `key_file`.
pub fn sign(key_file: &Path, file: &Path) -> anyhow::Result<String> {
    let key = read_private_key(key_file)?;
    let bytes = std::fs::read(file).with_context(|| format!("read {}", file.display()))?;
    Ok(keys::sign(&key, &keys::digest(&bytes)))
}

fn read_private_key(key_file: &Path) -> anyhow::Result<ed25519_dalek::SigningKey> {
    let text = std::fs::read_to_string(key_file)
        .with_context(|| format!("read release key {}", key_file.display()))?;
    keys::parse_private_key(&text)
        .map_err(|e| anyhow::anyhow!("release key {}: {e}", key_file.display()))
}

/// The server's release public key (base64), from `release_public_key_file`; None (logged)
/// when the file is missing or unreadable.
pub fn load_public_key(config: &Config) -> Option<String> {
    let file = config.release_public_key_file();
    match std::fs::read_to_string(&file) {
        Ok(text) => match keys::parse_public_key(&text) {
            Ok(_) => Some(text.trim().to_owned()),
            Err(e) => {
                tracing::warn!(
                    "release public key {}: {e}; no agent updates are sent",
                    file.display()
                );
                None
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::info!(
                "no release public key at {} (release_public_key_file): agent updates are off until one is there",
                file.display()
            );
            None
        }
        Err(e) => {
            tracing::warn!(
                "cannot read release public key {}: {e}; no agent updates are sent",
                file.display()
            );
            None
        }
    }
}

/// What `release add` is given.
pub struct AddRelease<'a> {
    pub file: &'a Path,
    pub version: &'a str,
    pub os: &'a str,
    pub arch: &'a str,
    /// The signature, or sign with this key.
    pub signature: Option<&'a str>,
    pub key_file: Option<&'a Path>,
}

/// Publishes a build: checks version, os, arch and the signature (against the server's
/// public key), copies it into the downloads folder and records it.
pub async fn add(config: &Config, req: AddRelease<'_>) -> anyhow::Result<ReleaseRecord> {
    rollout::check_os(req.os).map_err(anyhow::Error::msg)?;
    rollout::check_arch(req.arch).map_err(anyhow::Error::msg)?;
    let version = rollout::parse_version(req.version)
        .map_err(anyhow::Error::msg)?
        .to_string();
    let public_file = config.release_public_key_file();
    let public_text = std::fs::read_to_string(&public_file).with_context(|| {
        format!(
            "read the release public key {} (make one with `gururmm-server release keygen --out {}`)",
            public_file.display(),
            public_file.with_extension("").display()
        )
    })?;
    let public = keys::parse_public_key(&public_text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", public_file.display()))?;
    let bytes = std::fs::read(req.file).with_context(|| format!("read {}", req.file.display()))?;
    anyhow::ensure!(!bytes.is_empty(), "{} is empty", req.file.display());
    let digest = keys::digest(&bytes);
    let signature = match (req.signature, req.key_file) {
        (Some(sig), None) => sig.trim().to_owned(),
        (None, Some(key_file)) => keys::sign(&read_private_key(key_file)?, &digest),
        _ => anyhow::bail!("give exactly one of --signature and --key"),
    };
    keys::verify(&public, &digest, &signature).map_err(|e| {
        anyhow::anyhow!(
            "refused: {e} (the server's release public key is {})",
            public_file.display()
        )
    })?;

    let store = Store::connect(&config.effective_database_url()).await?;
    store.migrate().await?;
    if store.release(&version, req.os, req.arch).await?.is_some() {
        anyhow::bail!(
            "version {version} for {} {} is already published",
            req.os,
            req.arch
        );
    }
    let downloads = config.downloads_dir();
    std::fs::create_dir_all(&downloads)
        .with_context(|| format!("create {}", downloads.display()))?;
    let file_name = rollout::file_name(req.os, req.arch, &version);
    let target = downloads.join(&file_name);
    write_build(&target, &bytes)?;
    let record = ReleaseRecord {
        id: new_id(),
        version: version.clone(),
        os: req.os.to_owned(),
        arch: req.arch.to_owned(),
        file_name,
        sha256: keys::hex(&digest),
        size: bytes.len() as i64,
        signature,
        created_at: now_ms(),
    };
    let stored = store.insert_release(&record, Actor::SYSTEM).await;
    if let Err(e) = stored {
        let _ = std::fs::remove_file(&target);
        return Err(e.into());
    }
    // The stable name the install commands fetch follows the newest version.
    let newest = store
        .list_releases()
        .await?
        .into_iter()
        .find(|r| r.os == req.os && r.arch == req.arch);
    if newest.as_ref().is_some_and(|r| r.version == version) {
        write_build(
            &downloads.join(rollout::stable_file_name(req.os, req.arch)),
            &bytes,
        )?;
    }
    store.close().await;
    Ok(record)
}

/// Written beside the target and renamed into place, so a download never sees half a file.
fn write_build(target: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = PathBuf::from(format!("{}.partial", target.display()));
    std::fs::write(&tmp, bytes).with_context(|| format!("write {}", tmp.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
    }
    std::fs::rename(&tmp, target).with_context(|| format!("move into {}", target.display()))?;
    Ok(())
}
