//! What the capacity plans (`delivery::forecast`) say about the fan-outs ahead, and
//! the one thing the scheduler does about it.
//!
//! [`late_fanouts`] lists the fan-outs due soon that are predicted to miss
//! their lateness budget: the metric `tminus_fanouts_predicted_late` counts
//! them (the metrics watcher calls it every [`late_every`]), and it is where
//! a `fanout.predicted_late` announcement belongs (once per fan-out: the
//! reminder id, subscription id and instant identify one).
//!
//! [`start_due`] is the opt-in early start (`sendEarly`): once a tick, the
//! scheduler looks at the pending fan-outs whose subscription allows one,
//! due within the longest early start allowed, plans each, and starts those
//! whose plan says they must start before their instant and whose start
//! has come. Starting one writes the slices of every participant registered
//! then, for that subscription only (`Plans::start_early`); the reminder
//! itself still fires at its instant for everyone else, and for those who
//! register meanwhile, whom its own steps add for that subscription too.

use super::plan;
use crate::delivery::forecast;
use crate::delivery::Dispatcher;
use crate::store::{EarlyStart, FanoutInputs, PlanScope, ReminderId, SubscriptionId};
use crate::AppContext;
use chrono::{DateTime, Duration, Utc};
use std::collections::HashSet;

/// Most pending fan-outs looked at in one pass.
const LOOKED_AT: i64 = 10_000;

/// How often the fan-outs predicted late are counted again: every 15
/// ticks (15 s by default).
pub fn late_every(tick: std::time::Duration) -> std::time::Duration {
    tick * 15
}

/// The fan-outs due within `within` from now whose plan says their last
/// participant will be reminded later than their subscription's budget,
/// early start included, with their plans; soonest first.
pub async fn late_fanouts(
    ctx: &AppContext,
    within: Duration,
) -> anyhow::Result<Vec<(FanoutInputs, forecast::Plan)>> {
    let scope = PlanScope {
        webinar: None,
        creator: None,
        reminder: None,
        until: ctx.clock.now() + within,
        limit: 100_000,
        early_only: false,
    };
    let rows = ctx.engine.pending_fanouts(&scope).await?;
    Ok(rows
        .into_iter()
        .map(|f| {
            let p = forecast::of(&f, ctx.config.assumed_latency);
            (f, p)
        })
        .filter(|(_, p)| p.late)
        .collect())
}

/// The early starts this instance made (or found made), by reminder,
/// subscription and instant, so it does not ask the store again each tick
/// until the instant.
pub type Started = HashSet<(ReminderId, SubscriptionId, DateTime<Utc>)>;

/// Starts the fan-outs whose early start has come; answers the earliest
/// early start still ahead, so the timer wakes for it.
pub async fn start_due(
    ctx: &AppContext,
    dispatcher: &Dispatcher,
    started: &mut Started,
) -> anyhow::Result<Option<DateTime<Utc>>> {
    let now = ctx.clock.now();
    started.retain(|s| s.2 > now);
    let horizon = now
        + Duration::milliseconds(i64::from(forecast::MAX_SEND_EARLY_MS))
        + Duration::from_std(ctx.config.tick)?;
    let scope = PlanScope {
        webinar: None,
        creator: None,
        reminder: None,
        until: horizon,
        limit: LOOKED_AT,
        early_only: true,
    };
    let mut next: Option<DateTime<Utc>> = None;
    for f in ctx.engine.pending_fanouts(&scope).await? {
        let p = forecast::of(&f, ctx.config.assumed_latency);
        if !p.early(f.due_at) {
            continue;
        }
        if p.start > now {
            next = Some(next.map_or(p.start, |n| n.min(p.start)));
            continue;
        }
        let key = (f.reminder_id.clone(), f.subscription_id.clone(), f.due_at);
        if started.contains(&key) {
            continue;
        }
        let e = EarlyStart {
            reminder_id: f.reminder_id.clone(),
            subscription_id: f.subscription_id.clone(),
            due_at: f.due_at,
            send_at: p.start,
            now,
            expires_at: plan::expires_at(f.from_time, ctx.config.expire_after_start),
            batch: ctx.config.fanout_batch,
        };
        let made = ctx.engine.start_early(&e).await?;
        // Made now, or already (here or by another instance): done either way.
        started.insert(key);
        if let Some(last) = made {
            tracing::info!(
                reminder = %f.reminder_id,
                subscription = %f.subscription_id,
                early_ms = (f.due_at - now).num_milliseconds(),
                predicted_ms = p.duration.num_milliseconds(),
                participants = f.participants,
                last_seq = last,
                "fan-out started early to land within its budget"
            );
            dispatcher.wake(&f.subscription_id);
        }
    }
    Ok(next)
}
