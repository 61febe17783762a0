//! The caps a lane's turn works with (`Caps`): its subscription's
//! concurrency cap (this instance's share of it), batch size, rate and
//! rate limiter, target, and until when its secrets may sign. Taken from
//! the lane's view of the subscription (`view`), read again once it is a
//! tick old or at once after a change; none while the store cannot say.

use super::unit::Target;
use super::view::{refresh, View};
use super::{Dispatcher, LaneSignal};
use crate::store::SubscriptionId;
use governor::DefaultDirectRateLimiter;
use std::sync::Arc;

/// The subscription's settings a turn works with, taken from the view.
pub(super) struct Caps {
    pub(super) cap: usize,
    pub(super) batch: usize,
    pub(super) rate: Option<u32>,
    pub(super) limiter: Option<Arc<DefaultDirectRateLimiter>>,
    pub(super) target: Arc<Target>,
    /// The view's secrets may sign until then (see `View::trusted`).
    pub(super) trusted_until: Option<chrono::DateTime<chrono::Utc>>,
}

impl Caps {
    /// The subscription's caps, from a view at most a tick old and read
    /// again at once after a change to the subscription: `None` once it is
    /// gone or inactive, `Err` while the store cannot say (or the copy in
    /// hand is too old to sign with: [`View::trusted`]).
    pub(super) async fn look(
        d: &Dispatcher,
        id: &SubscriptionId,
        sig: &LaneSignal,
        view: &mut Option<View>,
    ) -> Result<Option<Caps>, ()> {
        let ctx = &d.inner.ctx;
        let (tick, grace) = (ctx.config.tick, ctx.config.secret_grace);
        let changed = sig.reread.swap(false, std::sync::atomic::Ordering::SeqCst);
        let now = ctx.clock.now();
        if changed
            || view
                .as_ref()
                .is_none_or(|v| v.fetched.elapsed() >= tick || !v.trusted(now, grace))
        {
            *view = refresh(d, id, view.take()).await?;
        }
        let now = d.inner.ctx.clock.now();
        if view.as_ref().is_some_and(|v| !v.trusted(now, grace)) {
            tracing::warn!(subscription = %id, "the subscription could not be read for a secret's grace: holding its deliveries until it can");
            return Err(());
        }
        Ok(view.as_ref().map(|v| Caps {
            cap: d.share(v.sub.tuning.max_concurrency.max(1)) as usize,
            batch: v.sub.tuning.batch_size as usize,
            rate: v.rate,
            limiter: v.limiter.clone(),
            target: v.target.clone(),
            trusted_until: chrono::Duration::from_std(grace)
                .ok()
                .and_then(|g| v.confirmed.checked_add_signed(g)),
        }))
    }
}
