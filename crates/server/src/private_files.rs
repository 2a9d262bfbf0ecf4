//! Owner-only files on Unix: the data folder (0700), and the database, its `-wal`/`-shm`, the
//! JWT secret and the log files (0600). They hold password hashes, site codes and command
//! output, so no other local user may read them. A looser mode found at start is tightened and
//! logged. On other systems these are no-ops (the folder's ACL applies).

use std::io;
use std::path::Path;

#[cfg(unix)]
const DIR_MODE: u32 = 0o700;
#[cfg(unix)]
const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and missing parents) owner-only, or tightens an existing one.
/// Returns the old mode when it was looser and has been tightened.
pub fn private_dir(dir: &Path) -> io::Result<Option<u32>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(dir)?;
        }
        tighten(dir, DIR_MODE)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)?;
        Ok(None)
    }
}

/// Makes an existing file owner-only; a missing file is left alone.
pub fn private_file(path: &Path) -> io::Result<Option<u32>> {
    #[cfg(unix)]
    {
        if !path.exists() {
            return Ok(None);
        }
        tighten(path, FILE_MODE)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(None)
    }
}

/// Creates an empty owner-only file if it does not exist (so SQLite, which gives its `-wal`
/// and `-shm` the database file's mode, never makes them readable), else tightens it.
pub fn create_private_file(path: &Path) -> io::Result<Option<u32>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        if !path.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(FILE_MODE)
                .open(path)?;
        }
    }
    private_file(path)
}

/// Tightens the database file and its companions; logs each file that was too open.
pub fn secure_sqlite_files(db: &Path) -> io::Result<()> {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let mut shm = db.as_os_str().to_owned();
    shm.push("-shm");
    log_tightened(db, create_private_file(db)?);
    for companion in [wal, shm] {
        let path = Path::new(&companion);
        log_tightened(path, private_file(path)?);
    }
    Ok(())
}

/// Every file directly in `dir` owner-only (the log folder at start).
pub fn secure_files_in(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_file() {
            log_tightened(&path, private_file(&path)?);
        }
    }
    Ok(())
}

pub fn log_tightened(path: &Path, old: Option<u32>) {
    if let Some(old) = old {
        tracing::warn!(
            path = %path.display(),
            old_mode = format!("{old:o}"),
            "tightened the permissions of server data to owner-only"
        );
    }
}

#[cfg(unix)]
fn tighten(path: &Path, mode: u32) -> io::Result<Option<u32>> {
    use std::os::unix::fs::PermissionsExt;
    let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if current & !mode == 0 {
        return Ok(None);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(current & mode))?;
    Ok(Some(current))
}
