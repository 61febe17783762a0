//! The watcher that runs beside the service: it closes finished fan-outs
//! (observing their lateness once, and announcing each as
//! `fanout.finished`), folds histogram samples into buckets every few
//! seconds, and counts the fan-outs of the next day predicted late every 15
//! ticks, announcing each once (their capacity plans are a query and a sum
//! per fan-out: too much for every scrape).

use crate::delivery::Dispatcher;
use crate::metrics::Metrics;
use crate::AppContext;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// How often the watcher looks at open fan-outs and folds histograms.
const EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs until `shutdown`: closes finished fan-outs, observing their first
/// and last lateness once each, and keeps histogram samples bounded.
pub async fn watch(ctx: Arc<AppContext>, d: Dispatcher, shutdown: CancellationToken) {
    let mut turns = 0u32;
    let mut counted: Option<std::time::Instant> = None;
    let mut announced = Announced::new();
    loop {
        let every = crate::schedule::ahead::late_every(ctx.config.tick);
        if counted.is_none_or(|t| t.elapsed() >= every) {
            counted = Some(std::time::Instant::now());
            count_predicted_late(&ctx, &d, &mut announced).await;
        }
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

/// The fan-outs this instance has announced as predicted late (reminder,
/// subscription, due instant), kept until their instant: the store keeps
/// the announcement once, and this spares it the repeats.
type Announced = std::collections::HashSet<(
    crate::store::ReminderId,
    crate::store::SubscriptionId,
    chrono::DateTime<chrono::Utc>,
)>;

/// Counts the fan-outs due within a day predicted to miss their budget
/// (`tminus_fanouts_predicted_late`), and announces each once
/// (`fanout.predicted_late`, when operational webhooks are on); on a
/// failure the last count stays.
async fn count_predicted_late(ctx: &AppContext, d: &Dispatcher, announced: &mut Announced) {
    let late = match crate::schedule::ahead::late_fanouts(ctx, chrono::Duration::hours(24)).await {
        Ok(late) => late,
        Err(e) => {
            tracing::debug!(error = %crate::telemetry::causes(&e), "counting fan-outs predicted late failed");
            return;
        }
    };
    ctx.metrics
        .predicted_late
        .store(late.len(), std::sync::atomic::Ordering::Relaxed);
    let now = ctx.clock.now();
    announced.retain(|(_, _, due)| *due > now);
    if ctx.operational.is_none() {
        return;
    }
    for (f, p) in late {
        let key = (f.reminder_id.clone(), f.subscription_id.clone(), f.due_at);
        if !announced.insert(key) {
            continue;
        }
        let event = crate::ops::PredictedLate {
            webinar_id: f.webinar_id.clone(),
            reminder: f.label,
            subscription_id: f.subscription_id.clone(),
            due_at: f.due_at,
            predicted_duration: p.duration,
            predicted_last_at: p.last_at,
            budget: chrono::Duration::milliseconds(i64::from(f.tuning.late_budget_ms)),
        };
        crate::ops::predicted_late(ctx, d, &event).await;
    }
}

/// Observes and forgets the followed fan-outs that are over, and announces
/// each (`fanout.finished`, when operational webhooks are on).
async fn close_finished(m: &Metrics, ctx: &AppContext, d: &Dispatcher) {
    for (reminder, webinar) in m.fanouts.open() {
        match ctx.catalog.fanout_finished(&reminder, &webinar).await {
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
                tracing::debug!(error = %crate::telemetry::causes(&e), "could not tell whether a fan-out is over");
                return;
            }
        }
    }
}
