//! The engine: the hot path the scheduler and the delivery workers drive
//! (claims, fan-out, leases, recording, expiry, the heartbeat). Each backend
//! writes it in its own dialect (`SKIP LOCKED`, `unnest` and locked
//! slices on PostgreSQL, one writer on SQLite), where the two really differ. Lease-based claims
//! (`claim_*`) never hold a transaction open across an HTTP call: they mark
//! rows with an owner and a `locked_until`, and another instance may take
//! them once that has passed.

use super::*;
use crate::store::FanoutStep;
use crate::store::SliceId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// What the scheduler and the delivery workers ask of the store.
#[async_trait]
pub trait Engine: Send + Sync + 'static {
    /// What other instances change, for a store shared between several;
    /// `None` for one only this process uses.
    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<Change>> {
        None
    }

    /// Says `instance` is alive at `now` and answers how many instances
    /// are (itself included): those heard from since `alive_since`. A store
    /// only this process uses answers 1.
    async fn heartbeat(
        &self,
        _instance: &InstanceId,
        _now: DateTime<Utc>,
        _alive_since: DateTime<Utc>,
    ) -> StoreResult<u32> {
        Ok(1)
    }

    // --- the scheduler ----------------------------------------------------
    /// The earliest due instant of any pending reminder.
    async fn next_reminder_due(&self) -> StoreResult<Option<DateTime<Utc>>>;
    /// Active subscriptions a pending reminder due by `until` will fan out
    /// to: their lanes get ready before it fires.
    async fn subscriptions_due(&self, until: DateTime<Utc>) -> StoreResult<Vec<SubscriptionId>>;
    /// Claims reminders due by `horizon` (`now`, or a little later to stage
    /// the first step of a fan-out ahead of its due instant), and ones whose
    /// fan-out lease lapsed by `now`.
    async fn claim_due_reminders(&self, claim: ReminderClaim) -> StoreResult<Vec<DueReminder>>;
    /// Fans out the next `batch` participants of a reminder `owner` holds,
    /// resuming from its stored cursor; marks it finished when none are left.
    /// To send, it writes one slice per matching subscription (a range of
    /// participants, not a row each); when missed, a `missed` delivery row
    /// per participant and subscription. Does nothing (and says done) once
    /// the reminder is no longer `owner`'s: its lease lapsed and another
    /// instance took it over. A step before the due instant (`now` earlier
    /// than it) stages: it never finishes the reminder, and who the reminder
    /// is for is frozen by the first step at or after the due instant.
    async fn fanout_batch(&self, step: &FanoutStep) -> StoreResult<FanoutProgress>;

    // --- the delivery workers ---------------------------------------------
    /// Active subscriptions that have pending deliveries.
    async fn subscriptions_with_work(&self) -> StoreResult<Vec<SubscriptionId>>;
    /// When this subscription next has a delivery to attempt, if ever.
    async fn next_delivery_due(
        &self,
        subscription_id: &SubscriptionId,
    ) -> StoreResult<Option<DateTime<Utc>>>;
    /// Leases due deliveries of one subscription: up to `limit` pending
    /// rows (retries, test events), then whole slices while under `limit`.
    async fn claim_deliveries(&self, claim: DeliveryClaim) -> StoreResult<Claimed>;
    /// Extends the leases the renewal's `owner` holds on its slices and
    /// pending rows to its `until`: a lane still working through them keeps them, so no other
    /// lane (here or elsewhere) takes them while it does.
    async fn renew_leases(&self, renewal: Renewal) -> StoreResult<()>;
    /// Of what a lane holds (its leased slices and rows, and the
    /// participants of its queued slice jobs), what was withdrawn since it
    /// was leased: slices and rows no longer pending, participants
    /// unregistered. The lane drops those jobs unsent. Asked once per
    /// change made through this instance, and once a tick on a shared
    /// store (changes made through other instances), never per request.
    async fn withdrawn(&self, held: Held) -> StoreResult<Withdrawn>;
    /// Records attempts and applies their verdicts, in one transaction
    /// ([`Recording`]). Answers what changed in the subscriptions' health
    /// (disabled, failing to announce, recovered), for the operational
    /// webhooks.
    async fn record_outcomes(&self, recording: Recording) -> StoreResult<HealthChanges>;
    /// Hands back every lease `owner` still holds (a clean shutdown, after
    /// in-flight attempts were recorded), so another instance or the next
    /// start takes the work at once instead of when the lease lapses.
    async fn release_leases(&self, owner: &InstanceId) -> StoreResult<u64>;
    /// Marks pending deliveries (and the unsent rest of slices) whose time
    /// has passed as expired.
    async fn expire_overdue(&self, now: DateTime<Utc>) -> StoreResult<u64>;
    /// Lets go of the database at the end of a clean stop (SQLite: closes
    /// the file and releases its lock, so the next start can take it at
    /// once). Calls made after it fail.
    async fn close(&self) {}
}

/// A claim of the reminders due by `horizon` (`now`, or a little later to
/// stage a fan-out's first step), and of those whose fan-out lease lapsed by
/// `now`: at most `limit`, held by `owner` until `lease_until`.
#[derive(Clone, Debug)]
pub struct ReminderClaim {
    pub now: DateTime<Utc>,
    pub horizon: DateTime<Utc>,
    pub owner: InstanceId,
    pub lease_until: DateTime<Utc>,
    pub limit: u32,
}

/// A claim of one subscription's deliveries due by `now`: up to `limit`,
/// held by `owner` until `lease_until`.
#[derive(Clone, Debug)]
pub struct DeliveryClaim {
    pub subscription_id: SubscriptionId,
    pub now: DateTime<Utc>,
    pub limit: u32,
    pub owner: InstanceId,
    pub lease_until: DateTime<Utc>,
}

/// What a lane holds: its leased slices and pending rows, and the
/// participants of its queued slice jobs.
#[derive(Clone, Debug, Default)]
pub struct Held {
    pub slices: Vec<SliceId>,
    pub rows: Vec<DeliveryId>,
    pub participants: Vec<ParticipantId>,
}

/// Leases `owner` holds on slices and pending rows, extended to `until`.
#[derive(Clone, Debug)]
pub struct Renewal {
    pub owner: InstanceId,
    pub slices: Vec<SliceId>,
    pub deliveries: Vec<DeliveryId>,
    pub until: DateTime<Utc>,
}

/// Attempts to record at `now`, with the slices they finish.
#[derive(Clone, Debug)]
pub struct Recording {
    /// Shared, not copied: a store that works on another thread takes them
    /// there without copying a thousand outcomes, and the recorder keeps
    /// them to try again.
    pub outcomes: Arc<[Outcome]>,
    /// Slices whose every job has an outcome in this call or an earlier one.
    pub done_slices: Vec<SliceId>,
    pub now: DateTime<Utc>,
    /// Subscriptions failing since before this instant are disabled.
    pub disable_before: DateTime<Utc>,
}
