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

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn set_mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn new_folders_and_database_files_are_owner_only() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        assert_eq!(private_dir(&dir).unwrap(), None, "created, not tightened");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&root.path().join("a")), 0o700, "parents too");
        let db = dir.join("x.db");
        secure_sqlite_files(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        assert_eq!(std::fs::metadata(&db).unwrap().len(), 0);
    }

    /// A log folder and logs written by an older version (0755, 0644) are tightened at start.
    #[test]
    fn open_folders_and_files_are_tightened() {
        let root = tempfile::tempdir().unwrap();
        let logs = root.path().join("logs");
        std::fs::create_dir(&logs).unwrap();
        set_mode(&logs, 0o755);
        let old_log = logs.join("gururmm-server.2026-01-01.log");
        std::fs::write(&old_log, "x").unwrap();
        set_mode(&old_log, 0o644);
        let kept_tight = logs.join("already.log");
        std::fs::write(&kept_tight, "x").unwrap();
        set_mode(&kept_tight, 0o400);

        assert_eq!(private_dir(&logs).unwrap(), Some(0o755));
        secure_files_in(&logs).unwrap();
        assert_eq!(mode(&logs), 0o700);
        assert_eq!(mode(&old_log), 0o600);
        assert_eq!(mode(&kept_tight), 0o400, "a stricter mode is kept");
        assert_eq!(private_file(&old_log).unwrap(), None, "nothing left to do");

        let db = root.path().join("g.db");
        for f in ["g.db", "g.db-wal", "g.db-shm"] {
            std::fs::write(root.path().join(f), "").unwrap();
            set_mode(&root.path().join(f), 0o664);
        }
        secure_sqlite_files(&db).unwrap();
        for f in ["g.db", "g.db-wal", "g.db-shm"] {
            assert_eq!(mode(&root.path().join(f)), 0o600, "{f}");
        }
    }
}
