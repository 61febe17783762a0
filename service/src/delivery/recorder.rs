//! The recorder: takes attempt outcomes from every lane and writes them in
//! batches, one transaction per batch. A store failure is retried, never
//! dropped: a receiver's acknowledgement must end up recorded. Subscriptions
//! it disables (410, or failing too long) are logged for the operator, and
//! what recording changed in their health goes to the dispatcher's
//! [`HealthWatch`] (the operational webhooks, which `run` wires in). It also keeps each endpoint's observed answer time: the
//! acknowledged attempts' latencies are summed here and folded into the
//! store's moving average at most once a second ([`AnswerTimes`]), so every
//! instance's capacity plans see them at the cost of one small write a
//! second.

use super::{Dispatcher, Record};
use crate::metrics::StoreCall;
use crate::store::{HealthChanges, Outcome, SubscriptionId, Verdict};
use crate::store::{Recording, SliceId};
use chrono::Duration;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Who hears of the subscriptions whose health a recording changed:
/// disabled, failing, recovered. Called by the recorder after the write, in
/// its task; what it does delays the next write, so it should be quick.
#[async_trait::async_trait]
pub trait HealthWatch: Send + Sync {
    async fn changed(&self, d: &Dispatcher, changes: &HealthChanges, batch: &[Outcome]);
}

/// No one listens (a dispatcher driven by a test).
#[async_trait::async_trait]
impl HealthWatch for () {
    async fn changed(&self, _: &Dispatcher, _: &HealthChanges, _: &[Outcome]) {}
}

/// Most outcomes written in one transaction.
const BATCH: usize = 1000;

/// How long outcomes may gather before they are written, unless a batch
/// fills first. A transaction costs about the same for ten outcomes as for a
/// thousand (statements, commit), and without the wait a fan-out wrote a few
/// dozen per transaction; at 5 ms a fan-out on PostgreSQL still wrote every
/// 170-340 outcomes, and recording's round trips were half of all
/// (`docs/PERFORMANCE.md`). An acknowledgement is recorded at most this much
/// later; a crash inside the wait repeats those deliveries with the same
/// webhook-id, as it would any delivery not yet recorded.
const LINGER: std::time::Duration = std::time::Duration::from_millis(20);

/// How often the answer times gathered are folded into the store.
const FOLD_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Acknowledged attempts' answer times per subscription since the last
/// fold: (sum of latencies in ms, attempts).
#[derive(Default)]
struct AnswerTimes {
    seen: HashMap<SubscriptionId, (u64, u64)>,
    folded: Option<std::time::Instant>,
}

impl AnswerTimes {
    fn note(&mut self, batch: &[Outcome]) {
        for o in batch.iter().filter(|o| o.verdict == Verdict::Delivered) {
            let e = self.seen.entry(o.subscription_id.clone()).or_default();
            e.0 += o.attempt.latency_ms;
            e.1 += 1;
        }
    }

    /// Folds what was gathered into the store, if a second has passed
    /// since the last fold (or `now_anyway`). A failure is logged and the
    /// figures dropped: a plan's input, not a record.
    async fn fold(&mut self, d: &Dispatcher, now_anyway: bool) {
        let due = self.folded.is_none_or(|t| t.elapsed() >= FOLD_EVERY);
        if self.seen.is_empty() || !(due || now_anyway) {
            return;
        }
        self.folded = Some(std::time::Instant::now());
        let seen: Vec<(SubscriptionId, i64, i64)> = self
            .seen
            .drain()
            .map(|(id, (sum_ms, n))| {
                let mean_us = (sum_ms * 1000 / n.max(1)) as i64;
                (id, mean_us, crate::delivery::forecast::weight_ppm(n))
            })
            .collect();
        if let Err(e) = d.inner.ctx.engine.fold_answer_times(&seen).await {
            tracing::warn!(error = %crate::telemetry::causes(&e), "keeping endpoints' answer times failed");
        }
    }
}

/// Runs until `done` is cancelled (after every lane has stopped), then
/// writes what is left.
pub async fn run(d: Dispatcher, mut rx: mpsc::Receiver<Record>, done: CancellationToken) {
    let mut answers = AnswerTimes::default();
    loop {
        // Messages first; once every lane has stopped, drain what is left.
        let gathered = !answers.seen.is_empty();
        let first = tokio::select! {
            biased;
            m = rx.recv() => m,
            _ = done.cancelled() => rx.try_recv().ok(),
            // Answer times gathered and nothing else coming: fold them.
            _ = tokio::time::sleep(FOLD_EVERY), if gathered => {
                answers.fold(&d, true).await;
                continue;
            }
        };
        let Some(first) = first else { break };
        let mut batch = Vec::new();
        let mut slices = Vec::new();
        let deadline = tokio::time::Instant::now() + LINGER;
        let mut next = Some(first);
        while let Some(r) = next {
            match r {
                Record::Outcome(o) => batch.push(o),
                Record::SliceDone(id) => slices.push(id),
            }
            if batch.len() >= BATCH {
                // Full: what is still queued goes in the next batch.
                break;
            }
            next = match rx.try_recv() {
                Ok(r) => Some(r),
                Err(_) if done.is_cancelled() => None,
                Err(_) => tokio::time::timeout_at(deadline, rx.recv())
                    .await
                    .ok()
                    .flatten(),
            };
        }
        let batch: Arc<[Outcome]> = batch.into();
        flush(&d, batch.clone(), &slices, done.is_cancelled()).await;
        answers.note(&batch);
        answers.fold(&d, done.is_cancelled()).await;
    }
    answers.fold(&d, true).await;
    tracing::debug!("recorder stopped");
}

async fn flush(d: &Dispatcher, batch: Arc<[Outcome]>, slices: &[SliceId], stopping: bool) {
    let ctx = &d.inner.ctx;
    let disable_after = Duration::from_std(ctx.config.disable_after).unwrap_or(Duration::days(3));
    let mut tries = 0u32;
    ctx.metrics.fanouts.note(&batch);
    loop {
        let now = ctx.clock.now();
        let started = std::time::Instant::now();
        let written = ctx
            .engine
            .record_outcomes(Recording {
                outcomes: batch.clone(),
                done_slices: slices.to_vec(),
                now,
                disable_before: now - disable_after,
            })
            .await;
        ctx.metrics.store_call(StoreCall::RecordOutcomes, started);
        match written {
            Ok(changes) => {
                ctx.metrics.recorded(&batch);
                for (id, why) in &changes.disabled {
                    tracing::warn!(subscription = %id, ?why, "subscription disabled: its endpoint answered 410 or kept failing");
                }
                if changes != HealthChanges::default() {
                    d.inner.health.changed(d, &changes, &batch).await;
                }
                break;
            }
            Err(e) => {
                tries += 1;
                tracing::error!(error = %crate::telemetry::causes(&e), outcomes = batch.len(), tries, "recording attempts failed; retrying");
                if stopping && tries >= 5 {
                    // Leases lapse and these deliveries are attempted again,
                    // with the same webhook-id: at-least-once still holds.
                    tracing::error!(outcomes = batch.len(), "giving up recording at shutdown");
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(
                    200 * u64::from(tries.min(10)),
                ))
                .await;
            }
        }
    }
    let retrying: BTreeSet<&SubscriptionId> = batch
        .iter()
        .filter(|o| matches!(o.verdict, Verdict::Retry(_)))
        .map(|o| &o.subscription_id)
        .collect();
    for s in retrying {
        d.wake(s);
    }
}
