//! Running as a system service: a systemd unit on Linux, an SCM service on Windows.

pub mod systemd;
#[cfg(windows)]
pub mod windows;
