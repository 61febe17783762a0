//! The states a webinar, reminder, subscription and delivery can be in: one
//! enum each, made by one macro, written to and read from the store as the
//! lowercase words the tables hold and the API shows. A word the enum lacks,
//! read back from the store, is a store error (a bug or a corrupt row),
//! never something carried on half-typed.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What every status enum is: a closed set of words.
pub trait Status: Copy + Sized + 'static {
    /// What the enum is the status of, for errors.
    const OF: &'static str;
    /// The stored and shown word.
    fn as_str(self) -> &'static str;
    /// The status a stored word names, if any.
    fn parse(s: &str) -> Option<Self>;
    /// Every status, in the order declared.
    const ALL: &'static [Self];
}

macro_rules! status_enum {
    ($(#[$doc:meta])* $name:ident of $of:literal { $($variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($variant),+
        }

        impl Status for $name {
            const OF: &'static str = $of;
            const ALL: &'static [Self] = &[$(Self::$variant),+];
            fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word),+
                }
            }
            fn parse(s: &str) -> Option<Self> {
                match s {
                    $($word => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl $name {
            /// The stored and shown word.
            pub fn as_str(self) -> &'static str {
                <Self as Status>::as_str(self)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

status_enum! {
    /// A webinar's state.
    WebinarStatus of "webinar" {
        Scheduled = "scheduled", Cancelled = "cancelled", Deleted = "deleted"
    }
}

status_enum! {
    /// A reminder's state: waiting, being fanned out, sent, missed (its time
    /// passed while nothing could send it) or cancelled with its webinar.
    ReminderStatus of "reminder" {
        Pending = "pending", Firing = "firing", Sent = "sent", Missed = "missed",
        Cancelled = "cancelled"
    }
}

status_enum! {
    /// A delivery's state; `batched`: carried inside the batch `batchId`.
    DeliveryStatus of "delivery" {
        Pending = "pending", Delivered = "delivered", Batched = "batched", Failed = "failed",
        Expired = "expired", Missed = "missed", Cancelled = "cancelled"
    }
}

status_enum! {
    /// A subscription's state: `disabled` after its endpoint failed for too
    /// long (see `disabledReason`).
    // A deleted subscription's row is never read back, so "deleted" is not
    // one of these words.
    SubscriptionStatus of "subscription" { Active = "active", Disabled = "disabled" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<T: Status + PartialEq + std::fmt::Debug + Serialize>() {
        for s in T::ALL {
            assert_eq!(T::parse(s.as_str()), Some(*s));
            let shown = serde_json::to_value(s).unwrap();
            assert_eq!(shown, serde_json::json!(s.as_str()));
        }
        assert_eq!(T::parse("Active "), None);
    }

    #[test]
    fn every_status_reads_back_the_word_it_writes() {
        round_trips::<WebinarStatus>();
        round_trips::<ReminderStatus>();
        round_trips::<DeliveryStatus>();
        round_trips::<SubscriptionStatus>();
    }
}
