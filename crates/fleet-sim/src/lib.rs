//! GuruRMM fleet simulator: many simulated agents in one process, each a real WebSocket
//! speaking the protocol crate's messages, for load tests of the server. Also the bare
//! baseline server the real one is compared with.
//!
//! In-process use (tests):
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use gururmm_fleet_sim::{Fleet, FleetConfig};
//! let fleet = Fleet::start(FleetConfig {
//!     servers: vec!["ws://127.0.0.1:3001/ws".into()],
//!     agents: 300,
//!     site_code: Some("AMBER-RIVER-4821".into()),
//!     ..FleetConfig::default()
//! })
//! .await?;
//! fleet.wait_connected(300, std::time::Duration::from_secs(30)).await;
//! let counters = fleet.stop().await;
//! # Ok(()) }
//! ```

pub mod agent;
pub mod api;
pub mod baseline;
pub mod counters;
pub mod fleet;
pub mod keys;
pub mod scenario;

pub use api::{run_commands, Api, CommandRun};
pub use counters::Snapshot;
pub use fleet::{Fleet, FleetConfig};
pub use scenario::{Credentials, Scenario, ScenarioConfig, Summary};

/// Raises the soft open-file limit to the hard limit (each agent is one socket); returns the
/// limit now in force.
pub fn raise_open_file_limit() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => {
            if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        Err(_) => 0,
    }
}
