//! What a scrape reads from the store (queue depth, subscriptions by
//! status, failing endpoints) and the watcher that runs beside the service:
//! it closes finished fan-outs (observing their lateness once) and folds
//! histogram samples into buckets every few seconds.

use super::Metrics;
use crate::delivery::Dispatcher;
use crate::domain::status::{Status, SubscriptionStatus};
use crate::store::QueueFigures;
use crate::AppContext;
use ::metrics::Unit;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

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
    let figures = ctx.store.queue_figures(ctx.clock.now()).await?;
    ctx.metrics.store_call(super::StoreCall::Gauges, started);
    Ok(ctx.metrics.render(&Gauges(figures)))
}

/// How often the watcher looks at open fan-outs and folds histograms.
const EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs until `shutdown`: closes finished fan-outs, observing their first
/// and last lateness once each, and keeps histogram samples bounded.
pub async fn watch(ctx: Arc<AppContext>, d: Dispatcher, shutdown: CancellationToken) {
    let mut turns = 0u32;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = shutdown.cancelled() => break,
        }
        close_finished(&ctx.metrics, &ctx, &d).await;
        turns = turns.wrapping_add(1);
        if turns.is_multiple_of(5) {
            ctx.metrics.upkeep();
        }
    }
}

/// Observes and forgets the followed fan-outs that are over, and announces
/// each (`fanout.finished`, when operational webhooks are on).
pub async fn close_finished(m: &Metrics, ctx: &AppContext, d: &Dispatcher) {
    for (reminder, webinar) in m.fanouts.open() {
        match ctx.store.fanout_finished(&reminder, &webinar).await {
            Ok(true) => {
                if let Some(t) = m.fanouts.close(&reminder) {
                    if let Some((first, last)) = t.lateness() {
                        m.fanout_first_seconds.record(first);
                        m.fanout_last_seconds.record(last);
                    }
                    crate::ops::fanout_finished(ctx, d, &reminder).await;
                }
            }
            Ok(false) => {}
            Err(e) => {
                tracing::debug!(error = %crate::error::causes(&e), "could not tell whether a fan-out is over");
                return;
            }
        }
    }
}
