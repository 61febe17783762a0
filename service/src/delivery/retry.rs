//! Pure delivery decisions: what an attempt's result means (delivered, retry
//! when, expired, gone), with exponential back-off and jitter, honouring a
//! receiver's `Retry-After`. A back-off that would land past the deadline
//! is clamped to it: one last attempt leaves shortly before the webinar
//! starts, so an endpoint that recovers in time still gets its reminder.

use crate::domain::Verdict;
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
    /// The back-off `--retry-base` and `--retry-max` describe.
    pub fn configured(config: &crate::config::Config) -> Self {
        let d = |x: std::time::Duration| Duration::from_std(x).unwrap_or(Duration::seconds(5));
        RetryPolicy {
            base: d(config.retry_base),
            max: d(config.retry_max),
        }
    }

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
        if next < expires_at {
            return Verdict::Retry(next);
        }
        if retry_after.is_some() {
            // The receiver asked for no attempt before then: it wins.
            return Verdict::Expired;
        }
        // The back-off clamped to the deadline: one last attempt `gap` to
        // `2·gap` before it (jittered, so a failed fan-out's last chances
        // do not leave together), if there is room for it; after that
        // attempt there is not, so it is the only one.
        let gap = self.last_gap();
        if expires_at - now <= gap * 3 {
            return Verdict::Expired;
        }
        let spread =
            Duration::milliseconds((gap.num_milliseconds() as f64 * jitter.clamp(0.0, 1.0)) as i64);
        Verdict::Retry(expires_at - gap - spread)
    }

    /// How far before the deadline the last, clamped attempt leaves at
    /// least: half the base back-off, and at most a second.
    pub fn last_gap(&self) -> Duration {
        (self.base / 2).clamp(Duration::milliseconds(1), Duration::seconds(1))
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

    #[test]
    fn the_default_back_off_never_waits_more_than_an_hour() {
        let p = RetryPolicy::configured(&crate::config::Config::defaults());
        let hour = chrono::Duration::hours(1);
        assert_eq!(p.backoff(1), chrono::Duration::seconds(5));
        assert!(p.backoff(10) < hour);
        for attempt in [11, 12, 13, 20, 100, u32::MAX] {
            assert_eq!(p.backoff(attempt), hour, "attempt {attempt}");
        }
        // With the largest jitter the wait is still under the cap.
        let now = crate::clock::wall();
        let far = now + chrono::Duration::days(30);
        let failed = Response::Failed;
        for attempt in 1..=64 {
            match p.verdict(attempt, &failed, now, far, 0.999_999) {
                Verdict::Retry(at) => assert!(at - now <= hour, "attempt {attempt}"),
                v => panic!("attempt {attempt}: {v:?}"),
            }
        }
    }

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
    fn a_back_off_past_the_deadline_is_clamped_to_one_last_attempt_before_it() {
        // 5 s base: the second attempt would be 5–10 s later; the webinar
        // starts in 4 s: the last attempt leaves 1–2 s before it.
        let start = now() + Duration::seconds(4);
        let first = p().verdict(2, &status(500), now(), start, 0.0);
        assert_eq!(first, Verdict::Retry(start - Duration::seconds(1)));
        let spread = p().verdict(2, &Response::Failed, now(), start, 0.5);
        assert_eq!(spread, Verdict::Retry(start - Duration::milliseconds(1500)));
        // That attempt fails too: no room for another one.
        for at in [start - Duration::seconds(1), start - Duration::seconds(2)] {
            assert_eq!(
                p().verdict(3, &status(500), at, start, 0.0),
                Verdict::Expired
            );
        }
        // Too close to the start for a last attempt at all.
        let close = now() + Duration::seconds(3);
        assert_eq!(
            p().verdict(2, &status(500), now(), close, 0.0),
            Verdict::Expired
        );
        // A short base back-off leaves half of it.
        let quick = RetryPolicy {
            base: Duration::milliseconds(200),
            max: Duration::seconds(1),
        };
        let t = now() + Duration::seconds(10);
        let late = now() + Duration::milliseconds(9_900);
        assert_eq!(
            quick.verdict(9, &status(500), late, t, 0.0),
            Verdict::Expired,
            "100 ms left, no room"
        );
        assert_eq!(
            quick.verdict(
                9,
                &status(500),
                now() + Duration::milliseconds(9_600),
                t,
                0.0
            ),
            Verdict::Retry(t - Duration::milliseconds(100))
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
