//! Fleet shapes of the benchmark: of the `--subscriptions` endpoints each
//! webinar fans out to, `--slow K` answer after [`SLOW_MS`] and `--down K`
//! refuse connections (their URL names a port bound by the benchmark and
//! never listened on). The healthy endpoints come first
//! (`/hook/{w}/0` up to `H - 1`), then the slow ones, then the down ones,
//! so a subscription's index says what it is. A fleet run reports the
//! healthy endpoints' figures apart (`healthy`), and with `--baseline` the
//! benchmark runs the same shape again with only the healthy endpoints and
//! compares the two. Pure: the layout, the figures of a set of endpoints
//! and the comparison.

use super::receiver::{Spread, Stats};
use serde_json::{json, Value};

pub use super::shape::SLOW_MS;

/// What each of a webinar's subscriptions' endpoints is like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fleet {
    pub subscriptions: usize,
    pub slow: usize,
    pub down: usize,
}

/// What one endpoint is like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Healthy,
    Slow,
    Down,
}

impl Fleet {
    /// `subscriptions` endpoints of which `slow` are slow and `down` down;
    /// at least one must be healthy.
    pub fn new(subscriptions: usize, slow: usize, down: usize) -> Result<Fleet, String> {
        if subscriptions == 0 {
            return Err("--subscriptions counts from 1".into());
        }
        if slow + down >= subscriptions {
            return Err(format!(
                "--slow {slow} and --down {down} leave no healthy endpoint of --subscriptions {subscriptions}"
            ));
        }
        Ok(Fleet {
            subscriptions,
            slow,
            down,
        })
    }

    /// Endpoints that answer as the receiver is shaped.
    pub fn healthy(&self) -> usize {
        self.subscriptions - self.slow - self.down
    }

    /// Whether any endpoint is slow or down.
    pub fn is_mixed(&self) -> bool {
        self.slow + self.down > 0
    }

    /// Endpoints that receive deliveries (all but the down ones).
    pub fn reachable(&self) -> usize {
        self.subscriptions - self.down
    }

    /// The slow endpoints' indexes, from and before, for the receiver.
    pub fn slow_range(&self) -> Option<(u32, u32)> {
        let from = self.healthy() as u32;
        (self.slow > 0).then_some((from, from + self.slow as u32))
    }

    /// What subscription `i` of a webinar is like.
    pub fn endpoint(&self, i: usize) -> Endpoint {
        if i < self.healthy() {
            Endpoint::Healthy
        } else if i < self.reachable() {
            Endpoint::Slow
        } else {
            Endpoint::Down
        }
    }

    /// The same shape without its slow and down endpoints.
    pub fn healthy_only(&self) -> Fleet {
        Fleet {
            subscriptions: self.healthy(),
            slow: 0,
            down: 0,
        }
    }
}

/// The webinar's and the subscription's index a bench hook URL names
/// (`…/hook/{w}/{s}`).
pub fn hook_index(url: &str) -> Option<(usize, usize)> {
    let mut back = url.rsplit('/');
    let s = back.next()?.parse().ok()?;
    let w = back.next()?.parse().ok()?;
    (back.next()? == "hook").then_some((w, s))
}

/// Last-delivery lateness over fan-outs (a reminder × a subscription).
pub fn last_lateness(s: &Spread) -> Value {
    json!({"p50": round3(s.p50_ms), "p99": round3(s.p99_ms), "max": round3(s.max_ms)})
}

/// The figures of a set of endpoints from what arrived at them: `expected`
/// deliveries, the endpoints' limit (deliveries a second) and the attempts
/// to them that failed.
pub fn figures(s: &Stats, expected: usize, limit: Option<f64>, failed: Option<u64>) -> Value {
    let elapsed_s = s.last_ms / 1000.0;
    let rate = if s.objects == 0 {
        0.0
    } else {
        s.objects as f64 / elapsed_s.max(1e-9)
    };
    json!({
        "deliveries": s.objects,
        "expected": expected,
        "elapsed_s": round3(elapsed_s),
        "rate_rps": rate.round(),
        "endpoint_limit_rps": limit.map(f64::round),
        "efficiency": limit.map(|l| round3(rate / l)),
        "failed_attempts": failed,
        "lateness_p50_ms": round3(s.p50_ms),
        "lateness_p99_ms": round3(s.p99_ms),
        "first_delivery_lateness_ms": round3(s.first_ms),
        "last_lateness_ms": last_lateness(&s.fanout_last),
    })
}

/// A fleet run's healthy endpoints against the run with only them (each
/// run's `healthy` figures): their last lateness p99 as a ratio of the
/// healthy-only run's, and their rates.
pub fn compare(mixed: &Value, healthy_only: &Value) -> Value {
    let (healthy, healthy_only) = (&mixed["healthy"], &healthy_only["healthy"]);
    let p99 = |v: &Value| v["last_lateness_ms"]["p99"].as_f64();
    let rate = |v: &Value| v["rate_rps"].as_f64();
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(round3(a / b)),
        _ => None,
    };
    json!({
        "healthy_last_lateness_p99_ms": p99(healthy),
        "healthy_only_last_lateness_p99_ms": p99(healthy_only),
        "last_lateness_p99_vs_healthy_only": ratio(p99(healthy), p99(healthy_only)),
        "rate_vs_healthy_only": ratio(rate(healthy), rate(healthy_only)),
    })
}

/// The printout's lines for a run's sets of endpoints (`healthy`, `slow`)
/// and its comparison with the healthy-only run, if any.
pub fn describe(run: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    for set in ["healthy", "slow"] {
        let v = &run[set];
        if v.is_null() {
            continue;
        }
        let last = &v["last_lateness_ms"];
        let mut line = format!(
            "{set} endpoints: {} of {} deliveries, {} /s, last lateness p50 {} / p99 {} / max {} ms",
            v["deliveries"], v["expected"], v["rate_rps"], last["p50"], last["p99"], last["max"]
        );
        if !v["efficiency"].is_null() {
            line += &format!(", efficiency {}", v["efficiency"]);
        }
        if !v["failed_attempts"].is_null() {
            line += &format!(", {} failed attempts", v["failed_attempts"]);
        }
        lines.push(line);
    }
    let c = &run["fleet_vs_healthy_only"];
    if !c.is_null() {
        lines.push(format!(
            "healthy last lateness p99: {} ms with the slow and down endpoints, {} ms without: {}",
            c["healthy_last_lateness_p99_ms"],
            c["healthy_only_last_lateness_p99_ms"],
            c["last_lateness_p99_vs_healthy_only"]
        ));
    }
    lines
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_endpoints_come_first_then_the_slow_then_the_down() {
        let f = Fleet::new(100, 10, 5).unwrap();
        assert_eq!((f.healthy(), f.reachable()), (85, 95));
        assert_eq!(f.endpoint(0), Endpoint::Healthy);
        assert_eq!(f.endpoint(84), Endpoint::Healthy);
        assert_eq!(f.endpoint(85), Endpoint::Slow);
        assert_eq!(f.endpoint(94), Endpoint::Slow);
        assert_eq!(f.endpoint(95), Endpoint::Down);
        assert_eq!(f.endpoint(99), Endpoint::Down);
        assert_eq!(f.slow_range(), Some((85, 95)));
        assert!(f.is_mixed());
        let h = f.healthy_only();
        assert_eq!(h, Fleet::new(85, 0, 0).unwrap());
        assert_eq!(h.slow_range(), None);
        assert!(!h.is_mixed());
    }

    #[test]
    fn a_fleet_keeps_at_least_one_healthy_endpoint() {
        assert!(Fleet::new(10, 5, 5).is_err());
        assert!(Fleet::new(10, 10, 0).is_err());
        assert!(Fleet::new(0, 0, 0).is_err());
        assert!(Fleet::new(10, 5, 4).is_ok());
        assert!(Fleet::new(1, 0, 0).is_ok());
    }

    #[test]
    fn a_hook_url_names_its_webinar_and_subscription() {
        assert_eq!(
            hook_index("https://127.0.0.1:4000/hook/3/97"),
            Some((3, 97))
        );
        assert_eq!(hook_index("http://127.0.0.1:4000/hook/0/0"), Some((0, 0)));
        assert_eq!(hook_index("http://127.0.0.1:4000/other/0/0"), None);
        assert_eq!(hook_index("http://127.0.0.1:4000/hook"), None);
    }

    fn stats(objects: usize, last_ms: f64, fanout_p99: f64) -> Stats {
        Stats {
            count: objects,
            objects,
            last_ms,
            max_ms: last_ms,
            fanout_last: Spread {
                p50_ms: fanout_p99 / 2.0,
                p99_ms: fanout_p99,
                max_ms: last_ms,
            },
            ..Stats::default()
        }
    }

    #[test]
    fn a_set_of_endpoints_has_its_own_rate_efficiency_and_last_lateness() {
        let v = figures(&stats(1000, 2000.0, 1900.0), 1000, Some(1000.0), Some(3));
        assert_eq!(v["rate_rps"], 500.0);
        assert_eq!(v["efficiency"], 0.5);
        assert_eq!(v["failed_attempts"], 3);
        assert_eq!(v["last_lateness_ms"]["p99"], 1900.0);
        assert_eq!(v["last_lateness_ms"]["max"], 2000.0);
        let none = figures(&Stats::default(), 1000, None, None);
        assert_eq!(none["rate_rps"], 0.0);
        assert!(none["efficiency"].is_null());
    }

    #[test]
    fn the_healthy_endpoints_are_compared_with_the_run_without_the_others() {
        let mixed = json!({"healthy": figures(&stats(1000, 2200.0, 2200.0), 1000, None, Some(0))});
        let alone = json!({"healthy": figures(&stats(1000, 2000.0, 2000.0), 1000, None, Some(0))});
        let c = compare(&mixed, &alone);
        assert_eq!(c["last_lateness_p99_vs_healthy_only"], 1.1);
        assert_eq!(c["healthy_last_lateness_p99_ms"], 2200.0);
        assert_eq!(c["healthy_only_last_lateness_p99_ms"], 2000.0);
        // 455 (1 000 in 2.2 s, rounded) of 500 deliveries a second.
        assert_eq!(c["rate_vs_healthy_only"], 0.91);
        let mut alone = alone;
        alone["fleet_vs_healthy_only"] = c;
        let lines = describe(&alone);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].starts_with("healthy endpoints: 1000 of 1000"),
            "{lines:?}"
        );
        assert!(
            lines[1]
                .ends_with("2200.0 ms with the slow and down endpoints, 2000.0 ms without: 1.1"),
            "{lines:?}"
        );
    }
}
