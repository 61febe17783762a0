//! How an attempt ended, as the delivery policy (`delivery::retry`) decides
//! it and the store records it.

use super::DeliveryStatus;
use chrono::{DateTime, Utc};

/// How an attempt ended, as the delivery policy decided.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// The receiver acknowledged it.
    Delivered,
    /// Try again at this instant.
    Retry(DateTime<Utc>),
    /// No point retrying: the reminder is stale.
    Expired,
    /// The receiver answered 410: the subscription is disabled.
    Gone,
}

impl Verdict {
    /// The status the delivery's row takes.
    pub fn status(&self) -> DeliveryStatus {
        match self {
            Verdict::Delivered => DeliveryStatus::Delivered,
            Verdict::Retry(_) => DeliveryStatus::Pending,
            Verdict::Expired => DeliveryStatus::Expired,
            Verdict::Gone => DeliveryStatus::Failed,
        }
    }

    /// When the row is next looked at: the retry's instant, else `now`.
    pub fn next_attempt(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Verdict::Retry(t) => *t,
            _ => now,
        }
    }
}
