//! The process's open-file limit, which bounds how many client connections
//! can be open: raised from its soft to its hard value at start (as far as
//! the system lets an unprivileged process), and the default connection cap
//! derived from it, keeping a reserve for the database, the outbound
//! delivery connections and files.

/// The open-file limit assumed when it cannot be read (a common default).
const UNKNOWN_LIMIT: u64 = 1024;
/// The default cap never exceeds this: past it, memory, not files, is what
/// runs out first under a flood of connections.
const MOST_CONNECTIONS: u64 = 65_536;
/// The fewest files kept for anything but client connections.
const MIN_RESERVE: u64 = 64;

/// Raises the soft open-file limit to the hard one; returns the soft limit
/// now in force, `None` when it cannot be read.
pub fn raise() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!(error = %e, "could not read or raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .ok()
                .map(|(soft, _)| soft)
        }
    }
}

/// The default connection cap for an open-file limit: a quarter of the
/// files (at least 64) are kept for the database, delivery connections and
/// files, the rest may be client connections, at least 16 and at most
/// 65 536.
pub fn default_cap(limit: Option<u64>) -> usize {
    let limit = limit.unwrap_or(UNKNOWN_LIMIT);
    let reserve = (limit / 4).max(MIN_RESERVE);
    let cap = limit.saturating_sub(reserve).clamp(16, MOST_CONNECTIONS);
    usize::try_from(cap).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::default_cap;

    #[test]
    fn the_cap_keeps_a_reserve_of_files() {
        assert_eq!(default_cap(Some(1024)), 768);
        assert_eq!(default_cap(Some(256)), 192);
        assert_eq!(default_cap(Some(100)), 36);
        assert_eq!(default_cap(Some(20)), 16);
        assert_eq!(default_cap(Some(1 << 20)), 65_536);
        assert_eq!(default_cap(Some(u64::MAX)), 65_536);
        assert_eq!(default_cap(None), 768);
    }
}
