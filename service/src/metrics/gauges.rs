//! What a scrape reads from the store: queue depth, subscriptions by
//! status, failing endpoints. (What is too costly for every scrape, the
//! fan-outs predicted late, is counted by the service's watcher, `watch`.)

use crate::domain::status::{Status, SubscriptionStatus};
use crate::store::QueueFigures;
use crate::AppContext;
use ::metrics::Unit;

/// HELP text of the scrape-time gauges.
pub(super) const DESCRIBED: &[(&str, Option<Unit>, &str)] = &[
    (
        "tminus_reminders_due_next_hour",
        None,
        "Pending reminders due within the next hour (overdue ones included)",
    ),
    (
        "tminus_deliveries_pending",
        None,
        "Deliveries waiting: queued (never attempted; a slice counts its participants) or retrying",
    ),
    ("tminus_subscriptions", None, "Subscriptions by status"),
    (
        "tminus_endpoints_failing",
        None,
        "Active subscriptions whose endpoint is failing now (no success since its first failure)",
    ),
];

/// The gauges of one scrape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Gauges(pub QueueFigures);

impl Gauges {
    /// Hands each gauge (name, labels, value) to `set`.
    pub fn set(&self, mut set: impl FnMut(&'static str, &[(&'static str, &'static str)], f64)) {
        let q = &self.0;
        set(
            "tminus_reminders_due_next_hour",
            &[],
            q.due_next_hour as f64,
        );
        set(
            "tminus_deliveries_pending",
            &[("state", "queued")],
            q.queued as f64,
        );
        set(
            "tminus_deliveries_pending",
            &[("state", "retrying")],
            q.retrying as f64,
        );
        // Each status always present, zero included.
        for status in SubscriptionStatus::ALL {
            let n = q
                .subscriptions
                .iter()
                .find(|(s, _)| s == status)
                .map_or(0, |(_, n)| *n);
            set(
                "tminus_subscriptions",
                &[("status", status.as_str())],
                n as f64,
            );
        }
        set("tminus_endpoints_failing", &[], q.failing as f64);
    }
}

/// The exposition text of `ctx`'s metrics, with the gauges read now.
pub async fn scrape(ctx: &AppContext) -> crate::store::StoreResult<String> {
    let started = std::time::Instant::now();
    let figures = ctx.catalog.queue_figures(ctx.clock.now()).await?;
    ctx.metrics.store_call(super::StoreCall::Gauges, started);
    Ok(ctx.metrics.render(&Gauges(figures)))
}
