//! One subscription's lane: leases due deliveries (pending rows, and whole
//! slices of a fired reminder) into its work in hand (`work`), and sends
//! them while the subscription's concurrency cap and rate cap allow;
//! results go to the recorder, and once every job of a slice has a result
//! the slice is closed. It retires when the subscription has nothing
//! pending; the dispatcher starts it again on work.
//!
//! [`Lane::step`] is one turn: look at the subscription (`caps`), keep the leases,
//! drop withdrawn work, send what may leave, claim more, then wait for
//! whatever comes next. [`run`] loops over it; a test drives it step by
//! step.

use super::caps::Caps;
use super::limit::SLOW_START;
use super::view::{refresh, View};
use super::work::Work;
use super::{Dispatcher, LaneSignal};
use crate::store::{DeliveryClaim, SubscriptionId};
use chrono::Duration;
use std::sync::Arc;
use std::time::Instant;

/// Most deliveries a lane leases at once (a slice may overshoot it): enough
/// to keep a fast endpoint busy between two claims, few enough to hand back
/// quickly.
const MAX_CLAIM: u32 = 2000;

/// What one turn of a lane leads to.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// There may be more to do: turn again.
    Again,
    /// The subscription has no work, is gone or inactive, or the service is
    /// stopping: finish what is in flight ([`Lane::finish`]).
    Stop,
}

/// One subscription's lane and what it carries from turn to turn.
pub(super) struct Lane {
    d: Dispatcher,
    id: SubscriptionId,
    sig: Arc<LaneSignal>,
    w: Work,
    view: Option<View>,
    /// Leases are renewed at a third of their length: what the lane holds
    /// (its open slices, its queued rows) stays its own however long the
    /// endpoint takes to get through it.
    lease_len: Duration,
    renewed: Instant,
    /// Claims start small and double: the first requests of a fan-out
    /// leave after a claim of one small slice, not of thousands of jobs.
    ramp: u32,
    /// A lane started for a fan-out about to fall due connects ahead of it.
    warmed: bool,
    /// Changes that may withdraw held work: those made through this
    /// instance are signalled at once (the count moves); on a shared store,
    /// those made through the others are looked for once a tick.
    withdrawals: u64,
    shared: bool,
    looked: Instant,
    /// The last claim came back with fewer jobs than asked, when, and the
    /// nudges counted before it: until another nudge or a tick, a claim
    /// would find nothing new.
    dry: Option<(Instant, u64)>,
}

/// Runs one lane until its subscription has no pending work, is no longer
/// active, or the service stops; in-flight attempts finish, unless the
/// shutdown deadline passes first.
pub async fn run(d: Dispatcher, id: SubscriptionId, sig: Arc<LaneSignal>) {
    tracing::debug!(subscription = %id, "lane started");
    let mut lane = Lane::new(d, id, sig);
    while lane.step().await == Step::Again {}
    lane.finish().await;
}

impl Lane {
    pub(super) fn new(d: Dispatcher, id: SubscriptionId, sig: Arc<LaneSignal>) -> Self {
        let ctx = &d.inner.ctx;
        let lease_len = Duration::from_std(ctx.config.lease).unwrap_or(Duration::seconds(90));
        let shared = ctx.engine.changes().is_some();
        let withdrawals = d.withdrawals();
        Lane {
            w: Work::new(d.clone()),
            d,
            id,
            sig,
            view: None,
            lease_len,
            renewed: Instant::now(),
            ramp: 1,
            warmed: false,
            withdrawals,
            shared,
            looked: Instant::now(),
            dry: None,
        }
    }

    /// Workers alive, each with at most one connection.
    #[cfg(test)]
    pub(super) fn workers(&self) -> usize {
        self.w.inflight.workers()
    }

    /// One turn of the lane.
    pub(super) async fn step(&mut self) -> Step {
        self.w.reap(&self.d).await;
        if self.d.inner.shutdown.is_cancelled() {
            return Step::Stop;
        }
        let caps = match Caps::look(&self.d, &self.id, &self.sig, &mut self.view).await {
            Ok(Some(caps)) => caps,
            // Gone or disabled: stop, unless work was announced meanwhile
            // (then look again).
            Ok(None) if self.d.retire(&self.id, &self.sig) => return Step::Stop,
            Ok(None) => return Step::Again,
            Err(()) => {
                // The store is away: try again in a tick.
                let tick = self.d.inner.ctx.config.tick;
                tokio::select! {
                    _ = tokio::time::sleep(tick) => {}
                    _ = self.d.inner.shutdown.cancelled() => {}
                }
                return Step::Again;
            }
        };
        self.w.cap = caps.cap;
        self.upkeep(&caps).await;
        // Send what is queued before claiming more: the store may be busy
        // (a fan-out step ahead of the claim), and the first requests of a
        // burst should not wait for it.
        self.send(&caps).await;
        self.claim(&caps).await;
        let step = self.wait().await;
        self.sig.publish(self.w.open());
        step
    }

    /// Keeps the leases, drops withdrawn work, and connects ahead of a
    /// burst about to fall due.
    async fn upkeep(&mut self, caps: &Caps) {
        let ctx = &self.d.inner.ctx;
        if self.renewed.elapsed() >= (self.lease_len / 3).to_std().unwrap_or_default() {
            self.renewed = Instant::now();
            self.w.renew(&self.d, self.lease_len).await;
        }
        let moved = self.d.withdrawals() != self.withdrawals;
        if moved || self.shared && self.looked.elapsed() >= ctx.config.tick {
            self.withdrawals = self.d.withdrawals();
            self.looked = Instant::now();
            self.w.withdraw(&self.d, &self.id).await;
        }
        if !self.warmed && self.sig.warm() {
            // As many connections as the burst will start with.
            self.warmed = true;
            if self.w.inflight.is_empty() {
                self.w.inflight.warm(&caps.target, SLOW_START.min(caps.cap));
            }
        }
        if self.w.queue.is_empty() && self.w.inflight.is_empty() {
            // Idle: the next burst starts slowly again.
            self.w.limit.idle();
        }
        self.w.inflight.trim();
    }

    /// Starts attempts for what is queued and may leave now, within the
    /// concurrency cap; a paced lane starts one per turn.
    async fn send(&mut self, caps: &Caps) {
        let clock = &self.d.inner.ctx.clock;
        while self.w.inflight.len() < self.w.open()
            && !self.w.queue.is_empty()
            && self.w.inflight.reserve()
        {
            if self.w.held_until(clock.now()).is_some() || self.w.paused().is_some() {
                break;
            }
            if let Some(l) = &caps.limiter {
                l.until_ready().await;
            }
            if self.d.withdrawals() != self.withdrawals
                || self.sig.reread.load(std::sync::atomic::Ordering::SeqCst)
                || caps.trusted_until.is_some_and(|t| clock.now() >= t)
            {
                // Look at what was withdrawn, or at the changed
                // subscription, first (next turn).
                break;
            }
            if let Some(unit) = self.w.next_unit(&self.d, caps.batch, clock.now()).await {
                self.w.inflight.spawn(unit, caps.target.clone());
            }
            if caps.limiter.is_some() {
                // One paced send per turn, so that its waits never hold
                // off the lease renewal.
                break;
            }
        }
    }

    /// Leases more deliveries while the queue is shorter than the cap; a
    /// paced lane never holds more than a second's worth at its rate.
    async fn claim(&mut self, caps: &Caps) {
        let paced_full = caps.rate.is_some_and(|r| self.w.queue.len() >= r as usize);
        if self.w.queue.len() >= caps.cap || paced_full {
            return;
        }
        let ctx = &self.d.inner.ctx;
        let wakes = self.sig.wakes.load(std::sync::atomic::Ordering::SeqCst);
        if self
            .dry
            .is_some_and(|(at, seen)| seen == wakes && at.elapsed() < ctx.config.tick)
        {
            // Nothing was announced since the store last ran dry for this
            // lane: asking again after every answer would cost a store
            // call per delivery.
            return;
        }
        let most = (caps.cap as u32 * 8)
            .clamp(1, MAX_CLAIM)
            .min(caps.rate.unwrap_or(u32::MAX))
            .min(self.ramp);
        let want = most.saturating_sub(self.w.queue.len() as u32).max(1);
        let now = ctx.clock.now();
        let started = Instant::now();
        let store = ctx.engine.clone();
        let claim = DeliveryClaim {
            subscription_id: self.id.clone(),
            now,
            limit: want,
            owner: ctx.instance.clone(),
            lease_until: now + self.lease_len,
        };
        let claiming = async move { store.claim_deliveries(claim).await };
        tokio::pin!(claiming);
        // While the store answers (a round trip or several to PostgreSQL),
        // what is queued keeps going out as attempts end.
        let claimed = loop {
            let busy = !self.w.inflight.is_empty();
            tokio::select! {
                biased;
                c = &mut claiming => break c,
                _ = self.w.join_one(&self.d), if busy => self.send(caps).await,
            }
        };
        let ctx = &self.d.inner.ctx;
        ctx.metrics
            .store_call(crate::metrics::StoreCall::ClaimDeliveries, started);
        match claimed {
            Ok(c) => {
                if !c.jobs.is_empty() {
                    tracing::debug!(subscription = %self.id, jobs = c.jobs.len(), "claimed");
                }
                self.dry = ((c.jobs.len() as u32) < want).then(|| (Instant::now(), wakes));
                self.ramp = if c.jobs.is_empty() {
                    1
                } else {
                    self.ramp.saturating_mul(2)
                };
                self.w.take(c)
            }
            Err(e) => {
                tracing::warn!(subscription = %self.id, error = %crate::telemetry::causes(&e), "claiming deliveries failed")
            }
        }
    }

    /// Waits for what the lane needs next: work (when nothing is queued),
    /// the due instant of staged work, or a free place under the cap.
    async fn wait(&mut self) -> Step {
        let ctx = self.d.inner.ctx.clone();
        let shutdown = &self.d.inner.shutdown;
        if self.w.queue.is_empty() {
            return self.idle().await;
        }
        if let Some(t) = self.w.held_until(ctx.clock.now()) {
            // Staged ahead of its due instant: the view is made fresh enough
            // to last past the instant, so nothing stands between the
            // instant and the first requests.
            let left = (t - ctx.clock.now()).to_std().unwrap_or_default();
            let stale = |v: &View| v.fetched.elapsed() + left >= ctx.config.tick / 2;
            if self.view.as_ref().is_some_and(stale) {
                if let Ok(v) = refresh(&self.d, &self.id, self.view.take()).await {
                    self.view = v;
                }
            }
            let busy = !self.w.inflight.is_empty();
            tokio::select! {
                _ = ctx.clock.wait_until(t, ctx.config.tick) => {}
                _ = self.w.join_one(&self.d), if busy => {}
                _ = shutdown.cancelled() => {}
            }
        } else if let Some(t) = self.w.paused() {
            // The endpoint keeps failing at one request: the next is a
            // probe, after the pause.
            let busy = !self.w.inflight.is_empty();
            tokio::select! {
                _ = tokio::time::sleep_until(t) => {}
                _ = self.w.join_one(&self.d), if busy => {}
                _ = shutdown.cancelled() => {}
            }
        } else if self.w.inflight.len() >= self.w.open() || !self.w.inflight.reserve() {
            // At the cap, or at the service's connection budget: the next
            // free worker takes the next unit.
            tokio::select! {
                _ = self.w.join_one(&self.d) => {}
                _ = shutdown.cancelled() => {}
            }
        }
        Step::Again
    }

    /// Nothing queued: retires the lane if nothing is pending either (and
    /// it is not kept warm), else waits for the next due delivery, a nudge,
    /// an attempt's end, or a tick.
    async fn idle(&mut self) -> Step {
        let ctx = self.d.inner.ctx.clone();
        let tick = Duration::from_std(ctx.config.tick).unwrap_or(Duration::seconds(1));
        let now = ctx.clock.now();
        let next = if self.w.inflight.is_empty() {
            match ctx.engine.next_delivery_due(&self.id).await {
                Ok(None) if !self.sig.warm() && self.d.retire(&self.id, &self.sig) => {
                    return Step::Stop
                }
                Ok(next) => next,
                Err(_) => None,
            }
        } else {
            None
        };
        let wait = next
            .map(|t| (t - now).clamp(Duration::zero(), tick))
            .unwrap_or(tick);
        let busy = !self.w.inflight.is_empty();
        tokio::select! {
            // A retry (or a row released elsewhere) may be due now: the
            // next turn claims, however dry the last claim was.
            _ = tokio::time::sleep(wait.to_std().unwrap_or_default()) => self.dry = None,
            _ = self.sig.notify.notified() => {}
            _ = self.w.join_one(&self.d), if busy => {}
            _ = self.d.inner.shutdown.cancelled() => {}
        }
        Step::Again
    }

    /// Finishes what is in flight, until the shutdown deadline. Queued jobs
    /// stay leased: a clean stop hands them back once everything is
    /// recorded (`crate::run`); after a crash the leases lapse and any
    /// instance takes them.
    pub(super) async fn finish(mut self) {
        while !self.w.inflight.is_empty() {
            tokio::select! {
                _ = self.w.join_one(&self.d) => {}
                _ = self.d.inner.abort.cancelled() => {
                    // Not recorded, so handed back with the leases: sent
                    // again by the next start with the same webhook-id,
                    // which the receiver may have seen already (at least
                    // once).
                    tracing::warn!(subscription = %self.id, attempts = self.w.inflight.len(), "shutdown deadline: dropping attempts in flight");
                    self.w.inflight.abort();
                    break;
                }
            }
        }
        self.w.inflight.close().await;
        tracing::debug!(subscription = %self.id, "lane stopped");
    }
}
