//! The storage boundary. Everything tminus remembers goes through [`Store`];
//! the HTTP layer, the scheduler and the delivery workers never see SQL.
//! [`Store`] is the [`Catalog`] (the cold path, `catalog/`, written once for
//! both backends over the [`sql`] executor, but for the [`history`] traits
//! each backend implements over that shared SQL, as each keeps deliveries
//! its own way) and the [`Engine`] (the hot path, written per backend in
//! `sqlite/` and `postgres/`, where the dialects differ, in files of the
//! same names). Rows become records through `decode` (`from_row!`), for
//! both. The service hands out narrow views of it: [`DynEngine`] to
//! the scheduler and the lanes, [`DynCatalog`] to the API and the
//! operator's tasks. `open` picks a backend from the database URL once, at
//! start, and hands it the run's clock: nothing here reads the system time.

pub mod batch;
pub mod catalog;
pub(crate) mod decode;
pub mod engine;
pub mod held;
pub mod history;
pub mod idempotency;
pub mod jobs;
pub mod model;
pub mod oversight;
pub mod page;
pub mod postgres;
pub mod receipt;
pub mod sql;
pub mod sqlite;

pub use batch::{NewParticipants, PackedParticipant, ParticipantRef};
pub use catalog::{
    Catalog, History, Idempotency, Operational, Plans, Platform, Pruned, QueueFigures,
    Registrations, SessionRecord, Sessions, Settings, Subscriptions, Upkeep, Webinars,
    OPERATIONAL_CREATOR, OPERATIONAL_EVENT,
};
pub use engine::{DeliveryClaim, Engine, Held, Recording, ReminderClaim, Renewal};
pub use history::{Cutoff, Deliveries, Fired, HeldTally, Listing, Pruning, Retry, Tallies};
pub use idempotency::Remembered;
pub use jobs::*;
pub use model::*;
pub use oversight::{
    DueFanout, FanoutInputs, FanoutReminder, FanoutTally, Outcomes, Oversight, PlanScope, Trouble,
};
pub use page::{PageRequest, Paged};

use crate::clock::Clock;

use std::sync::Arc;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing asked for does not exist (or belongs to someone else).
    #[error("not found")]
    NotFound,
    /// The write would break a rule the store keeps (a duplicate, a stale state).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A page's `after` is not a cursor the list gave (`page`).
    #[error("not a cursor of this list")]
    InvalidCursor,
    /// Anything else: I/O, corruption, a bug.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Something another instance did that this one should act on. Only a
/// store shared between instances reports these.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// This subscription has new work (a fan-out's slices, a retry, a test).
    Work(SubscriptionId),
    /// This subscription changed (its secret was rotated): lanes read it
    /// again before their next request.
    Subscription(SubscriptionId),
    /// Reminders were armed, moved or handed back: the next due time may
    /// have changed.
    Schedule,
    /// Changes may have been missed (the channel was lost and made again):
    /// look at everything.
    Resync,
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// The shared handle the rest of the service holds.
pub type DynStore = Arc<dyn Store>;

/// Everything tminus stores: the [`Catalog`] (the cold path, written once
/// for both backends where it can be) and the [`Engine`] (the hot path, per
/// backend). [`open`] answers one, as [`DynStore`]; the service hands each
/// component the narrow handle it needs ([`DynCatalog`], [`DynEngine`]).
pub trait Store: Catalog + HotPath {}

impl<T: Catalog + HotPath + ?Sized> Store for T {}

/// What the scheduler and the delivery lanes hold: the [`Engine`], the
/// fan-out [`Plans`] (to start one early, to learn answer times) and a
/// subscription's [`Settings`]; nothing that makes creators, webinars or
/// subscriptions.
pub trait HotPath: Engine + Plans + Settings {}

impl<T: Engine + Plans + Settings + ?Sized> HotPath for T {}

/// The handle of the scheduler and the delivery lanes.
pub type DynEngine = Arc<dyn HotPath>;

/// The handle of the API, the dashboard and the operator's tasks (events,
/// gauges, retention): the [`Catalog`].
pub type DynCatalog = Arc<dyn Catalog>;

/// The active subscriptions each reminder `r` fans out to (the match a
/// fan-out makes), in SQL both backends speak; each adds its `WHERE`.
pub(crate) const SUBSCRIPTIONS_DUE: &str = "SELECT DISTINCT s.id FROM reminders r
    JOIN webinars w ON w.id = r.webinar_id
    JOIN subscriptions s ON s.creator_id = w.creator_id AND s.status = 'active'
      AND (s.event = 'webinar.reminder.all' OR s.event = 'webinar.reminder.' || r.label)
      AND (s.webinar_id IS NULL OR s.webinar_id = r.webinar_id)
      AND (s.mango_id IS NULL OR s.mango_id IN
           (SELECT mango_id FROM webinar_mangoes wm WHERE wm.webinar_id = r.webinar_id))";

/// Whether `url` names a PostgreSQL database rather than a SQLite file.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Opens the store named by `url`: `postgres://…` (or `postgresql://…`)
/// for PostgreSQL; otherwise a SQLite path or `sqlite:` URL. It reads the
/// system clock (tools and tests that do not move time).
pub async fn open(url: &str) -> anyhow::Result<DynStore> {
    open_with(url, None).await
}

/// [`open`], with the certificates that may sign a PostgreSQL server's
/// (`sslmode=require`); `None` means the public web roots.
pub async fn open_with(url: &str, ca: Option<&std::path::Path>) -> anyhow::Result<DynStore> {
    open_clocked(url, ca, Clock::system()).await
}

/// [`open_with`], stamping what it writes (`createdAt`, `updatedAt`…) from
/// `clock`: the service's one notion of now, so a test that moves the clock
/// sees the store move with it.
pub async fn open_clocked(
    url: &str,
    ca: Option<&std::path::Path>,
    clock: Clock,
) -> anyhow::Result<DynStore> {
    if is_postgres(url) {
        return Ok(Arc::new(postgres::PgStore::open(url, ca, clock).await?));
    }
    Ok(Arc::new(sqlite::SqliteStore::open(url, clock).await?))
}
