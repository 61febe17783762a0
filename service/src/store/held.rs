//! Deliveries held in receipts (`receipt`), read back as deliveries: what a
//! slice says about each delivery its receipts hold, the delivery an entry
//! stands for, and a reminder's tally of them. Pure, shared by both
//! backends, which find the receipts and their slices.

use super::receipt::Entry;
use super::{
    Delivery, DeliveryId, DeliveryStatus, HeldTally, ParticipantId, ReminderId, SubscriptionId,
    WebinarId,
};
use chrono::{DateTime, Utc};

/// What a slice says about each of its deliveries.
pub struct SliceFacts {
    pub webinar_id: WebinarId,
    pub reminder_id: ReminderId,
    pub label: String,
    pub due_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub late: bool,
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Delivery `id` of `sub`, held as entry `e` of a receipt recorded at
/// `created_ms` for a slice that says `s`: delivered on its first attempt.
pub fn delivery(
    sub: &SubscriptionId,
    id: DeliveryId,
    s: &SliceFacts,
    participant_id: Option<ParticipantId>,
    created_ms: i64,
    e: &Entry,
) -> Delivery {
    Delivery {
        id,
        subscription_id: sub.clone(),
        webinar_id: Some(s.webinar_id.clone()),
        participant_id,
        reminder: s.label.clone(),
        status: DeliveryStatus::Delivered,
        late: s.late,
        attempts: 1,
        due_at: s.due_at,
        next_attempt_at: None,
        expires_at: s.expires_at,
        last_status: Some(e.status),
        last_error: None,
        delivered_at: Some(at(created_ms)),
        batch_id: None,
        attempt_log: Some(vec![e.attempt()]),
    }
}

/// How many deliveries `entries` are, and the first and last
/// acknowledgement among them (an attempt's start plus its latency).
pub fn tally<'e>(entries: impl IntoIterator<Item = &'e Entry>) -> HeldTally {
    let mut t = HeldTally::default();
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    for e in entries {
        let acked = e.started_ms + e.latency_ms as i64;
        first = first.min(acked);
        last = last.max(acked);
        t.count += 1;
    }
    if t.count > 0 {
        t.first = Some(at(first));
        t.last = Some(at(last));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: i64, started_ms: i64, latency_ms: u64) -> Entry {
        Entry {
            seq,
            started_ms,
            latency_ms,
            status: 204,
            response: None,
        }
    }

    #[test]
    fn a_tally_counts_and_spans_the_acknowledgements() {
        let t = tally(&[entry(1, 1_000, 5), entry(2, 900, 300), entry(3, 1_100, 1)]);
        assert_eq!(t.count, 3);
        assert_eq!(t.first, Some(at(1_005)));
        assert_eq!(t.last, Some(at(1_200)));
        assert_eq!(tally(&[]), HeldTally::default());
    }
}
