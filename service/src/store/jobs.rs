//! The records the engine passes between the store, the scheduler and the
//! delivery lanes: claimed jobs and what a fan-out staged, the verdict on
//! an attempt and how it is recorded, and a fan-out step's progress.

use super::model::{
    Attempt, DeliveryId, InstanceId, ParticipantId, ReminderId, ReminderStatus, SubscriptionId,
    WebinarId,
};
use crate::domain::payload::{ParticipantFacts, WebinarFacts};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// A delivery claimed for sending, with everything needed to render it.
#[derive(Clone, Debug)]
pub struct Job {
    pub id: DeliveryId,
    pub subscription_id: SubscriptionId,
    pub label: String,
    /// The number this attempt will carry in `x-tminus-attempt`.
    pub attempt: u32,
    pub expires_at: DateTime<Utc>,
    pub payload: Option<Vec<u8>>,
    pub webinar_id: Option<WebinarId>,
    pub participant: Option<ParticipantFacts>,
    /// Set for a slice's delivery that has no row yet.
    pub fresh: Option<Fresh>,
}

/// A slice's id: the row a fan-out writes in `slices` for one
/// subscription (a range of participants to send to). Its own type, so it
/// is never taken for a registration number or a count; it binds and reads
/// as the row's integer in both backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SliceId(pub i64);

/// What it takes to write the first row of a slice's delivery.
#[derive(Clone, Debug)]
pub struct Fresh {
    pub slice: SliceId,
    pub webinar_id: WebinarId,
    pub participant_id: ParticipantId,
    pub reminder_id: ReminderId,
    pub label: String,
    pub due_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub late: bool,
    /// When an early start releases it, before `due_at` (which stays the
    /// reminder's instant); `None`: at `due_at`.
    pub send_at: Option<DateTime<Utc>>,
}

impl Fresh {
    /// When the lane may send it: an early start's instant, else the
    /// reminder's.
    pub fn leaves_at(&self) -> DateTime<Utc> {
        self.send_at.unwrap_or(self.due_at)
    }

    /// The first attempt of one participant's delivery in a slice whose
    /// rows look like this one.
    pub fn job(
        &self,
        subscription_id: &SubscriptionId,
        webhook_id: DeliveryId,
        participant_id: ParticipantId,
        facts: ParticipantFacts,
    ) -> Job {
        Job {
            id: webhook_id,
            subscription_id: subscription_id.clone(),
            label: self.label.clone(),
            attempt: 1,
            expires_at: self.expires_at,
            payload: None,
            webinar_id: Some(self.webinar_id.clone()),
            participant: Some(facts),
            fresh: Some(Fresh {
                participant_id,
                ..self.clone()
            }),
        }
    }
}

/// A claimed batch: the jobs, the facts of the webinars they refer to, and
/// the slices they came from with how many jobs each gave.
#[derive(Debug, Default)]
pub struct Claimed {
    pub jobs: Vec<Job>,
    pub webinars: HashMap<WebinarId, WebinarFacts>,
    pub slices: Vec<(SliceId, usize)>,
}

/// A slice row as both backends read it: the range of participants to
/// send and the prototype of its jobs' rows.
pub(crate) struct SliceRow {
    pub id: SliceId,
    pub subscription_id: SubscriptionId,
    pub proto: Fresh,
    /// The webinar's start, which the slice's webhook-ids are made from.
    pub from: DateTime<Utc>,
    /// The range: registration numbers after `after`, up to `last`.
    pub after: i64,
    pub last: i64,
    /// How often the slice was claimed: after the first, some of its
    /// deliveries may be recorded already.
    pub claims: i64,
}

/// The columns a [`SliceRow`] is read from, in its mappers' order.
pub(crate) const SLICE_COLS: &str =
    "id, subscription_id, reminder_id, webinar_id, label, from_time, due_at,
    expires_at, late, after_seq, last_seq, claims, send_at";

/// The webinars `jobs` refer to, each once: a claim reads their facts once.
pub fn webinars_of(jobs: &[Job]) -> std::collections::BTreeSet<WebinarId> {
    jobs.iter().filter_map(|j| j.webinar_id.clone()).collect()
}

/// Of the work a lane holds, what was withdrawn since it was leased (see
/// [`crate::store::Engine::withdrawn`]).
#[derive(Debug, Default)]
pub struct Withdrawn {
    /// Slices no longer pending: cancelled (a cancel, a delete, a
    /// reschedule, a removed subscription), or finished elsewhere.
    pub slices: std::collections::HashSet<SliceId>,
    /// Rows no longer pending.
    pub rows: std::collections::HashSet<DeliveryId>,
    /// Participants unregistered since.
    pub participants: std::collections::HashSet<ParticipantId>,
}

impl Withdrawn {
    pub fn is_empty(&self) -> bool {
        self.slices.is_empty() && self.rows.is_empty() && self.participants.is_empty()
    }
}

pub use crate::domain::Verdict;

/// One attempt's result, to be recorded.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub delivery_id: DeliveryId,
    pub subscription_id: SubscriptionId,
    pub attempt: Attempt,
    pub verdict: Verdict,
    /// For a slice's delivery attempted for the first time: its row to write.
    pub fresh: Option<Fresh>,
    /// For a batch attempted for the first time: its body and its members.
    pub batch: Option<(Vec<u8>, Vec<Member>)>,
}

/// A delivery carried in a batch: its webhook-id and its row.
pub type Member = (DeliveryId, Fresh);

/// One step of a reminder's fan-out, as the scheduler asks for it: who
/// asks (`owner`, whose lease it holds), what to do, at most how many
/// participants, when, how long the new slices are leased for and when
/// their deliveries expire.
#[derive(Clone, Debug)]
pub struct FanoutStep {
    pub reminder_id: ReminderId,
    pub owner: InstanceId,
    pub mode: FanoutMode,
    pub batch: u32,
    pub now: DateTime<Utc>,
    pub lease_until: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What the scheduler should do with the next slice of a reminder.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FanoutMode {
    /// Create deliveries to send; `late` marks them as sent after their time.
    Send { late: bool },
    /// Record the deliveries as missed: too late to be useful.
    Missed,
}

impl FanoutMode {
    /// The status a reminder ends in once its fan-out is done.
    pub fn final_status(self) -> ReminderStatus {
        match self {
            FanoutMode::Missed => ReminderStatus::Missed,
            FanoutMode::Send { .. } => ReminderStatus::Sent,
        }
    }
}

/// Progress of one fan-out slice.
#[derive(Clone, Debug, Default)]
pub struct FanoutProgress {
    /// Subscriptions that received new pending deliveries.
    pub subscriptions: Vec<SubscriptionId>,
    pub created: usize,
    pub done: bool,
}

/// A claimed due reminder, with the webinar start it announces.
#[derive(Clone, Debug)]
pub struct DueReminder {
    pub id: ReminderId,
    pub webinar_id: WebinarId,
    pub label: String,
    pub due_at: DateTime<Utc>,
    pub from_time: DateTime<Utc>,
}

/// Why recording disabled a subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disabled {
    /// Its receiver answered `410 Gone`.
    Gone,
    /// It kept failing without a success for `--disable-after`.
    FailingTooLong,
}

/// What one [`crate::store::Engine::record_outcomes`] call changed in its
/// subscriptions' health: what the operational webhooks announce.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HealthChanges {
    /// Disabled by this call, and why.
    pub disabled: Vec<(SubscriptionId, Disabled)>,
    /// Failing, with a failure to announce now: the first failure after a
    /// success (or since it was made), at most once an hour per
    /// subscription; a failure held back by the hour is announced at the
    /// first failure after it, if no success came meanwhile.
    pub failing: Vec<SubscriptionId>,
    /// Succeeded again after an announced failure, with when that failure
    /// began.
    pub recovered: Vec<(SubscriptionId, DateTime<Utc>)>,
}

impl HealthChanges {
    /// A subscription disabled is announced as that, not as failing too.
    pub fn settle(&mut self) {
        let disabled = &self.disabled;
        self.failing
            .retain(|id| !disabled.iter().any(|(d, _)| d == id));
    }

    /// The ids of the subscriptions disabled.
    pub fn disabled_ids(&self) -> Vec<SubscriptionId> {
        self.disabled.iter().map(|(id, _)| id.clone()).collect()
    }
}

/// How long after announcing a subscription's failure another may be
/// announced.
pub const FAILING_NOTICE_EVERY: chrono::Duration = chrono::Duration::hours(1);

/// One subscription's fan-out of a pending reminder, started before the
/// reminder's instant (see [`crate::store::Plans::start_early`]).
#[derive(Clone, Debug)]
pub struct EarlyStart {
    pub reminder_id: ReminderId,
    pub subscription_id: SubscriptionId,
    /// The reminder's instant, as planned: nothing is started if it moved.
    pub due_at: DateTime<Utc>,
    /// When its deliveries may leave (the plan's start).
    pub send_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Participants per slice.
    pub batch: u32,
}
