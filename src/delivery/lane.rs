//! One subscription's lane: claims as many due deliveries as its
//! concurrency cap has room for, waits on its rate cap, renders, signs and
//! sends each, and hands the results to the recorder. It retires when the
//! subscription has nothing pending; the dispatcher starts it again on work.

use super::send::Message;
use super::{Dispatcher, LaneSignal};
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

/// What a lane knows of its subscription, refreshed about once a tick.
struct View {
    sub: Subscription,
    url: reqwest::Url,
    signers: Arc<Vec<Signer>>,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
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
        (Some(o), Some(r))
            if o.sub.rate_per_second.or(Some(ctx.config.default_rate)) == Some(r) =>
        {
            o.limiter
        }
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
        fetched: Instant::now(),
    })
}

/// Most deliveries a lane leases at once: enough to keep a fast endpoint
/// busy between two claims, few enough to hand back quickly.
const MAX_CLAIM: u32 = 2000;

/// Runs one lane until its subscription has no pending work, is no longer
/// active, or the service stops; in-flight attempts always finish.
/// Deliveries are leased in batches into a local queue and sent while the
/// concurrency cap (and the rate cap) allow.
pub async fn run(d: Dispatcher, id: String, sig: Arc<LaneSignal>) {
    let ctx = d.inner.ctx.clone();
    let shutdown = d.inner.shutdown.clone();
    let mut inflight = JoinSet::new();
    let mut queue: VecDeque<Job> = VecDeque::new();
    let mut webinars: HashMap<String, payload::WebinarFacts> = HashMap::new();
    let mut view: Option<View> = None;
    let tick = Duration::from_std(ctx.config.tick).unwrap_or(Duration::seconds(1));
    loop {
        while inflight.try_join_next().is_some() {}
        if shutdown.is_cancelled() {
            break;
        }
        if view.as_ref().is_none_or(|v| v.fetched.elapsed() >= ctx.config.tick) {
            view = refresh(&d, &id, view.take()).await;
        }
        let Some(v) = view.as_ref() else {
            d.retire(&id, &sig);
            break;
        };
        let cap = v.sub.max_concurrency.max(1) as usize;
        let rate = v.sub.rate_per_second.or(Some(ctx.config.default_rate)).filter(|r| *r > 0);
        if queue.len() < cap {
            // Never hold more leases than a second's worth at the rate cap.
            let want = (cap as u32 * 8).clamp(1, MAX_CLAIM).min(rate.unwrap_or(u32::MAX)) - queue.len().min(u32::MAX as usize) as u32;
            let now = ctx.clock.now();
            let lease = now + Duration::from_std(ctx.config.lease).unwrap_or(Duration::seconds(90));
            let claimed = match ctx.store.claim_deliveries(&id, now, want.max(1), &ctx.instance, lease).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(subscription = %id, error = ?e, "claiming deliveries failed");
                    Claimed::default()
                }
            };
            if queue.is_empty() {
                webinars.clear();
            }
            queue.extend(claimed.jobs);
            webinars.extend(claimed.webinars);
        }
        if queue.is_empty() {
            let now = ctx.clock.now();
            let next = if inflight.is_empty() {
                match ctx.store.next_delivery_due(&id).await {
                    Ok(None) if d.retire(&id, &sig) => break,
                    Ok(next) => next,
                    Err(_) => None,
                }
            } else {
                None
            };
            let wait = next.map(|t| (t - now).clamp(Duration::zero(), tick)).unwrap_or(tick);
            tokio::select! {
                _ = tokio::time::sleep(wait.to_std().unwrap_or_default()) => {}
                _ = sig.notify.notified() => {}
                Some(_) = inflight.join_next(), if !inflight.is_empty() => {}
                _ = shutdown.cancelled() => {}
            }
            continue;
        }
        while inflight.len() < cap {
            let Some(job) = queue.pop_front() else { break };
            if let Some(l) = &v.limiter {
                l.until_ready().await;
            }
            match render(&job, &webinars) {
                Some(body) => {
                    inflight.spawn(attempt(d.clone(), job, body, v.url.clone(), v.signers.clone(), v.sub.event.clone()));
                }
                None => vanished(&d, job).await,
            }
        }
        if inflight.len() >= cap {
            tokio::select! {
                _ = inflight.join_next() => {}
                _ = shutdown.cancelled() => {}
            }
        }
    }
    while inflight.join_next().await.is_some() {}
}

/// The body of a job: its fixed payload, or its participant's payload
/// rendered now (offsets computed at the moment of sending).
fn render(
    job: &Job,
    webinars: &std::collections::HashMap<String, payload::WebinarFacts>,
) -> Option<bytes::Bytes> {
    if let Some(p) = &job.payload {
        return Some(bytes::Bytes::from(p.clone()));
    }
    let w = webinars.get(job.webinar_id.as_deref()?)?;
    Some(payload::render(w, job.participant.as_ref()?).into())
}

/// A job whose participant or webinar no longer exists: recorded as expired
/// with the reason, never silently dropped.
async fn vanished(d: &Dispatcher, job: Job) {
    let now = d.inner.ctx.clock.now();
    let attempt = Attempt {
        attempt: job.attempt,
        started_at: now,
        status_code: None,
        latency_ms: 0,
        error: Some("participant or webinar no longer exists; not sent".into()),
        response: None,
    };
    let _ = d
        .inner
        .outcomes
        .send(Outcome {
            delivery_id: job.id,
            subscription_id: job.subscription_id,
            attempt,
            verdict: Verdict::Expired,
        })
        .await;
}

async fn attempt(
    d: Dispatcher,
    job: Job,
    body: bytes::Bytes,
    url: reqwest::Url,
    signers: Arc<Vec<Signer>>,
    event: String,
) {
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
    let policy = ctx.retry_policy();
    let verdict = policy.verdict(
        job.attempt,
        &resp,
        ctx.clock.now(),
        job.expires_at,
        rand::random(),
    );
    if verdict != Verdict::Delivered {
        tracing::debug!(delivery = %job.id, attempt = job.attempt, error = ?attempt.error, ?verdict, "attempt failed");
    }
    let outcome = Outcome {
        delivery_id: job.id,
        subscription_id: job.subscription_id,
        attempt,
        verdict,
    };
    if d.inner.outcomes.send(outcome).await.is_err() {
        tracing::error!(
            "recorder gone; attempt result not recorded (the lease will lapse and it is retried)"
        );
    }
}
