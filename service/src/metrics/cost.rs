//! What counting costs: the time the metrics take per recorded outcome, as
//! the recorder counts a flush of one fan-out (1 000 outcomes, 2 % failed).
//! Measured by `tminus bench` in its release build and written to its JSON
//! (`metrics_ns_per_outcome`), never asserted by a test.

use super::Metrics;
use crate::domain::ids::Id;
use crate::store::{Attempt, Fresh, Outcome, Verdict};
use chrono::{DateTime, Duration, Utc};

/// Nanoseconds the metrics spend per recorded outcome, over `rounds`
/// flushes of 1 000 outcomes each.
pub fn ns_per_outcome(rounds: u32) -> f64 {
    let m = Metrics::new();
    let t0 = DateTime::<Utc>::from_timestamp_millis(1_700_000_000_000).unwrap_or_default();
    let batch: Vec<Outcome> = (0..1000)
        .map(|i| {
            let failed = i % 50 == 0;
            Outcome {
                delivery_id: Id::trusted("d".to_owned()),
                subscription_id: Id::trusted("s".to_owned()),
                attempt: Attempt {
                    attempt: 1,
                    started_at: t0 + Duration::seconds(1),
                    status_code: Some(if failed { 500 } else { 204 }),
                    latency_ms: 2,
                    error: failed.then(|| "receiver answered 500".into()),
                    response: None,
                },
                verdict: if failed {
                    Verdict::Retry(t0 + Duration::seconds(9))
                } else {
                    Verdict::Delivered
                },
                fresh: Some(Fresh {
                    slice: crate::store::SliceId(1),
                    webinar_id: Id::trusted("w".to_owned()),
                    participant_id: Id::trusted("p".to_owned()),
                    reminder_id: Id::trusted("r".to_owned()),
                    label: "15min".into(),
                    due_at: t0,
                    expires_at: t0 + Duration::minutes(1),
                    late: false,
                    send_at: None,
                }),
                batch: None,
            }
        })
        .collect();
    let t = std::time::Instant::now();
    for _ in 0..rounds.max(1) {
        m.fanouts.note(&batch);
        m.recorded(&batch);
    }
    t.elapsed().as_nanos() as f64 / (f64::from(rounds.max(1)) * batch.len() as f64)
}
