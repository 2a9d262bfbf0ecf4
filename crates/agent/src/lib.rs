//! The GuruRMM agent: enrolls with the server, reports metrics and network state, runs
//! commands exactly once, watches services, and keeps undelivered results on disk.
//!
//! The folders name the parts: `transport/` (WebSocket and legacy HTTP), `commands/`
//! (execution, process trees), `metrics/` (one collector per kind), `watchdog/`, `service/`
//! (systemd and Windows SCM), `update/` (signed self-update with rollback), `state` (what is
//! kept on disk).

pub mod agent;
pub mod cli;
pub mod commands;
pub mod config;
pub mod identity;
pub mod logging;
pub mod metrics;
pub mod policy;
pub mod service;
pub mod session;
pub mod state;
pub mod transport;
pub mod update;
pub mod watchdog;
