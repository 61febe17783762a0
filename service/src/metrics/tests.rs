//! What each outcome counts as, the rendering of counters and histograms
//! with their fixed labels, and fan-out lateness. What counting costs is
//! the bench's figure (`cost`).

use super::*;
use crate::store::{Attempt, Fresh};
use chrono::{DateTime, Duration, Utc};

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_700_000_000_000 + ms).unwrap()
}

fn outcome(verdict: Verdict, code: Option<u16>, error: Option<&str>, latency_ms: u64) -> Outcome {
    Outcome {
        delivery_id: "d".into(),
        subscription_id: "s".into(),
        attempt: Attempt {
            attempt: 1,
            started_at: at(1000),
            status_code: code,
            latency_ms,
            error: error.map(Into::into),
            response: None,
        },
        verdict,
        fresh: Some(Fresh {
            slice: crate::store::SliceId(1),
            webinar_id: "w".into(),
            participant_id: "p".into(),
            reminder_id: "r".into(),
            label: "15min".into(),
            due_at: at(0),
            expires_at: at(60_000),
            late: false,
            send_at: None,
        }),
        batch: None,
    }
}

#[test]
fn each_outcome_counts_as_its_fates() {
    let ok = outcome(Verdict::Delivered, Some(204), None, 3);
    assert_eq!(fates(&ok), (Some(Fate::Delivered), None));
    let failed = outcome(
        Verdict::Retry(at(5000)),
        Some(500),
        Some("receiver answered 500"),
        3,
    );
    assert_eq!(fates(&failed), (Some(Fate::Failed), None));
    let refused = outcome(
        Verdict::Retry(at(5000)),
        None,
        Some("target address 10.0.0.1 is refused by the target guard: private"),
        0,
    );
    assert_eq!(fates(&refused), (Some(Fate::Refused), None));
    let given_up = outcome(Verdict::Expired, None, Some("timeout after 30s"), 30_000);
    assert_eq!(fates(&given_up), (Some(Fate::Failed), Some(Fate::Expired)));
    let gone = outcome(Verdict::Gone, Some(410), Some("receiver answered 410"), 2);
    assert_eq!(fates(&gone), (Some(Fate::Gone), None));
    let vanished = outcome(
        Verdict::Expired,
        None,
        Some("participant or webinar no longer exists; not sent"),
        0,
    );
    assert_eq!(fates(&vanished), (None, Some(Fate::Expired)));
}

#[test]
fn counters_and_histograms_render_with_fixed_labels() {
    let m = Metrics::new();
    m.recorded(&[
        outcome(Verdict::Delivered, Some(204), None, 3),
        outcome(Verdict::Delivered, Some(200), None, 5),
        outcome(
            Verdict::Retry(at(9)),
            Some(503),
            Some("receiver answered 503"),
            1,
        ),
    ]);
    m.count(Fate::Missed, 7);
    m.store_call(StoreCall::Prune, std::time::Instant::now());
    let text = m.render(&gauges::Gauges::default());
    for line in [
        "tminus_deliveries_total{outcome=\"delivered\"} 2",
        "tminus_deliveries_total{outcome=\"failed\"} 1",
        "tminus_deliveries_total{outcome=\"missed\"} 7",
        "tminus_deliveries_total{outcome=\"refused\"} 0",
        "tminus_attempt_duration_seconds_count 3",
        "tminus_store_call_duration_seconds_count{call=\"prune\"} 1",
        "tminus_subscriptions{status=\"disabled\"} 0",
        "tminus_deliveries_pending{state=\"retrying\"} 0",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    assert!(text.contains("# TYPE tminus_attempt_duration_seconds histogram"));
}

#[test]
fn a_fan_out_is_measured_from_its_first_to_its_last_acknowledgement() {
    let f = fanout::Fanouts::default();
    let mut early = outcome(Verdict::Delivered, Some(204), None, 10);
    early.attempt.started_at = at(20);
    let mut late = outcome(Verdict::Delivered, Some(204), None, 100);
    late.attempt.started_at = at(1900);
    let failed = outcome(Verdict::Retry(at(9)), Some(500), None, 1);
    f.note(&[late, failed]);
    f.note(&[early]);
    let open = f.open();
    assert_eq!(open.len(), 1);
    let t = f.close(&open[0].0).unwrap();
    assert_eq!(t.lateness(), Some((0.03, 2.0)));
    assert!(f.close(&open[0].0).is_none(), "observed once");
    let mut before = t.clone();
    before.acked = before
        .acked
        .map(|(_, last)| (before.due_at - Duration::seconds(1), last));
    assert_eq!(before.lateness().unwrap().0, 0.0, "never negative");
}

#[test]
fn a_fan_out_with_no_acknowledgement_is_followed_without_lateness() {
    let f = fanout::Fanouts::default();
    f.note(&[outcome(Verdict::Retry(at(9)), Some(500), None, 1)]);
    let open = f.open();
    assert_eq!(open.len(), 1, "followed, so its end is announced");
    assert_eq!(f.close(&open[0].0).unwrap().lateness(), None);
}

#[test]
fn the_cost_of_counting_is_measured_not_asserted() {
    // The figure is the bench's (`metrics_ns_per_outcome`); here only that
    // the measurement runs and gives a figure.
    assert!(cost::ns_per_outcome(1) > 0.0);
}

#[test]
fn lanes_running_and_their_peak_are_gauges() {
    let m = Metrics::new();
    m.lane(true);
    m.lane(true);
    m.lane(false);
    let text = m.render(&gauges::Gauges::default());
    assert!(text.contains("tminus_lanes 1\n"), "{text}");
    assert!(text.contains("tminus_lanes_peak 2\n"), "{text}");
}

#[test]
fn connections_borrowed_from_the_budget_are_gauges() {
    let m = Metrics::new();
    m.connection_budget(512);
    m.borrowed(true);
    m.borrowed(true);
    m.borrowed(false);
    let text = m.render(&gauges::Gauges::default());
    assert!(
        text.contains("tminus_delivery_connections_borrowed 1\n"),
        "{text}"
    );
    assert!(
        text.contains("tminus_delivery_connections_budget 512\n"),
        "{text}"
    );
}
