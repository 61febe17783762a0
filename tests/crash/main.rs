//! `tminus serve` on SQLite as a real process, killed with SIGKILL at
//! chosen and at random moments of a fan-out and started again at once:
//! the restarted process takes back what the dead one held without waiting
//! for its leases, every participant is reached, repeats carry their first
//! copy's webhook-id and are no more than what was in flight, the store
//! agrees with the receiver, and the file passes `PRAGMA integrity_check`.
//! One process at a time, in a binary of its own.

#[path = "../cluster/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "../common/pg.rs"]
#[allow(dead_code)]
mod pg;
#[path = "../cluster/receiver.rs"]
mod receiver;

mod at_once;
mod campaign;
mod file;
mod storage;

/// Held by each test: they share the machine's two cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
