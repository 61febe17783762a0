//! Pure delivery decisions: what an attempt's result means (delivered, retry
//! when, expired, gone), with exponential back-off and jitter, honouring a
//! receiver's `Retry-After`.

use crate::store::Verdict;
use chrono::{DateTime, Duration, Utc};

/// What came back from one attempt, as far as the policy cares.
#[derive(Clone, Debug, PartialEq)]
pub enum Response {
    /// An HTTP status, with `Retry-After` if the receiver sent one.
    Status {
        code: u16,
        retry_after: Option<Duration>,
    },
    /// No HTTP answer: timeout, refused, reset, refused by the target guard.
    Failed,
}

/// Back-off settings.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    /// The delay before attempt `attempt + 1`, before jitter: base·2^(n−1),
    /// capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1i64 << attempt.saturating_sub(1).min(30);
        (self.base * factor as i32)
            .min(self.max)
            .max(Duration::zero())
    }

    /// Decides the fate of attempt number `attempt` that ended with `resp`
    /// at `now`. `jitter` is uniform in [0, 1): the delay is spread over
    /// [½·backoff, backoff) so a failed fan-out does not retry in lockstep.
    pub fn verdict(
        &self,
        attempt: u32,
        resp: &Response,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        jitter: f64,
    ) -> Verdict {
        let retry_after = match resp {
            Response::Status { code, .. } if (200..300).contains(code) => {
                return Verdict::Delivered
            }
            Response::Status { code: 410, .. } => return Verdict::Gone,
            Response::Status {
                code: 429 | 503,
                retry_after,
            } => *retry_after,
            _ => None,
        };
        let delay = retry_after.unwrap_or_else(|| {
            let full = self.backoff(attempt);
            let ms = full.num_milliseconds() as f64;
            Duration::milliseconds((ms * (0.5 + jitter.clamp(0.0, 1.0) / 2.0)) as i64)
        });
        let next = now + delay;
        if next >= expires_at {
            Verdict::Expired
        } else {
            Verdict::Retry(next)
        }
    }
}

/// Parses `Retry-After`: delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<i64>() {
        return (secs >= 0).then(|| Duration::seconds(secs));
    }
    let when = DateTime::parse_from_rfc2822(v).ok()?.to_utc();
    Some((when - now).max(Duration::zero()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> RetryPolicy {
        RetryPolicy {
            base: Duration::seconds(5),
            max: Duration::minutes(10),
        }
    }
    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-03-15T09:00:00Z")
            .unwrap()
            .to_utc()
    }
    fn status(code: u16) -> Response {
        Response::Status {
            code,
            retry_after: None,
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let secs: Vec<_> = (1..=9).map(|n| p().backoff(n).num_seconds()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 80, 160, 320, 600, 600]);
        assert_eq!(p().backoff(500), Duration::minutes(10));
    }

    #[test]
    fn verdicts() {
        let far = now() + Duration::hours(1);
        assert_eq!(
            p().verdict(1, &status(204), now(), far, 0.0),
            Verdict::Delivered
        );
        assert_eq!(p().verdict(1, &status(410), now(), far, 0.0), Verdict::Gone);
        assert_eq!(
            p().verdict(3, &status(500), now(), far, 0.0),
            Verdict::Retry(now() + Duration::seconds(10))
        );
        assert_eq!(
            p().verdict(3, &Response::Failed, now(), far, 0.5),
            Verdict::Retry(now() + Duration::milliseconds(15_000))
        );
        // 4xx other than 410 is retried too: the receiver may be misconfigured for a while.
        assert!(matches!(
            p().verdict(1, &status(404), now(), far, 0.5),
            Verdict::Retry(_)
        ));
        let soon = now() + Duration::seconds(2);
        assert_eq!(
            p().verdict(1, &status(500), now(), soon, 0.0),
            Verdict::Expired
        );
    }

    #[test]
    fn retry_after_wins_on_429_and_503_only() {
        let far = now() + Duration::hours(1);
        let ra = Some(Duration::seconds(120));
        let r429 = Response::Status {
            code: 429,
            retry_after: ra,
        };
        assert_eq!(
            p().verdict(1, &r429, now(), far, 0.0),
            Verdict::Retry(now() + Duration::seconds(120))
        );
        let r500 = Response::Status {
            code: 500,
            retry_after: ra,
        };
        assert_eq!(
            p().verdict(1, &r500, now(), far, 0.0),
            Verdict::Retry(now() + Duration::milliseconds(2500))
        );
        let r503 = Response::Status {
            code: 503,
            retry_after: Some(Duration::hours(2)),
        };
        assert_eq!(p().verdict(1, &r503, now(), far, 0.0), Verdict::Expired);
    }

    #[test]
    fn parses_both_retry_after_forms() {
        assert_eq!(parse_retry_after("30", now()), Some(Duration::seconds(30)));
        assert_eq!(
            parse_retry_after("Fri, 15 Mar 2024 09:01:00 GMT", now()),
            Some(Duration::seconds(60))
        );
        assert_eq!(parse_retry_after("soon", now()), None);
        assert_eq!(parse_retry_after("-1", now()), None);
    }
}
