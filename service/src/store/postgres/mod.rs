//! The shared backend: PostgreSQL, for several instances on one database.
//! A pool of connections serves the calls (any instance may run any call);
//! claims lease rows with `FOR UPDATE SKIP LOCKED` so instances never wait
//! on each other's claims; bulk writes go as arrays through `unnest` so a
//! thousand outcomes cost one round trip per statement, not a thousand. A
//! dropped connection (a restart, a failover) is replaced on the next call:
//! the callers already retry a failed call. The per-concept files beside
//! this one hold the SQL and their part of the catalog's traits; the
//! [`super::Engine`] is at the end of this file; `tx` runs a body in a
//! transaction; `notify` carries changes between instances.

#[macro_use]
mod tx;
mod claim;
mod db;
mod due;
mod engine;
mod health;
mod history;
mod instances;
mod notify;
mod participants;
mod receipts;
mod record;
mod rows;
mod step;
mod sweep;
mod tls;
mod work;

use super::*;
use super::{Change, StoreError, StoreResult};
use crate::store::FanoutStep;
use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio::sync::broadcast;
use tokio_postgres::error::SqlState;

/// The schema, in order. Each runs once; `tminus_migrations` records them.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/postgres/0001_init.sql"),
    include_str!("../../../migrations/postgres/0002_instances.sql"),
    include_str!("../../../migrations/postgres/0003_idempotency.sql"),
    include_str!("../../../migrations/postgres/0004_retention.sql"),
    include_str!("../../../migrations/postgres/0005_subscription_scope.sql"),
    include_str!("../../../migrations/postgres/0006_sessions.sql"),
    include_str!("../../../migrations/postgres/0007_fanout_plan.sql"),
    include_str!("../../../migrations/postgres/0008_operational_webhooks.sql"),
    include_str!("../../../migrations/postgres/0009_receipts.sql"),
];

/// Connections per instance: enough for the scheduler, the API, the
/// recorder and the sweeps at once.
const POOL_SIZE: usize = 16;

/// Connections per instance for claims and fan-out steps: every busy
/// lane's claims at once. Their commits do not wait for the disk (see
/// [`in_claim_tx!`]), set once per connection rather than once per claim.
const CLAIM_POOL_SIZE: usize = 8;

/// A PostgreSQL-backed [`super::Store`].
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// Connections with `synchronous_commit = off`, for claims only.
    claims: Pool,
    /// Where this store's changes are announced (one per schema, so tests
    /// on separate schemas of one database do not hear each other).
    channel: String,
    changes: broadcast::Sender<Change>,
    /// Stops the listening task once the last handle is dropped.
    _listening: std::sync::Arc<tokio_util::sync::DropGuard>,
    /// Since when every heartbeat of this instance has gone through, each in
    /// time (`None` after a failed or late one): it judges others gone only
    /// once they too have had a whole alive window to speak up.
    beating_since: std::sync::Arc<std::sync::Mutex<Option<chrono::DateTime<chrono::Utc>>>>,
    /// The run's one clock: what the store writes as `created_at`,
    /// `updated_at` and the like is the instant the rest of the service sees.
    clock: crate::clock::Clock,
}

impl PgStore {
    /// Connects to `url` (`postgres://…`, every libpq-style option
    /// tokio-postgres knows, such as several hosts with
    /// `target_session_attrs=read-write`), over TLS with `sslmode=require`
    /// (the server's certificate checked against `ca`, or the public web
    /// roots), migrates and starts listening for other instances' changes.
    /// Instants it stamps come from `clock`.
    pub async fn open(
        url: &str,
        ca: Option<&std::path::Path>,
        clock: crate::clock::Clock,
    ) -> anyhow::Result<Self> {
        let mut config: tokio_postgres::Config =
            url.parse().context("parsing the PostgreSQL URL")?;
        let tls = tls::connector(&mut config, ca)?;
        let pool = new_pool(config.clone(), &tls, POOL_SIZE)?;
        let mut lazy = config.clone();
        let options = config.get_options().unwrap_or_default();
        lazy.options(format!("{options} -c synchronous_commit=off").trim());
        let claims = new_pool(lazy, &tls, CLAIM_POOL_SIZE)?;
        let mut client = pool.get().await.with_context(|| {
            format!(
                "connecting to PostgreSQL at {}",
                crate::config::redact_url(url)
            )
        })?;
        migrate(&mut client).await?;
        let schema: String = client
            .query_one("SELECT current_schema()", &[])
            .await?
            .get(0);
        // Channel names stop at 63 bytes: a long schema name is hashed.
        let channel = if schema.len() <= 48 {
            format!("tminus_{schema}")
        } else {
            let digest = <sha2::Sha256 as sha2::Digest>::digest(schema.as_bytes());
            format!("tminus_{}", &hex::encode(digest)[..32])
        };
        let (changes, _) = broadcast::channel(4096);
        let stop = tokio_util::sync::CancellationToken::new();
        notify::listen(config, tls, channel.clone(), changes.clone(), stop.clone());
        Ok(Self {
            pool,
            claims,
            channel,
            changes,
            _listening: std::sync::Arc::new(stop.drop_guard()),
            beating_since: Default::default(),
            clock,
        })
    }

    /// A pooled connection.
    async fn conn(&self) -> StoreResult<Object> {
        get(&self.pool).await
    }

    /// A pooled connection whose commits do not wait for the disk.
    async fn claim_conn(&self) -> StoreResult<Object> {
        get(&self.claims).await
    }
}

/// A pool of at most `size` connections made with `config`.
fn new_pool(
    config: tokio_postgres::Config,
    tls: &tokio_postgres_rustls::MakeRustlsConnect,
    size: usize,
) -> anyhow::Result<Pool> {
    let manager = Manager::from_config(
        config,
        tls.clone(),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Ok(Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(std::time::Duration::from_secs(30)))
        .create_timeout(Some(std::time::Duration::from_secs(10)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()?)
}

async fn get(pool: &Pool) -> StoreResult<Object> {
    pool.get()
        .await
        .map_err(|e| StoreError::Other(anyhow::anyhow!("PostgreSQL connection: {e}")))
}

/// Applies the migrations not yet applied, one instance at a time.
async fn migrate(client: &mut Object) -> anyhow::Result<()> {
    let tx = client.transaction().await?;
    // Instances starting together take turns; the lock ends with the
    // transaction.
    tx.batch_execute(
        "SELECT pg_advisory_xact_lock(hashtext('tminus_migrations'));
         CREATE TABLE IF NOT EXISTS tminus_migrations (
             version    INTEGER PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         );",
    )
    .await?;
    let done: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM tminus_migrations",
            &[],
        )
        .await?
        .get(0);
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done as usize) {
        tx.batch_execute(sql)
            .await
            .with_context(|| format!("migration {}", i + 1))?;
        tx.execute(
            "INSERT INTO tminus_migrations (version) VALUES ($1)",
            &[&(i as i32 + 1)],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.code() {
            Some(c)
                if *c == SqlState::UNIQUE_VIOLATION || *c == SqlState::FOREIGN_KEY_VIOLATION =>
            {
                StoreError::Conflict(
                    e.as_db_error()
                        .map(|d| d.message().to_owned())
                        .unwrap_or_else(|| "constraint violated".into()),
                )
            }
            _ => StoreError::Other(e.into()),
        }
    }
}

/// Whether a failed transaction may simply be run again: the server chose
/// it as a deadlock's victim, or could not serialise it.
fn retryable(e: &StoreError) -> bool {
    let StoreError::Other(e) = e else {
        return false;
    };
    e.downcast_ref::<tokio_postgres::Error>()
        .and_then(|e| e.code())
        .is_some_and(|c| {
            *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
        })
}

/// `NotFound` for a row that is not there.
fn found<T>(row: Option<T>) -> StoreResult<T> {
    row.ok_or(StoreError::NotFound)
}

#[async_trait]
impl Engine for PgStore {
    fn changes(&self) -> Option<broadcast::Receiver<Change>> {
        Some(self.changes.subscribe())
    }
    async fn next_reminder_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        due::next_reminder_due(&self.conn().await?).await
    }
    async fn subscriptions_due(&self, until: DateTime<Utc>) -> StoreResult<Vec<SubscriptionId>> {
        due::subscriptions_due(&self.conn().await?, until).await
    }
    async fn claim_due_reminders(&self, claim: ReminderClaim) -> StoreResult<Vec<DueReminder>> {
        due::claim_due_reminders(&self.claim_conn().await?, &claim).await
    }
    async fn fanout_batch(&self, step: &FanoutStep) -> StoreResult<FanoutProgress> {
        match step.mode {
            // One statement, outside any transaction.
            FanoutMode::Send { late } => {
                step::send_step(&self.claim_conn().await?, &self.channel, step, late).await
            }
            FanoutMode::Missed => {
                in_claim_tx!(self, |tx| engine::missed_step(&tx, step).await?)
            }
        }
    }
    async fn subscriptions_with_work(&self) -> StoreResult<Vec<SubscriptionId>> {
        work::subscriptions_with_work(&self.conn().await?).await
    }
    async fn next_delivery_due(&self, sub: &SubscriptionId) -> StoreResult<Option<DateTime<Utc>>> {
        work::next_delivery_due(&self.conn().await?, sub).await
    }
    async fn claim_deliveries(&self, claim: DeliveryClaim) -> StoreResult<Claimed> {
        claim::claim_deliveries(&self.claim_conn().await?, &claim).await
    }
    async fn record_outcomes(&self, r: Recording) -> StoreResult<crate::store::HealthChanges> {
        in_tx!(self, |tx| record::record_outcomes(&tx, &r).await?)
    }
    async fn renew_leases(&self, renewal: Renewal) -> StoreResult<()> {
        in_claim_tx!(self, |tx| sweep::renew_leases(&tx, &renewal).await?)
    }
    async fn withdrawn(&self, held: Held) -> StoreResult<Withdrawn> {
        work::withdrawn(&self.conn().await?, &held).await
    }
    async fn release_leases(&self, owner: &InstanceId) -> StoreResult<u64> {
        let owners = [owner.to_owned()];
        let n = in_tx!(self, |tx| sweep::release_leases(
            &tx,
            &self.channel,
            &owners
        )
        .await?)?;
        instances::leave(&**self.conn().await?, owner).await?;
        Ok(n)
    }
    async fn heartbeat(
        &self,
        instance: &InstanceId,
        now: DateTime<Utc>,
        alive_since: DateTime<Utc>,
    ) -> StoreResult<u32> {
        let beat =
            async { instances::heartbeat(&**self.conn().await?, instance, now, alive_since).await }
                .await;
        // Only an instance whose own heartbeats have all gone through, in
        // time, for a whole alive window may judge the others: after an
        // outage of the database every instance's heartbeat is old, and the
        // first one back must not take the work of the others, which are
        // alive and about to say so, however much later than it they
        // reconnect within that window (a busy machine).
        let steady = {
            let mut since = self.beating_since.lock().unwrap();
            match &beat {
                Ok(b) if b.was_alive => *since.get_or_insert(now) <= alive_since,
                Ok(_) => {
                    *since = Some(now);
                    false
                }
                Err(_) => {
                    *since = None;
                    false
                }
            }
        };
        let beat = beat?;
        if steady && !beat.lapsed.is_empty() {
            let lapsed = beat.lapsed;
            let n = in_tx!(self, |tx| {
                let n = sweep::release_leases(&tx, &self.channel, &lapsed).await?;
                instances::forget(&*tx, &lapsed, alive_since).await?;
                n
            })?;
            tracing::warn!(
                instances = ?lapsed,
                leases = n,
                "instances stopped answering; took over their work"
            );
        }
        Ok(beat.live)
    }
    async fn expire_overdue(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        in_tx!(self, |tx| sweep::expire_overdue(&tx, now).await?)
    }
}
