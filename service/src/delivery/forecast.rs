//! The capacity plan of a fan-out (one reminder to one subscription): how
//! long it will take at that endpoint, when its last delivery will be
//! acknowledged, whether that misses the subscription's lateness budget, and
//! when an early start (opt-in, `sendEarly`) lets it go so that it does not.
//! Also how an endpoint's observed answer time moves as acknowledgements
//! come in. Pure: no clock, no store; the API, the dashboard, the metric and
//! the scheduler feed these functions and show or act on their answers.
//!
//! The model is the lane's own limits, nothing more: POSTs are `deliveries`
//! divided by the batch size; at most `maxConcurrency` are in flight, each
//! answered after the endpoint's answer time, so they go in waves; a rate
//! cap spaces them `1 / ratePerSecond` apart. The slower of the two bounds
//! the fan-out. Store steps, connection set-up and the lane's slow start are
//! small beside a real endpoint's answer time and are left out.

use chrono::{DateTime, Duration, Utc};

/// The lateness budget of a subscription that names none: its last
/// participant reminded within a minute of the instant.
pub const DEFAULT_LATE_BUDGET_MS: u32 = 60_000;

/// The longest lateness budget a subscription may name: a day, the
/// longest default interval.
pub const MAX_LATE_BUDGET_MS: u32 = 86_400_000;

/// The longest early start a subscription may allow: a reminder that says
/// "in 15 minutes" must not arrive 25 minutes before.
pub const MAX_SEND_EARLY_MS: u32 = 600_000;

/// How much one acknowledged attempt moves an endpoint's answer time: the
/// last few dozen attempts weigh most, so a change at the endpoint shows
/// within a fan-out, and one slow answer does not.
const ALPHA: f64 = 0.05;

/// What limits a fan-out at one endpoint.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Endpoint {
    pub max_concurrency: u32,
    /// POSTs a second at most.
    pub rate_per_second: Option<u32>,
    /// Payloads per POST.
    pub batch_size: u32,
    /// How long the endpoint takes to answer one POST: observed, or the
    /// assumed latency for one never seen.
    pub answer: std::time::Duration,
}

/// How long a fan-out of `deliveries` takes at `e`, from its first POST to
/// the acknowledgement of its last.
pub fn duration(deliveries: u64, e: &Endpoint) -> Duration {
    let posts = deliveries.div_ceil(u64::from(e.batch_size.max(1)));
    if posts == 0 {
        return Duration::zero();
    }
    let answer = e.answer.as_secs_f64();
    let waves = posts.div_ceil(u64::from(e.max_concurrency.max(1)));
    let by_concurrency = waves as f64 * answer;
    let by_rate = e
        .rate_per_second
        .map_or(0.0, |r| (posts - 1) as f64 / f64::from(r.max(1)) + answer);
    secs(by_concurrency.max(by_rate))
}

/// A fan-out's plan.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan {
    /// How long it takes ([`duration`]).
    pub duration: Duration,
    /// When it starts: the reminder's instant, or earlier when an early
    /// start is allowed and needed.
    pub start: DateTime<Utc>,
    /// When its last delivery is acknowledged.
    pub last_at: DateTime<Utc>,
    /// The last delivery lands after the instant plus the budget, even with
    /// the early start allowed: the fan-out is predicted late. This is the
    /// decision a `fanout.predicted_late` event announces.
    pub late: bool,
}

impl Plan {
    /// Whether the fan-out starts before its instant.
    pub fn early(&self, due: DateTime<Utc>) -> bool {
        self.start < due
    }
}

/// The plan of a fan-out due at `due` of `deliveries` at `e`, for a
/// subscription with lateness budget `budget` that allows starting up to
/// `send_early` before the instant. A fan-out that fits in its budget
/// starts at the instant; one that does not starts early enough that its
/// last delivery lands within the budget, never earlier than `due −
/// send_early`.
pub fn plan(
    due: DateTime<Utc>,
    deliveries: u64,
    e: &Endpoint,
    budget: Duration,
    send_early: Duration,
) -> Plan {
    let d = duration(deliveries, e);
    let start = if d > budget {
        (due + budget - d).max(due - send_early.max(Duration::zero()))
    } else {
        due
    };
    Plan {
        duration: d,
        start,
        last_at: start + d,
        late: start + d > due + budget,
    }
}

/// A reminder's fan-outs summed up: its slowest one, and how many of them
/// are predicted to miss their subscription's budget.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outlook {
    pub duration: Duration,
    pub last_at: DateTime<Utc>,
    pub late: usize,
}

impl Outlook {
    /// Takes one more fan-out's plan in.
    pub fn with(self, p: &Plan) -> Self {
        let slowest = p.last_at > self.last_at;
        Outlook {
            duration: if slowest { p.duration } else { self.duration },
            last_at: self.last_at.max(p.last_at),
            late: self.late + usize::from(p.late),
        }
    }

    /// The outlook of one fan-out's plan.
    pub fn of(p: &Plan) -> Self {
        Outlook {
            duration: p.duration,
            last_at: p.last_at,
            late: usize::from(p.late),
        }
    }
}

/// The plan of one pending fan-out as the store lists it, with `assumed`
/// standing in for the answer time of an endpoint never heard from.
pub fn of(f: &crate::store::FanoutInputs, assumed: std::time::Duration) -> Plan {
    let e = Endpoint {
        max_concurrency: f.tuning.max_concurrency,
        rate_per_second: f.tuning.rate_per_second,
        batch_size: f.tuning.batch_size,
        answer: f.answer_us.map_or(assumed, |us| {
            std::time::Duration::from_micros(us.max(0) as u64)
        }),
    };
    plan(
        f.due_at,
        f.participants.max(0) as u64,
        &e,
        Duration::milliseconds(i64::from(f.tuning.late_budget_ms)),
        Duration::milliseconds(i64::from(f.tuning.send_early_ms)),
    )
}

/// How far an endpoint's answer time moves towards the mean of `n` new
/// acknowledged attempts, in millionths: as much as `n` attempts folded in
/// one by one would move it.
pub fn weight_ppm(n: u64) -> i64 {
    let kept = (1.0 - ALPHA).powf(n.min(10_000) as f64);
    ((1.0 - kept) * 1e6).round() as i64
}

/// An answer time folded with the mean of `n` new ones (microseconds):
/// the first mean seen stands alone. The store applies the same sum in
/// one statement, so instances folding at once do not lose each other's;
/// this is its reference, for the tests.
#[cfg(test)]
fn fold(old: Option<i64>, mean_us: i64, n: u64) -> i64 {
    match old {
        None => mean_us,
        Some(o) => o + weight_ppm(n) * (mean_us - o) / 1_000_000,
    }
}

fn secs(s: f64) -> Duration {
    Duration::microseconds((s * 1e6).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    fn endpoint(conc: u32, rate: Option<u32>, batch: u32, ms: u64) -> Endpoint {
        Endpoint {
            max_concurrency: conc,
            rate_per_second: rate,
            batch_size: batch,
            answer: std::time::Duration::from_millis(ms),
        }
    }

    #[test]
    fn the_issues_figures_follow_from_concurrency_and_answer_time() {
        // 20 000 at 16 × 200 ms: 250 s; 2 000: 25 s (measured 25.4 s).
        let e = endpoint(16, None, 1, 200);
        assert_eq!(duration(20_000, &e), Duration::seconds(250));
        assert_eq!(duration(2_000, &e), Duration::seconds(25));
        assert_eq!(duration(0, &e), Duration::zero());
        // One wave, however few.
        assert_eq!(duration(3, &e), Duration::milliseconds(200));
    }

    #[test]
    fn batches_and_rate_caps_count() {
        // 1 000 in batches of 100: 10 POSTs, one wave.
        let e = endpoint(16, None, 100, 200);
        assert_eq!(duration(1_000, &e), Duration::milliseconds(200));
        // A rate cap slower than the concurrency: 100 POSTs at 10/s.
        let e = endpoint(64, Some(10), 1, 50);
        assert_eq!(duration(100, &e), Duration::milliseconds(9_950));
        // A rate cap faster than it changes nothing.
        let e = endpoint(2, Some(1_000), 1, 100);
        assert_eq!(duration(10, &e), Duration::milliseconds(500));
    }

    #[test]
    fn a_fanout_within_its_budget_starts_at_its_instant() {
        let e = endpoint(16, None, 1, 200);
        let p = plan(
            at(0),
            2_000,
            &e,
            Duration::seconds(60),
            Duration::minutes(10),
        );
        assert_eq!(p.start, at(0));
        assert_eq!(p.last_at, at(25));
        assert!(!p.late && !p.early(at(0)));
    }

    #[test]
    fn an_early_start_lands_the_last_delivery_within_the_budget_and_no_earlier() {
        let e = endpoint(16, None, 1, 200);
        // 250 s against a 60 s budget: starts 190 s early.
        let p = plan(
            at(0),
            20_000,
            &e,
            Duration::seconds(60),
            Duration::minutes(10),
        );
        assert_eq!((p.start, p.last_at), (at(-190), at(60)));
        assert!(!p.late && p.early(at(0)));
        // Allowed only 100 s: starts 100 s early, still late.
        let p = plan(
            at(0),
            20_000,
            &e,
            Duration::seconds(60),
            Duration::seconds(100),
        );
        assert_eq!((p.start, p.last_at), (at(-100), at(150)));
        assert!(p.late);
        // Not allowed: at the instant, late.
        let p = plan(at(0), 20_000, &e, Duration::seconds(60), Duration::zero());
        assert_eq!((p.start, p.last_at), (at(0), at(250)));
        assert!(p.late);
    }

    #[test]
    fn answer_times_move_as_acknowledgements_come() {
        assert_eq!(fold(None, 200_000, 1), 200_000);
        assert_eq!(weight_ppm(0), 0);
        assert_eq!(weight_ppm(1), 50_000);
        // One slow answer moves it a little; many move it most of the way.
        assert_eq!(fold(Some(200_000), 2_200_000, 1), 300_000);
        assert!(fold(Some(200_000), 2_200_000, 200) > 2_199_000);
    }
}
