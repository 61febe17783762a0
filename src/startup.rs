//! What a start does before it serves: find the admin token, and bring the
//! stored signing secrets under the current key. Neither may put a secret
//! in the log.

use crate::config::Config;
use crate::secrets::SecretKeys;
use crate::store::{DynStore, StoredSecrets};
use anyhow::Context;
use std::path::PathBuf;

/// The platform API's bearer token: `--admin-token`, or else the one kept in
/// a file readable by its owner only (made on the first start), whose path
/// is logged, never the token.
pub fn admin_token(config: &Config) -> anyhow::Result<String> {
    if let Some(t) = config.admin_token.as_ref().filter(|t| !t.is_empty()) {
        return Ok(t.clone());
    }
    let path = token_file(&config.database);
    if let Ok(t) = std::fs::read_to_string(&path) {
        let t = t.trim().to_owned();
        if !t.is_empty() {
            tracing::info!(file = %path.display(), "no --admin-token: using the one kept in the file");
            return Ok(t);
        }
    }
    let t = format!("tma_{}", crate::domain::ids::new_id());
    write_private(&path, &t)
        .with_context(|| format!("keeping the generated admin token in {}", path.display()))?;
    tracing::warn!(file = %path.display(), "no --admin-token: generated one and kept it in the file (read it there)");
    Ok(t)
}

/// Where a generated admin token is kept: beside a SQLite file, or in the
/// working directory for PostgreSQL.
fn token_file(database: &str) -> PathBuf {
    let name = "tminus-admin-token";
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

#[cfg(unix)]
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    writeln!(f, "{text}")
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
pub async fn reseal(store: &DynStore, keys: &SecretKeys) -> anyhow::Result<()> {
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
