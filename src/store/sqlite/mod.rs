//! The embedded backend: one SQLite file in WAL mode, migrated on open.
//! SQLite allows one writer at a time, so this store owns a single
//! connection on a thread of its own and runs every call there, in the order
//! the calls arrive; the per-concept files beside this one hold the SQL, as
//! plain functions over a connection, and `trait_impl` maps them onto the
//! [`super::Store`] trait. The file is private to its owner and locked for
//! one process (`file`); a start takes back every lease a previous process
//! left in it.

mod engine;
mod file;
mod idempotency;
mod platform;
mod receipts;
mod record;
mod subscriptions;
mod trait_impl;
mod webinars;
mod work;

use super::{StoreError, StoreResult};
use anyhow::Context;
use chrono::{DateTime, Utc};
use rusqlite::Connection;

/// The schema, in order. Each runs once; `PRAGMA user_version` counts them.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/sqlite/0001_init.sql"),
    include_str!("../../../migrations/sqlite/0002_receipts.sql"),
    include_str!("../../../migrations/sqlite/0003_idempotency.sql"),
];

/// A call to run on the store's thread.
type Call = Box<dyn FnOnce(&mut Connection) + Send>;

/// What the store's thread is asked to do.
enum Msg {
    Call(Call),
    /// Close the connection and let go of the file now, then answer.
    Close(tokio::sync::oneshot::Sender<()>),
}

/// A SQLite-backed [`super::Store`].
#[derive(Clone)]
pub struct SqliteStore {
    /// The queue to the thread that owns the one connection. SQLite
    /// serialises writers anyway; one connection avoids `SQLITE_BUSY`, and
    /// one thread serves calls first come, first served (a mutex would let
    /// a busy fan-out starve a lane) and keeps one allocator heap warm.
    calls: std::sync::mpsc::Sender<Msg>,
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `url`: a path,
    /// `sqlite://path` or `sqlite::memory:`. A file is locked for this
    /// process until [`super::Store::close`] (or the last handle goes).
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        let (mut conn, lock) = if path == ":memory:" {
            (Connection::open_in_memory()?, None)
        } else {
            let lock = file::lock(std::path::Path::new(path)).await?;
            let conn = Connection::open(path)
                .with_context(|| format!("opening SQLite database {path}"))?;
            (conn, Some(lock))
        };
        // WAL + synchronous=NORMAL survives a crash of the process without
        // losing a committed transaction; foreign keys guard the schema. A
        // 16 MiB page cache keeps a fan-out's working set out of read()
        // calls (memory-mapping would count the file in our RSS). Not more:
        // every commit walks the cache's hash table (pcache1Truncate), and
        // at 64 MiB that walk was 5.8 % of a fan-out's profile (1.5 % now).
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 5000;
             PRAGMA cache_size = -16384;
             PRAGMA temp_store = MEMORY;",
        )?;
        migrate(&mut conn)?;
        // The file is ours alone: whatever it says is leased belongs to a
        // process that is gone (killed, or the machine lost power). Taking
        // it back now is what lets a crashed fan-out resume at once instead
        // of after the lease.
        let taken = record::release_all_leases(&mut conn)?;
        if taken > 0 {
            tracing::info!(leases = taken, "took back the work a previous process held");
        }
        let (calls, queue) = std::sync::mpsc::channel::<Msg>();
        std::thread::Builder::new()
            .name("tminus-sqlite".into())
            .spawn(move || {
                let mut conn = Some(conn);
                let mut lock = lock;
                // Ends when every handle to the store is dropped. A call that
                // panics answers as an error; the thread serves on. After a
                // close, calls are dropped unanswered (their callers see the
                // store as stopped).
                for msg in queue {
                    match msg {
                        Msg::Call(call) => {
                            let Some(c) = conn.as_mut() else { continue };
                            let run = std::panic::AssertUnwindSafe(|| call(c));
                            if std::panic::catch_unwind(run).is_err() {
                                tracing::error!("a store call panicked");
                            }
                        }
                        Msg::Close(done) => {
                            conn = None;
                            lock = None;
                            let _ = done.send(());
                        }
                    }
                }
                drop((conn, lock));
            })?;
        Ok(Self { calls })
    }

    /// Closes the connection and releases the file's lock, after the calls
    /// already queued.
    pub async fn close(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.calls.send(Msg::Close(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Runs `f` on the store's thread and waits for its answer.
    async fn run<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let call: Call = Box::new(move |c| {
            let _ = tx.send(f(c));
        });
        let gone = || StoreError::Other(anyhow::anyhow!("the SQLite thread has stopped"));
        self.calls.send(Msg::Call(call)).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let version: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)
            .with_context(|| format!("migration {}", i + 1))?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
            rusqlite::Error::SqliteFailure(f, msg)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                StoreError::Conflict(msg.unwrap_or_else(|| "constraint violated".into()))
            }
            other => StoreError::Other(other.into()),
        }
    }
}

/// Instants are stored as epoch milliseconds.
fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The inverse of [`ms`].
fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// [`at`] for nullable columns.
fn at_opt(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.map(at)
}

/// Cancels the pending deliveries and slices whose `column` (a webinar's
/// or a subscription's id) is `id`; `now` is in epoch milliseconds.
fn cancel_work(c: &Connection, column: &'static str, id: &str, now: i64) -> StoreResult<()> {
    c.execute(
        &format!(
            "UPDATE deliveries SET status = 'cancelled', updated_at = ?2
             WHERE {column} = ?1 AND status = 'pending'"
        ),
        rusqlite::params![id, now],
    )?;
    c.execute(
        &format!(
            "UPDATE slices SET status = 'cancelled', locked_until = NULL
             WHERE {column} = ?1 AND status = 'pending'"
        ),
        [id],
    )?;
    Ok(())
}

/// Fails with `NotFound` when an update touched nothing.
fn touched(n: usize) -> StoreResult<()> {
    if n == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}
