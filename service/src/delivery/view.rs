//! What a lane knows of its subscription: the target URL, the signers (the
//! current secret, and the previous one while it overlaps), and its caps,
//! refreshed about once a tick, and at once when this instance (or, on
//! PostgreSQL, another) changes the subscription. The rate limiter is kept
//! across refreshes while the rate is unchanged, so a refresh never resets
//! its pacing.
//!
//! A copy the store has not confirmed for a secret grace may sign with a
//! secret rotated away meanwhile, past its grace: [`View::trusted`] says
//! whether it may still sign.

use super::unit::{Signers, Target};
use super::Dispatcher;
use crate::domain::status::SubscriptionStatus;
use crate::signing::Signer;
use crate::store::{Subscription, SubscriptionId};
use chrono::{DateTime, Utc};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Instant;

/// What a lane knows of its subscription, refreshed about once a tick.
pub(super) struct View {
    pub sub: Subscription,
    pub target: Arc<Target>,
    pub limiter: Option<Arc<DefaultDirectRateLimiter>>,
    pub rate: Option<u32>,
    /// When the lane last asked the store (answered or not).
    pub fetched: Instant,
    /// When the store last confirmed this copy, on the service's clock.
    pub confirmed: DateTime<Utc>,
}

impl View {
    /// Whether this copy may still sign at `now`. A rotation the lane has
    /// not seen happened after `confirmed`, so the secret it replaced
    /// keeps its grace until at least `confirmed + grace`: until then the
    /// copy's current secret is one the receiver still accepts. Past it,
    /// the lane must read the subscription again before it signs.
    pub fn trusted(&self, now: DateTime<Utc>, grace: std::time::Duration) -> bool {
        chrono::Duration::from_std(grace)
            .ok()
            .and_then(|g| self.confirmed.checked_add_signed(g))
            .is_none_or(|end| now < end)
    }
}

/// The subscription as it is now: `None` once it is gone or not active.
/// A store failure keeps the view the lane had (a lane must not stop for a
/// database restart), or, with none yet, is `Err`.
pub(super) async fn refresh(
    d: &Dispatcher,
    id: &SubscriptionId,
    old: Option<View>,
) -> Result<Option<View>, ()> {
    // What the store answers holds as of some moment after this one.
    let asked = d.inner.ctx.clock.now();
    let sub = match d.inner.ctx.engine.get_subscription(id).await {
        Ok(sub) => sub,
        Err(crate::store::StoreError::NotFound) => return Ok(None),
        Err(e) => {
            tracing::warn!(subscription = %id, error = %crate::telemetry::causes(&e), "reading the subscription failed");
            // Looked at again in a tick; `confirmed` stays when the store
            // last answered, so an outage longer than a secret's grace
            // stops the lane signing with a copy it cannot confirm.
            return old
                .map(|mut o| {
                    o.fetched = Instant::now();
                    Some(o)
                })
                .ok_or(());
        }
    };
    Ok(view(d, sub, old, asked))
}

fn view(
    d: &Dispatcher,
    sub: Subscription,
    old: Option<View>,
    asked: DateTime<Utc>,
) -> Option<View> {
    let ctx = &d.inner.ctx;
    if sub.status != SubscriptionStatus::Active {
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
    let current = Signer::new(&open(&sub.secret)?).ok()?;
    // Kept with the end of its grace: each attempt compares that with the
    // clock (unit::Signers::header), as the view may outlive it.
    let previous = match (&sub.previous_secret, sub.previous_until) {
        (Some(prev), Some(until)) if until > now => open(prev)
            .and_then(|p| Signer::new(&p).ok())
            .map(|s| (s, until)),
        _ => None,
    };
    // Caps hold for the subscription across instances: this is our part.
    let rate = sub
        .tuning
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
        signers: Signers { current, previous },
        event: sub.event.clone(),
    });
    Some(View {
        sub,
        target,
        limiter,
        rate,
        fetched: Instant::now(),
        confirmed: asked,
    })
}
