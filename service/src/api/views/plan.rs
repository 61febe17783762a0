//! How a pending reminder's capacity plan is shown: for each active
//! subscription it matches now, how many deliveries it would make, how long
//! they are predicted to take at that endpoint (`schedule::forecast`), when
//! the last is predicted to be acknowledged, when the fan-out starts (early
//! only when the subscription allows it and the budget needs it), and
//! whether the last participant is still predicted to be reminded later
//! than the subscription's lateness budget. The reminder shows the slowest
//! of its fan-outs beside them.

use super::{at, Instant};
use crate::delivery::forecast;
use crate::domain::ids::{ReminderId, SubscriptionId};
use crate::store::FanoutInputs;
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::HashMap;

/// One fan-out's plan: a pending reminder to one subscription.
#[derive(Serialize, JsonSchema, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct FanoutPlan {
    /// Participants registered now: one delivery each.
    pub deliveries: i64,
    /// The subscription's lateness budget, in seconds.
    pub late_budget: u32,
    /// How long the fan-out is predicted to take at this endpoint, from its
    /// first request to the acknowledgement of its last (milliseconds).
    pub predicted_duration_ms: i64,
    /// When its last delivery is predicted to be acknowledged.
    pub predicted_last_at: Instant,
    /// The last participant is predicted to be reminded later than the
    /// due instant plus the lateness budget (early start included).
    pub predicted_late: bool,
    /// When it starts: the reminder's instant, or earlier when the
    /// subscription allows an early start (`sendEarly`) and the budget
    /// needs it.
    pub start_at: Instant,
    pub subscription_id: SubscriptionId,
}

impl FanoutPlan {
    /// The plan of one listed fan-out; `assumed` stands in for the answer
    /// time of an endpoint never heard from.
    pub fn new(f: &FanoutInputs, assumed: std::time::Duration) -> Self {
        let p = forecast::of(f, assumed);
        Self {
            deliveries: f.participants,
            late_budget: f.tuning.late_budget_ms / 1000,
            predicted_duration_ms: p.duration.num_milliseconds(),
            predicted_last_at: at(p.last_at),
            predicted_late: p.late,
            start_at: at(p.start),
            subscription_id: f.subscription_id.clone(),
        }
    }
}

/// The plans of listed fan-outs, by reminder, each reminder's in
/// subscription order.
pub fn by_reminder(
    rows: &[FanoutInputs],
    assumed: std::time::Duration,
) -> HashMap<ReminderId, Vec<FanoutPlan>> {
    let mut out: HashMap<ReminderId, Vec<FanoutPlan>> = HashMap::new();
    for f in rows {
        out.entry(f.reminder_id.clone())
            .or_default()
            .push(FanoutPlan::new(f, assumed));
    }
    out
}

/// The slowest of a reminder's fan-outs: its duration and last instant.
pub fn slowest(plans: &[FanoutPlan]) -> Option<(i64, Instant)> {
    plans
        .iter()
        .max_by(|a, b| a.predicted_last_at.cmp(&b.predicted_last_at))
        .map(|p| (p.predicted_duration_ms, p.predicted_last_at.clone()))
}
