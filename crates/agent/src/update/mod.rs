//! Self-update: what the agent does with an `update` from the server.
//!
//! 1. [`check`]: updates are enabled, a release key is trusted (pinned in `[update]
//!    public_key`, or the first `release_public_key` the server gave, kept in the state
//!    folder), the update is signed, and its version is newer than this build's (unless
//!    `allow_downgrade`).
//! 2. [`download`]: into the state folder, resumable, bounded in size and time; the SHA-256
//!    and the signature over it are checked before anything is replaced.
//! 3. [`install`]: the verified build is swapped in next to the running executable (the old one
//!    kept as `<exe>.previous`), started on trial until it connects, and put back when it does
//!    not. The session ([`crate::session`]) reports each step with `update_status`.

pub mod download;
pub mod install;

use gururmm_protocol::{release, update_state, Update, UpdateStatus};

use crate::agent::Ctx;
use crate::logging::ascii;
use crate::state::StateDir;

/// The release public key (base64) updates must be signed with: the pinned one, else the kept one.
pub fn trusted_key(ctx: &Ctx) -> Option<String> {
    ctx.config
        .update
        .public_key
        .clone()
        .or_else(|| ctx.state.release_key())
}

/// Keeps the server's `release_public_key` when the config pins none and none is kept yet.
/// A different key later is ignored (and logged): the first one stays.
pub fn remember_release_key(ctx: &Ctx, offered: Option<&str>) {
    let Some(offered) = offered.map(str::trim).filter(|k| !k.is_empty()) else {
        return;
    };
    if ctx.config.update.public_key.is_some() {
        return;
    }
    match ctx.state.release_key() {
        Some(kept) if kept == offered => {}
        Some(_) => tracing::warn!(
            "the server offers a release key other than the one kept; ignored (updates must be \
             signed with the kept key)"
        ),
        None => {
            if let Err(e) = release::parse_public_key(offered) {
                tracing::warn!("the server's release key is unusable: {}", ascii(&e));
                return;
            }
            match ctx.state.save_release_key(offered) {
                Ok(()) => tracing::info!("release public key kept in the state folder"),
                Err(e) => tracing::warn!("cannot keep the release public key: {e}"),
            }
        }
    }
}

/// An `update_status` for `u`.
pub fn status(u: &Update, state: &str, reason: Option<String>) -> UpdateStatus {
    UpdateStatus {
        update_id: u.update_id.clone(),
        version: u.version.clone(),
        state: state.to_owned(),
        reason: reason.map(|r| ascii(&r)),
    }
}

pub fn failed(u: &Update, reason: String) -> UpdateStatus {
    status(u, update_state::FAILED, Some(reason))
}

/// What must hold before downloading anything; the error is the reason reported.
pub fn check(ctx: &Ctx, u: &Update) -> Result<String, String> {
    if !ctx.config.update.enabled {
        return Err(
            "updates are disabled in this agent's config ([update] enabled = false)".into(),
        );
    }
    let key = trusted_key(ctx).ok_or(
        "no release public key is trusted (none pinned in [update] public_key and none given \
         by the server)",
    )?;
    if u.signature.as_deref().is_none_or(|s| s.trim().is_empty()) {
        return Err("the update carries no signature".into());
    }
    release::parse_hex_digest(&u.checksum).map_err(|e| format!("bad checksum: {e}"))?;
    if !is_newer(&u.version, ctx.version) && !u.allow_downgrade {
        return Err(format!(
            "version {} is not newer than the running {}",
            u.version, ctx.version
        ));
    }
    Ok(key)
}

/// Whether `offered` is a newer semver than `running` (anything unparsable is not newer).
pub fn is_newer(offered: &str, running: &str) -> bool {
    match (
        semver::Version::parse(offered.trim().trim_start_matches('v')),
        semver::Version::parse(running.trim().trim_start_matches('v')),
    ) {
        (Ok(o), Ok(r)) => o > r,
        _ => false,
    }
}

/// Keeps a report in the state folder until sent.
pub fn keep_report(state: &StateDir, report: &UpdateStatus) {
    if let Err(e) = state.put_update_report(report) {
        tracing::warn!("cannot keep the update report: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_newer_semver_is_newer() {
        assert!(is_newer("0.2.0", "0.1.9"));
        assert!(is_newer("99.0.0", "0.1.0"));
        assert!(!is_newer("0.1.0", "0.1.0"));
        assert!(!is_newer("0.0.9", "0.1.0"));
        assert!(!is_newer("0.2.0-rc.1", "0.2.0"));
        assert!(!is_newer("latest", "0.1.0"));
    }
}
