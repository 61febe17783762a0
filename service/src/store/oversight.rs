//! What an operator (or one creator) watches: the fan-outs due next, those
//! running with their progress, the last ones with their lateness and
//! outcomes, and the subscriptions in trouble. Read-only views for the
//! dashboard and the creator portal (`api::dashboard`), each limited to one
//! creator when asked; written once for both backends in
//! `catalog/oversight.rs`. The figures are computed here from counts, as
//! pure functions of the counts and an instant the caller gives.

use super::{CreatorId, ReminderId, StoreResult, Subscription, WebinarId};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

/// A reminder with its webinar: what every fan-out view starts with.
#[derive(Clone, Debug)]
pub struct FanoutReminder {
    pub reminder_id: ReminderId,
    pub webinar_id: WebinarId,
    pub webinar_title: String,
    pub creator_id: CreatorId,
    pub label: String,
    pub due_at: DateTime<Utc>,
}

/// A reminder not yet fired: who it will reach and when.
#[derive(Clone, Debug)]
pub struct DueFanout {
    pub reminder: FanoutReminder,
    /// Participants registered now.
    pub participants: i64,
    /// Active subscriptions the reminder matches now.
    pub subscriptions: i64,
}

impl DueFanout {
    /// Deliveries the fan-out would make if it fired now.
    pub fn deliveries(&self) -> i64 {
        self.participants * self.subscriptions
    }
}

/// A fan-out not yet due (a pending reminder and one active subscription
/// it matches), with what its capacity plan is computed from.
#[derive(Clone, Debug)]
pub struct FanoutInputs {
    pub reminder_id: ReminderId,
    pub webinar_id: WebinarId,
    pub label: String,
    pub due_at: DateTime<Utc>,
    pub from_time: DateTime<Utc>,
    /// Participants registered now.
    pub participants: i64,
    pub subscription_id: super::SubscriptionId,
    pub tuning: super::Tuning,
    /// The endpoint's observed answer time (µs); `None` if never seen.
    pub answer_us: Option<i64>,
}

/// Which pending fan-outs to list: of one webinar, creator or reminder
/// (any when `None`), due by `until`, at most `limit` rows.
#[derive(Clone, Debug)]
pub struct PlanScope<'a> {
    pub webinar: Option<&'a WebinarId>,
    pub creator: Option<&'a CreatorId>,
    pub reminder: Option<&'a ReminderId>,
    pub until: DateTime<Utc>,
    pub limit: i64,
    /// Only subscriptions that allow an early start.
    pub early_only: bool,
}

/// A fan-out's deliveries counted by outcome.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcomes {
    /// Deliveries the fan-out made: participants × subscriptions.
    pub total: i64,
    /// Acknowledged (alone or in a batch).
    pub delivered: i64,
    /// Refused for good.
    pub failed: i64,
    /// Out of time while still failing.
    pub expired: i64,
    /// Recorded unsent: too late when the reminder fired.
    pub missed: i64,
    /// Withdrawn (the webinar moved or ended, the participant left).
    pub cancelled: i64,
}

impl Outcomes {
    /// Deliveries settled for good, whatever their outcome.
    pub fn settled(&self) -> i64 {
        self.delivered + self.failed + self.expired + self.missed + self.cancelled
    }
}

/// A fired reminder's deliveries, counted by outcome.
#[derive(Clone, Debug)]
pub struct FanoutTally {
    pub reminder: FanoutReminder,
    pub fired_at: Option<DateTime<Utc>>,
    pub counts: Outcomes,
    /// Whether work is still pending (slices to send, retries).
    pub running: bool,
    /// The first and the last acknowledgement.
    pub first_at: Option<DateTime<Utc>>,
    pub last_at: Option<DateTime<Utc>>,
}

impl FanoutTally {
    /// Deliveries not settled yet: to send, in flight or retrying.
    pub fn remaining(&self) -> i64 {
        if !self.running {
            return 0;
        }
        (self.counts.total - self.counts.settled()).max(0)
    }

    /// How late the first acknowledgement was after the due instant.
    pub fn first_lateness(&self) -> Option<Duration> {
        self.first_at.map(|t| t - self.reminder.due_at)
    }

    /// How late the last acknowledgement was after the due instant.
    pub fn last_lateness(&self) -> Option<Duration> {
        self.last_at.map(|t| t - self.reminder.due_at)
    }

    /// Acknowledgements per second since it fired: up to `now` while it
    /// runs, up to the last acknowledgement once it is done.
    pub fn rate(&self, now: DateTime<Utc>) -> f64 {
        let (Some(start), true) = (self.fired_at, self.counts.delivered > 0) else {
            return 0.0;
        };
        let end = if self.running {
            now
        } else {
            self.last_at.unwrap_or(now)
        };
        let secs = (end - start).num_milliseconds().max(1) as f64 / 1000.0;
        self.counts.delivered as f64 / secs
    }
}

/// A subscription that is disabled or failing, with its latest failure.
#[derive(Clone, Debug)]
pub struct Trouble {
    pub subscription: Subscription,
    /// The latest delivery that failed an attempt, if any is kept.
    pub delivery_id: Option<super::DeliveryId>,
    pub at: Option<DateTime<Utc>>,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    /// The first bytes of the receiver's answer to that attempt.
    pub response: Option<String>,
}

/// The oversight views. `creator` limits each to one creator's webinars
/// and subscriptions (the portal); `None` is everyone's (the dashboard).
#[async_trait]
pub trait Oversight: Send + Sync + 'static {
    /// Reminders not fired yet, soonest first.
    async fn next_fanouts(
        &self,
        creator: Option<&CreatorId>,
        limit: i64,
    ) -> StoreResult<Vec<DueFanout>>;
    /// Disabled subscriptions and active ones failing now, disabled first.
    async fn troubled_subscriptions(
        &self,
        creator: Option<&CreatorId>,
        limit: i64,
    ) -> StoreResult<Vec<Trouble>>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::Id;

    fn tally(running: bool) -> FanoutTally {
        let due = DateTime::from_timestamp(1_000, 0).unwrap();
        FanoutTally {
            reminder: FanoutReminder {
                reminder_id: ReminderId::trusted("r".into()),
                webinar_id: WebinarId::trusted("w".into()),
                webinar_title: "W".into(),
                creator_id: CreatorId::trusted("c".into()),
                label: "15min".into(),
                due_at: due,
            },
            fired_at: Some(due),
            counts: Outcomes {
                total: 10,
                delivered: 4,
                failed: 1,
                expired: 1,
                ..Outcomes::default()
            },
            running,
            first_at: Some(due + Duration::milliseconds(250)),
            last_at: Some(due + Duration::seconds(2)),
        }
    }

    #[test]
    fn remaining_lateness_and_rate_follow_from_the_counts() {
        let t = tally(true);
        assert_eq!(t.remaining(), 4);
        assert_eq!(t.first_lateness(), Some(Duration::milliseconds(250)));
        assert_eq!(t.last_lateness(), Some(Duration::seconds(2)));
        assert_eq!(t.rate(t.reminder.due_at + Duration::seconds(4)), 1.0);
        let done = tally(false);
        assert_eq!(done.remaining(), 0);
        assert_eq!(done.rate(done.reminder.due_at + Duration::hours(1)), 2.0);
    }
}
