//! Identifiers. Every entity id is 24 lowercase hex digits, the shape the
//! seed's `webinarId` has (and the original platform's), so integrations that
//! validate ids keep working. The `webhook-id` of a delivery is derived, not
//! random, so every retry, restart and instance computes the same one.

use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A fresh entity id: 4 bytes of seconds since the epoch (ids sort roughly by
/// creation) then 8 random bytes, as 24 lowercase hex digits.
pub fn new_id() -> String {
    let mut raw = [0u8; 12];
    raw[..4].copy_from_slice(&(crate::clock::wall().timestamp() as u32).to_be_bytes());
    rand::rng().fill_bytes(&mut raw[4..]);
    hex::encode(raw)
}

/// Whether `s` has the shape of an entity id; anything else cannot exist, so
/// lookups can answer 404 without asking the store.
pub fn is_id(s: &str) -> bool {
    s.len() == 24
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The idempotency key of one (subscription, participant, reminder) for one
/// start time of the webinar. A rescheduled webinar's reminders announce a new
/// time, so they get new keys; everything else yields the same key forever.
/// It is a hash of (subscription, reminder, start) followed by the
/// participant's registration number, so one fan-out's keys are adjacent and
/// the store appends them instead of scattering writes over its index.
/// No `.` appears in it (the signature scheme forbids one).
pub fn webhook_id(
    subscription: &str,
    participant_seq: i64,
    reminder_label: &str,
    from_time: DateTime<Utc>,
) -> String {
    let mut h = Sha256::new();
    for part in [subscription, reminder_label] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.update(from_time.timestamp_millis().to_be_bytes());
    format!(
        "msg_{}{:012x}",
        hex::encode(&h.finalize()[..10]),
        participant_seq
    )
}

/// Length of the part of a slice delivery's webhook-id that one fan-out's
/// keys share: `msg_` and the hash of (subscription, reminder, start).
pub const WEBHOOK_PREFIX_LEN: usize = 24;

/// A slice delivery's webhook-id taken apart: its fan-out's shared prefix
/// and the participant's registration number. `None` for any other key
/// (a batch's, a test event's).
pub fn split_webhook_id(id: &str) -> Option<(&str, i64)> {
    if id.len() != WEBHOOK_PREFIX_LEN + 12 || !id.starts_with("msg_") {
        return None;
    }
    let (prefix, seq) = id.split_at(WEBHOOK_PREFIX_LEN);
    let hex = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !hex(&prefix[4..]) || !hex(seq) {
        return None;
    }
    Some((prefix, i64::from_str_radix(seq, 16).ok()?))
}

/// The webhook-id of registration number `seq` in the fan-out of `prefix`.
pub fn join_webhook_id(prefix: &str, seq: i64) -> String {
    format!("{prefix}{seq:012x}")
}

/// A random key for a one-off delivery (test events, which have no participant).
pub fn one_off_webhook_id() -> String {
    format!("msg_{}", new_id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_have_the_seed_shape() {
        let id = new_id();
        assert!(is_id(&id), "{id}");
        assert!(!is_id("634FC35DDAF58580E2418C40"));
        assert!(!is_id("634fc35d"));
    }

    #[test]
    fn webhook_id_is_stable_and_depends_on_every_part() {
        let t = DateTime::parse_from_rfc3339("2024-03-15T10:00:00Z")
            .unwrap()
            .to_utc();
        let a = webhook_id("s", 7, "1day", t);
        assert_eq!(a, webhook_id("s", 7, "1day", t));
        assert!(!a.contains('.'));
        assert_eq!(a.len(), 36);
        assert_ne!(a, webhook_id("s", 7, "30min", t));
        assert_ne!(a, webhook_id("s", 8, "1day", t));
        assert_ne!(a, webhook_id("t", 7, "1day", t));
        // One fan-out's keys sort by registration.
        assert!(webhook_id("s", 9, "1day", t) < webhook_id("s", 10, "1day", t));
        assert_ne!(
            a,
            webhook_id("s", 7, "1day", t + chrono::Duration::hours(1))
        );
        // Parts cannot bleed into each other.
        assert_ne!(webhook_id("ab", 1, "x", t), webhook_id("a", 1, "bx", t));
    }

    #[test]
    fn a_slice_webhook_id_splits_into_prefix_and_seq_and_back() {
        let t = DateTime::parse_from_rfc3339("2024-03-15T10:00:00Z")
            .unwrap()
            .to_utc();
        let a = webhook_id("s", 300_007, "1day", t);
        let (prefix, seq) = split_webhook_id(&a).unwrap();
        assert_eq!(seq, 300_007);
        assert_eq!(prefix.len(), WEBHOOK_PREFIX_LEN);
        assert_eq!(join_webhook_id(prefix, seq), a);
        assert_eq!(split_webhook_id(&one_off_webhook_id()), None);
        assert_eq!(
            split_webhook_id("msg_b0123456789abcdef0123456789abcdef"),
            None
        );
        assert_eq!(split_webhook_id(&a.replace("msg_", "msx_")), None);
    }
}
