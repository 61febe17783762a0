//! How stored records are shown: one typed view per answer body, with the
//! statuses as enums, so the OpenAPI document describes exactly what is
//! sent. Secrets appear only where a view says so.
//!
//! Key order is part of the wire format. Every view but the single webinar
//! lists its keys alphabetically, as the answers built with `json!` (whose
//! maps are sorted) always showed them; a test holds each view to that.

use crate::domain::ids::{ApiKeyId, CreatorId, MangoId, ParticipantId, ReminderId, WebinarId};
use crate::domain::payload::iso_millis;
pub use crate::domain::status::{
    DeliveryStatus, ReminderStatus, SubscriptionStatus, WebinarStatus,
};
use crate::store;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;

/// An instant as every answer writes it: `2024-03-15T10:00:00.000Z`.
pub type Instant = String;

fn at(t: DateTime<Utc>) -> Instant {
    iso_millis(t)
}

fn at_opt(t: Option<DateTime<Utc>>) -> Option<Instant> {
    t.map(iso_millis)
}

/// A creator: owner of webinars, mangoes, API keys and subscriptions.
#[derive(Serialize, JsonSchema, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Creator {
    pub created_at: Instant,
    pub id: CreatorId,
    pub name: String,
    /// `±HH:MM` or an IANA zone; webinars default to it.
    pub timezone: Option<String>,
}

impl From<store::Creator> for Creator {
    fn from(c: store::Creator) -> Self {
        Self {
            created_at: at(c.created_at),
            id: c.id,
            name: c.name,
            timezone: c.timezone,
        }
    }
}

/// An API key: the key itself only in the answer that created it (only
/// its hash is stored), its first ten characters (`prefix`) always.
#[derive(Serialize, JsonSchema, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub created_at: Instant,
    pub creator_id: CreatorId,
    pub id: ApiKeyId,
    /// The key, for the `x-api-key` header: shown once, on creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub name: String,
    pub prefix: String,
    pub revoked_at: Option<Instant>,
}

impl ApiKey {
    /// The view of a stored key, with the key itself when just made.
    pub fn new(k: store::ApiKey, key: Option<String>) -> Self {
        Self {
            created_at: at(k.created_at),
            creator_id: k.creator_id,
            id: k.id,
            key,
            name: k.name,
            prefix: k.prefix,
            revoked_at: at_opt(k.revoked_at),
        }
    }
}

/// A product ("mango") a webinar can belong to.
#[derive(Serialize, JsonSchema, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Mango {
    pub created_at: Instant,
    pub creator_id: CreatorId,
    pub id: MangoId,
    pub name: String,
}

impl From<store::Mango> for Mango {
    fn from(m: store::Mango) -> Self {
        Self {
            created_at: at(m.created_at),
            creator_id: m.creator_id,
            id: m.id,
            name: m.name,
        }
    }
}

/// A webinar. The one view in the stored record's order (its single
/// answers always were); lists show it with sorted keys (`Sorted`).
#[derive(Serialize, JsonSchema, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Webinar {
    pub id: WebinarId,
    pub creator_id: CreatorId,
    pub title: String,
    pub link: String,
    pub from_time: Instant,
    pub to_time: Instant,
    pub timezone: Option<String>,
    /// Mango ids, in the order the webinar was given them.
    pub mangoes: Vec<MangoId>,
    pub status: WebinarStatus,
    pub created_at: Instant,
    pub updated_at: Instant,
}

impl TryFrom<store::Webinar> for Webinar {
    type Error = anyhow::Error;
    fn try_from(w: store::Webinar) -> anyhow::Result<Self> {
        Ok(Self {
            status: w.status,
            id: w.id,
            creator_id: w.creator_id,
            title: w.title,
            link: w.link,
            from_time: at(w.from_time),
            to_time: at(w.to_time),
            timezone: w.timezone,
            mangoes: w.mangoes,
            created_at: at(w.created_at),
            updated_at: at(w.updated_at),
        })
    }
}

/// One reminder of a webinar's schedule.
#[derive(Serialize, JsonSchema, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Reminder {
    /// The reminder's instant (an early start does not move it).
    pub due_at: Instant,
    /// Pending reminders only: the capacity plan of each fan-out it would
    /// make now, one per active subscription it matches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fanouts: Option<Vec<FanoutPlan>>,
    /// When its fan-out really started: the instant, later if it fired
    /// late, earlier if a subscription's early start began it.
    pub fired_at: Option<Instant>,
    /// The webinar start this reminder was planned for.
    pub from_time: Instant,
    pub id: ReminderId,
    /// The interval: `1day`, `30min`, `15min` or a configured offset.
    pub label: String,
    /// Armed after its due time had passed (a webinar created late).
    pub late: bool,
    /// Pending reminders only: the slowest fan-out's predicted duration
    /// (milliseconds); `null` when it matches no subscription.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicted_duration_ms: Option<Option<i64>>,
    /// Pending reminders only: when the slowest fan-out's last delivery is
    /// predicted to be acknowledged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicted_last_at: Option<Option<Instant>>,
    pub status: ReminderStatus,
    pub webinar_id: WebinarId,
}

impl Reminder {
    /// With the capacity plans of its fan-outs (a pending reminder).
    pub fn planned(mut self, plans: Vec<FanoutPlan>) -> Self {
        let slowest = plan::slowest(&plans);
        self.predicted_duration_ms = Some(slowest.as_ref().map(|s| s.0));
        self.predicted_last_at = Some(slowest.map(|s| s.1));
        self.fanouts = Some(plans);
        self
    }
}

impl TryFrom<store::Reminder> for Reminder {
    type Error = anyhow::Error;
    fn try_from(r: store::Reminder) -> anyhow::Result<Self> {
        Ok(Self {
            status: r.status,
            due_at: at(r.due_at),
            fanouts: None,
            fired_at: at_opt(r.fired_at),
            from_time: at(r.from_time),
            id: r.id,
            label: r.label,
            late: r.late,
            predicted_duration_ms: None,
            predicted_last_at: None,
            webinar_id: r.webinar_id,
        })
    }
}

/// A registered participant.
#[derive(Serialize, JsonSchema, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    pub email: String,
    pub id: ParticipantId,
    pub name: String,
    /// `""` when not given.
    pub phone: String,
    pub registered_at: Instant,
    pub timezone: Option<String>,
    pub webinar_id: WebinarId,
}

impl From<store::Participant> for Participant {
    fn from(p: store::Participant) -> Self {
        Self {
            email: p.email,
            id: p.id,
            name: p.name,
            phone: p.phone,
            registered_at: at(p.registered_at),
            timezone: p.timezone,
            webinar_id: p.webinar_id,
        }
    }
}

/// What a bulk registration did: participants new to the webinar, and
/// those already registered (same email), left as they were.
#[derive(Serialize, JsonSchema, Debug)]
pub struct RegisterSummary {
    pub created: usize,
    pub existing: usize,
}

impl From<store::RegisterSummary> for RegisterSummary {
    fn from(s: store::RegisterSummary) -> Self {
        Self {
            created: s.created,
            existing: s.existing,
        }
    }
}

mod hooks;
pub mod plan;
mod sorted;
pub use hooks::{Delivery, Subscription};
pub use plan::FanoutPlan;
pub use sorted::Sorted;

#[cfg(test)]
mod tests;
