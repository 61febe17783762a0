//! One subscription's lane: leases due deliveries (pending rows, and whole
//! slices of a fired reminder) into a local queue, and sends them while the
//! subscription's concurrency cap and rate cap allow; results go to the
//! recorder, and once every job of a slice has a result the slice is closed.
//! It retires when the subscription has nothing pending; the dispatcher
//! starts it again on work.

use super::send::Message;
use super::{Dispatcher, LaneSignal, Record};
use crate::domain::payload;
use crate::signing::{signature_header, Signer};
use crate::store::{Attempt, Claimed, Job, Outcome, Subscription, Verdict};
use chrono::Duration;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Instant;
use tokio::task::JoinSet;

/// Most deliveries a lane leases at once (a slice may overshoot it): enough
/// to keep a fast endpoint busy between two claims, few enough to hand back
/// quickly.
const MAX_CLAIM: u32 = 2000;

/// What a lane knows of its subscription, refreshed about once a tick.
struct View {
    sub: Subscription,
    url: reqwest::Url,
    signers: Arc<Vec<Signer>>,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    rate: Option<u32>,
    fetched: Instant,
}

async fn refresh(d: &Dispatcher, id: &str, old: Option<View>) -> Option<View> {
    let ctx = &d.inner.ctx;
    let sub = ctx.store.get_subscription(id).await.ok()?;
    if sub.status != "active" {
        return None;
    }
    let url = reqwest::Url::parse(&sub.hook_url).ok()?;
    let now = ctx.clock.now();
    let mut signers = vec![Signer::new(&sub.secret).ok()?];
    if let (Some(prev), Some(until)) = (&sub.previous_secret, sub.previous_until) {
        if until > now {
            signers.extend(Signer::new(prev).ok());
        }
    }
    let rate = sub
        .rate_per_second
        .or(Some(ctx.config.default_rate))
        .filter(|r| *r > 0);
    // Keep the limiter (and its state) while the rate is unchanged.
    let limiter = match (old, rate) {
        (Some(o), Some(r)) if o.rate == Some(r) => o.limiter,
        (_, Some(r)) => {
            NonZeroU32::new(r).map(|r| Arc::new(RateLimiter::direct(Quota::per_second(r))))
        }
        (_, None) => None,
    };
    Some(View {
        sub,
        url,
        signers: Arc::new(signers),
        limiter,
        rate,
        fetched: Instant::now(),
    })
}

/// The lane's work in hand.
#[derive(Default)]
struct Work {
    queue: VecDeque<Job>,
    webinars: HashMap<String, payload::WebinarFacts>,
    /// Jobs of each leased slice still without a result.
    open_slices: HashMap<i64, usize>,
    inflight: JoinSet<Option<i64>>,
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

    /// Counts a finished job against its slice; closes the slice when it
    /// was the last one.
    async fn settle(&mut self, d: &Dispatcher, slice: Option<i64>) {
        let Some(id) = slice else { return };
        let Some(left) = self.open_slices.get_mut(&id) else {
            return;
        };
        *left -= 1;
        if *left == 0 {
            self.open_slices.remove(&id);
            let _ = d.inner.outcomes.send(Record::SliceDone(id)).await;
        }
    }

    async fn reap(&mut self, d: &Dispatcher) {
        while let Some(r) = self.inflight.try_join_next() {
            self.settle(d, r.ok().flatten()).await;
        }
    }

    async fn join_one(&mut self, d: &Dispatcher) {
        if let Some(r) = self.inflight.join_next().await {
            self.settle(d, r.ok().flatten()).await;
        }
    }
}

/// Runs one lane until its subscription has no pending work, is no longer
/// active, or the service stops; in-flight attempts always finish.
pub async fn run(d: Dispatcher, id: String, sig: Arc<LaneSignal>) {
    let ctx = d.inner.ctx.clone();
    let shutdown = d.inner.shutdown.clone();
    let mut w = Work::default();
    let mut view: Option<View> = None;
    let tick = Duration::from_std(ctx.config.tick).unwrap_or(Duration::seconds(1));
    // Claims start small and double: the first requests of a fan-out leave
    // after a claim of one small slice, not of thousands of jobs.
    let mut ramp = 1u32;
    loop {
        w.reap(&d).await;
        if shutdown.is_cancelled() {
            break;
        }
        if view
            .as_ref()
            .is_none_or(|v| v.fetched.elapsed() >= ctx.config.tick)
        {
            view = refresh(&d, &id, view.take()).await;
        }
        let Some(v) = view.as_ref() else {
            d.retire(&id, &sig);
            break;
        };
        let cap = v.sub.max_concurrency.max(1) as usize;
        if w.queue.len() < cap {
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
                    ramp = if c.jobs.is_empty() {
                        1
                    } else {
                        ramp.saturating_mul(2)
                    };
                    w.take(c)
                }
                Err(e) => {
                    tracing::warn!(subscription = %id, error = ?e, "claiming deliveries failed")
                }
            }
        }
        if w.queue.is_empty() {
            let now = ctx.clock.now();
            let next = if w.inflight.is_empty() {
                match ctx.store.next_delivery_due(&id).await {
                    Ok(None) if d.retire(&id, &sig) => break,
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
        while w.inflight.len() < cap {
            let Some(job) = w.queue.pop_front() else {
                break;
            };
            if let Some(l) = &v.limiter {
                l.until_ready().await;
            }
            match render(&job, &w.webinars) {
                Some(body) => {
                    let task = attempt(
                        d.clone(),
                        job,
                        body,
                        v.url.clone(),
                        v.signers.clone(),
                        v.sub.event.clone(),
                    );
                    w.inflight.spawn(task);
                }
                None => {
                    let slice = vanished(&d, job).await;
                    w.settle(&d, slice).await;
                }
            }
        }
        if w.inflight.len() >= cap {
            tokio::select! {
                _ = w.join_one(&d) => {}
                _ = shutdown.cancelled() => {}
            }
        }
    }
    // Finish what is in flight; queued jobs stay leased until the lease
    // lapses, then any instance sends them.
    while !w.inflight.is_empty() {
        w.join_one(&d).await;
    }
}

/// The body of a job: its fixed payload, or its participant's payload
/// rendered now (offsets computed at the moment of sending).
fn render(job: &Job, webinars: &HashMap<String, payload::WebinarFacts>) -> Option<bytes::Bytes> {
    if let Some(p) = &job.payload {
        return Some(bytes::Bytes::from(p.clone()));
    }
    let w = webinars.get(job.webinar_id.as_deref()?)?;
    Some(payload::render(w, job.participant.as_ref()?).into())
}

/// A job whose participant or webinar no longer exists: recorded as expired
/// with the reason, never silently dropped. Returns its slice.
async fn vanished(d: &Dispatcher, job: Job) -> Option<i64> {
    let now = d.inner.ctx.clock.now();
    let attempt = Attempt {
        attempt: job.attempt,
        started_at: now,
        status_code: None,
        latency_ms: 0,
        error: Some("participant or webinar no longer exists; not sent".into()),
        response: None,
    };
    let slice = job.fresh.as_ref().map(|f| f.slice);
    let outcome = Outcome {
        delivery_id: job.id,
        subscription_id: job.subscription_id,
        attempt,
        verdict: Verdict::Expired,
        fresh: job.fresh,
    };
    let _ = d.inner.outcomes.send(Record::Outcome(outcome)).await;
    slice
}

/// Makes one attempt and hands its result to the recorder. Returns the
/// job's slice, if it came from one.
async fn attempt(
    d: Dispatcher,
    job: Job,
    body: bytes::Bytes,
    url: reqwest::Url,
    signers: Arc<Vec<Signer>>,
    event: String,
) -> Option<i64> {
    let ctx = &d.inner.ctx;
    let started = ctx.clock.now();
    let ts = started.timestamp();
    let msg = Message {
        url: &url,
        webhook_id: &job.id,
        timestamp: ts,
        signature: signature_header(&signers, &job.id, ts, &body),
        event: &event,
        reminder: &job.label,
        attempt: job.attempt,
        body,
    };
    let (attempt, resp) = d.inner.sender.send(msg, started).await;
    let verdict = ctx.retry_policy().verdict(
        job.attempt,
        &resp,
        ctx.clock.now(),
        job.expires_at,
        rand::random(),
    );
    if verdict != Verdict::Delivered {
        tracing::debug!(delivery = %job.id, attempt = job.attempt, error = ?attempt.error, ?verdict, "attempt failed");
    }
    let slice = job.fresh.as_ref().map(|f| f.slice);
    let outcome = Outcome {
        delivery_id: job.id,
        subscription_id: job.subscription_id,
        attempt,
        verdict,
        fresh: job.fresh,
    };
    if d.inner
        .outcomes
        .send(Record::Outcome(outcome))
        .await
        .is_err()
    {
        tracing::error!(
            "recorder gone; attempt result not recorded (the lease will lapse and it is retried)"
        );
    }
    slice
}
