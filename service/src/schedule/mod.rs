//! The timer loop: sleeps until the earliest pending reminder is due (or
//! something wakes it), claims due reminders with a lease, decides each with
//! [`plan::decide`] and fans it out in resumable slices of participants,
//! telling the delivery workers which subscriptions got work. The first
//! step is staged a moment ahead of the due instant (`--stage-ahead`): its
//! lanes lease it and hold it until the instant, so the first requests do
//! not wait for the store. A reminder whose fan-out was cut short by a crash
//! is claimed again once its lease lapses and resumes from its stored cursor.
//! Beside it, once a tick, the fan-outs allowed to start early whose plan
//! says so are started (`ahead`, from the capacity plans of `delivery::forecast`).

pub mod ahead;
mod fanouts;
pub mod plan;
mod warm;

use crate::delivery::Dispatcher;
use crate::metrics::{Fate, StoreCall};
use crate::store::{DueReminder, FanoutMode, FanoutProgress};
use crate::store::{FanoutStep, ReminderClaim};
use crate::AppContext;
use chrono::{DateTime, Duration, Utc};
use fanouts::{Fanout, Fanouts};
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
    let mut warming = warm::Warming::new(ahead, tick);
    let mut live = Fanouts::default();
    // The earliest early start still ahead, and when they were last looked
    // for (once a tick, and at that instant).
    let mut early_next: Option<DateTime<Utc>> = None;
    let mut early_looked: Option<std::time::Instant> = None;
    let mut early_started = ahead::Started::default();
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        if early_looked.is_none_or(|t| t.elapsed() >= ctx.config.tick)
            || early_next.is_some_and(|t| t <= ctx.clock.now())
        {
            early_looked = Some(std::time::Instant::now());
            early_next = ahead::start_due(&ctx, &dispatcher, &mut early_started)
                .await
                .unwrap_or_else(|e| {
                    tracing::error!(error = %crate::telemetry::causes(&e), "starting fan-outs early failed; retrying");
                    None
                });
        }
        let lead = warming.lead();
        let moved = match pass(&ctx, &dispatcher, &mut live, lead, &shutdown).await {
            Ok(n) => n,
            Err(e) => {
                // What is in hand stays: its next steps are tried again.
                tracing::error!(error = %crate::telemetry::causes(&e), "scheduler pass failed; retrying");
                0
            }
        };
        if moved > 0 {
            continue;
        }
        let now = ctx.clock.now();
        let next = ctx.engine.next_reminder_due().await.ok().flatten();
        let lead = warming.refresh(&ctx, &dispatcher, next, now).await;
        // A pending reminder is claimed `lead` ahead of its due instant;
        // what is due sooner than that was just claimed, unless it is a
        // fan-out whose lease lapses then.
        let at = next
            .map(|t| if t - lead > now { t - lead } else { t })
            .map_or(now + tick, |t| t.min(now + tick));
        let at = early_next.map_or(at, |t| at.min(t));
        let at = warming.recount_at(next, now).map_or(at, |r| at.min(r));
        // Staged fan-outs are released by their lanes on the instant
        // itself; their next steps need no such precision, and must not
        // keep a core busy while the first requests leave.
        let staged = live.next_due(now).filter(|t| *t <= at);
        let wait = async {
            match staged {
                Some(t) => ctx.clock.sleep_until(t, ctx.config.tick).await,
                None => ctx.clock.wait_until(at, ctx.config.tick).await,
            }
        };
        tokio::select! {
            _ = wait => {}
            _ = wake.notified() => warming.heard(),
            _ = shutdown.cancelled() => break,
        }
    }
    tracing::info!("scheduler stopped");
}

/// One pass: claims what is due now or within `lead` (while there is room)
/// and stages the first step of each one not yet due (its lanes lease it
/// and hold it until the instant), then moves every fan-out in hand that is
/// due by one step. Returns how many reminders were claimed or stepped.
async fn pass(
    ctx: &AppContext,
    dispatcher: &Dispatcher,
    live: &mut Fanouts,
    lead: Duration,
    shutdown: &CancellationToken,
) -> anyhow::Result<usize> {
    let claimed = if live.has_room() {
        claim(ctx, dispatcher, live, lead).await?
    } else {
        0
    };
    let stepped = round(ctx, dispatcher, live, shutdown).await?;
    Ok(claimed + stepped)
}

/// Claims due reminders into `live`, staging those not yet due.
async fn claim(
    ctx: &AppContext,
    dispatcher: &Dispatcher,
    live: &mut Fanouts,
    lead: Duration,
) -> anyhow::Result<usize> {
    let now = ctx.clock.now();
    let lease = now + Duration::from_std(ctx.config.lease)?;
    let started = std::time::Instant::now();
    let due = ctx
        .engine
        .claim_due_reminders(ReminderClaim {
            now,
            horizon: now + lead,
            owner: ctx.instance.clone(),
            lease_until: lease,
            limit: fanouts::CLAIM_AT_ONCE,
        })
        .await;
    ctx.metrics
        .store_call(StoreCall::ClaimDueReminders, started);
    let due = due?;
    let n = due.len();
    for r in due {
        let now = ctx.clock.now();
        tracing::debug!(reminder = %r.id, late_ms = ms(now - r.due_at), "claimed");
        let mut f = Fanout::new(r);
        // Staged ahead of the instant; a staged step never finishes a
        // reminder (who it is for is decided at the instant).
        f.staged = f.r.due_at > now && !step(ctx, dispatcher, &f.r, now).await?.0.done;
        live.items.push(f);
    }
    Ok(n)
}

/// Moves each fan-out in hand that is due by one step, the first steps
/// since their instant first; forgets the finished ones.
async fn round(
    ctx: &AppContext,
    dispatcher: &Dispatcher,
    live: &mut Fanouts,
    shutdown: &CancellationToken,
) -> anyhow::Result<usize> {
    let order = live.round(ctx.clock.now());
    let mut firsts = false;
    for &i in &order {
        if shutdown.is_cancelled() {
            // The leases lapse and another pass (here or elsewhere) resumes.
            live.items.clear();
            return Ok(0);
        }
        let f = &mut live.items[i];
        if !f.stepped {
            let lag = (ctx.clock.now() - f.r.due_at)
                .num_microseconds()
                .unwrap_or(0);
            ctx.metrics
                .scheduler_lag_seconds
                .record(lag.max(0) as f64 / 1e6);
        }
        let (p, mode) = step(ctx, dispatcher, &f.r, ctx.clock.now()).await?;
        f.total += p.created;
        firsts |= !f.stepped && !f.staged && !p.subscriptions.is_empty();
        f.stepped = true;
        if p.done {
            f.done = true;
            finished(&f.r, mode, f.total);
        }
    }
    live.drop_done();
    if firsts {
        // Let the woken lanes lease their first small slices before the
        // next steps take the store: the first requests leave sooner.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    Ok(order.len())
}

/// Logs a finished fan-out.
fn finished(r: &DueReminder, mode: FanoutMode, total: usize) {
    let what = match mode {
        FanoutMode::Send { late: false } => "sent",
        FanoutMode::Send { late: true } => "sent late",
        FanoutMode::Missed => "missed",
    };
    tracing::info!(reminder = %r.id, webinar = %r.webinar_id, label = %r.label, deliveries = total, "reminder {what}");
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
        .engine
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
