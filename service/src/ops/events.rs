//! The operational events as the platform receives them: one envelope,
//! `{"type", "timestamp", "data"}` (the Standard Webhooks / Svix shape),
//! and a `data` object per type. Pure: each event is built from figures the
//! caller gives, with the key that makes it go once where it must. Nothing
//! here sends, stores or reads the clock.

use crate::domain::payload::iso_millis;
use crate::store::{Disabled, Outcomes, ReminderId, Subscription, SubscriptionId, WebinarId};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{json, Value};

// The event types, as `type` names them.
pub const SUBSCRIPTION_DISABLED: &str = "subscription.disabled";
pub const SUBSCRIPTION_FAILING: &str = "subscription.failing";
pub const SUBSCRIPTION_RECOVERED: &str = "subscription.recovered";
pub const FANOUT_PREDICTED_LATE: &str = "fanout.predicted_late";
pub const FANOUT_FINISHED: &str = "fanout.finished";

/// One event to send.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Its type (`subscription.failing`…): `type` in the body, and the
    /// delivery's label (`x-tminus-reminder`).
    pub kind: &'static str,
    /// What makes it go once: events with the same key get one webhook-id,
    /// and the second is not queued. `None`: each is its own.
    pub once: Option<String>,
    /// The whole body.
    pub body: Value,
}

impl Event {
    fn new(kind: &'static str, at: DateTime<Utc>, data: Value) -> Self {
        Event {
            kind,
            once: None,
            body: json!({"type": kind, "timestamp": iso_millis(at), "data": data}),
        }
    }

    fn once(mut self, key: String) -> Self {
        self.once = Some(key);
        self
    }
}

/// The subscription an event is about, as every `subscription.*` event
/// names it.
fn about(s: &Subscription) -> Value {
    json!({
        "id": s.id,
        "creatorId": s.creator_id,
        "hookUrl": s.hook_url,
        "event": s.event,
        "webinar": s.webinar_id,
    })
}

/// A subscription disabled: its receiver answered 410, or it failed
/// without a success for `--disable-after`.
pub fn disabled(s: &Subscription, why: Disabled, at: DateTime<Utc>) -> Event {
    let reason = match why {
        Disabled::Gone => "gone",
        Disabled::FailingTooLong => "failing_too_long",
    };
    Event::new(
        SUBSCRIPTION_DISABLED,
        at,
        json!({
            "subscription": about(s),
            "reason": reason,
            "message": s.disabled_reason,
            "failingSince": s.failing_since.map(iso_millis),
        }),
    )
}

/// The attempt that made a subscription failing, as events show it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastAttempt {
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// A subscription failing after a success (at most once an hour each).
pub fn failing(s: &Subscription, last: &LastAttempt, at: DateTime<Utc>) -> Event {
    Event::new(
        SUBSCRIPTION_FAILING,
        at,
        json!({
            "subscription": about(s),
            "failingSince": s.failing_since.map(iso_millis),
            "lastAttempt": last,
        }),
    )
}

/// A subscription whose announced failure ended with a success.
pub fn recovered(s: &Subscription, since: DateTime<Utc>, at: DateTime<Utc>) -> Event {
    Event::new(
        SUBSCRIPTION_RECOVERED,
        at,
        json!({
            "subscription": about(s),
            "failingSince": iso_millis(since),
            "recoveredAt": iso_millis(at),
        }),
    )
}

/// What the capacity plan predicts of one fan-out (a reminder × a
/// subscription) that will miss its lateness budget.
#[derive(Clone, Debug, PartialEq)]
pub struct PredictedLate {
    pub webinar_id: WebinarId,
    /// The reminder's label (`15min`, `1day`…).
    pub reminder: String,
    pub subscription_id: SubscriptionId,
    /// The reminder's due instant.
    pub due_at: DateTime<Utc>,
    /// How long the fan-out is predicted to take.
    pub predicted_duration: Duration,
    /// When its last delivery is predicted to leave (`due_at` plus the
    /// duration unless it starts early).
    pub predicted_last_at: DateTime<Utc>,
    /// The subscription's lateness budget.
    pub budget: Duration,
}

/// A fan-out predicted to miss its budget: once per fan-out (its webinar,
/// reminder, due instant and subscription).
pub fn predicted_late(p: &PredictedLate, at: DateTime<Utc>) -> Event {
    let lateness = p.predicted_last_at - p.due_at;
    Event::new(
        FANOUT_PREDICTED_LATE,
        at,
        json!({
            "webinar": p.webinar_id,
            "reminder": p.reminder,
            "subscription": p.subscription_id,
            "dueAt": iso_millis(p.due_at),
            "predictedDurationMs": p.predicted_duration.num_milliseconds(),
            "predictedLastAt": iso_millis(p.predicted_last_at),
            "predictedLatenessMs": lateness.num_milliseconds(),
            "lateBudgetMs": p.budget.num_milliseconds(),
        }),
    )
    .once(format!(
        "{FANOUT_PREDICTED_LATE}\n{}\n{}\n{}\n{}",
        p.webinar_id,
        p.reminder,
        p.due_at.timestamp_millis(),
        p.subscription_id
    ))
}

/// A fan-out's deliveries counted by outcome when it is finished.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    #[serde(flatten)]
    pub outcomes: Outcomes,
    /// Still to be retried when it was announced.
    pub retrying: i64,
}

/// What a finished fan-out reports.
#[derive(Clone, Debug, PartialEq)]
pub struct Finished {
    pub reminder_id: ReminderId,
    pub webinar_id: WebinarId,
    pub reminder: String,
    pub due_at: DateTime<Utc>,
    pub fired_at: Option<DateTime<Utc>>,
    /// The first and the last acknowledgement.
    pub first_at: Option<DateTime<Utc>>,
    pub last_at: Option<DateTime<Utc>>,
    pub counts: Counts,
}

/// A fan-out over (every participant has had a first attempt): once per
/// reminder.
pub fn finished(f: &Finished, at: DateTime<Utc>) -> Event {
    let late = |t: Option<DateTime<Utc>>| t.map(|t| (t - f.due_at).num_milliseconds());
    Event::new(
        FANOUT_FINISHED,
        at,
        json!({
            "webinar": f.webinar_id,
            "reminderId": f.reminder_id,
            "reminder": f.reminder,
            "dueAt": iso_millis(f.due_at),
            "firedAt": f.fired_at.map(iso_millis),
            "firstLatenessMs": late(f.first_at),
            "lastLatenessMs": late(f.last_at),
            "deliveries": f.counts,
        }),
    )
    .once(format!("{FANOUT_FINISHED}\n{}", f.reminder_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    fn plan() -> PredictedLate {
        PredictedLate {
            webinar_id: "w".into(),
            reminder: "15min".into(),
            subscription_id: "s".into(),
            due_at: at(0),
            predicted_duration: Duration::seconds(250),
            predicted_last_at: at(250),
            budget: Duration::seconds(60),
        }
    }

    #[test]
    fn every_event_has_the_envelope() {
        let e = predicted_late(&plan(), at(-60));
        assert_eq!(e.body["type"], "fanout.predicted_late");
        assert_eq!(e.body["timestamp"], "2023-11-14T22:12:20.000Z");
        let d = &e.body["data"];
        assert_eq!(d["predictedLatenessMs"], 250_000);
        assert_eq!(d["lateBudgetMs"], 60_000);
        assert_eq!(d["predictedLastAt"], "2023-11-14T22:17:30.000Z");
        assert_eq!(e.body.as_object().unwrap().len(), 3);
    }

    #[test]
    fn a_fanout_is_announced_once_whenever_it_is_asked() {
        let a = predicted_late(&plan(), at(-60));
        let b = predicted_late(&plan(), at(-30));
        assert_eq!(a.once, b.once);
        let other = PredictedLate {
            subscription_id: "t".into(),
            ..plan()
        };
        assert_ne!(predicted_late(&other, at(-60)).once, a.once);
        let moved = PredictedLate {
            due_at: at(3600),
            ..plan()
        };
        assert_ne!(predicted_late(&moved, at(-60)).once, a.once);
    }

    #[test]
    fn a_finished_fanout_reports_lateness_from_its_due_instant() {
        let f = Finished {
            reminder_id: "r".into(),
            webinar_id: "w".into(),
            reminder: "15min".into(),
            due_at: at(0),
            fired_at: Some(at(0)),
            first_at: Some(at(0) + Duration::milliseconds(40)),
            last_at: Some(at(12)),
            counts: Counts {
                outcomes: Outcomes {
                    total: 3,
                    delivered: 2,
                    failed: 1,
                    ..Outcomes::default()
                },
                retrying: 0,
            },
        };
        let e = finished(&f, at(13));
        let d = &e.body["data"];
        assert_eq!(d["firstLatenessMs"], 40);
        assert_eq!(d["lastLatenessMs"], 12_000);
        assert_eq!(d["deliveries"]["failed"], 1);
        assert_eq!(e.once.as_deref(), Some("fanout.finished\nr"));
    }
}
