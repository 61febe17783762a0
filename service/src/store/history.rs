//! The delivery history's traits that each backend implements itself,
//! because each reads its own receipts (rows, and receipts for
//! acknowledged first attempts, on both): a
//! subscription's deliveries ([`Deliveries`]), fired reminders' tallies
//! ([`Tallies`]) and retention's deletes ([`Pruning`]). The rest of the
//! catalog is written once for both (`catalog`); these are written over its
//! shared SQL in `postgres/history.rs` and `sqlite/history.rs`.

use super::{
    CreatorId, Delivery, DeliveryId, DeliveryStatus, FanoutTally, PageRequest, Paged, Pruned,
    ReminderId, StoreResult, SubscriptionId,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A subscription's deliveries one by one, as the integrator sees them:
/// listed, fetched, retried. Each backend answers from wherever it keeps
/// deliveries (rows, and receipts for acknowledged first attempts,
/// `sqlite::receipts`, `postgres::receipts`), over the rows' shared SQL (`catalog::history`).
#[async_trait]
pub trait Deliveries: Send + Sync + 'static {
    /// A page of a subscription's deliveries ([`Listing`]).
    async fn list_deliveries(&self, which: Listing<'_>) -> StoreResult<Paged<Delivery>>;
    async fn get_delivery(
        &self,
        subscription_id: &SubscriptionId,
        id: &DeliveryId,
    ) -> StoreResult<Delivery>;
    /// Makes a delivery due again ([`Retry`]).
    async fn retry_delivery(&self, retry: &Retry) -> StoreResult<Delivery>;
}

/// Which of a subscription's deliveries to list: a page of them, newest
/// first (then by id), with one status (or any).
#[derive(Clone, Copy, Debug)]
pub struct Listing<'a> {
    pub subscription_id: &'a SubscriptionId,
    pub status: Option<DeliveryStatus>,
    pub page: &'a PageRequest,
}

impl<'a> Listing<'a> {
    pub fn of(
        subscription_id: &'a SubscriptionId,
        status: Option<DeliveryStatus>,
        page: &'a PageRequest,
    ) -> Self {
        Self {
            subscription_id,
            status,
            page,
        }
    }
}

/// A delivery of a subscription made due again at `now` (whatever became
/// of it, bar a cancelled one), with at least until `expires_at` to live.
#[derive(Clone, Debug)]
pub struct Retry {
    pub subscription_id: SubscriptionId,
    pub delivery_id: DeliveryId,
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Fired reminders' tallies: how their deliveries went. Each backend
/// counts wherever it keeps deliveries (rows, and receipts for
/// acknowledged first attempts), over the rows' shared counts
/// (`catalog::oversight`).
#[async_trait]
pub trait Tallies: Send + Sync + 'static {
    /// The tallies of the fired reminders `which` names.
    async fn tallies(&self, which: Fired<'_>) -> StoreResult<Vec<FanoutTally>>;

    /// Fired reminders with work still pending, oldest first.
    async fn running_fanouts(
        &self,
        creator: Option<&CreatorId>,
        limit: i64,
    ) -> StoreResult<Vec<FanoutTally>> {
        self.tallies(Fired::Running(creator, limit)).await
    }

    /// The latest fired reminders, newest first (running ones included).
    async fn last_fanouts(
        &self,
        creator: Option<&CreatorId>,
        limit: i64,
    ) -> StoreResult<Vec<FanoutTally>> {
        self.tallies(Fired::Last(creator, limit)).await
    }

    /// One fired reminder's tally, if it is still kept.
    async fn fanout_tally(&self, reminder: &ReminderId) -> StoreResult<Option<FanoutTally>> {
        Ok(self.tallies(Fired::One(reminder)).await?.pop())
    }
}

/// Which fired reminders to tally.
pub enum Fired<'a> {
    /// Those with work still pending (of one creator, or everyone's), at
    /// most so many, oldest first.
    Running(Option<&'a CreatorId>, i64),
    /// The latest (of one creator, or everyone's), newest first.
    Last(Option<&'a CreatorId>, i64),
    /// This one, if it is still kept.
    One(&'a ReminderId),
}

/// A fan-out's acknowledged deliveries kept outside the rows (in
/// receipts): how many, and the first and last acknowledgement.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HeldTally {
    pub count: i64,
    pub first: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
}

/// Retention's deletes of delivery history: each backend removes it from
/// wherever it keeps it (rows and receipts), over the rows' shared
/// SQL (`catalog::upkeep`).
#[async_trait]
pub trait Pruning: Send + Sync + 'static {
    /// Removes the cutoff's settled deliveries (and their attempts) of a
    /// subscription, and as many receipts.
    async fn prune_history(
        &self,
        subscription: &SubscriptionId,
        cut: Cutoff,
    ) -> StoreResult<Pruned>;
    /// Removes the cutoff's settled slices among the next `cut.limit` after
    /// id `after`; answers where to go on from, if the walk goes on.
    async fn prune_slices(&self, after: i64, cut: Cutoff) -> StoreResult<(Pruned, Option<i64>)>;
}

/// What one retention step may remove: at most `limit` of what was made
/// before `before`.
#[derive(Clone, Copy, Debug)]
pub struct Cutoff {
    pub before: DateTime<Utc>,
    pub limit: u32,
}
