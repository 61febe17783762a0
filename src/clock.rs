//! The service's notion of "now". Everything that decides by time (what is
//! due, when to retry, whether a reminder is late) asks a [`Clock`] instead of
//! the system, so tests can jump hours ahead without waiting.

use chrono::{DateTime, Duration, Utc};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

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
}
