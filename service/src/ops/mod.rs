//! Operational webhooks: what tminus tells the platform about itself —
//! a subscription disabled, failing, recovered; a fan-out predicted late,
//! finished. Each event is a delivery of the operational subscription
//! (`store::Operational`: an ordinary subscription row owned by a reserved
//! creator, made at start by [`setup`]), with a fixed body (`events`), so
//! it travels through the same lanes, signing, retries, target guard and
//! history as a reminder, and the operator lists and replays it with the
//! platform API's subscription routes.
//!
//! It never loops: what happens to the operational subscription itself
//! (failing, disabled) is logged, never announced. It never reaches an
//! integrator: only the operational subscription is given these events,
//! and no fan-out matches it. It owns no timer: the recorder hands it
//! health changes (as the dispatcher's `HealthWatch`), the watcher finished fan-outs, and the capacity
//! plan its late fan-outs ([`predicted_late`]).

pub mod events;
pub mod setup;

use crate::delivery::Dispatcher;
use crate::domain::ids;
use crate::store::{
    DeliveryId, HealthChanges, OneOff, Outcome, ReminderId, SubscriptionId, Verdict,
};
use crate::AppContext;
use chrono::Duration;
use events::Event;
use sha2::{Digest, Sha256};

pub use events::PredictedLate;

/// How long an operational event is retried before it is given up.
pub const EXPIRES_AFTER: Duration = Duration::hours(24);

/// The webhook-id of an event: derived from its key when it must go once
/// (the same shape as a test event's), random otherwise.
fn webhook_id(e: &Event) -> DeliveryId {
    match &e.once {
        Some(key) => {
            let h = Sha256::digest(key.as_bytes());
            ids::Id::trusted(format!("msg_{}", hex::encode(&h[..12])))
        }
        None => ids::one_off_webhook_id(),
    }
}

/// Queues `events` for the operational subscription and wakes its lane.
/// Without one (no `--operational-webhook-url`), does nothing. A store
/// failure is logged: the event is lost, never the reminder's work.
pub async fn send(ctx: &AppContext, d: &Dispatcher, events: Vec<Event>) {
    let Some(sub) = &ctx.operational else {
        return;
    };
    let mut queued = false;
    for e in events {
        let now = ctx.clock.now();
        let one = OneOff {
            id: webhook_id(&e),
            subscription_id: sub.clone(),
            label: e.kind.into(),
            payload: serde_json::to_vec(&e.body).expect("a JSON value serializes"),
            expires_at: now + EXPIRES_AFTER,
        };
        match ctx.catalog.queue_operational(&one, now).await {
            Ok(q) => {
                queued |= q;
                tracing::info!(event = e.kind, delivery = %one.id, queued = q, "operational event");
            }
            Err(e) => {
                tracing::warn!(error = %crate::telemetry::causes(&e), "queueing an operational event failed")
            }
        }
    }
    if queued {
        d.wake(sub);
    }
}

/// What hears the recorder's health changes: the operational webhooks of
/// one service ([`health`]).
pub struct Announcer(pub std::sync::Arc<AppContext>);

#[async_trait::async_trait]
impl crate::delivery::HealthWatch for Announcer {
    async fn changed(&self, d: &Dispatcher, changes: &HealthChanges, batch: &[Outcome]) {
        health(&self.0, d, changes, batch).await;
    }
}

/// The events a recording's health changes make: never about the
/// operational subscription itself (it would announce its own failures
/// to the endpoint that fails).
pub async fn health(ctx: &AppContext, d: &Dispatcher, changes: &HealthChanges, batch: &[Outcome]) {
    let Some(ops) = &ctx.operational else {
        return;
    };
    let now = ctx.clock.now();
    let mut out = Vec::new();
    let others = |id: &SubscriptionId| id != ops;
    for (id, why) in changes.disabled.iter().filter(|(id, _)| others(id)) {
        if let Some(s) = subscription(ctx, id).await {
            out.push(events::disabled(&s, *why, now));
        }
    }
    for id in changes.failing.iter().filter(|id| others(id)) {
        if let Some(s) = subscription(ctx, id).await {
            out.push(events::failing(&s, &last_failure(batch, id), now));
        }
    }
    for (id, since) in changes.recovered.iter().filter(|(id, _)| others(id)) {
        if let Some(s) = subscription(ctx, id).await {
            out.push(events::recovered(&s, *since, now));
        }
    }
    for (id, _) in changes.disabled.iter().filter(|(id, _)| !others(id)) {
        tracing::error!(subscription = %id, "the operational webhook endpoint was disabled: no more operational events until the next start");
    }
    if !out.is_empty() {
        send(ctx, d, out).await;
    }
}

/// A subscription as an event shows it; `None` (logged) if it cannot be
/// read.
async fn subscription(ctx: &AppContext, id: &SubscriptionId) -> Option<crate::store::Subscription> {
    match ctx.catalog.get_subscription(id).await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(subscription = %id, error = %crate::telemetry::causes(&e), "operational event dropped: subscription unreadable");
            None
        }
    }
}

/// The last failed attempt of `id` in `batch`.
fn last_failure(batch: &[Outcome], id: &SubscriptionId) -> events::LastAttempt {
    batch
        .iter()
        .rev()
        .find(|o| &o.subscription_id == id && o.verdict != Verdict::Delivered)
        .map(|o| events::LastAttempt {
            status: o.attempt.status_code,
            error: o.attempt.error.clone(),
        })
        .unwrap_or_default()
}

/// Announces a finished fan-out (once per reminder, whichever instance
/// asks), with its deliveries counted by outcome.
pub async fn fanout_finished(ctx: &AppContext, d: &Dispatcher, reminder: &ReminderId) {
    if ctx.operational.is_none() {
        return;
    }
    let t = match ctx.catalog.fanout_tally(reminder).await {
        Ok(Some(t)) => t,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %crate::telemetry::causes(&e), "fanout.finished dropped: the fan-out could not be counted");
            return;
        }
    };
    let f = events::Finished {
        reminder_id: t.reminder.reminder_id.clone(),
        webinar_id: t.reminder.webinar_id.clone(),
        reminder: t.reminder.label.clone(),
        due_at: t.reminder.due_at,
        fired_at: t.fired_at,
        first_at: t.first_at,
        last_at: t.last_at,
        counts: events::Counts {
            retrying: t.remaining(),
            outcomes: t.counts,
        },
    };
    send(ctx, d, vec![events::finished(&f, ctx.clock.now())]).await;
}

/// Announces a fan-out the capacity plan predicts will miss its budget:
/// once per fan-out (its webinar, reminder, due instant and subscription),
/// however often the plan is made. The plan calls this; a fan-out to the
/// operational subscription itself is never announced.
pub async fn predicted_late(ctx: &AppContext, d: &Dispatcher, p: &PredictedLate) {
    if ctx
        .operational
        .as_ref()
        .is_some_and(|o| *o == p.subscription_id)
    {
        return;
    }
    send(ctx, d, vec![events::predicted_late(p, ctx.clock.now())]).await;
}

#[cfg(test)]
mod tests;
