//! The timer loop: sleeps until the earliest pending reminder is due (or
//! something wakes it), claims due reminders with a lease, decides each with
//! [`plan::decide`] and fans it out in resumable slices of participants,
//! telling the delivery workers which subscriptions got work. A reminder
//! whose fan-out was cut short by a crash is claimed again once its lease
//! lapses and resumes from its stored cursor.

pub mod plan;

use crate::delivery::Dispatcher;
use crate::store::{DueReminder, FanoutMode};
use crate::AppContext;
use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Runs until `shutdown` is cancelled.
pub async fn run(
    ctx: Arc<AppContext>,
    wake: Arc<Notify>,
    dispatcher: Dispatcher,
    shutdown: CancellationToken,
) {
    let tick = Duration::from_std(ctx.config.tick).unwrap_or(Duration::seconds(1));
    // The due instant whose lanes were last made ready.
    let mut warmed = None;
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let fired = match fire_due(&ctx, &dispatcher, &shutdown).await {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = ?e, "scheduler pass failed; retrying");
                0
            }
        };
        if fired > 0 {
            continue;
        }
        let now = ctx.clock.now();
        let next = ctx.store.next_reminder_due().await.ok().flatten();
        if let Some(t) = next.filter(|t| *t - now <= tick && warmed != Some(*t)) {
            warmed = Some(t);
            warm_lanes(&ctx, &dispatcher, t, t - now).await;
        }
        let wait = next
            .map(|t| (t - now).clamp(Duration::zero(), tick))
            .unwrap_or(tick)
            .to_std()
            .unwrap_or_default();
        // Timers fire up to a millisecond late: wake a little early, then
        // yield until the exact instant.
        let early = wait.saturating_sub(EARLY);
        tokio::select! {
            _ = tokio::time::sleep(early) => {
                // Only the last moments are waited out here; from further
                // away (the sleep was cut to a tick) the loop looks again.
                let close = Duration::from_std(EARLY * 2).unwrap_or_default();
                if let Some(t) = next.filter(|t| *t - ctx.clock.now() <= close) {
                    while ctx.clock.now() < t && !shutdown.is_cancelled() {
                        tokio::task::yield_now().await;
                    }
                }
            }
            _ = wake.notified() => {}
            _ = shutdown.cancelled() => break,
        }
    }
    tracing::info!("scheduler stopped");
}

/// Gets the lanes of the subscriptions a reminder due at `t` (in `left`)
/// fans out to ready before it fires; they stay up a second past it.
async fn warm_lanes(ctx: &AppContext, dispatcher: &Dispatcher, t: DateTime<Utc>, left: Duration) {
    match ctx.store.subscriptions_due(t).await {
        Ok(subs) => {
            let until = tokio::time::Instant::now()
                + left.to_std().unwrap_or_default()
                + std::time::Duration::from_secs(1);
            for sub in &subs {
                dispatcher.warm(sub, until);
            }
        }
        Err(e) => tracing::warn!(error = ?e, "finding the lanes of an upcoming reminder failed"),
    }
}

/// How long before a due instant the timer loop wakes to wait it out.
const EARLY: std::time::Duration = std::time::Duration::from_millis(2);

/// Claims and fans out every reminder due now; returns how many.
async fn fire_due(
    ctx: &AppContext,
    dispatcher: &Dispatcher,
    shutdown: &CancellationToken,
) -> anyhow::Result<usize> {
    let now = ctx.clock.now();
    let lease = now + Duration::from_std(ctx.config.lease)?;
    let due = ctx
        .store
        .claim_due_reminders(now, &ctx.instance, lease, 16)
        .await?;
    for r in &due {
        tracing::debug!(reminder = %r.id, late_ms = (ctx.clock.now() - r.due_at).num_microseconds().unwrap_or(0) as f64 / 1000.0, "claimed");
        fan_out(ctx, dispatcher, r, shutdown).await?;
    }
    Ok(due.len())
}

async fn fan_out(
    ctx: &AppContext,
    dispatcher: &Dispatcher,
    r: &DueReminder,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let cfg = &ctx.config;
    let grace = Duration::from_std(cfg.on_time_grace)?;
    let expires = plan::expires_at(r.from_time, cfg.expire_after_start);
    let mut total = 0;
    let mut first = true;
    loop {
        // Re-decided per slice: a fan-out resumed after the webinar started
        // records the rest as missed rather than sending it.
        let now = ctx.clock.now();
        let mode = plan::decide(r.due_at, r.from_time, now, grace, cfg.late_policy);
        let lease = now + Duration::from_std(cfg.lease)?;
        let p = ctx
            .store
            .fanout_batch(
                &r.id,
                &ctx.instance,
                mode,
                cfg.fanout_batch,
                now,
                lease,
                expires,
            )
            .await?;
        total += p.created;
        tracing::debug!(reminder = %r.id, created = p.created, late_ms = (ctx.clock.now() - r.due_at).num_microseconds().unwrap_or(0) as f64 / 1000.0, "fan-out step");
        for sub in &p.subscriptions {
            dispatcher.wake(sub);
        }
        if first && !p.subscriptions.is_empty() {
            // Let the woken lanes lease the first small slice before the
            // next steps take the store: the first requests leave sooner.
            first = false;
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        if p.done {
            let what = match mode {
                FanoutMode::Send { late: false } => "sent",
                FanoutMode::Send { late: true } => "sent late",
                FanoutMode::Missed => "missed",
            };
            tracing::info!(reminder = %r.id, webinar = %r.webinar_id, label = %r.label, deliveries = total, "reminder {what}");
            return Ok(());
        }
        if shutdown.is_cancelled() {
            // The lease lapses and another pass (here or elsewhere) resumes.
            return Ok(());
        }
    }
}
