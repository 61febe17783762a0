//! The SQLite file itself, before SQLite opens it: created readable by its
//! owner only (it holds participants' data and, without a secret key,
//! signing secrets), and locked for one process. SQLite serves one
//! instance: a second `tminus serve` on the same file would take the first
//! one's leases for its own and send everything twice, so it is refused.
//! The lock is the kernel's (`flock`), so a process killed with SIGKILL
//! lets go at once, and the next start knows every lease in the file is a
//! dead process's: it takes them back without waiting for them to lapse.

use anyhow::Context;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;
use std::time::{Duration, Instant};

/// The open, locked database file. Dropping it releases the lock.
pub struct Locked {
    _file: File,
}

/// How long a start waits for the previous holder of the file to let go:
/// a service stopping in this process (a restart) may still be closing it.
const WAIT_FOR_LOCK: Duration = Duration::from_secs(3);

/// Creates `path` if needed with mode 0600 (tightening an existing file
/// that others can read), and takes the file's exclusive lock.
pub async fn lock(path: &Path) -> anyhow::Result<Locked> {
    let file = create_private(path)?;
    let started = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Locked { _file: file }),
            Err(TryLockError::WouldBlock) if started.elapsed() < WAIT_FOR_LOCK => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(TryLockError::WouldBlock) => anyhow::bail!(
                "the SQLite database {} is in use by another tminus process; SQLite serves \
                 one instance (stop the other, or use PostgreSQL to run several)",
                path.display()
            ),
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()))
            }
        }
    }
}

#[cfg(unix)]
fn create_private(path: &Path) -> anyhow::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("opening SQLite database {}", path.display()))?;
    tighten(&file, path)?;
    // SQLite makes its write-ahead log and shared-memory index with the
    // main file's mode, but ones left from before keep theirs: they hold
    // the same data.
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let side = std::path::PathBuf::from(side);
        if let Ok(f) = File::open(&side) {
            tighten(&f, &side)?;
        }
    }
    Ok(file)
}

/// Takes the group's and others' permissions off `file` (at `path`).
#[cfg(unix)]
fn tighten(file: &File, path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = file.metadata()?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(mode & 0o700))
            .with_context(|| format!("making {} private", path.display()))?;
        tracing::warn!(path = %path.display(), was = format!("{mode:o}"), "a database file was readable by others; made it owner-only");
    }
    Ok(())
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> anyhow::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("opening SQLite database {}", path.display()))
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &std::path::Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    /// A database file, its write-ahead log and its shared-memory index
    /// left readable by others (an older start, a copy, a umask of 022)
    /// are made their owner's only when the service opens the file.
    #[tokio::test]
    async fn an_existing_readable_file_and_its_wal_and_shm_are_made_private() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let files = ["t.db", "t.db-wal", "t.db-shm"].map(|n| dir.path().join(n));
        for f in &files {
            std::fs::write(f, b"").unwrap();
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let _locked = super::lock(&db).await.unwrap();
        for f in &files {
            assert_eq!(mode(f), 0o600, "{}", f.display());
        }
    }
}
