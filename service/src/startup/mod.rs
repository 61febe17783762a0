//! What a start does before it serves: check the configuration
//! ([`check`]), find the admin token, and bring the stored signing secrets
//! under the current key. None may put a secret in the log. (The operational subscription is set up by `ops::setup`,
//! with the files written here.)

use crate::config::Config;
use crate::secrets::SecretKeys;
use crate::store::{Catalog, StoredSecrets};
use anyhow::Context;
use std::path::PathBuf;

mod check;
pub use check::check;

/// The platform API's bearer token: `--admin-token`, or else the one kept in
/// a file readable by its owner only (made on the first start), whose path
/// is logged, never the token.
pub fn admin_token(config: &Config) -> anyhow::Result<String> {
    if let Some(t) = config.admin_token.as_ref().filter(|t| !t.is_empty()) {
        return Ok(t.clone());
    }
    let path = kept_file(&config.database, "tminus-admin-token");
    if let Ok(t) = std::fs::read_to_string(&path) {
        let t = t.trim().to_owned();
        if !t.is_empty() {
            tracing::info!(file = %path.display(), "no --admin-token: using the one kept in the file");
            return Ok(t);
        }
    }
    let t = format!("tma_{}", crate::domain::ids::new_id());
    let kept = keep_token(&path, &t)
        .with_context(|| format!("keeping the generated admin token in {}", path.display()))?;
    if kept == t {
        tracing::warn!(file = %path.display(), "no --admin-token: generated one and kept it in the file (read it there)");
    } else {
        tracing::info!(file = %path.display(), "no --admin-token: another start kept one in the file first; using it");
    }
    Ok(kept)
}

/// Where a generated secret named `name` is kept (the admin token) or shown
/// (the operational webhooks' secret): beside a SQLite file, or in the
/// working directory for PostgreSQL.
pub(crate) fn kept_file(database: &str, name: &str) -> PathBuf {
    if crate::store::is_postgres(database) {
        return PathBuf::from(name);
    }
    let path = database
        .strip_prefix("sqlite://")
        .or_else(|| database.strip_prefix("sqlite:"))
        .unwrap_or(database);
    match std::path::Path::new(path).parent() {
        Some(dir) if path != ":memory:" && !dir.as_os_str().is_empty() => dir.join(name),
        _ => PathBuf::from(name),
    }
}

/// Keeps `token` in `path` unless a token is there already, and answers
/// the one the file holds. The file appears whole or not at all: the token
/// is written (0600) and synced under a temporary name, then linked to
/// `path`, which fails if another start got there first (then its token
/// is the one). A reader never sees it empty or half written.
fn keep_token(path: &std::path::Path, token: &str) -> std::io::Result<String> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("token"),
        crate::domain::ids::new_id()
    ));
    write_private(&tmp, token)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(token.to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(path)?.trim().to_owned())
        }
        Err(e) => Err(e),
    }
}

/// Writes `text` to `path`, readable by its owner only, replacing what is
/// there: written and synced under a temporary name, then renamed, so a
/// reader sees the old file or the new one whole.
pub(crate) fn replace_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(".secret.{}", crate::domain::ids::new_id()));
    write_private(&tmp, text)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    writeln!(f, "{text}")?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, format!("{text}\n"))
}

/// Re-stores every subscription's secrets as `keys` would store them now:
/// sealed under the current key (after a key rotation, or when a key is
/// first given), or plain when no key is given. Refuses to go on when a
/// secret is sealed with a key this process was not given: it could not
/// sign that subscription's webhooks.
pub async fn reseal(store: &dyn Catalog, keys: &SecretKeys) -> anyhow::Result<()> {
    let mut changed = 0;
    for old in store.stored_secrets().await? {
        let current = keys.is_current(&old.secret)
            && old.previous.as_deref().is_none_or(|p| keys.is_current(p));
        if current {
            continue;
        }
        let open = |s: &str| {
            keys.open(s)
                .with_context(|| format!("the signing secret of subscription {}", old.id))
        };
        let new = StoredSecrets {
            id: old.id.clone(),
            secret: keys.seal(&open(&old.secret)?),
            previous: match &old.previous {
                Some(p) => Some(keys.seal(&open(p)?)),
                None => None,
            },
        };
        // A rotation made meanwhile stored its secrets the new way already.
        if store.replace_secrets(&old, &new).await? {
            changed += 1;
        }
    }
    if changed > 0 {
        let how = if keys.enabled() {
            "sealed under the current key"
        } else {
            "opened (no --secret-key given)"
        };
        tracing::info!(subscriptions = changed, "re-stored signing secrets: {how}");
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::keep_token;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Barrier};

    /// Eight starts generating a token at once into one file, and a reader
    /// polling the file meanwhile: all eight answer the one token the file
    /// holds, the reader never sees it empty or cut short, the file is its
    /// owner's only, and no temporary file is left.
    #[test]
    fn a_generated_token_appears_whole_and_racing_starts_agree_on_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tminus-admin-token");
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let (path, done) = (path.clone(), done.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                while !done.load(Ordering::SeqCst) {
                    if let Ok(t) = std::fs::read_to_string(&path) {
                        seen.push(t);
                    }
                }
                seen
            })
        };
        let start = Arc::new(Barrier::new(8));
        let starts: Vec<_> = (0..8)
            .map(|i| {
                let (path, start) = (path.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    keep_token(&path, &format!("tma_{i:024}")).unwrap()
                })
            })
            .collect();
        let kept: Vec<String> = starts.into_iter().map(|t| t.join().unwrap()).collect();
        done.store(true, Ordering::SeqCst);
        let file = std::fs::read_to_string(&path).unwrap();
        assert!(
            kept.iter().all(|t| format!("{t}\n") == file),
            "{kept:?} vs {file:?}"
        );
        for t in reader.join().unwrap() {
            assert_eq!(t, file, "a reader saw the file before it was whole");
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "temporary files left: {left:?}");
    }
}
