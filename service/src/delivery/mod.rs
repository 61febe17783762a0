//! Delivery: claim → sign → send → record. The [`Dispatcher`] keeps one
//! *lane* per subscription that has work (see `lane`), so each endpoint gets
//! its own concurrency and rate cap and a slow or dead endpoint only ever
//! holds up itself. Attempt results flow to one `recorder`, which writes them
//! in batches. A periodic sweep expires stale deliveries and picks up work
//! left by restarts, retries and other instances.

mod caps;
mod failure;
pub(crate) mod forecast;
pub mod guard;
mod lane;
#[cfg(test)]
mod lane_tests;
pub(crate) mod limit;
mod pool;
mod recorder;
pub use recorder::HealthWatch;
pub mod retry;
pub mod send;
mod tls;
mod unit;
mod view;
mod work;

use crate::metrics::{Fate, StoreCall};
use crate::store::{Outcome, SubscriptionId};

/// What lanes tell the recorder. Nearly every message is an outcome, so
/// boxing it to shrink the rare `SliceDone` would only add an allocation.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Record {
    /// An attempt's result.
    Outcome(Outcome),
    /// Every job of this slice has an outcome sent before this message.
    SliceDone(crate::store::SliceId),
}
use crate::AppContext;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How a lane is nudged: `notify` wakes it, `woken` tells a lane about to
/// retire that work arrived meanwhile, `warm_until` keeps it up for work
/// about to be due.
#[derive(Default)]
struct LaneSignal {
    notify: Notify,
    woken: AtomicBool,
    /// Counts the nudges: a lane whose last claim came back short claims
    /// again only once this moves (or a tick passes).
    wakes: AtomicU64,
    /// The subscription changed (a rotated secret, new caps): the lane
    /// reads it again before its next request.
    reread: AtomicBool,
    warm_until: Mutex<Option<tokio::time::Instant>>,
    /// The lane's in-flight limit now (`limit`); 0 while no lane runs.
    limit: AtomicUsize,
}

impl LaneSignal {
    /// Shows the lane's limit to the API.
    fn publish(&self, limit: usize) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// Whether the lane should stay up with nothing to do.
    fn warm(&self) -> bool {
        let until = *self.warm_until.lock().expect("warm lock");
        until.is_some_and(|t| t > tokio::time::Instant::now())
    }
}

struct Inner {
    ctx: Arc<AppContext>,
    sender: send::Sender,
    lanes: Mutex<HashMap<SubscriptionId, Arc<LaneSignal>>>,
    tracker: TaskTracker,
    outcomes: mpsc::Sender<Record>,
    shutdown: CancellationToken,
    /// The shutdown deadline: attempts still in flight are dropped, not
    /// recorded, and their work handed back with the leases.
    abort: CancellationToken,
    /// Instances sharing the store, this one included (1 until heard).
    live: AtomicU32,
    /// Counts changes that may withdraw work a lane holds (a cancel, a
    /// delete, a reschedule, an unregistration, a removed subscription):
    /// a lane that sees it move asks the store what to drop before it sends
    /// anything more.
    withdrawals: AtomicU64,
    /// Connections to receivers beyond each lane's first
    /// (`--delivery-connections`): a lane's further workers hold a permit.
    connections: Arc<tokio::sync::Semaphore>,
    /// Hears of health changes as the recorder writes them.
    health: Arc<dyn HealthWatch>,
}

/// The handle the scheduler and the API use to say "this subscription has
/// work now". Cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

/// Sweeps between two scans for subscriptions with work.
const SCAN_EVERY: u32 = 5;

impl Dispatcher {
    /// Starts the dispatcher's sweep and recorder; returns the handle and a
    /// future that completes once every lane and the recorder have drained.
    /// After `shutdown`, lanes finish their attempts in flight, or drop them
    /// at `abort`. `health` hears of the subscriptions whose health a
    /// recording changed (the operational webhooks).
    pub fn start(
        ctx: Arc<AppContext>,
        shutdown: CancellationToken,
        abort: CancellationToken,
        health: Arc<dyn HealthWatch>,
    ) -> anyhow::Result<(Self, tokio::task::JoinHandle<()>)> {
        let (d, rx) = Self::new(ctx, shutdown, abort, health)?;
        let recorder_done = CancellationToken::new();
        let recorder = tokio::spawn(recorder::run(d.clone(), rx, recorder_done.clone()));
        let sweeper = d.clone();
        let handle = tokio::spawn(async move {
            sweeper.sweep_loop().await;
            sweeper.inner.tracker.close();
            sweeper.inner.tracker.wait().await;
            recorder_done.cancel();
            if let Err(e) = recorder.await {
                tracing::error!(error = ?e, "recorder task failed");
            }
            tracing::info!("delivery workers stopped");
        });
        Ok((d, handle))
    }

    /// The dispatcher without its sweep and recorder: what lanes report
    /// arrives on the receiver. `start` runs the rest; a test drives a lane
    /// itself.
    fn new(
        ctx: Arc<AppContext>,
        shutdown: CancellationToken,
        abort: CancellationToken,
        health: Arc<dyn HealthWatch>,
    ) -> anyhow::Result<(Self, mpsc::Receiver<Record>)> {
        let policy = guard::Policy::configured(&ctx.config).map_err(anyhow::Error::msg)?;
        let sender = send::Sender::new(
            ctx.config.http_timeout,
            policy,
            ctx.config.target_ca.as_deref(),
        )?;
        let (tx, rx) = mpsc::channel(10_000);
        let ctx_connections = ctx.config.delivery_connections;
        ctx.metrics.connection_budget(ctx_connections as usize);
        let d = Dispatcher {
            inner: Arc::new(Inner {
                ctx,
                sender,
                lanes: Mutex::new(HashMap::new()),
                tracker: TaskTracker::new(),
                outcomes: tx,
                shutdown,
                abort,
                live: AtomicU32::new(1),
                withdrawals: AtomicU64::new(0),
                connections: Arc::new(tokio::sync::Semaphore::new(ctx_connections as usize)),
                health,
            }),
        };
        Ok((d, rx))
    }

    /// The target guard's policy, which the API also applies at subscribe
    /// time.
    pub fn target_policy(&self) -> &guard::Policy {
        self.inner.sender.policy()
    }

    /// Tells the lane of `subscription` there may be work, starting one if
    /// none runs.
    pub fn wake(&self, subscription: &SubscriptionId) {
        self.nudge(subscription, None);
    }

    /// Gets the lane of `subscription` ready for work due soon: started now
    /// (it reads its subscription and prepares its signers), and kept up
    /// until `until` even with nothing to do, so the first request of a
    /// fan-out does not wait for any of that.
    pub fn warm(&self, subscription: &SubscriptionId, until: tokio::time::Instant) {
        self.nudge(subscription, Some(until));
    }

    fn nudge(&self, subscription: &SubscriptionId, warm_until: Option<tokio::time::Instant>) {
        if self.inner.shutdown.is_cancelled() {
            return;
        }
        let keep = |sig: &LaneSignal| {
            if let Some(t) = warm_until {
                let mut w = sig.warm_until.lock().expect("warm lock");
                *w = Some(w.map_or(t, |old| old.max(t)));
            }
        };
        let mut lanes = self.inner.lanes.lock().expect("lanes lock");
        if let Some(sig) = lanes.get(subscription) {
            keep(sig);
            sig.woken.store(true, Ordering::SeqCst);
            sig.wakes.fetch_add(1, Ordering::SeqCst);
            sig.notify.notify_one();
            return;
        }
        let sig = Arc::new(LaneSignal::default());
        keep(&sig);
        lanes.insert(subscription.clone(), sig.clone());
        self.inner.ctx.metrics.lane(true);
        let d = self.clone();
        let id = subscription.clone();
        self.inner
            .tracker
            .spawn(async move { lane::run(d, id, sig).await });
    }

    /// Says that `subscription` changed (its secret was rotated, its caps
    /// or URL changed): its lane, if one runs, reads it again before it
    /// starts another request, instead of at its next tick.
    pub fn changed(&self, subscription: &SubscriptionId) {
        if let Some(sig) = self
            .inner
            .lanes
            .lock()
            .expect("lanes lock")
            .get(subscription)
        {
            sig.reread.store(true, Ordering::SeqCst);
            sig.notify.notify_one();
        }
    }

    /// The in-flight limit the lane of `subscription` on this instance
    /// allows itself now, adapted to its endpoint; `None` while no lane
    /// runs for it here.
    pub fn limit(&self, subscription: &SubscriptionId) -> Option<usize> {
        let lanes = self.inner.lanes.lock().expect("lanes lock");
        let n = lanes.get(subscription)?.limit.load(Ordering::Relaxed);
        (n > 0).then_some(n)
    }

    /// Says that work may have been withdrawn (the change is committed):
    /// every lane drops what it holds of it before its next request, so
    /// once the caller answers, only attempts already in flight go out.
    pub fn withdraw(&self) {
        self.inner.withdrawals.fetch_add(1, Ordering::SeqCst);
        for sig in self.inner.lanes.lock().expect("lanes lock").values() {
            sig.notify.notify_one();
        }
    }

    /// The count [`Dispatcher::withdraw`] moves.
    fn withdrawals(&self) -> u64 {
        self.inner.withdrawals.load(Ordering::SeqCst)
    }

    /// Called by a lane with nothing left to do: retires it unless it was
    /// woken meanwhile. Returns whether the lane may stop.
    fn retire(&self, subscription: &SubscriptionId, sig: &LaneSignal) -> bool {
        let mut lanes = self.inner.lanes.lock().expect("lanes lock");
        if sig.woken.swap(false, Ordering::SeqCst) && !self.inner.shutdown.is_cancelled() {
            return false;
        }
        lanes.remove(subscription);
        self.inner.ctx.metrics.lane(false);
        true
    }

    /// This instance's part of a subscription-wide cap.
    fn share(&self, cap: u32) -> u32 {
        share(cap, self.inner.live.load(Ordering::Relaxed))
    }

    async fn sweep_loop(&self) {
        let ctx = &self.inner.ctx;
        let mut n = 0u32;
        let alive = ctx.alive_window();
        loop {
            let now = ctx.clock.now();
            match ctx.engine.heartbeat(&ctx.instance, now, now - alive).await {
                Ok(live) => {
                    let before = self.inner.live.swap(live.max(1), Ordering::Relaxed);
                    if before != live {
                        tracing::info!(instances = live, "instances sharing the store");
                    }
                }
                Err(e) => tracing::warn!(error = %crate::telemetry::causes(&e), "heartbeat failed"),
            }
            if n.is_multiple_of(SCAN_EVERY) {
                match ctx.engine.subscriptions_with_work().await {
                    Ok(subs) => subs.iter().for_each(|s| self.wake(s)),
                    Err(e) => {
                        tracing::warn!(error = %crate::telemetry::causes(&e), "scan for pending deliveries failed")
                    }
                }
            }
            let started = std::time::Instant::now();
            let expired = ctx.engine.expire_overdue(ctx.clock.now()).await;
            ctx.metrics.store_call(StoreCall::ExpireOverdue, started);
            match expired {
                Ok(0) => {}
                Ok(k) => {
                    ctx.metrics.count(Fate::Expired, k);
                    tracing::info!(deliveries = k, "expired deliveries not sent in time")
                }
                Err(e) => {
                    tracing::warn!(error = %crate::telemetry::causes(&e), "expiry sweep failed")
                }
            }
            n = n.wrapping_add(1);
            tokio::select! {
                _ = tokio::time::sleep(ctx.config.tick) => {}
                _ = self.inner.shutdown.cancelled() => break,
            }
        }
    }
}

/// One instance's part of a cap shared by `live` instances: the cap divided
/// evenly, rounded down so that together they stay within it, and at least
/// one (so more instances than the cap may exceed it, by one each).
pub fn share(cap: u32, live: u32) -> u32 {
    (cap / live.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::share;

    #[test]
    fn caps_are_split_between_instances() {
        assert_eq!(share(16, 1), 16);
        assert_eq!(share(16, 3), 5);
        assert_eq!(share(10, 0), 10);
        assert_eq!(share(2, 5), 1);
    }
}
