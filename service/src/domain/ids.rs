//! Identifiers. Every entity id is 24 lowercase hex digits, the shape the
//! seed's `webinarId` has (and the original platform's), so integrations that
//! validate ids keep working. The `webhook-id` of a delivery is derived, not
//! random, so every retry, restart and instance computes the same one.
//! Each kind of id is its own type ([`CreatorId`], [`WebinarId`], …, made
//! by one macro): parsed once at the API edge, carried as is through the
//! model and the store, and built unchecked from what the store itself
//! wrote ([`Id::trusted`]), so the hot path never validates an id again.

use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::borrow::Cow;

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

/// Whether `s` has the shape of a delivery's webhook-id: `msg_` then 24
/// (a test event), 32 (a slice's delivery) or 33 (`b` and 32, a batch) hex
/// digits.
pub fn is_webhook_id(s: &str) -> bool {
    let hex = |h: &str| {
        h.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    match s.strip_prefix("msg_") {
        Some(h) if h.len() == 24 || h.len() == 32 => hex(h),
        Some(h) => h.len() == 33 && h.starts_with('b') && hex(h),
        None => false,
    }
}

/// A string that does not have the shape of the id asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a {0} id")]
pub struct NotAnId(pub &'static str);

/// Every kind of id's name, as [`NotAnId`] says it.
const KINDS: [&str; 9] = [
    "creator",
    "api key",
    "mango",
    "webinar",
    "participant",
    "subscription",
    "reminder",
    "delivery",
    "session",
];

impl NotAnId {
    /// The kind of id a deserializer's message says was malformed, when the
    /// message is [`NotAnId`]'s: serde carries errors as text, so a path or
    /// body that refused an id is told apart from other refusals here, the
    /// one place that knows the wording.
    pub fn recognize(message: &str) -> Option<&'static str> {
        let what = message.strip_prefix("not a ")?.strip_suffix(" id")?;
        KINDS.into_iter().find(|k| *k == what)
    }
}

/// What every id type is: a string of a known shape, read and written as
/// that string.
pub trait Id: Sized {
    /// The id's text.
    fn as_str(&self) -> &str;
    /// An id the store wrote itself (or a test made up): taken as is,
    /// without the check, so reading rows costs nothing more than a string.
    fn trusted(s: String) -> Self;
}

/// One id type: a `String` of a checked shape, serialized as the string,
/// with a schema that states the shape. `$check` decides the shape.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $check:path, $pattern:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Checks the shape of `s`: anything else cannot exist.
            pub fn parse(s: &str) -> Result<Self, NotAnId> {
                if $check(s) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(NotAnId($what))
                }
            }

            /// The id's text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Id for $name {
            fn as_str(&self) -> &str {
                &self.0
            }

            fn trusted(s: String) -> Self {
                Self(s)
            }
        }

        /// Read from a string of the id's shape; any other string is
        /// refused with [`NotAnId`]'s message, which the API's extractors
        /// recognize ([`NotAnId::recognize`]) and answer as a 404.
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }

        impl std::str::FromStr for $name {
            type Err = NotAnId;

            fn from_str(s: &str) -> Result<Self, NotAnId> {
                Self::parse(s)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(&self.0, f)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        /// Unit tests name ids freely ("s", "w"); the service never does.
        #[cfg(test)]
        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl schemars::JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({"type": "string", "pattern": $pattern})
            }
        }
    };
}

/// An entity id type, which also makes fresh ones.
macro_rules! entity_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        id_type!($(#[$doc])* $name, $what, is_id, "^[0-9a-f]{24}$");

        impl $name {
            /// A fresh id (see [`new_id`]).
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                Self(new_id())
            }
        }
    };
}

entity_id!(
    /// A creator's id.
    CreatorId,
    "creator"
);
entity_id!(
    /// An API key's id (not the key).
    ApiKeyId,
    "api key"
);
entity_id!(
    /// A mango's id.
    MangoId,
    "mango"
);
entity_id!(
    /// A webinar's id.
    WebinarId,
    "webinar"
);
entity_id!(
    /// A registered participant's id.
    ParticipantId,
    "participant"
);
entity_id!(
    /// A subscription's id.
    SubscriptionId,
    "subscription"
);
entity_id!(
    /// A reminder row's id: one interval of one webinar start.
    ReminderId,
    "reminder"
);
id_type!(
    /// A delivery's id: its webhook-id, derived (see [`webhook_id`]) so
    /// every retry, restart and instance names it alike. A batch's delivery
    /// id is one too.
    DeliveryId,
    "delivery",
    is_webhook_id,
    "^msg_([0-9a-f]{24}|b?[0-9a-f]{32})$"
);

/// Whether `s` has the shape of a dashboard session's id: 64 hex digits.
fn is_session_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

id_type!(
    /// A dashboard or portal session's id in the store: a hash of the
    /// cookie's nonce (`api::dashboard::session`), never the cookie.
    SessionId,
    "session",
    is_session_id,
    "^[0-9a-f]{64}$"
);

/// Calls `$m!` with every id type, so what each backend implements for ids
/// (binding them, reading them) is written once for all.
macro_rules! for_each_id {
    ($m:ident) => {
        $m!(
            $crate::domain::ids::CreatorId,
            $crate::domain::ids::ApiKeyId,
            $crate::domain::ids::MangoId,
            $crate::domain::ids::WebinarId,
            $crate::domain::ids::ParticipantId,
            $crate::domain::ids::SubscriptionId,
            $crate::domain::ids::ReminderId,
            $crate::domain::ids::DeliveryId,
            $crate::domain::ids::SessionId
        );
    };
}
pub(crate) use for_each_id;

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
) -> DeliveryId {
    let mut h = Sha256::new();
    for part in [subscription, reminder_label] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.update(from_time.timestamp_millis().to_be_bytes());
    DeliveryId(format!(
        "msg_{}{:012x}",
        hex::encode(&h.finalize()[..10]),
        participant_seq
    ))
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
pub fn join_webhook_id(prefix: &str, seq: i64) -> DeliveryId {
    DeliveryId(format!("{prefix}{seq:012x}"))
}

/// A batch's webhook-id: `msg_b` and a hash of its members' webhook-ids, so
/// the same members make the same batch id wherever they are sent from.
pub fn batch_webhook_id<'a>(members: impl IntoIterator<Item = &'a DeliveryId>) -> DeliveryId {
    let mut h = Sha256::new();
    for m in members {
        h.update(m.as_str().as_bytes());
    }
    DeliveryId(format!("msg_b{}", hex::encode(&h.finalize()[..16])))
}

/// A random key for a one-off delivery (test events, which have no participant).
pub fn one_off_webhook_id() -> DeliveryId {
    DeliveryId(format!("msg_{}", new_id()))
}

#[cfg(test)]
#[path = "ids_tests.rs"]
mod tests;
