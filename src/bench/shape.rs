//! How the benchmark's receiver behaves beyond answering at once, as a
//! real endpoint does: an answer time, fixed or spread uniformly over a
//! range (`--receiver-latency 50ms`, `50ms..250ms`), and a capacity
//! (`--receiver-busy N`: more than N requests in flight are answered `503`
//! with `Retry-After: 1`), and in a fleet run the subscriptions whose
//! endpoints are slow ([`super::fleet`]: they answer after 2 s, whatever
//! the latency). Set on the receiver after the wrk ceiling is measured, so
//! the ceiling stays what plain HTTP can do. Pure: parsing, and the limit
//! such an endpoint puts on a fan-out.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long a slow endpoint takes to answer, in milliseconds.
pub const SLOW_MS: u64 = 2000;

/// The receiver's behaviour: its answer time and its capacity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Shape {
    /// Shortest and longest answer time, in milliseconds (equal when
    /// fixed; zero: at once).
    pub latency_ms: (u64, u64),
    /// Requests in flight beyond which it answers `503`.
    pub busy: Option<usize>,
    /// The subscriptions (indexes of `/hook/{w}/{s}`, from and before)
    /// whose endpoints answer after [`SLOW_MS`].
    #[serde(default)]
    pub slow: Option<(u32, u32)>,
}

impl Shape {
    /// Parses `--receiver-latency`: `DUR` or `DUR..DUR` (humantime).
    pub fn latency(spec: &str) -> Result<(u64, u64), String> {
        let one = |s: &str| {
            humantime::parse_duration(s.trim())
                .map(|d| d.as_millis() as u64)
                .map_err(|e| format!("--receiver-latency {spec:?}: {e}"))
        };
        let (lo, hi) = match spec.split_once("..") {
            Some((a, b)) => (one(a)?, one(b)?),
            None => (one(spec)?, one(spec)?),
        };
        if lo > hi {
            return Err(format!(
                "--receiver-latency {spec:?}: the range is reversed"
            ));
        }
        Ok((lo, hi))
    }

    /// One answer's delay to subscription `sub`, `u` uniform in [0, 1).
    pub fn delay(&self, sub: u32, u: f64) -> Duration {
        if self
            .slow
            .is_some_and(|(from, to)| (from..to).contains(&sub))
        {
            return Duration::from_millis(SLOW_MS);
        }
        let (lo, hi) = self.latency_ms;
        Duration::from_millis(lo + ((hi - lo) as f64 * u.clamp(0.0, 1.0)) as u64)
    }

    /// The most deliveries a second such an endpoint can take from
    /// `subscriptions` subscriptions of `concurrency` each: requests in
    /// flight (capped by its capacity) over the mean answer time. `None`
    /// when it answers at once (the wire, not the endpoint, is the limit).
    pub fn endpoint_limit_rps(&self, subscriptions: usize, concurrency: u32) -> Option<f64> {
        let mean_s = (self.latency_ms.0 + self.latency_ms.1) as f64 / 2000.0;
        if mean_s <= 0.0 {
            return None;
        }
        let mut in_flight = subscriptions as f64 * f64::from(concurrency);
        if let Some(n) = self.busy {
            in_flight = in_flight.min(n as f64);
        }
        Some(in_flight / mean_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_is_a_duration_or_a_range() {
        assert_eq!(Shape::latency("50ms"), Ok((50, 50)));
        assert_eq!(Shape::latency("50ms..250ms"), Ok((50, 250)));
        assert_eq!(Shape::latency("2s"), Ok((2000, 2000)));
        assert!(Shape::latency("250ms..50ms").is_err());
        assert!(Shape::latency("soon").is_err());
    }

    #[test]
    fn the_endpoint_limit_is_what_it_holds_in_flight_over_its_answer_time() {
        let s = Shape {
            latency_ms: (50, 50),
            busy: None,
            slow: None,
        };
        assert_eq!(s.endpoint_limit_rps(1, 64), Some(1280.0));
        assert_eq!(s.delay(0, 0.5), Duration::from_millis(50));
        let ranged = Shape {
            latency_ms: (50, 250),
            busy: Some(8),
            slow: None,
        };
        assert_eq!(ranged.endpoint_limit_rps(1, 64), Some(8.0 / 0.15));
        assert_eq!(ranged.delay(0, 0.5), Duration::from_millis(150));
        assert_eq!(Shape::default().endpoint_limit_rps(1, 64), None);
    }

    #[test]
    fn the_slow_subscriptions_answer_after_two_seconds_the_others_as_shaped() {
        let s = Shape {
            latency_ms: (50, 50),
            busy: None,
            slow: Some((85, 95)),
        };
        assert_eq!(s.delay(84, 0.5), Duration::from_millis(50));
        assert_eq!(s.delay(85, 0.5), Duration::from_millis(2000));
        assert_eq!(s.delay(94, 0.0), Duration::from_millis(2000));
        assert_eq!(s.delay(95, 0.5), Duration::from_millis(50));
    }
}
