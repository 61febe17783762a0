//! The service's notion of "now". Everything that decides by time (what is
//! due, when to retry, whether a reminder is late) asks a [`Clock`] instead of
//! the system, so tests can jump hours ahead without waiting.

use chrono::{DateTime, Duration, Utc};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// How close to an instant [`Clock::wait_until`] stops sleeping.
const SPIN: std::time::Duration = std::time::Duration::from_millis(2);

/// The system's time, for the few things that must not follow a test's
/// skew: the time prefix of a new id (ids sort by creation across restarts
/// and instances). Everything that decides by time asks a [`Clock`].
pub fn wall() -> DateTime<Utc> {
    Utc::now()
}

/// A source of the current instant, shared by every component of one run.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Milliseconds added to the system time. Zero in production; tests move
    /// it forward to simulate downtime or a far-away due instant.
    skew_ms: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// The current instant as this run sees it.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + Duration::milliseconds(self.skew_ms.load(Ordering::Relaxed))
    }

    /// Returns once this clock reads `t` or later, within a fraction of a
    /// millisecond: timers fire up to a millisecond late, so it sleeps until
    /// shortly before `t` and yields from there. It sleeps at most `cap` at
    /// a time, so a clock moved forward meanwhile is noticed.
    pub async fn wait_until(&self, t: DateTime<Utc>, cap: std::time::Duration) {
        self.wait(t, cap, true).await
    }

    /// As [`Clock::wait_until`], but may return up to a timer's precision
    /// (about a millisecond) late, and never keeps a core busy meanwhile.
    pub async fn sleep_until(&self, t: DateTime<Utc>, cap: std::time::Duration) {
        self.wait(t, cap, false).await
    }

    async fn wait(&self, t: DateTime<Utc>, cap: std::time::Duration, precise: bool) {
        loop {
            let left = (t - self.now()).to_std().unwrap_or_default();
            if left.is_zero() {
                return;
            }
            if precise && left <= SPIN {
                tokio::task::yield_now().await;
            } else {
                let ahead = if precise {
                    SPIN
                } else {
                    std::time::Duration::ZERO
                };
                tokio::time::sleep((left - ahead).min(cap)).await;
            }
        }
    }

    /// How far this clock is ahead of the system's: zero but in tests.
    pub fn skew(&self) -> Duration {
        Duration::milliseconds(self.skew_ms.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every clone of it) forward; tests only.
    pub fn advance(&self, by: Duration) {
        self.skew_ms
            .fetch_add(by.num_milliseconds(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_every_clone() {
        let a = Clock::system();
        let b = a.clone();
        let before = b.now();
        a.advance(Duration::hours(2));
        assert!(b.now() - before >= Duration::hours(2));
    }

    #[tokio::test]
    async fn waits_until_an_instant_and_notices_a_clock_moved_forward() {
        let c = Clock::system();
        let t = c.now() + Duration::milliseconds(30);
        c.wait_until(t, std::time::Duration::from_secs(1)).await;
        assert!(c.now() >= t);
        let far = c.now() + Duration::hours(1);
        let d = c.clone();
        let mover = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            d.advance(Duration::hours(2));
        });
        c.wait_until(far, std::time::Duration::from_millis(10))
            .await;
        assert!(c.now() >= far);
        mover.await.unwrap();
    }
}
