//! Bulk replay: every delivery of one subscription with a given status,
//! due within a time window, sent again now. The integrators' route
//! (`POST /api/v1/integration/…/{id}/replay`) and the operator's
//! (`POST /api/v1/platform/subscriptions/{id}/replay`) are both
//! [`replay_of`], once each has found the subscription and checked who may
//! replay it; the dashboard's form goes through [`replay`]. The window's
//! checks are pure ([`check`]), and the store does the rest in one
//! statement (`History::replay_deliveries`).

use super::answer::Accepted;
use super::validate::{instant, Findings};
use super::AppState;
use crate::api::error::{ApiError, ApiResult};
use crate::store::{DeliveryStatus, DynCatalog, Subscription, SubscriptionId};
use chrono::{DateTime, Duration, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The widest window one replay may cover: a month of history at most in
/// one transaction.
pub const MAX_WINDOW_DAYS: i64 = 31;

/// The deliveries a bulk replay takes: those that did not get through.
/// (Delivered ones are replayed one at a time, with `…/retry`.)
#[derive(Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum ReplayStatus {
    /// Refused by the receiver for good (a 4xx other than 408 and 429).
    Failed,
    /// Still failing when their time ran out.
    Expired,
    /// Never sent: too late to be useful when their reminder fired.
    Missed,
}

impl ReplayStatus {
    /// The deliveries' status it stands for.
    pub fn status(self) -> DeliveryStatus {
        match self {
            Self::Failed => DeliveryStatus::Failed,
            Self::Expired => DeliveryStatus::Expired,
            Self::Missed => DeliveryStatus::Missed,
        }
    }

    /// The one a delivery status stands for, if it may be replayed.
    pub fn of(status: DeliveryStatus) -> Option<Self> {
        match status {
            DeliveryStatus::Failed => Some(Self::Failed),
            DeliveryStatus::Expired => Some(Self::Expired),
            DeliveryStatus::Missed => Some(Self::Missed),
            _ => None,
        }
    }
}

/// Which deliveries to send again.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Replay {
    /// An ISO 8601 instant: deliveries due at or after it.
    pub since: String,
    /// An ISO 8601 instant after `since`, at most 31 days later: deliveries
    /// due before it.
    pub until: String,
    /// Deliveries with this status only.
    pub status: ReplayStatus,
}

/// How many deliveries were made due again.
#[derive(Serialize, JsonSchema, Debug)]
pub struct Replayed {
    pub replayed: u64,
}

/// The window `[since, until)`, refused (naming the field) when a bound is
/// not an instant, `until` is not after `since`, or it spans more than
/// [`MAX_WINDOW_DAYS`].
pub fn check(since: &str, until: &str) -> ApiResult<(DateTime<Utc>, DateTime<Utc>)> {
    let mut f = Findings::default();
    let from = f.check(instant("since", since));
    let to = f.check(instant("until", until));
    f.done()?;
    let (Some(from), Some(to)) = (from, to) else {
        unreachable!("both checked");
    };
    if to <= from {
        return Err(ApiError::invalid(
            "invalid_value",
            "until",
            "until must be after since",
        ));
    }
    if to - from > Duration::days(MAX_WINDOW_DAYS) {
        return Err(ApiError::invalid(
            "invalid_value",
            "until",
            format!("the window from since to until is at most {MAX_WINDOW_DAYS} days"),
        ));
    }
    Ok((from, to))
}

/// Replays subscription `sub`'s deliveries with `status` in `window`, each
/// with at least an hour to succeed (as a single retry has).
pub async fn replay(
    store: &DynCatalog,
    sub: &SubscriptionId,
    status: ReplayStatus,
    window: (DateTime<Utc>, DateTime<Utc>),
    now: DateTime<Utc>,
) -> ApiResult<u64> {
    let expires = now + Duration::hours(1);
    Ok(store
        .replay_deliveries(sub, status.status(), window, now, expires)
        .await?)
}

/// The whole of a `POST …/{id}/replay` for `sub`, whose caller was checked
/// already: the window checked (nothing written when it is bad), a disabled
/// subscription refused, the deliveries made due, and its lane woken.
pub(super) async fn replay_of(
    s: &AppState,
    sub: &Subscription,
    b: &Replay,
) -> ApiResult<Accepted<Replayed>> {
    let window = check(&b.since, &b.until)?;
    super::hook_checks::active(sub)?;
    let now = s.ctx.clock.now();
    let replayed = replay(&s.ctx.catalog, &sub.id, b.status, window, now).await?;
    s.dispatcher.wake(&sub.id);
    Ok(Accepted(Replayed { replayed }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(e: ApiError) -> String {
        match e {
            ApiError::Client { field, .. } => field.unwrap_or_default(),
            ApiError::Internal(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_window_is_two_instants_in_order_a_month_apart_at_most() {
        let ok = check("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z").unwrap();
        assert_eq!(ok.1 - ok.0, Duration::days(31));
        assert_eq!(
            field(check("yesterday", "2026-01-01T00:00:00Z").unwrap_err()),
            "since"
        );
        assert_eq!(
            field(check("2026-01-01T00:00:00Z", "").unwrap_err()),
            "until"
        );
        assert_eq!(
            field(check("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z").unwrap_err()),
            "until"
        );
        assert_eq!(
            field(check("2026-01-01T00:00:00Z", "2026-02-01T00:00:00.001Z").unwrap_err()),
            "until"
        );
    }
}
