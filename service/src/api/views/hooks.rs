//! The integrators' views: a subscription (its secret only where shown on
//! purpose) and its deliveries with their attempts.

use super::{at, at_opt, DeliveryStatus, Instant, SubscriptionStatus};
use crate::domain::ids::{
    CreatorId, DeliveryId, MangoId, ParticipantId, SubscriptionId, WebinarId,
};
use crate::domain::payload::iso_millis;
use crate::store;
use schemars::JsonSchema;
use serde::Serialize;

/// A subscription. The integrator's answers show the base fields;
/// `secret` appears on subscribe and on rotation, with
/// `previousSecretValidUntil` on rotation; the operator's list adds
/// `creatorId` and `failingSince`.
#[derive(Serialize, JsonSchema, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// Payloads per POST: 1 sends single objects, more sends JSON arrays.
    pub batch_size: u32,
    pub created_at: Instant,
    /// Operator's list only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creator_id: Option<CreatorId>,
    /// The requests the subscription's delivery lane on the answering
    /// instance allows in flight now: it adapts to the endpoint within
    /// `maxConcurrency` (fewer when it shows strain, one more per window of
    /// successes). `null` while no delivery is running there.
    pub current_concurrency: Option<usize>,
    pub disabled_reason: Option<String>,
    /// `webinar.reminder.all` or one interval's event.
    pub event: String,
    /// Operator's list only: since when its endpoint has been failing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<Option<Instant>>,
    pub hook_url: String,
    pub id: SubscriptionId,
    /// The lateness budget, in seconds: how long after a reminder's instant
    /// its last participant may be reminded.
    pub late_budget: u32,
    pub mango: Option<MangoId>,
    pub max_concurrency: u32,
    /// The endpoint's answer time, a moving average over its recent
    /// acknowledged attempts (milliseconds); `null` until one is seen.
    pub observed_latency_ms: Option<f64>,
    /// Rotation only: until when the old secret still signs too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_valid_until: Option<Instant>,
    pub rate_per_second: Option<u32>,
    /// The signing secret (`whsec_` + base64), on subscribe and rotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// How long before a reminder's instant its fan-out may start when it
    /// would miss its budget otherwise, in seconds (0: never early).
    pub send_early: u32,
    pub status: SubscriptionStatus,
    pub webinar: Option<WebinarId>,
}

impl Subscription {
    /// The integrator's view; `secret` (opened from its stored form) only
    /// on subscribe and rotation.
    pub fn new(s: &store::Subscription, secret: Option<String>) -> anyhow::Result<Self> {
        Ok(Self {
            batch_size: s.tuning.batch_size,
            created_at: iso_millis(s.created_at),
            creator_id: None,
            current_concurrency: None,
            disabled_reason: s.disabled_reason.clone(),
            event: s.event.clone(),
            failing_since: None,
            hook_url: s.hook_url.clone(),
            id: s.id.clone(),
            late_budget: s.tuning.late_budget_ms / 1000,
            mango: s.mango_id.clone(),
            max_concurrency: s.tuning.max_concurrency,
            observed_latency_ms: s.answer_us.map(|us| us as f64 / 1000.0),
            previous_secret_valid_until: None,
            rate_per_second: s.tuning.rate_per_second,
            secret,
            send_early: s.tuning.send_early_ms / 1000,
            status: s.status,
            webinar: s.webinar_id.clone(),
        })
    }

    /// With the lane's limit on this instance, if one runs.
    pub fn live(self, d: &crate::delivery::Dispatcher) -> Self {
        Self {
            current_concurrency: d.limit(&self.id),
            ..self
        }
    }

    /// The operator's view: whose it is and since when it fails.
    pub fn for_operator(s: &store::Subscription) -> anyhow::Result<Self> {
        Ok(Self {
            creator_id: Some(s.creator_id.clone()),
            failing_since: Some(at_opt(s.failing_since)),
            ..Self::new(s, None)?
        })
    }
}

/// One recorded attempt of a delivery.
#[derive(Serialize, JsonSchema, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub attempt: u32,
    /// Why it failed, when no answer came (timeout, refused…).
    pub error: Option<String>,
    pub latency_ms: u64,
    /// The start of the receiver's answer, cut short.
    pub response: Option<String>,
    pub started_at: Instant,
    pub status_code: Option<u16>,
}

impl From<store::Attempt> for Attempt {
    fn from(a: store::Attempt) -> Self {
        Self {
            attempt: a.attempt,
            error: a.error,
            latency_ms: a.latency_ms,
            response: a.response,
            started_at: at(a.started_at),
            status_code: a.status_code,
        }
    }
}

/// A delivery: one payload (or one batch) for one subscription.
#[derive(Serialize, JsonSchema, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Every attempt, on the single delivery's answer only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_log: Option<Vec<Attempt>>,
    pub attempts: u32,
    /// For a delivery sent inside a batch: the batch's delivery id.
    pub batch_id: Option<DeliveryId>,
    pub delivered_at: Option<Instant>,
    pub due_at: Instant,
    pub expires_at: Instant,
    /// The `webhook-id` it is sent under.
    pub id: DeliveryId,
    pub last_error: Option<String>,
    pub last_status: Option<u16>,
    pub late: bool,
    pub next_attempt_at: Option<Instant>,
    pub participant_id: Option<ParticipantId>,
    /// The interval (`1day`, `30min`, `15min`…) or `test`.
    pub reminder: String,
    pub status: DeliveryStatus,
    pub subscription_id: SubscriptionId,
    pub webinar_id: Option<WebinarId>,
}

impl TryFrom<store::Delivery> for Delivery {
    type Error = anyhow::Error;
    fn try_from(d: store::Delivery) -> anyhow::Result<Self> {
        Ok(Self {
            status: d.status,
            attempt_log: d
                .attempt_log
                .map(|l| l.into_iter().map(Attempt::from).collect()),
            attempts: d.attempts,
            batch_id: d.batch_id,
            delivered_at: at_opt(d.delivered_at),
            due_at: at(d.due_at),
            expires_at: at(d.expires_at),
            id: d.id,
            last_error: d.last_error,
            last_status: d.last_status,
            late: d.late,
            next_attempt_at: at_opt(d.next_attempt_at),
            participant_id: d.participant_id,
            reminder: d.reminder,
            subscription_id: d.subscription_id,
            webinar_id: d.webinar_id,
        })
    }
}
