//! The records the store hands out and takes in. Plain data: validation has
//! happened at the API edge, decisions happen in `schedule` and `delivery`.

pub use crate::domain::ids::{
    ApiKeyId, CreatorId, DeliveryId, MangoId, ParticipantId, ReminderId, SessionId, SubscriptionId,
    WebinarId,
};
pub use crate::domain::instance::InstanceId;
pub use crate::domain::status::{
    DeliveryStatus, ReminderStatus, SubscriptionStatus, WebinarStatus,
};
use chrono::{DateTime, Utc};

/// A creator: owner of webinars, mangoes, API keys and subscriptions.
#[derive(Clone, Debug)]
pub struct Creator {
    pub id: CreatorId,
    pub name: String,
    pub timezone: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// An API key as listed: never the key itself, only its prefix.
#[derive(Clone, Debug)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub creator_id: CreatorId,
    pub name: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An API key to store: its hash, never the key itself (the caller shows
/// it once), with a name and the prefix it is listed by.
#[derive(Clone, Copy, Debug)]
pub struct NewApiKey<'a> {
    pub creator_id: &'a CreatorId,
    pub name: &'a str,
    pub prefix: &'a str,
    pub hash: &'a str,
}

/// A product ("mango") a webinar can belong to.
#[derive(Clone, Debug)]
pub struct Mango {
    pub id: MangoId,
    pub creator_id: CreatorId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// A webinar's editable fields, validated.
#[derive(Clone, Debug)]
pub struct WebinarFields {
    pub title: String,
    pub link: String,
    pub from_time: DateTime<Utc>,
    pub to_time: DateTime<Utc>,
    pub timezone: Option<String>,
    pub mango_ids: Vec<MangoId>,
}

/// A webinar as stored.
#[derive(Clone, Debug)]
pub struct Webinar {
    pub id: WebinarId,
    pub creator_id: CreatorId,
    pub title: String,
    pub link: String,
    pub from_time: DateTime<Utc>,
    pub to_time: DateTime<Utc>,
    pub timezone: Option<String>,
    pub mangoes: Vec<MangoId>,
    pub status: WebinarStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A reminder to arm: one interval of one webinar.
#[derive(Clone, Debug)]
pub struct PlannedReminder {
    pub label: String,
    pub due_at: DateTime<Utc>,
}

/// A reminder row, as the schedule view and the scheduler see it.
#[derive(Clone, Debug)]
pub struct Reminder {
    pub id: ReminderId,
    pub webinar_id: WebinarId,
    pub label: String,
    pub from_time: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub status: ReminderStatus,
    pub late: bool,
    pub fired_at: Option<DateTime<Utc>>,
}

/// A participant to register.
#[derive(Clone, Debug)]
pub struct NewParticipant {
    pub name: String,
    pub email: String,
    pub phone: String,
    pub timezone: Option<String>,
}

/// A registered participant.
#[derive(Clone, Debug)]
pub struct Participant {
    pub id: ParticipantId,
    pub webinar_id: WebinarId,
    pub name: String,
    pub email: String,
    pub phone: String,
    pub timezone: Option<String>,
    pub registered_at: DateTime<Utc>,
}

/// What a bulk registration did.
#[derive(Clone, Debug, Default)]
pub struct RegisterSummary {
    pub created: usize,
    pub existing: usize,
}

/// A subscription to create.
#[derive(Clone, Debug)]
pub struct NewSubscription {
    pub creator_id: CreatorId,
    pub hook_url: String,
    pub event: String,
    pub webinar_id: Option<WebinarId>,
    pub mango_id: Option<MangoId>,
    pub secret: String,
    pub tuning: Tuning,
}

/// How a subscription is delivered to: its caps, its lateness budget and
/// its early start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// Requests in flight at once, at most.
    pub max_concurrency: u32,
    /// Requests a second, at most; no cap when `None`.
    pub rate_per_second: Option<u32>,
    /// Payloads per request (more than 1: JSON arrays).
    pub batch_size: u32,
    /// How long after a reminder's instant its last participant may be
    /// reminded (the lateness budget), in milliseconds.
    pub late_budget_ms: u32,
    /// How long before a reminder's instant its fan-out may start when it
    /// would otherwise miss its budget (0: never early), in milliseconds.
    pub send_early_ms: u32,
}

/// A subscription as stored (the secret included, sealed when a key is
/// given; views decide what to show). Its `Debug` leaves the secrets out.
#[derive(Clone)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub creator_id: CreatorId,
    pub hook_url: String,
    pub event: String,
    pub webinar_id: Option<WebinarId>,
    pub mango_id: Option<MangoId>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_until: Option<DateTime<Utc>>,
    pub status: SubscriptionStatus,
    pub disabled_reason: Option<String>,
    pub tuning: Tuning,
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// The endpoint's answer time, a moving average over its recent
    /// acknowledged attempts (microseconds); `None` until one is seen.
    pub answer_us: Option<i64>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("creator_id", &self.creator_id)
            .field("hook_url", &self.hook_url)
            .field("event", &self.event)
            .field("webinar_id", &self.webinar_id)
            .field("mango_id", &self.mango_id)
            .field("status", &self.status)
            .field("tuning", &self.tuning)
            .field("answer_us", &self.answer_us)
            .finish_non_exhaustive()
    }
}

/// A subscription's secrets as the store keeps them (sealed or not), for
/// re-sealing them under a new key.
#[derive(Clone, PartialEq)]
pub struct StoredSecrets {
    pub id: SubscriptionId,
    pub secret: String,
    pub previous: Option<String>,
}

/// Changes an integrator may make to a subscription.
#[derive(Clone, Debug, Default)]
pub struct SubscriptionPatch {
    pub max_concurrency: Option<u32>,
    /// `Some(None)` removes the rate cap.
    pub rate_per_second: Option<Option<u32>>,
    pub batch_size: Option<u32>,
    pub late_budget_ms: Option<u32>,
    pub send_early_ms: Option<u32>,
    pub enable: bool,
}

/// One recorded attempt.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub attempt: u32,
    pub started_at: DateTime<Utc>,
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
    pub response: Option<String>,
}

/// A delivery as listed to its subscription's owner.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub id: DeliveryId,
    pub subscription_id: SubscriptionId,
    pub webinar_id: Option<WebinarId>,
    pub participant_id: Option<ParticipantId>,
    pub reminder: String,
    pub status: DeliveryStatus,
    pub late: bool,
    pub attempts: u32,
    pub due_at: DateTime<Utc>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// For a delivery sent inside a batch: the batch's delivery id.
    pub batch_id: Option<DeliveryId>,
    pub attempt_log: Option<Vec<Attempt>>,
}

/// A one-off delivery with a fixed body (test events).
#[derive(Clone, Debug)]
pub struct OneOff {
    pub id: DeliveryId,
    pub subscription_id: SubscriptionId,
    pub label: String,
    pub payload: Vec<u8>,
    pub expires_at: DateTime<Utc>,
}
