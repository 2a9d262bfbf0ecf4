//! `gururmm-bare-baseline`: a bare WebSocket server that authenticates every agent and only
//! counts what it receives. The yardstick for the real server's memory and CPU per agent.
//! Runs until SIGINT/SIGTERM (or `--duration-secs`), then prints a JSON summary on stdout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use gururmm_fleet_sim::baseline::{serve, BaselineStats};
use tokio::signal::unix::{signal, SignalKind};

#[derive(Parser, Debug)]
#[command(
    name = "gururmm-bare-baseline",
    about = "Bare WebSocket baseline for fleet load tests"
)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:3999")]
    listen: SocketAddr,
    #[arg(long, default_value_t = 5.0)]
    report_every_secs: f64,
    /// Stop after this long (0: until SIGINT/SIGTERM).
    #[arg(long, default_value_t = 0.0)]
    duration_secs: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    gururmm_fleet_sim::raise_open_file_limit();
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    eprintln!("baseline listening on {}", listener.local_addr()?);
    let stats = Arc::new(BaselineStats::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(serve(listener, stats.clone(), stop_rx));

    let reporter_stats = stats.clone();
    let every = Duration::from_secs_f64(args.report_every_secs.max(0.1));
    let reporter = tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tick.tick().await;
            eprintln!("{}", reporter_stats.snapshot().line());
        }
    });

    let mut term = signal(SignalKind::terminate())?;
    let limit = async {
        if args.duration_secs > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(args.duration_secs)).await
        } else {
            std::future::pending().await
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = limit => {}
    }
    stop_tx.send_replace(true);
    let _ = server.await;
    reporter.abort();
    let snapshot = stats.snapshot();
    eprintln!("final: {}", snapshot.line());
    println!("{}", serde_json::to_string(&snapshot)?);
    Ok(())
}
