//! Retention (`--retain-deliveries`, 30 days by default, 0 = forever):
//! delivery history older than that (deliveries, their attempts, SQLite's
//! receipts, and the settled slices of fan-outs), and the finished
//! reminders of webinars that ended before then, are deleted in the
//! background. Once a minute on the service's clock, a round walks the
//! history subscription by subscription, then the slices, then the
//! reminders, `--prune-batch` rows per step (500 by default), each step one
//! short transaction (`store::Upkeep`), with a [`PAUSE`] after every step
//! that removed something and at most [`STEPS`] such steps per round: a
//! fan-out waits for one step at most, never for a round. Rows of a fan-out that still
//! has pending work (a pending slice or delivery of its reminder) are kept
//! whatever their age.
//!
//! PostgreSQL: plain deletes; autovacuum makes the space reusable. SQLite:
//! the freed pages go to the file's free list and new rows reuse them, so
//! the file stops growing at the size a retention period needs (the
//! retention test shows it level off). Incremental vacuum is not used: it
//! would only give pages back to the file system for the next fan-out to
//! take again, and would need `auto_vacuum` set before the first table
//! (a full `VACUUM` of existing files), on the thread every store call
//! waits on.

use crate::metrics::StoreCall;
use crate::store::{Cutoff, Pruned, StoreResult};
use crate::AppContext;
use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Rest between two steps that removed rows.
pub const PAUSE: std::time::Duration = std::time::Duration::from_millis(20);
/// Steps that removed rows, at most, per round (250 000 rows a minute with
/// the default `--prune-batch` of 500).
pub const STEPS: u32 = 500;
/// Time between two rounds, on the service's clock.
pub const EVERY: Duration = Duration::minutes(1);

/// Runs rounds until `shutdown`. With history kept forever, a round
/// removes nothing and asks the store nothing; it is still counted
/// (`tminus_prune_rounds_total`), so that "kept forever" can be seen, not
/// only presumed.
pub async fn run(ctx: Arc<AppContext>, shutdown: CancellationToken) {
    let keep = Duration::from_std(ctx.config.retain_deliveries)
        .ok()
        .filter(|k| !k.is_zero());
    let mut next = ctx.clock.now() + Duration::from_std(ctx.config.tick).unwrap_or_default();
    loop {
        tokio::select! {
            _ = ctx.clock.sleep_until(next, ctx.config.tick) => {}
            _ = shutdown.cancelled() => break,
        }
        if let Some(keep) = keep {
            let before = ctx.clock.now() - keep;
            match round(&ctx, before, &shutdown).await {
                Ok(p) if p.total() > 0 => {
                    tracing::info!(deliveries = p.deliveries, attempts = p.attempts, receipts = p.receipts, slices = p.slices, reminders = p.reminders, %before, "pruned history")
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %crate::telemetry::causes(&e), "pruning history failed")
                }
            }
        }
        ctx.metrics.prune_rounds.increment(1);
        next = ctx.clock.now() + EVERY;
    }
}

/// What a round may still do, and what it did.
struct Round<'a> {
    ctx: &'a AppContext,
    shutdown: &'a CancellationToken,
    steps: u32,
    done: Pruned,
}

impl Round<'_> {
    /// Whether the round may take another step.
    fn more(&self) -> bool {
        self.steps < STEPS && !self.shutdown.is_cancelled()
    }

    /// Counts a step's rows, and rests if it removed any.
    async fn took(&mut self, p: Pruned, started: std::time::Instant) {
        let m = &self.ctx.metrics;
        m.store_call(StoreCall::Prune, started);
        m.pruned("deliveries", p.deliveries);
        m.pruned("attempts", p.attempts);
        m.pruned("receipts", p.receipts);
        m.pruned("slices", p.slices);
        m.pruned("reminders", p.reminders);
        self.done.add(p);
        if p.total() > 0 {
            self.steps += 1;
            tokio::time::sleep(PAUSE).await;
        }
    }
}

/// One round: everything made before `before` that may go, within the
/// round's bound.
pub async fn round(
    ctx: &AppContext,
    before: DateTime<Utc>,
    shutdown: &CancellationToken,
) -> StoreResult<Pruned> {
    let mut r = Round {
        ctx,
        shutdown,
        steps: 0,
        done: Pruned::default(),
    };
    let store = &ctx.catalog;
    let batch = ctx.config.prune_batch.max(1);
    let cut = Cutoff {
        before,
        limit: batch,
    };
    for sub in store.history_owners().await? {
        while r.more() {
            let started = std::time::Instant::now();
            let p = store.prune_history(&sub, cut).await?;
            r.took(p, started).await;
            if p.deliveries < u64::from(batch) && p.receipts < u64::from(batch) {
                break;
            }
        }
    }
    let mut after = 0;
    while r.more() {
        let started = std::time::Instant::now();
        let (p, next) = store.prune_slices(after, cut).await?;
        r.took(p, started).await;
        match next {
            Some(n) => after = n,
            None => break,
        }
    }
    while r.more() {
        let started = std::time::Instant::now();
        let n = store.prune_reminders(before, batch).await?;
        let p = Pruned {
            reminders: n,
            ..Pruned::default()
        };
        r.took(p, started).await;
        if n < u64::from(batch) {
            break;
        }
    }
    Ok(r.done)
}
