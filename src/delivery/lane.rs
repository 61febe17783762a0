//! One subscription's lane: leases due deliveries (pending rows, and whole
//! slices of a fired reminder) into a local queue, and sends them while the
//! subscription's concurrency cap and rate cap allow; results go to the
//! recorder, and once every job of a slice has a result the slice is closed.
//! It retires when the subscription has nothing pending; the dispatcher
//! starts it again on work.

use super::pool::Pool;
use super::unit::{render, vanished, Target, Unit};
use super::{Dispatcher, LaneSignal, Record};
use crate::domain::payload;
use crate::signing::Signer;
use crate::store::{Claimed, Job, Subscription};
use chrono::{DateTime, Duration, Utc};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Instant;

/// Most deliveries a lane leases at once (a slice may overshoot it): enough
/// to keep a fast endpoint busy between two claims, few enough to hand back
/// quickly.
const MAX_CLAIM: u32 = 2000;

/// What a lane knows of its subscription, refreshed about once a tick.
struct View {
    sub: Subscription,
    target: Arc<Target>,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    rate: Option<u32>,
    fetched: Instant,
}

/// The subscription as it is now: `None` once it is gone or not active.
/// A store failure keeps the view the lane had (a lane must not stop for a
/// database restart), or, with none yet, is `Err`.
async fn refresh(d: &Dispatcher, id: &str, old: Option<View>) -> Result<Option<View>, ()> {
    let sub = match d.inner.ctx.store.get_subscription(id).await {
        Ok(sub) => sub,
        Err(crate::store::StoreError::NotFound) => return Ok(None),
        Err(e) => {
            tracing::warn!(subscription = %id, error = %crate::error::causes(&e), "reading the subscription failed");
            // Looked at again in a tick.
            return old
                .map(|mut o| {
                    o.fetched = Instant::now();
                    Some(o)
                })
                .ok_or(());
        }
    };
    Ok(view(d, sub, old))
}

fn view(d: &Dispatcher, sub: Subscription, old: Option<View>) -> Option<View> {
    let ctx = &d.inner.ctx;
    if sub.status != "active" {
        return None;
    }
    let url = url::Url::parse(&sub.hook_url).ok()?;
    let now = ctx.clock.now();
    let open = |stored: &str| match ctx.secrets.open(stored) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(subscription = %sub.id, error = %e, "cannot open the signing secret; not sending");
            None
        }
    };
    let mut signers = vec![Signer::new(&open(&sub.secret)?).ok()?];
    if let (Some(prev), Some(until)) = (&sub.previous_secret, sub.previous_until) {
        if until > now {
            signers.extend(open(prev).and_then(|p| Signer::new(&p).ok()));
        }
    }
    // Caps hold for the subscription across instances: this is our part.
    let rate = sub
        .rate_per_second
        .or(Some(ctx.config.default_rate))
        .filter(|r| *r > 0)
        .map(|r| d.share(r));
    // Keep the limiter (and its state) while the rate is unchanged.
    let limiter = match (old, rate) {
        (Some(o), Some(r)) if o.rate == Some(r) => o.limiter,
        (_, Some(r)) => {
            NonZeroU32::new(r).map(|r| Arc::new(RateLimiter::direct(Quota::per_second(r))))
        }
        (_, None) => None,
    };
    let target = Arc::new(Target {
        url,
        signers: Arc::new(signers),
        event: sub.event.clone(),
    });
    Some(View {
        sub,
        target,
        limiter,
        rate,
        fetched: Instant::now(),
    })
}

/// Requests a lane starts with before any has been answered: it opens up
/// as answers come (each doubles it), so an endpoint is not hit by its whole
/// concurrency of new connections at once, and the first requests of a
/// fan-out do not queue behind the others' connection set-up.
const SLOW_START: usize = 4;

/// The lane's work in hand.
struct Work {
    /// The concurrency the lane allows itself now (see [`SLOW_START`]).
    open: usize,
    queue: VecDeque<Job>,
    webinars: HashMap<String, payload::WebinarFacts>,
    /// Jobs of each leased slice still without a result.
    open_slices: HashMap<i64, usize>,
    inflight: Pool,
}

impl Work {
    fn take(&mut self, c: Claimed) {
        if self.queue.is_empty() {
            self.webinars.clear();
        }
        self.queue.extend(c.jobs);
        self.webinars.extend(c.webinars);
        for (id, n) in c.slices {
            *self.open_slices.entry(id).or_default() += n;
        }
    }

    /// Counts finished deliveries against their slices (one entry each);
    /// closes a slice when its last delivery is done.
    async fn settle(&mut self, d: &Dispatcher, slices: Vec<i64>) {
        self.open = self.open.saturating_mul(2);
        self.count_off(d, slices).await;
    }

    /// Counts deliveries done with (sent, or dropped) against their slices.
    async fn count_off(&mut self, d: &Dispatcher, slices: Vec<i64>) {
        for id in slices {
            let Some(left) = self.open_slices.get_mut(&id) else {
                continue;
            };
            *left -= 1;
            if *left == 0 {
                self.open_slices.remove(&id);
                let _ = d.inner.outcomes.send(Record::SliceDone(id)).await;
            }
        }
    }

    /// Drops, unsent, the queued jobs the store says were withdrawn since
    /// they were leased: of a cancelled slice or row, or of a participant
    /// since unregistered. One store call, whatever the queue holds; on a
    /// failure the jobs are kept, and looked at again at the next change.
    async fn withdraw(&mut self, d: &Dispatcher, sub: &str) {
        if self.queue.is_empty() {
            return;
        }
        let slices: Vec<i64> = self.open_slices.keys().copied().collect();
        let rows: Vec<String> = self
            .queue
            .iter()
            .filter(|j| j.fresh.is_none())
            .map(|j| j.id.clone())
            .collect();
        let people: Vec<String> = self
            .queue
            .iter()
            .filter_map(|j| j.fresh.as_ref().map(|f| f.participant_id.clone()))
            .collect();
        let gone = match d.inner.ctx.store.withdrawn(&slices, &rows, &people).await {
            Ok(g) if g.is_empty() => return,
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(subscription = %sub, error = ?e, "checking for withdrawn work failed");
                return;
            }
        };
        let before = self.queue.len();
        let mut dropped = Vec::new();
        self.queue.retain(|j| match &j.fresh {
            Some(f) if gone.slices.contains(&f.slice) => false,
            Some(f) if gone.participants.contains(&f.participant_id) => {
                dropped.push(f.slice);
                false
            }
            Some(_) => true,
            None => !gone.rows.contains(&j.id),
        });
        // A withdrawn slice is closed by the change itself.
        for id in &gone.slices {
            self.open_slices.remove(id);
        }
        self.count_off(d, dropped).await;
        tracing::info!(subscription = %sub, dropped = before - self.queue.len(), "dropped held deliveries withdrawn since they were leased");
    }

    async fn reap(&mut self, d: &Dispatcher) {
        while let Some(r) = self.inflight.try_join_next() {
            self.settle(d, r).await;
        }
    }

    /// When the job at the head of the queue may leave, if not yet: the
    /// jobs of a staged slice wait for their reminder's due instant.
    fn held_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let job = self.queue.front()?;
        job.fresh.as_ref().map(|f| f.due_at).filter(|t| *t > now)
    }

    async fn join_one(&mut self, d: &Dispatcher) {
        if let Some(r) = self.inflight.join_next().await {
            self.settle(d, r).await;
        }
    }

    /// The next POST to make: one job or, for a batched subscription, up to
    /// `batch` fresh jobs, none held for a later instant. Jobs that cannot
    /// be rendered are recorded as expired on the way.
    async fn next_unit(
        &mut self,
        d: &Dispatcher,
        batch: usize,
        now: DateTime<Utc>,
    ) -> Option<Unit> {
        let mut members: Vec<(Job, bytes::Bytes)> = Vec::new();
        while members.len() < batch.max(1) {
            let Some(fresh) = self.queue.front().map(|j| j.fresh.is_some()) else {
                break;
            };
            if !members.is_empty() && (!fresh || self.held_until(now).is_some()) {
                break;
            }
            let Some(job) = self.queue.pop_front() else {
                break;
            };
            match render(&job, &self.webinars) {
                Some(body) => members.push((job, body)),
                None => {
                    let slice = vanished(d, job).await;
                    self.settle(d, slice.into_iter().collect()).await;
                }
            }
            if batch <= 1 || !fresh {
                break;
            }
        }
        // A batched subscription gets arrays, even of one; what is not fresh
        // (a retry, a test event) goes as it is.
        let fresh = members.first().is_some_and(|m| m.0.fresh.is_some());
        match members.len() {
            0 => None,
            1 if batch <= 1 || !fresh => members.pop().map(|(job, body)| Unit::single(job, body)),
            _ => Some(Unit::batch(members)),
        }
    }
}

/// Runs one lane until its subscription has no pending work, is no longer
/// active, or the service stops; in-flight attempts finish, unless the
/// shutdown deadline passes first.
pub async fn run(d: Dispatcher, id: String, sig: Arc<LaneSignal>) {
    let ctx = d.inner.ctx.clone();
    let shutdown = d.inner.shutdown.clone();
    tracing::debug!(subscription = %id, "lane started");
    let mut w = Work {
        queue: VecDeque::new(),
        webinars: HashMap::new(),
        open_slices: HashMap::new(),
        inflight: Pool::new(d.clone()),
        open: SLOW_START,
    };
    let mut view: Option<View> = None;
    // Leases are renewed at a third of their length: what the lane holds
    // (its open slices, its queued rows) stays its own however long the
    // endpoint takes to get through it.
    let lease_len = Duration::from_std(ctx.config.lease).unwrap_or(Duration::seconds(90));
    let mut renewed = Instant::now();
    let tick = Duration::from_std(ctx.config.tick).unwrap_or(Duration::seconds(1));
    // Claims start small and double: the first requests of a fan-out leave
    // after a claim of one small slice, not of thousands of jobs.
    let mut ramp = 1u32;
    // A lane started for a fan-out about to fall due connects ahead of it.
    let mut warmed = false;
    // Changes that may withdraw held work: those made through this instance
    // are signalled at once; on a shared store, those made through the
    // others are looked for once a tick.
    let mut withdrawals = d.withdrawals();
    let shared = ctx.store.changes().is_some();
    let mut looked = Instant::now();
    loop {
        w.reap(&d).await;
        if shutdown.is_cancelled() {
            break;
        }
        if view
            .as_ref()
            .is_none_or(|v| v.fetched.elapsed() >= ctx.config.tick)
        {
            match refresh(&d, &id, view.take()).await {
                Ok(v) => view = v,
                Err(()) => {
                    // The store is away: try again in a tick.
                    tokio::select! {
                        _ = tokio::time::sleep(ctx.config.tick) => {}
                        _ = shutdown.cancelled() => {}
                    }
                    continue;
                }
            }
        }
        let Some(v) = view.as_ref() else {
            // Gone or disabled: stop, unless work was announced meanwhile
            // (then look again).
            if d.retire(&id, &sig) {
                break;
            }
            continue;
        };
        if renewed.elapsed() >= (lease_len / 3).to_std().unwrap_or_default() {
            renewed = Instant::now();
            renew(&d, &w, lease_len).await;
        }
        if d.withdrawals() != withdrawals || shared && looked.elapsed() >= ctx.config.tick {
            withdrawals = d.withdrawals();
            looked = Instant::now();
            w.withdraw(&d, &id).await;
        }
        let cap = d.share(v.sub.max_concurrency.max(1)) as usize;
        if !warmed && sig.warm() {
            // As many connections as the burst will start with.
            warmed = true;
            if w.inflight.is_empty() {
                w.inflight.warm(&v.target, SLOW_START.min(cap));
            }
        }
        if w.queue.is_empty() && w.inflight.is_empty() {
            // Idle: the next burst starts slowly again.
            w.open = SLOW_START;
        }
        // Send what is queued before claiming more: the store may be busy
        // (a fan-out step ahead of the claim), and the first requests of a
        // burst should not wait for it.
        while w.inflight.len() < cap.min(w.open) && !w.queue.is_empty() {
            if w.held_until(ctx.clock.now()).is_some() {
                break;
            }
            if let Some(l) = &v.limiter {
                l.until_ready().await;
            }
            if d.withdrawals() != withdrawals {
                // Look at what was withdrawn first (above).
                break;
            }
            let now = ctx.clock.now();
            if let Some(unit) = w.next_unit(&d, v.sub.batch_size as usize, now).await {
                w.inflight.spawn(unit, v.target.clone());
            }
            if v.limiter.is_some() {
                // One paced send per turn of the loop, so that its waits
                // never hold off the lease renewal above.
                break;
            }
        }
        // A paced lane already holding a second's worth claims nothing.
        let paced_full = v.rate.is_some_and(|r| w.queue.len() >= r as usize);
        if w.queue.len() < cap && !paced_full {
            // Never hold more leases than a second's worth at the rate cap.
            let most = (cap as u32 * 8)
                .clamp(1, MAX_CLAIM)
                .min(v.rate.unwrap_or(u32::MAX))
                .min(ramp);
            let want = most.saturating_sub(w.queue.len() as u32).max(1);
            let now = ctx.clock.now();
            let lease = now + Duration::from_std(ctx.config.lease).unwrap_or(Duration::seconds(90));
            match ctx
                .store
                .claim_deliveries(&id, now, want, &ctx.instance, lease)
                .await
            {
                Ok(c) => {
                    if !c.jobs.is_empty() {
                        tracing::debug!(subscription = %id, jobs = c.jobs.len(), "claimed");
                    }
                    ramp = if c.jobs.is_empty() {
                        1
                    } else {
                        ramp.saturating_mul(2)
                    };
                    w.take(c)
                }
                Err(e) => {
                    tracing::warn!(subscription = %id, error = %crate::error::causes(&e), "claiming deliveries failed")
                }
            }
        }
        if w.queue.is_empty() {
            let now = ctx.clock.now();
            let next = if w.inflight.is_empty() {
                match ctx.store.next_delivery_due(&id).await {
                    Ok(None) if !sig.warm() && d.retire(&id, &sig) => break,
                    Ok(next) => next,
                    Err(_) => None,
                }
            } else {
                None
            };
            let wait = next
                .map(|t| (t - now).clamp(Duration::zero(), tick))
                .unwrap_or(tick);
            let busy = !w.inflight.is_empty();
            tokio::select! {
                _ = tokio::time::sleep(wait.to_std().unwrap_or_default()) => {}
                _ = sig.notify.notified() => {}
                _ = w.join_one(&d), if busy => {}
                _ = shutdown.cancelled() => {}
            }
            continue;
        }
        if let Some(t) = w.held_until(ctx.clock.now()) {
            // Staged ahead of its due instant: the view is made fresh enough
            // to last past the instant, so nothing stands between the
            // instant and the first requests.
            let left = (t - ctx.clock.now()).to_std().unwrap_or_default();
            if view
                .as_ref()
                .is_some_and(|v| v.fetched.elapsed() + left >= ctx.config.tick / 2)
            {
                if let Ok(v) = refresh(&d, &id, view.take()).await {
                    view = v;
                }
            }
            let busy = !w.inflight.is_empty();
            tokio::select! {
                _ = ctx.clock.wait_until(t, ctx.config.tick) => {}
                _ = w.join_one(&d), if busy => {}
                _ = shutdown.cancelled() => {}
            }
            continue;
        }
        if w.inflight.len() >= cap.min(w.open) {
            tokio::select! {
                _ = w.join_one(&d) => {}
                _ = shutdown.cancelled() => {}
            }
        }
    }
    // Finish what is in flight, until the shutdown deadline. Queued jobs
    // stay leased: a clean stop hands them back once everything is recorded
    // (`crate::run`); after a crash the leases lapse and any instance takes
    // them.
    while !w.inflight.is_empty() {
        tokio::select! {
            _ = w.join_one(&d) => {}
            _ = d.inner.abort.cancelled() => {
                // Not recorded, so handed back with the leases: sent again
                // by the next start with the same webhook-id, which the
                // receiver may have seen already (at least once).
                tracing::warn!(subscription = %id, attempts = w.inflight.len(), "shutdown deadline: dropping attempts in flight");
                w.inflight.abort();
                break;
            }
        }
    }
    w.inflight.close().await;
    tracing::debug!(subscription = %id, "lane stopped");
}

/// Extends the leases of what the lane holds and has not finished: its open
/// slices and its queued rows (a row in flight was renewed while queued, and
/// an attempt is shorter than a lease).
async fn renew(d: &Dispatcher, w: &Work, lease_len: Duration) {
    let slices: Vec<i64> = w.open_slices.keys().copied().collect();
    let rows: Vec<String> = w
        .queue
        .iter()
        .filter(|j| j.fresh.is_none())
        .map(|j| j.id.clone())
        .collect();
    if slices.is_empty() && rows.is_empty() {
        return;
    }
    let ctx = &d.inner.ctx;
    let until = ctx.clock.now() + lease_len;
    if let Err(e) = ctx
        .store
        .renew_leases(&ctx.instance, &slices, &rows, until)
        .await
    {
        tracing::warn!(error = %crate::error::causes(&e), "renewing leases failed; they may lapse");
    }
}
