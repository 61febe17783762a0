//! The catalog: what the platform and integrators create, read and change
//! (creators, keys, mangoes, webinars, participants, subscriptions and the
//! delivery history) — the cold path, a call per API request. It is split
//! by concern so no trait grows past a screen: [`Platform`], [`Webinars`],
//! [`Subscriptions`] and [`History`] are written once here, for every
//! [`super::sql::Backend`] (one statement text and one row mapper each);
//! History with hooks that bring in each backend's receipts; [`Registrations`]
//! (bulk inserts) is per backend, where the dialects really differ.
//! [`Idempotency`] keeps the answers `Idempotency-Key` repeats. [`Upkeep`]
//! is what operators need: figures for the metrics, and retention's
//! deletes; [`Oversight`] gives the dashboard's views and [`Sessions`] its
//! logins; [`Operational`] keeps the platform's own subscription; [`Plans`]
//! gives what fan-outs' capacity plans need. [`Catalog`] is all eleven.
//! The hot path is [`super::Engine`].

pub(crate) mod history;
mod idempotency;
mod operational;
pub(crate) mod oversight;
mod plans;
mod platform;
mod sessions;
mod subscriptions;
pub(crate) mod upkeep;
mod webinars;

pub use operational::{Operational, OPERATIONAL_CREATOR, OPERATIONAL_EVENT};
pub use sessions::SessionRecord;
pub use upkeep::{Pruned, QueueFigures};

use super::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Creators, their API keys and their mangoes.
#[async_trait]
pub trait Platform: Send + Sync + 'static {
    async fn create_creator(&self, name: &str, timezone: Option<&str>) -> StoreResult<Creator>;
    async fn get_creator(&self, id: &CreatorId) -> StoreResult<Creator>;
    async fn list_creators(&self, page: &PageRequest) -> StoreResult<Paged<Creator>>;
    /// Stores a key's hash; the key itself is the caller's to show once.
    async fn create_api_key(&self, key: NewApiKey<'_>) -> StoreResult<ApiKey>;
    async fn list_api_keys(
        &self,
        creator_id: &CreatorId,
        page: &PageRequest,
    ) -> StoreResult<Paged<ApiKey>>;
    async fn revoke_api_key(&self, creator_id: &CreatorId, key_id: &ApiKeyId) -> StoreResult<()>;
    /// The creator owning an unrevoked key with this hash.
    async fn creator_for_key(&self, hash: &str) -> StoreResult<CreatorId>;
    async fn create_mango(&self, creator_id: &CreatorId, name: &str) -> StoreResult<Mango>;
    async fn list_mangoes(
        &self,
        creator_id: &CreatorId,
        page: &PageRequest,
    ) -> StoreResult<Paged<Mango>>;
}

/// Webinars, their reminder rows and their participants.
#[async_trait]
pub trait Webinars: Send + Sync + 'static {
    /// Creates a webinar and arms its reminders in one transaction.
    async fn create_webinar(
        &self,
        creator_id: &CreatorId,
        fields: &WebinarFields,
        reminders: &[PlannedReminder],
    ) -> StoreResult<Webinar>;
    async fn get_webinar(&self, id: &WebinarId) -> StoreResult<Webinar>;
    /// A creator's webinars (not deleted ones) by start time, then id.
    async fn list_webinars(
        &self,
        creator_id: &CreatorId,
        page: &PageRequest,
    ) -> StoreResult<Paged<Webinar>>;
    /// Replaces a webinar's fields. When `reminders` is `Some`, the start
    /// moved: pending reminders and pending deliveries of the old start are
    /// cancelled and these are armed instead.
    async fn update_webinar(
        &self,
        id: &WebinarId,
        fields: &WebinarFields,
        reminders: Option<&[PlannedReminder]>,
    ) -> StoreResult<Webinar>;
    /// Cancels (`deleted = false`) or deletes a webinar: its pending
    /// reminders and deliveries are cancelled; history stays.
    async fn end_webinar(&self, id: &WebinarId, deleted: bool) -> StoreResult<Webinar>;
    /// A webinar's reminder rows by due time, then label and id.
    async fn list_reminders(
        &self,
        webinar_id: &WebinarId,
        page: &PageRequest,
    ) -> StoreResult<Paged<Reminder>>;
    /// The labels (`15min`) of a creator's reminders still pending, in
    /// order: intervals that will still fire, whatever `--reminder-offsets`
    /// says now (a webinar keeps the intervals it was armed with).
    async fn pending_labels(&self, creator_id: &CreatorId) -> StoreResult<Vec<String>>;
    /// A webinar's registered participants, in registration order.
    async fn list_participants(
        &self,
        webinar_id: &WebinarId,
        page: &PageRequest,
    ) -> StoreResult<Paged<Participant>>;
    /// Unregisters a participant and cancels their pending deliveries.
    async fn unregister_participant(
        &self,
        webinar_id: &WebinarId,
        id: &ParticipantId,
    ) -> StoreResult<()>;
}

/// Registering participants. Per backend: a bulk of 200 000 is one
/// `unnest` per chunk on PostgreSQL, in the order of the email so
/// overlapping bulks do not deadlock, and a prepared statement per row on
/// SQLite.
#[async_trait]
pub trait Registrations: Send + Sync + 'static {
    /// Registers one participant: its record, and whether it is new
    /// (`false`: that email, in any case, was registered already, and the
    /// record is that registration).
    async fn register_participant(
        &self,
        webinar_id: &WebinarId,
        person: NewParticipant,
    ) -> StoreResult<(Participant, bool)>;
    /// Registers participants all or nothing, in the order given (the
    /// order their reminders go out in), and answers only how many were new
    /// and how many were there already: the same email again, in any case,
    /// in the batch or before it, is not a second registration. Takes the
    /// batch by value: a bulk request holds up to 200 000. Calls on
    /// several instances at once may overlap: each writes in the order of
    /// the email, so they wait for each other instead of deadlocking.
    async fn register_participants(
        &self,
        webinar_id: &WebinarId,
        people: NewParticipants,
    ) -> StoreResult<RegisterSummary>;
}

/// One subscription as it is now: what a delivery lane reads before it
/// sends (the URL, the caps, the secrets), and what the API shows.
#[async_trait]
pub trait Settings: Send + Sync + 'static {
    /// Subscription `id`, unless it was deleted.
    async fn get_subscription(&self, id: &SubscriptionId) -> StoreResult<Subscription>;
}

/// Subscriptions and their secrets.
#[async_trait]
pub trait Subscriptions: Send + Sync + 'static {
    /// Creates a subscription, or returns the live one with the same
    /// (creator, hookUrl, event, webinar, mango) and `false`.
    async fn subscribe(&self, new: &NewSubscription) -> StoreResult<(Subscription, bool)>;
    /// Live subscriptions by id: a creator's (or everyone's), with one
    /// status (or any).
    async fn list_subscriptions(
        &self,
        creator_id: Option<&CreatorId>,
        status: Option<SubscriptionStatus>,
        page: &PageRequest,
    ) -> StoreResult<Paged<Subscription>>;
    /// Removes a subscription and cancels its pending deliveries.
    async fn delete_subscription(&self, id: &SubscriptionId) -> StoreResult<()>;
    /// Installs a new secret; the old one keeps signing until `grace_until`.
    async fn rotate_secret(
        &self,
        id: &SubscriptionId,
        secret: &str,
        grace_until: DateTime<Utc>,
    ) -> StoreResult<Subscription>;
    /// Every subscription's stored secrets, deleted ones included.
    async fn stored_secrets(&self) -> StoreResult<Vec<StoredSecrets>>;
    /// Replaces a subscription's stored secrets with `new`, if they are
    /// still `old` (a rotation meanwhile wins); says whether it did.
    async fn replace_secrets(&self, old: &StoredSecrets, new: &StoredSecrets) -> StoreResult<bool>;
    async fn update_subscription(
        &self,
        id: &SubscriptionId,
        patch: &SubscriptionPatch,
    ) -> StoreResult<Subscription>;
}

/// The delivery history in bulk, for both backends alike: test events and
/// replays (whose statuses, failed, expired or missed, are always rows).
#[async_trait]
pub trait History: Send + Sync + 'static {
    async fn create_one_off(&self, one_off: &OneOff, now: DateTime<Utc>) -> StoreResult<Delivery>;
    /// Makes every delivery of a subscription with `status` and due in
    /// `window` (from, until: half open) due now again, each with at least
    /// `expires_at` to live, as [`History::retry_delivery`] does one; says
    /// how many. Only rows are looked at: the statuses worth replaying
    /// (failed, expired, missed) never sit in receipts.
    async fn replay_deliveries(
        &self,
        subscription_id: &SubscriptionId,
        status: DeliveryStatus,
        window: (DateTime<Utc>, DateTime<Utc>),
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<u64>;
}

/// Answers remembered for `Idempotency-Key`.
#[async_trait]
pub trait Idempotency: Send + Sync + 'static {
    /// The answer remembered for (caller, key) since `since`.
    async fn remembered(
        &self,
        caller: &str,
        key: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<Option<Remembered>>;
    /// Remembers an answer (or a reservation: status 0, a marker as its
    /// body) unless one is already kept for its (caller, key) since
    /// `since` (the first wins, another instance's included); forgets
    /// those older, and reservations made before `stale` (their request
    /// died with its process). Returns the one kept.
    async fn remember(
        &self,
        r: &Remembered,
        since: DateTime<Utc>,
        stale: DateTime<Utc>,
    ) -> StoreResult<Remembered>;
    /// Turns the reservation whose body is `marker` into the answer `r`.
    async fn settle(&self, r: &Remembered, marker: &[u8]) -> StoreResult<()>;
    /// Drops the reservation whose body is `marker` (its answer is not
    /// kept: a 5xx, a 401, a 429).
    async fn forget(&self, caller: &str, key: &str, marker: &[u8]) -> StoreResult<()>;
}

/// The dashboard's and the portal's sessions (`api::dashboard`), kept so
/// that logout, and revoking the API key a portal login used, end them on
/// every instance.
#[async_trait]
pub trait Sessions: Send + Sync + 'static {
    /// Records a new session; forgets those expired by its start.
    async fn start_session(&self, s: &SessionRecord) -> StoreResult<()>;
    /// Whether session `id` opens pages at `now`: recorded, not ended, not
    /// expired, and the API key it was opened with (if any) not revoked.
    async fn session_live(&self, id: &SessionId, now: DateTime<Utc>) -> StoreResult<bool>;
    /// Ends session `id` (a logout); an ended or unknown one stays so.
    async fn end_session(&self, id: &SessionId, now: DateTime<Utc>) -> StoreResult<()>;
}

/// What operators need of the store: the figures `/metrics` reads at
/// scrape time, and retention's deletes (`crate::retention`), each one
/// short transaction that spares the rows of fan-outs with work left.
#[async_trait]
pub trait Upkeep: Send + Sync + 'static {
    /// Queue depth and subscriptions by status, at `now`.
    async fn queue_figures(&self, now: DateTime<Utc>) -> StoreResult<QueueFigures>;
    /// Whether a reminder's fan-out is over: fanned out to the end, and
    /// no slice of it left to send (retries may remain).
    async fn fanout_finished(
        &self,
        reminder: &ReminderId,
        webinar: &WebinarId,
    ) -> StoreResult<bool>;
    /// Every subscription that may have history, deleted ones included.
    async fn history_owners(&self) -> StoreResult<Vec<SubscriptionId>>;
    /// Removes up to `limit` finished reminders due before `before` whose
    /// announced start is before it too (the webinar, as it was then, is
    /// long past).
    async fn prune_reminders(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64>;
}

/// What fan-outs' capacity plans are computed from, and the endpoints'
/// answer times they use (see `catalog/plans.rs`).
#[async_trait]
pub trait Plans: Send + Sync + 'static {
    /// Pending reminders with each active subscription they match, in
    /// `scope`, soonest first.
    async fn pending_fanouts(&self, scope: &PlanScope) -> StoreResult<Vec<FanoutInputs>>;
    /// Moves each subscription's answer time towards the mean of its new
    /// acknowledged attempts: (subscription, mean in µs, weight in
    /// millionths, see `schedule::forecast::weight_ppm`).
    async fn fold_answer_times(&self, seen: &[(SubscriptionId, i64, i64)]) -> StoreResult<()>;
    /// Starts one subscription's fan-out of a pending reminder early: in
    /// one transaction, slices of every participant registered now,
    /// released at `send_at`, and a note that the reminder's own steps are
    /// to skip them for that subscription (those who register later are
    /// reminded at the instant, with everyone else). `firedAt` takes the
    /// early instant. Answers the last participant covered, or `None` when
    /// the reminder is no longer pending at that instant or this fan-out
    /// was already started early (by this instance or another).
    async fn start_early(&self, e: &EarlyStart) -> StoreResult<Option<i64>>;
}

/// A trait that is every one of `$part`s, implemented for every type that
/// is each of them: the list is written once.
macro_rules! union_trait {
    ($(#[$doc:meta])* $name:ident: $($part:ident),+) => {
        $(#[$doc])*
        pub trait $name: $($part+)* {}

        impl<T: $($part+)* ?Sized> $name for T {}
    };
}

union_trait!(
    /// The whole catalog: what a store answers for the API and the dashboard.
    Catalog: Platform, Plans, Settings, Deliveries, Tallies, Pruning, Webinars, Registrations,
        Subscriptions, History, Idempotency, Upkeep, Oversight, Sessions, Operational
);

/// Cancels the pending deliveries and slices whose `column` (a webinar's
/// or a subscription's id) is `id`.
async fn cancel_work<T: crate::domain::ids::Id>(
    db: &(impl sql::Db + ?Sized),
    column: &'static str,
    id: &T,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let sql = format!(
        "UPDATE deliveries SET status = 'cancelled', updated_at = $2
         WHERE {column} = $1 AND status = 'pending'"
    );
    db.execute(&sql, sql::params![id, now]).await?;
    let sql = format!(
        "UPDATE slices SET status = 'cancelled', locked_until = NULL
         WHERE {column} = $1 AND status = 'pending'"
    );
    db.execute(&sql, sql::params![id]).await?;
    Ok(())
}
