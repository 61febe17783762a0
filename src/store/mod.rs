//! The storage boundary. Everything tminus remembers goes through [`Store`];
//! the HTTP layer, the scheduler and the delivery workers never see SQL.
//! One implementation per backend lives beside this file; `open` picks one
//! from the database URL once, at start.

pub mod batch;
pub mod idempotency;
pub mod model;
pub mod postgres;
pub mod receipt;
pub mod sqlite;

pub use batch::{NewParticipants, PackedParticipant, ParticipantRef};
pub use idempotency::Remembered;
pub use model::*;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
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
    /// Anything else: I/O, corruption, a bug.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Something another instance did that this one should act on. Only a
/// store shared between instances reports these.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// This subscription has new work (a fan-out's slices, a retry, a test).
    Work(String),
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

/// Everything tminus stores. Lease-based claims (`claim_*`) never hold a
/// transaction open across an HTTP call: they mark rows with an owner and a
/// `locked_until`, and another instance may take them once that has passed.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// What other instances change, for a store shared between several;
    /// `None` for one only this process uses.
    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<Change>> {
        None
    }

    // --- platform -------------------------------------------------------
    async fn create_creator(&self, name: &str, timezone: Option<&str>) -> StoreResult<Creator>;
    async fn get_creator(&self, id: &str) -> StoreResult<Creator>;
    async fn list_creators(&self) -> StoreResult<Vec<Creator>>;
    /// Stores a key's hash; the key itself is the caller's to show once.
    async fn create_api_key(
        &self,
        creator_id: &str,
        name: &str,
        prefix: &str,
        hash: &str,
    ) -> StoreResult<ApiKey>;
    async fn list_api_keys(&self, creator_id: &str) -> StoreResult<Vec<ApiKey>>;
    async fn revoke_api_key(&self, creator_id: &str, key_id: &str) -> StoreResult<()>;
    /// The creator owning an unrevoked key with this hash.
    async fn creator_for_key(&self, hash: &str) -> StoreResult<String>;
    async fn create_mango(&self, creator_id: &str, name: &str) -> StoreResult<Mango>;
    async fn list_mangoes(&self, creator_id: &str) -> StoreResult<Vec<Mango>>;

    // --- webinars and participants --------------------------------------
    /// Creates a webinar and arms its reminders in one transaction.
    async fn create_webinar(
        &self,
        creator_id: &str,
        fields: &WebinarFields,
        reminders: &[PlannedReminder],
    ) -> StoreResult<Webinar>;
    async fn get_webinar(&self, id: &str) -> StoreResult<Webinar>;
    async fn list_webinars(&self, creator_id: &str) -> StoreResult<Vec<Webinar>>;
    /// Replaces a webinar's fields. When `reminders` is `Some`, the start
    /// moved: pending reminders and pending deliveries of the old start are
    /// cancelled and these are armed instead.
    async fn update_webinar(
        &self,
        id: &str,
        fields: &WebinarFields,
        reminders: Option<&[PlannedReminder]>,
    ) -> StoreResult<Webinar>;
    /// Cancels (`deleted = false`) or deletes a webinar: its pending
    /// reminders and deliveries are cancelled; history stays.
    async fn end_webinar(&self, id: &str, deleted: bool) -> StoreResult<Webinar>;
    async fn list_reminders(&self, webinar_id: &str) -> StoreResult<Vec<Reminder>>;
    /// Registers one participant: its record, and whether it is new
    /// (`false`: that email, in any case, was registered already, and the
    /// record is that registration).
    async fn register_participant(
        &self,
        webinar_id: &str,
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
        webinar_id: &str,
        people: NewParticipants,
    ) -> StoreResult<RegisterSummary>;
    async fn list_participants(
        &self,
        webinar_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<Participant>>;
    /// Unregisters a participant and cancels their pending deliveries.
    async fn unregister_participant(&self, webinar_id: &str, id: &str) -> StoreResult<()>;

    // --- subscriptions --------------------------------------------------
    /// Creates a subscription, or returns the live one with the same
    /// (creator, hookUrl, event, webinar, mango) and `false`.
    async fn subscribe(&self, new: &NewSubscription) -> StoreResult<(Subscription, bool)>;
    async fn list_subscriptions(&self, creator_id: Option<&str>) -> StoreResult<Vec<Subscription>>;
    async fn get_subscription(&self, id: &str) -> StoreResult<Subscription>;
    /// Removes a subscription and cancels its pending deliveries.
    async fn delete_subscription(&self, id: &str) -> StoreResult<()>;
    /// Installs a new secret; the old one keeps signing until `grace_until`.
    async fn rotate_secret(
        &self,
        id: &str,
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
        id: &str,
        patch: &SubscriptionPatch,
    ) -> StoreResult<Subscription>;

    // --- deliveries as the integrator sees them -------------------------
    async fn list_deliveries(
        &self,
        subscription_id: &str,
        status: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>>;
    async fn get_delivery(&self, subscription_id: &str, id: &str) -> StoreResult<Delivery>;
    /// Makes a delivery due now again (any state but cancelled), with at
    /// least `expires_at` to live.
    async fn retry_delivery(
        &self,
        subscription_id: &str,
        id: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<Delivery>;
    async fn create_one_off(&self, one_off: &OneOff, now: DateTime<Utc>) -> StoreResult<Delivery>;

    // --- the scheduler ----------------------------------------------------
    /// The earliest due instant of any pending reminder.
    async fn next_reminder_due(&self) -> StoreResult<Option<DateTime<Utc>>>;
    /// Active subscriptions a pending reminder due by `until` will fan out
    /// to: their lanes get ready before it fires.
    async fn subscriptions_due(&self, until: DateTime<Utc>) -> StoreResult<Vec<String>>;
    /// Claims reminders due by `horizon` (`now`, or a little later to stage
    /// the first step of a fan-out ahead of its due instant), and ones whose
    /// fan-out lease lapsed by `now`.
    async fn claim_due_reminders(
        &self,
        now: DateTime<Utc>,
        horizon: DateTime<Utc>,
        owner: &str,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<DueReminder>>;
    /// Fans out the next `batch` participants of a reminder `owner` holds,
    /// resuming from its stored cursor; marks it finished when none are left.
    /// To send, it writes one slice per matching subscription (a range of
    /// participants, not a row each); when missed, a `missed` delivery row
    /// per participant and subscription. Does nothing (and says done) once
    /// the reminder is no longer `owner`'s: its lease lapsed and another
    /// instance took it over. A step before the due instant (`now` earlier
    /// than it) stages: it never finishes the reminder, and who the reminder
    /// is for is frozen by the first step at or after the due instant.
    #[allow(clippy::too_many_arguments)]
    async fn fanout_batch(
        &self,
        reminder_id: &str,
        owner: &str,
        mode: FanoutMode,
        batch: u32,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<FanoutProgress>;

    // --- the delivery workers ---------------------------------------------
    /// Active subscriptions that have pending deliveries.
    async fn subscriptions_with_work(&self) -> StoreResult<Vec<String>>;
    /// When this subscription next has a delivery to attempt, if ever.
    async fn next_delivery_due(&self, subscription_id: &str) -> StoreResult<Option<DateTime<Utc>>>;
    /// Leases due deliveries of one subscription: up to `limit` pending
    /// rows (retries, test events), then whole slices while under `limit`.
    async fn claim_deliveries(
        &self,
        subscription_id: &str,
        now: DateTime<Utc>,
        limit: u32,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Claimed>;
    /// Extends the leases `owner` holds on these slices and pending rows to
    /// `until`: a lane still working through them keeps them, so no other
    /// lane (here or elsewhere) takes them while it does.
    async fn renew_leases(
        &self,
        owner: &str,
        slices: &[i64],
        deliveries: &[String],
        until: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Of what a lane holds (its leased slices and rows, and the
    /// participants of its queued slice jobs), what was withdrawn since it
    /// was leased: slices and rows no longer pending, participants
    /// unregistered. The lane drops those jobs unsent. Asked once per
    /// change made through this instance, and once a tick on a shared
    /// store (changes made through other instances), never per request.
    async fn withdrawn(
        &self,
        slices: &[i64],
        rows: &[String],
        participants: &[String],
    ) -> StoreResult<Withdrawn>;
    /// Records attempts and applies their verdicts, in one transaction.
    /// Subscriptions failing since before `disable_before` are disabled; the
    /// ids of subscriptions disabled by this call are returned.
    /// `done_slices` are slices whose every job has an outcome in this call
    /// or an earlier one.
    /// Shared, not borrowed: a store that works on another thread takes it
    /// there without copying a thousand outcomes, and the recorder keeps it
    /// to try again.
    async fn record_outcomes(
        &self,
        outcomes: Arc<[Outcome]>,
        done_slices: &[i64],
        now: DateTime<Utc>,
        disable_before: DateTime<Utc>,
    ) -> StoreResult<Vec<String>>;
    /// Hands back every lease `owner` still holds (a clean shutdown, after
    /// in-flight attempts were recorded), so another instance or the next
    /// start takes the work at once instead of when the lease lapses.
    async fn release_leases(&self, owner: &str) -> StoreResult<u64>;
    /// Says `instance` is alive at `now` and answers how many instances
    /// are (itself included): those heard from since `alive_since`. A store
    /// only this process uses answers 1.
    async fn heartbeat(
        &self,
        _instance: &str,
        _now: DateTime<Utc>,
        _alive_since: DateTime<Utc>,
    ) -> StoreResult<u32> {
        Ok(1)
    }
    /// Marks pending deliveries (and the unsent rest of slices) whose time
    /// has passed as expired.
    async fn expire_overdue(&self, now: DateTime<Utc>) -> StoreResult<u64>;
    /// The answer remembered for (caller, `Idempotency-Key`) since `since`.
    async fn remembered(
        &self,
        caller: &str,
        key: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<Option<Remembered>>;
    /// Remembers an answer unless one is already kept for its (caller,
    /// key) since `since` (the first wins); forgets those older. Returns
    /// the one kept.
    async fn remember(&self, r: &Remembered, since: DateTime<Utc>) -> StoreResult<Remembered>;
    /// Lets go of the database at the end of a clean stop (SQLite: closes
    /// the file and releases its lock, so the next start can take it at
    /// once). Calls made after it fail.
    async fn close(&self) {}
}

/// The active subscriptions each reminder `r` fans out to (the match a
/// fan-out makes), in SQL both backends speak; each adds its `WHERE`.
pub(crate) const SUBSCRIPTIONS_DUE: &str = "SELECT DISTINCT s.id FROM reminders r
    JOIN webinars w ON w.id = r.webinar_id
    JOIN subscriptions s ON s.creator_id = w.creator_id AND s.status = 'active'
      AND (s.event = 'webinar.reminder.all' OR s.event = 'webinar.reminder.' || r.label)
      AND (s.webinar_id IS NULL OR s.webinar_id = r.webinar_id)
      AND (s.mango_id IS NULL OR s.mango_id IN
           (SELECT mango_id FROM webinar_mangoes wm WHERE wm.webinar_id = r.webinar_id))";

/// The database URL without its password (in the user part, or given as
/// `?password=`), for logs and messages.
pub fn redact_url(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        // Not a URL: a SQLite path, which holds no password.
        return url.to_owned();
    };
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    let secret = |k: &str| k.to_ascii_lowercase().contains("password");
    if u.query_pairs().any(|(k, _)| secret(&k)) {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret(&k) {
                    "***".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

/// Whether `url` names a PostgreSQL database rather than a SQLite file.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Opens the store named by `url`: `postgres://…` (or `postgresql://…`)
/// for PostgreSQL; otherwise a SQLite path or `sqlite:` URL.
pub async fn open(url: &str) -> anyhow::Result<DynStore> {
    open_with(url, None).await
}

/// [`open`], with the certificates that may sign a PostgreSQL server's
/// (`sslmode=require`); `None` means the public web roots.
pub async fn open_with(url: &str, ca: Option<&std::path::Path>) -> anyhow::Result<DynStore> {
    if is_postgres(url) {
        return Ok(Arc::new(postgres::PgStore::open(url, ca).await?));
    }
    Ok(Arc::new(sqlite::SqliteStore::open(url).await?))
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_leave_database_urls() {
        let r = redact_url("postgres://u:pw1@h/db?sslmode=require&password=pw2&sslpassword=pw3");
        assert!(
            !r.contains("pw1") && !r.contains("pw2") && !r.contains("pw3"),
            "{r}"
        );
        assert!(r.contains("sslmode=require"), "{r}");
        assert_eq!(redact_url("tminus.db"), "tminus.db");
    }
}
