//! The embedded backend: one SQLite file in WAL mode, migrated on open.
//! SQLite allows one writer at a time, so this store owns a single
//! connection on a thread of its own and runs every call there, in the order
//! the calls arrive; the per-concept files beside this one hold the SQL, as
//! plain functions over a connection, each with its part of the catalog's
//! traits; the [`super::Engine`] is at the end of this file. The file is private to its owner and locked for
//! one process (`file`); a start takes back every lease a previous process
//! left in it.

mod db;
mod due;
mod engine;
mod file;
mod health;
mod history;
mod participants;
mod receipts;
mod record;
mod sweep;
mod work;

use super::*;
use super::{StoreError, StoreResult};
use crate::store::FanoutStep;
use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::config::DbConfig;
use rusqlite::Connection;

/// Statements kept compiled on the store's connection: more than it has.
const STATEMENT_CACHE: usize = 512;

/// The schema, in order. Each runs once; `PRAGMA user_version` counts them.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/sqlite/0001_init.sql"),
    include_str!("../../../migrations/sqlite/0002_receipts.sql"),
    include_str!("../../../migrations/sqlite/0003_idempotency.sql"),
    include_str!("../../../migrations/sqlite/0004_subscription_scope.sql"),
    include_str!("../../../migrations/sqlite/0005_sessions.sql"),
    include_str!("../../../migrations/sqlite/0006_fanout_plan.sql"),
    include_str!("../../../migrations/sqlite/0007_operational_webhooks.sql"),
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
    /// The run's one clock: what the store writes as `created_at`,
    /// `updated_at` and the like is the instant the rest of the service sees.
    clock: crate::clock::Clock,
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `url`: a path,
    /// `sqlite://path` or `sqlite::memory:`. A file is locked for this
    /// process until [`super::Engine::close`] (or the last handle goes).
    /// Instants it stamps come from `clock`.
    pub async fn open(url: &str, clock: crate::clock::Clock) -> anyhow::Result<Self> {
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
        // One plan per statement, whatever is bound to it: without this, a
        // cached statement whose plan SQLite judged to depend on a bound
        // value (the build has STAT4) is compiled again on its first step
        // after each new binding. That recompiling was a third of the
        // claims' time when a thousand webinars fell due together.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        // Every statement of the store stays compiled: the engine's and the
        // catalog's together are well over rusqlite's default of 16, and a
        // fan-out cycling through them compiled each again and again.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        migrate(&mut conn)?;
        // The file is ours alone: whatever it says is leased belongs to a
        // process that is gone (killed, or the machine lost power). Taking
        // it back now is what lets a crashed fan-out resume at once instead
        // of after the lease.
        let taken = sweep::release_all_leases(&mut conn)?;
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
        Ok(Self { calls, clock })
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

#[async_trait]
impl Engine for SqliteStore {
    async fn next_reminder_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        self.run(|c| due::next_reminder_due(c)).await
    }
    async fn subscriptions_due(&self, until: DateTime<Utc>) -> StoreResult<Vec<SubscriptionId>> {
        self.run(move |c| due::subscriptions_due(c, until)).await
    }
    async fn claim_due_reminders(&self, claim: ReminderClaim) -> StoreResult<Vec<DueReminder>> {
        self.run(move |c| due::claim_due_reminders(c, &claim)).await
    }
    async fn fanout_batch(&self, step: &FanoutStep) -> StoreResult<FanoutProgress> {
        let step = step.clone();
        self.run(move |c| engine::fanout_batch(c, &step)).await
    }
    async fn subscriptions_with_work(&self) -> StoreResult<Vec<SubscriptionId>> {
        self.run(|c| work::subscriptions_with_work(c)).await
    }
    async fn next_delivery_due(&self, sub: &SubscriptionId) -> StoreResult<Option<DateTime<Utc>>> {
        let sub = sub.clone();
        self.run(move |c| work::next_delivery_due(c, &sub)).await
    }
    async fn claim_deliveries(&self, claim: DeliveryClaim) -> StoreResult<Claimed> {
        self.run(move |c| work::claim_deliveries(c, &claim)).await
    }
    async fn record_outcomes(&self, r: Recording) -> StoreResult<crate::store::HealthChanges> {
        self.run(move |c| record::record_outcomes(c, &r)).await
    }
    async fn renew_leases(&self, renewal: Renewal) -> StoreResult<()> {
        self.run(move |c| sweep::renew_leases(c, &renewal)).await
    }
    async fn withdrawn(&self, held: Held) -> StoreResult<Withdrawn> {
        self.run(move |c| work::withdrawn(c, &held)).await
    }
    async fn release_leases(&self, owner: &InstanceId) -> StoreResult<u64> {
        let owner = owner.clone();
        self.run(move |c| sweep::release_leases(c, &owner)).await
    }
    async fn expire_overdue(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.run(move |c| sweep::expire_overdue(c, now)).await
    }
    async fn close(&self) {
        SqliteStore::close(self).await
    }
}
