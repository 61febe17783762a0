//! A lane's work in hand: the deliveries it leased and has not sent yet,
//! the facts of their webinars, the slices still open, and the attempts in
//! flight. It decides what the next POST carries, counts results off
//! against their slices (closing a slice with its last result), and drops
//! what the store says was withdrawn since it was leased.

use super::limit::{Limit, Signal};
use super::pool::Pool;
use super::unit::{render, unsent, Unit, STARTED, VANISHED};
use super::{Dispatcher, Record};
use crate::config::AfterStart;
use crate::domain::payload;
use crate::store::{Claimed, DeliveryId, Job, SubscriptionId, WebinarId};
use crate::store::{Held, Renewal, SliceId};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};

/// The lane's work in hand.
pub(super) struct Work {
    /// The concurrency the lane allows itself now, adapted to the
    /// endpoint (see `limit`), within `cap`.
    pub limit: Limit,
    /// The subscription's concurrency cap (this instance's share), as of
    /// the lane's last look.
    pub cap: usize,
    /// No request before then: the endpoint keeps failing at a limit of
    /// one (`Limit::pause`).
    pub paused_until: Option<tokio::time::Instant>,
    pub queue: VecDeque<Job>,
    pub webinars: HashMap<WebinarId, payload::WebinarFacts>,
    /// Jobs of each leased slice still without a result.
    pub open_slices: HashMap<SliceId, usize>,
    pub inflight: Pool,
}

impl Work {
    /// Nothing in hand; the next burst starts slowly.
    pub fn new(d: Dispatcher) -> Self {
        Work {
            queue: VecDeque::new(),
            webinars: HashMap::new(),
            open_slices: HashMap::new(),
            inflight: Pool::new(d),
            limit: Limit::default(),
            cap: 1,
            paused_until: None,
        }
    }

    pub fn take(&mut self, c: Claimed) {
        if self.queue.is_empty() {
            self.webinars.clear();
        }
        self.queue.extend(c.jobs);
        self.webinars.extend(c.webinars);
        for (id, n) in c.slices {
            *self.open_slices.entry(id).or_default() += n;
        }
    }

    /// Until when the lane holds its requests, if it does now.
    pub fn paused(&self) -> Option<tokio::time::Instant> {
        self.paused_until
            .filter(|t| *t > tokio::time::Instant::now())
    }

    /// Requests that may be in flight now.
    pub fn open(&self) -> usize {
        self.limit.get(self.cap)
    }

    /// Takes in what a finished attempt says of the endpoint, and counts
    /// its deliveries against their slices (one entry each), closing a
    /// slice when its last delivery is done.
    async fn settle(&mut self, d: &Dispatcher, (slices, signal): (Vec<SliceId>, Signal)) {
        self.limit.note(signal, self.inflight.len(), self.cap);
        self.paused_until = self.limit.pause().map(|p| tokio::time::Instant::now() + p);
        self.count_off(d, slices).await;
    }

    /// Counts deliveries done with (sent, or dropped) against their slices.
    async fn count_off(&mut self, d: &Dispatcher, slices: Vec<SliceId>) {
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

    /// What the lane holds under lease and has not finished: its open
    /// slices, and its queued rows (a row in flight was renewed while queued,
    /// and an attempt is shorter than a lease).
    fn leased(&self) -> (Vec<SliceId>, Vec<DeliveryId>) {
        let slices = self.open_slices.keys().copied().collect();
        let rows = self
            .queue
            .iter()
            .filter(|j| j.fresh.is_none())
            .map(|j| j.id.clone())
            .collect();
        (slices, rows)
    }

    /// Drops, unsent, the queued jobs the store says were withdrawn since
    /// they were leased: of a cancelled slice or row, or of a participant
    /// since unregistered. One store call, whatever the queue holds; on a
    /// failure the jobs are kept, and looked at again at the next change.
    pub async fn withdraw(&mut self, d: &Dispatcher, sub: &SubscriptionId) {
        if self.queue.is_empty() {
            return;
        }
        let (slices, rows) = self.leased();
        let participants = self
            .queue
            .iter()
            .filter_map(|j| j.fresh.as_ref().map(|f| f.participant_id.clone()))
            .collect();
        let held = Held {
            slices,
            rows,
            participants,
        };
        let gone = match d.inner.ctx.engine.withdrawn(held).await {
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

    pub async fn reap(&mut self, d: &Dispatcher) {
        while let Some(r) = self.inflight.try_join_next() {
            self.settle(d, r).await;
        }
    }

    /// When the job at the head of the queue may leave, if not yet: the
    /// jobs of a staged slice wait for their reminder's due instant (or
    /// their early start's).
    pub fn held_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let job = self.queue.front()?;
        job.fresh
            .as_ref()
            .map(|f| f.leaves_at())
            .filter(|t| *t > now)
    }

    /// Extends the leases of what the lane holds and has not finished
    /// ([`Work::leased`]).
    pub async fn renew(&self, d: &Dispatcher, lease_len: chrono::Duration) {
        let (slices, deliveries) = self.leased();
        if slices.is_empty() && deliveries.is_empty() {
            return;
        }
        let ctx = &d.inner.ctx;
        let renewal = Renewal {
            owner: ctx.instance.clone(),
            slices,
            deliveries,
            until: ctx.clock.now() + lease_len,
        };
        if let Err(e) = ctx.engine.renew_leases(renewal).await {
            tracing::warn!(error = %crate::telemetry::causes(&e), "renewing leases failed; they may lapse");
        }
    }

    pub async fn join_one(&mut self, d: &Dispatcher) {
        if let Some(r) = self.inflight.join_next().await {
            self.settle(d, r).await;
        }
    }

    /// Whether `job` is a fan-out's first attempt that would leave at or
    /// after its webinar's start (`--after-start` decides its fate).
    fn started(&self, job: &Job, now: DateTime<Utc>) -> bool {
        job.fresh.is_some()
            && job
                .webinar_id
                .as_ref()
                .and_then(|w| self.webinars.get(w))
                .is_some_and(|w| now >= w.from_time)
    }

    /// The next POST to make: one job or, for a batched subscription, up to
    /// `batch` fresh jobs, none held for a later instant. Jobs that cannot
    /// be rendered are recorded as expired on the way.
    pub async fn next_unit(
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
            let Some(mut job) = self.queue.pop_front() else {
                break;
            };
            if self.started(&job, now) {
                let metrics = &d.inner.ctx.metrics;
                match d.inner.ctx.config.after_start {
                    AfterStart::Expire => {
                        metrics.after_start(AfterStart::Expire);
                        let slice = unsent(d, job, STARTED).await;
                        self.count_off(d, slice.into_iter().collect()).await;
                        continue;
                    }
                    AfterStart::SendLate => {
                        metrics.after_start(AfterStart::SendLate);
                        if let Some(f) = job.fresh.as_mut() {
                            f.late = true;
                        }
                    }
                }
            }
            match render(&job, &self.webinars) {
                Some(body) => members.push((job, body)),
                None => {
                    let slice = unsent(d, job, VANISHED).await;
                    self.count_off(d, slice.into_iter().collect()).await;
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
