use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gururmm_server::auth::{self, Role};
use gururmm_server::db::{Actor, Store};
use gururmm_server::{config::Config, logging};

/// jemalloc with its background threads gives freed memory back to the system within seconds
/// (its decay), even on worker threads that went quiet, so the server's footprint falls again
/// after a fleet's reconnect storm; glibc's allocator kept gigabytes.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "gururmm-server",
    version,
    about = "GuruRMM server: REST API, agent hub and dashboard"
)]
struct Cli {
    /// TOML settings file; GURURMM_* environment variables override it.
    #[arg(long, global = true, env = "GURURMM_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Copy the SQLite database to a new file while the server runs (PostgreSQL: pg_dump, see
    /// docs/OPERATIONS.md).
    Backup {
        /// The file to write; it must not exist. Created owner-only.
        #[arg(long)]
        out: PathBuf,
    },
    /// Replace the SQLite database with a backup (stop the server first); the current
    /// database is kept beside it as <name>.before-restore-<time>.
    Restore {
        /// A file written by `backup`.
        #[arg(long)]
        from: PathBuf,
    },
    /// Release keys and agent builds (docs/OPERATIONS.md, "Agent releases and updates").
    Release {
        #[command(subcommand)]
        action: ReleaseAction,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
}

#[derive(Subcommand)]
enum ReleaseAction {
    /// Make a release key pair: PREFIX.key (private, owner-only; keep it off the server) and
    /// PREFIX.pub (the server's `release_public_key_file`).
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the base64 signature of a build (needs no server or database).
    Sign {
        /// The private key file (PREFIX.key).
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        file: PathBuf,
    },
    /// Publish a build: copied into the downloads folder, its signature checked against the
    /// server's release public key, and recorded.
    Add {
        #[arg(long)]
        file: PathBuf,
        /// A semantic version, e.g. 0.2.0.
        #[arg(long)]
        version: String,
        /// linux or windows.
        #[arg(long)]
        os: String,
        /// x86_64 or aarch64.
        #[arg(long)]
        arch: String,
        /// The signature from `release sign`.
        #[arg(long, conflicts_with = "key", required_unless_present = "key")]
        signature: Option<String>,
        /// Or sign here with the private key file.
        #[arg(long)]
        key: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum UserAction {
    /// Create a user, or reset the password and role of an existing one.
    Add {
        #[arg(long)]
        email: String,
        /// The password; or set GURURMM_USER_PASSWORD to keep it out of the process list.
        #[arg(long, env = "GURURMM_USER_PASSWORD", hide_env_values = true)]
        password: String,
        /// admin, technician or viewer.
        #[arg(long, default_value = "admin")]
        role: Role,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let _guard = logging::init(&config);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(run(cli.command.unwrap_or(Command::Serve), config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            if config.dashboard_dir.is_none() && !gururmm_server::http::dashboard::embedded() {
                tracing::warn!("this binary was built without the dashboard; `/` says so");
            }
            gururmm_server::secure_data_dir(&config)?;
            // Made up front so an operator sees where agent builds go.
            let downloads = config.downloads_dir();
            if let Err(e) = std::fs::create_dir_all(&downloads) {
                tracing::warn!(
                    "cannot create downloads folder {}: {e}",
                    downloads.display()
                );
            }
            let listener = gururmm_server::listen(config.listen).await?;
            gururmm_server::launch(config, listener, shutdown_signal()).await
        }
        Command::Migrate => {
            let store = Store::connect(&config.effective_database_url()).await?;
            store.migrate().await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Backup { out } => {
            let bytes = gururmm_server::backup::backup(&config, &out).await?;
            println!("backup written to {} ({bytes} bytes)", out.display());
            Ok(())
        }
        Command::Restore { from } => {
            let done = gururmm_server::backup::restore(&config, &from).await?;
            println!(
                "restored {} into {}",
                from.display(),
                done.database.display()
            );
            if let Some(previous) = done.previous {
                println!("the database it replaced is kept as {}", previous.display());
            }
            Ok(())
        }
        Command::Release { action } => release(action, &config).await,
        Command::User {
            action:
                UserAction::Add {
                    email,
                    password,
                    role,
                },
        } => {
            let email = auth::validate_email(&email).map_err(anyhow::Error::msg)?;
            auth::validate_password(&password).map_err(anyhow::Error::msg)?;
            let store = Store::connect(&config.effective_database_url()).await?;
            store.migrate().await?;
            let hash = auth::hash_password(&password)?;
            match store.user_by_email(&email).await? {
                Some(existing) => {
                    store
                        .set_user_password(&existing.id, &hash, role, Actor::SYSTEM)
                        .await?;
                    println!("updated user {email} ({role})");
                }
                None => {
                    store
                        .create_user(&email, &hash, role, Actor::SYSTEM)
                        .await?;
                    println!("created user {email} ({role})");
                }
            }
            Ok(())
        }
    }
}

async fn release(action: ReleaseAction, config: &Config) -> anyhow::Result<()> {
    use gururmm_server::release;
    match action {
        ReleaseAction::Keygen { out } => {
            let (key, public_file, public) = release::keygen(&out)?;
            println!(
                "private key: {} (owner-only; keep it off the server)",
                key.display()
            );
            println!("public key:  {} ({public})", public_file.display());
            Ok(())
        }
        ReleaseAction::Sign { key, file } => {
            println!("{}", release::sign(&key, &file)?);
            Ok(())
        }
        ReleaseAction::Add {
            file,
            version,
            os,
            arch,
            signature,
            key,
        } => {
            let added = release::add(
                config,
                release::AddRelease {
                    file: &file,
                    version: &version,
                    os: &os,
                    arch: &arch,
                    signature: signature.as_deref(),
                    key_file: key.as_deref(),
                },
            )
            .await?;
            println!(
                "published {} {} {} as {}/{} ({} bytes, sha256 {})",
                added.version,
                added.os,
                added.arch,
                config.downloads_dir().display(),
                added.file_name,
                added.size,
                added.sha256
            );
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
