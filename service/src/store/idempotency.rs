//! The record behind `Idempotency-Key`: the first answer to a request,
//! kept per caller and key so a repeat within 24 h gets it again.

use chrono::{DateTime, Utc};

/// An answer remembered for (caller, key).
#[derive(Clone, Debug, PartialEq)]
pub struct Remembered {
    pub caller: String,
    pub key: String,
    /// Of the first request's method, path and body: a repeat with another
    /// body is refused, not answered with the first's answer.
    pub request_hash: String,
    pub status: u16,
    pub body: Vec<u8>,
    pub created_at: DateTime<Utc>,
}
