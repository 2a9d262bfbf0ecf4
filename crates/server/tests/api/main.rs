//! End-to-end tests of the server: the real server on 127.0.0.1:0, a fresh database per test,
//! every test on both SQLite and PostgreSQL. The agent side is played by a WebSocket client
//! that speaks only the JSON of the protocol fixtures, no Rust types, as a third-party agent
//! would.

mod agent_sim;
mod alerts;
mod bad_input;
mod cluster;
mod commands;
mod contract;
mod enrollment;
mod hardening;
mod jobs;
mod jobs_fleet;
mod legacy;
mod live_output;
mod notifications;
mod policies;
mod resources;
mod schedules;
mod scripts;
mod session;
mod sign_in;
mod sso;
mod storage;
mod takeover;
mod two_factor;
mod updates;

/// Declares `name::sqlite` and `name::postgres`, each running `body(TestDb)`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(gururmm_server::testing::TestDb::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name(gururmm_server::testing::TestDb::Postgres).await
                }
            }
        )+
    };
}
