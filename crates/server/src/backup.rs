//! Backups of the embedded SQLite database (`gururmm-server backup`), restoring one
//! (`gururmm-server restore`), and the data-folder lock: a server on SQLite holds it while it
//! runs, so a restore, or a second server on the same folder, is refused instead of writing
//! under it. PostgreSQL is backed up with its own tools (docs/OPERATIONS.md, "Backups").

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};

use crate::config::Config;
use crate::db::{self, Backend, Store};

/// The file in the data folder a running server holds an exclusive lock on.
pub const LOCK_FILE: &str = "server.lock";

/// Said when a backup or restore is asked of a server on PostgreSQL.
pub const POSTGRES_HINT: &str = "this server's database is PostgreSQL: back it up with \
     pg_dump -Fc and restore it with pg_restore (docs/OPERATIONS.md, \"Backups\"); \
     backup and restore here are for the embedded SQLite database";

/// An exclusive advisory lock on `<data_dir>/server.lock`, released when dropped (or when the
/// process ends, however it ends).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process (or another server in this process) holds it.
    #[error("{holder} holds {path}")]
    Held { path: PathBuf, holder: String },
    #[error("cannot open {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl DataDirLock {
    /// Takes the lock, without waiting; the file is created owner-only and names the process
    /// holding it.
    pub fn acquire(data_dir: &Path) -> Result<DataDirLock, LockError> {
        let path = data_dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let holder = match pid.trim() {
                    "" => "another gururmm-server".to_owned(),
                    pid => format!("gururmm-server process {pid}"),
                };
                return Err(LockError::Held { path, holder });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        // Who holds it, for the message another process shows.
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        Ok(DataDirLock { _file: file })
    }
}

/// The lock a serving process holds: only on SQLite, whose file belongs to one server.
/// Nodes on PostgreSQL share a database, not a data folder, and take none.
pub fn lock_for_server(config: &Config) -> anyhow::Result<Option<DataDirLock>> {
    if db::backend_of(&config.effective_database_url()) != Some(Backend::Sqlite) {
        return Ok(None);
    }
    crate::secure_data_dir(config)?;
    match DataDirLock::acquire(&config.data_dir) {
        Ok(lock) => Ok(Some(lock)),
        Err(LockError::Held { holder, .. }) => bail!(
            "{holder} is already serving data folder {}: one SQLite data folder serves one \
             server (stop the other, or give this one its own data_dir)",
            config.data_dir.display()
        ),
        Err(e) => Err(e.into()),
    }
}

/// The SQLite file of `config`, or a clear refusal (PostgreSQL, in-memory).
fn sqlite_file(config: &Config) -> anyhow::Result<PathBuf> {
    let url = config.effective_database_url();
    match db::backend_of(&url) {
        Some(Backend::Postgres) => bail!("{POSTGRES_HINT}"),
        Some(Backend::Sqlite) => db::sqlite_file(&url)
            .ok_or_else(|| anyhow!("the database is in memory: there is nothing to back up")),
        None => bail!(
            "database URL must start with sqlite: or postgres: (got {})",
            crate::config::redact_url(&url)
        ),
    }
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// `path` with `suffix` appended to its file name (`gururmm.db` + `-wal`).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Writes a consistent copy of the SQLite database to `out` (SQLite's `VACUUM INTO`: one
/// read transaction, so every write committed before it started is in the copy, and the
/// server keeps serving meanwhile). `out` is created owner-only and never overwritten.
/// Returns the size of the copy in bytes.
pub async fn backup(config: &Config, out: &Path) -> anyhow::Result<u64> {
    let db_file = sqlite_file(config)?;
    if !db_file.is_file() {
        bail!(
            "no database at {}: check data_dir and database_url (they must be the server's)",
            db_file.display()
        );
    }
    let out_text = out
        .to_str()
        .ok_or_else(|| anyhow!("the backup path {} is not UTF-8", out.display()))?;
    // An empty owner-only file made here (never an existing one): VACUUM INTO fills an empty
    // file and keeps its mode.
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(out) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => bail!(
            "{} already exists; a backup never overwrites a file: choose another name, or \
             move the old one away",
            out.display()
        ),
        Err(e) => bail!("cannot create {}: {e}", out.display()),
    }
    let copied = async {
        let store = Store::connect(&sqlite_url(&db_file)).await?;
        let done = sqlx::query("VACUUM INTO $1")
            .bind(out_text)
            .execute(store.pool())
            .await;
        store.close().await;
        done.with_context(|| format!("copying {}", db_file.display()))?;
        anyhow::Ok(std::fs::metadata(out)?.len())
    }
    .await;
    if copied.is_err() {
        let _ = std::fs::remove_file(out);
        let _ = std::fs::remove_file(with_suffix(out, "-journal"));
    }
    copied
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    /// The database file now holding the backup.
    pub database: PathBuf,
    /// Where the database it replaced was kept (None when there was none).
    pub previous: Option<PathBuf>,
}

/// Replaces the SQLite database with the backup `from`: refused while a server runs on the
/// data folder; the backup must open, pass `PRAGMA integrity_check` and be a GuruRMM database
/// (its migrations table), and is migrated to this version; the database it replaces is kept
/// as `<name>.before-restore-<UTC time>`. Nothing is changed unless every check passed.
pub async fn restore(config: &Config, from: &Path) -> anyhow::Result<Restored> {
    let db_file = sqlite_file(config)?;
    if !from.is_file() {
        bail!("no backup file at {}", from.display());
    }
    if db_file.exists() && same_file(from, &db_file) {
        bail!(
            "{} is the server's database itself, not a backup of it",
            from.display()
        );
    }
    crate::secure_data_dir(config)?;
    // Held to the end, so no server starts on the folder while its database is swapped.
    let _lock = match DataDirLock::acquire(&config.data_dir) {
        Ok(lock) => lock,
        Err(LockError::Held { holder, .. }) => bail!(
            "{holder} is running on data folder {}: stop it before restoring",
            config.data_dir.display()
        ),
        Err(e) => return Err(e.into()),
    };
    if let Some(parent) = db_file.parent().filter(|p| !p.as_os_str().is_empty()) {
        crate::private_files::private_dir(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }

    // The backup is checked and migrated as a copy beside the database, then renamed over it.
    let staged = with_suffix(&db_file, ".restoring");
    remove_sqlite_files(&staged)?;
    copy_private(from, &staged)?;
    if let Err(e) = check_and_migrate(&staged, from).await {
        let _ = remove_sqlite_files(&staged);
        return Err(e);
    }

    let previous = if db_file.exists() {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        let kept = with_suffix(&db_file, &format!(".before-restore-{stamp}"));
        set_aside(&db_file, &kept).await?;
        Some(kept)
    } else {
        None
    };
    std::fs::rename(&staged, &db_file).with_context(|| {
        format!(
            "moving the checked backup {} to {}",
            staged.display(),
            db_file.display()
        )
    })?;
    Ok(Restored {
        database: db_file,
        previous,
    })
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn copy_private(from: &Path, to: &Path) -> anyhow::Result<()> {
    let mut source = File::open(from).with_context(|| format!("cannot read {}", from.display()))?;
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut target = options
        .open(to)
        .with_context(|| format!("cannot create {}", to.display()))?;
    std::io::copy(&mut source, &mut target)
        .and_then(|_| target.sync_all())
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// Opens the staged copy: it must be an intact SQLite database with GuruRMM's migrations
/// table; then applies this version's migrations and folds the copy back into one file.
async fn check_and_migrate(staged: &Path, from: &Path) -> anyhow::Result<()> {
    let not_ours =
        |why: String| anyhow!("{} is not a GuruRMM SQLite database: {why}", from.display());
    let store = Store::connect(&sqlite_url(staged))
        .await
        .map_err(|e| not_ours(format!("{e:#}")))?;
    let checked = async {
        let verdict: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(store.pool())
            .await
            .map_err(|e| not_ours(e.to_string()))?;
        if verdict != "ok" {
            bail!(
                "{} fails SQLite's integrity check: {verdict}",
                from.display()
            );
        }
        let tables: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_one(store.pool())
        .await
        .map_err(|e| not_ours(e.to_string()))?;
        if tables == 0 {
            return Err(not_ours("it has no migrations table".into()));
        }
        store.migrate().await.map_err(|e| {
            anyhow!(
                "cannot bring {} to this version's schema (a backup from a newer \
                 gururmm-server?): {e:#}",
                from.display()
            )
        })?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(store.pool())
            .await?;
        anyhow::Ok(())
    }
    .await;
    store.close().await;
    checked?;
    // Checkpointed and closed: the -wal is empty or gone, and the -shm is only an index.
    remove_companions(staged)?;
    Ok(())
}

/// Moves the current database to `kept` as one self-contained file: its write-ahead log is
/// checkpointed into it first. If that fails (a damaged database), the `-wal` moves along
/// under the new name so nothing it held is lost; no `-wal` or `-shm` is left beside the
/// database path, where SQLite would apply it to the restored file.
async fn set_aside(db_file: &Path, kept: &Path) -> anyhow::Result<()> {
    let checkpointed = match Store::connect(&sqlite_url(db_file)).await {
        Ok(store) => {
            let done = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(store.pool())
                .await;
            store.close().await;
            done.is_ok()
        }
        Err(_) => false,
    };
    if !checkpointed {
        tracing::warn!(
            "cannot checkpoint {}; keeping its -wal beside the old copy",
            db_file.display()
        );
    }
    std::fs::rename(db_file, kept).with_context(|| {
        format!(
            "keeping the current database {} as {}",
            db_file.display(),
            kept.display()
        )
    })?;
    let wal = with_suffix(db_file, "-wal");
    let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    if wal_len > 0 {
        std::fs::rename(&wal, with_suffix(kept, "-wal"))
            .with_context(|| format!("moving {}", wal.display()))?;
    }
    remove_companions(db_file)
}

/// Removes the `-wal` (which must be empty or absent by now) and `-shm` of `db_file`.
fn remove_companions(db_file: &Path) -> anyhow::Result<()> {
    for suffix in ["-wal", "-shm", "-journal"] {
        let path = with_suffix(db_file, suffix);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => bail!("cannot remove {}: {e}", path.display()),
        }
    }
    Ok(())
}

/// Removes a database file and its companions (a staged copy left by a failed restore).
fn remove_sqlite_files(db_file: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(db_file) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => bail!("cannot remove {}: {e}", db_file.display()),
    }
    remove_companions(db_file)
}
