//! The timer loop: sleeps until the earliest pending reminder is due (or
//! something wakes it), claims due reminders with a lease, decides each with
//! [`plan::decide`] and fans it out in resumable slices of participants,
//! telling the delivery workers which subscriptions got work. The first
//! step is staged a moment ahead of the due instant (`--stage-ahead`): its
//! lanes lease it and hold it until the instant, so the first requests do
//! not wait for the store. A reminder whose fan-out was cut short by a crash
//! is claimed again once its lease lapses and resumes from its stored cursor.

pub mod plan;

use crate::delivery::Dispatcher;
use crate::metrics::{Fate, StoreCall};
use crate::store::FanoutStep;
use crate::store::{DueReminder, FanoutMode, FanoutProgress};
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
    let ahead = Duration::from_std(ctx.config.stage_ahead).unwrap_or_default();
    // The due instant whose lanes were last made ready.
    let mut warmed = None;
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let fired = match fire_due(&ctx, &dispatcher, &shutdown).await {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %crate::error::causes(&e), "scheduler pass failed; retrying");
                0
            }
        };
        if fired > 0 {
            continue;
        }
        let now = ctx.clock.now();
        let next = ctx.store.next_reminder_due().await.ok().flatten();
        if let Some(t) = next.filter(|t| *t - now <= tick + ahead && warmed != Some(*t)) {
            warmed = Some(t);
            warm_lanes(&ctx, &dispatcher, t, t - now).await;
        }
        // A pending reminder is claimed `ahead` of its due instant; what is
        // due sooner than that was just claimed, unless it is a fan-out whose
        // lease lapses then.
        let at = next
            .map(|t| if t - ahead > now { t - ahead } else { t })
            .map_or(now + tick, |t| t.min(now + tick));
        tokio::select! {
            _ = ctx.clock.wait_until(at, ctx.config.tick) => {}
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
        Err(e) => {
            tracing::warn!(error = %crate::error::causes(&e), "finding the lanes of an upcoming reminder failed")
        }
    }
}

/// Claims and fans out every reminder due now, or within the stage-ahead
/// window: the first step of one not yet due is staged (its lanes lease it
/// and hold it until the instant), the rest waits for the instant. Returns
/// how many reminders were claimed.
async fn fire_due(
    ctx: &AppContext,
    dispatcher: &Dispatcher,
    shutdown: &CancellationToken,
) -> anyhow::Result<usize> {
    let now = ctx.clock.now();
    let lease = now + Duration::from_std(ctx.config.lease)?;
    let horizon = now + Duration::from_std(ctx.config.stage_ahead)?;
    let started = std::time::Instant::now();
    let due = ctx
        .store
        .claim_due_reminders(now, horizon, &ctx.instance, lease, 16)
        .await;
    ctx.metrics
        .store_call(StoreCall::ClaimDueReminders, started);
    let due = due?;
    let mut staged = Vec::with_capacity(due.len());
    for r in &due {
        let now = ctx.clock.now();
        tracing::debug!(reminder = %r.id, late_ms = ms(now - r.due_at), "claimed");
        staged.push(r.due_at > now && !step(ctx, dispatcher, r, now).await?.0.done);
    }
    for (r, staged) in due.iter().zip(staged) {
        tokio::select! {
            // The lanes release what was staged on the instant itself; the
            // next steps need no such precision, and must not keep a core
            // busy while the first requests leave.
            _ = ctx.clock.sleep_until(r.due_at, ctx.config.tick) => {}
            _ = shutdown.cancelled() => return Ok(due.len()),
        }
        let lag = (ctx.clock.now() - r.due_at).num_microseconds().unwrap_or(0);
        ctx.metrics
            .scheduler_lag_seconds
            .record(lag.max(0) as f64 / 1e6);
        fan_out(ctx, dispatcher, r, staged, shutdown).await?;
    }
    Ok(due.len())
}

/// Milliseconds, for logs.
fn ms(d: Duration) -> f64 {
    d.num_microseconds().unwrap_or(0) as f64 / 1000.0
}

/// One fan-out step of `r` at `now`, and how it was decided to go out.
async fn step(
    ctx: &AppContext,
    dispatcher: &Dispatcher,
    r: &DueReminder,
    now: DateTime<Utc>,
) -> anyhow::Result<(FanoutProgress, FanoutMode)> {
    let cfg = &ctx.config;
    // Decided per step: a fan-out resumed after the webinar started records
    // the rest as missed rather than sending it.
    let grace = Duration::from_std(cfg.on_time_grace)?;
    let mode = plan::decide(r.due_at, r.from_time, now, grace, cfg.late_policy);
    let started = std::time::Instant::now();
    let p = ctx
        .store
        .fanout_batch(&FanoutStep {
            reminder_id: r.id.clone(),
            owner: ctx.instance.clone(),
            mode,
            batch: cfg.fanout_batch,
            now,
            lease_until: now + Duration::from_std(cfg.lease)?,
            expires_at: plan::expires_at(r.from_time, cfg.expire_after_start),
        })
        .await;
    ctx.metrics.store_call(StoreCall::FanoutBatch, started);
    let p = p?;
    if mode == FanoutMode::Missed {
        ctx.metrics.count(Fate::Missed, p.created as u64);
    }
    tracing::debug!(reminder = %r.id, created = p.created, late_ms = ms(ctx.clock.now() - r.due_at), "fan-out step");
    for sub in &p.subscriptions {
        dispatcher.wake(sub);
    }
    Ok((p, mode))
}

/// Fans `r` out to the end, after its staged first step if it had one.
async fn fan_out(
    ctx: &AppContext,
    dispatcher: &Dispatcher,
    r: &DueReminder,
    staged: bool,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let mut first = !staged;
    let mut total = 0;
    loop {
        let (p, mode) = step(ctx, dispatcher, r, ctx.clock.now()).await?;
        total += p.created;
        if p.done {
            let what = match mode {
                FanoutMode::Send { late: false } => "sent",
                FanoutMode::Send { late: true } => "sent late",
                FanoutMode::Missed => "missed",
            };
            tracing::info!(reminder = %r.id, webinar = %r.webinar_id, label = %r.label, deliveries = total, "reminder {what}");
            return Ok(());
        }
        if first && !p.subscriptions.is_empty() {
            // Let the woken lanes lease the first small slice before the
            // next steps take the store: the first requests leave sooner.
            first = false;
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        if shutdown.is_cancelled() {
            // The lease lapses and another pass (here or elsewhere) resumes.
            return Ok(());
        }
    }
}
