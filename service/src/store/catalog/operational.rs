//! The operational subscription: the platform's own endpoint for what tminus
//! says about itself (`crate::ops`). It is an ordinary subscription row, so
//! the lanes, the retries, the target guard and the delivery history serve
//! it unchanged, owned by a reserved creator ([`OPERATIONAL_CREATOR`]) that
//! no API shows, has no key and no webinar: no integrator can see it, and
//! no fan-out can match it (its event is no reminder's). Its deliveries are
//! one-offs with fixed bodies; an event that must go once (per fan-out)
//! carries a webhook-id derived from what it is about, and a second insert
//! of it does nothing.

use super::subscriptions::{subscription, SUB_COLS};
use super::Subscriptions;
use crate::store::sql::{params, Backend};
use crate::store::Change;
use crate::store::{NewSubscription, OneOff, StoreResult, Subscription, SubscriptionId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// The reserved creator that owns the operational subscription. Ids made
/// by tminus start with their creation's seconds since 1970, so none is
/// this one.
pub const OPERATIONAL_CREATOR: &str = "000000000000000000000000";

/// The event name the operational subscription is stored with (sent as
/// `x-tminus-event`); no reminder's, so no fan-out matches it.
pub const OPERATIONAL_EVENT: &str = "tminus.operational";

/// The operational subscription and its deliveries.
#[async_trait]
pub trait Operational: Send + Sync + 'static {
    /// The operational subscription (active or disabled), if one was made.
    async fn operational_subscription(&self) -> StoreResult<Option<Subscription>>;
    /// Makes the operational subscription (and its reserved creator) unless
    /// one is there; answers it, and whether this call made it. Two starts
    /// at once make one.
    async fn make_operational(&self, n: &NewSubscription) -> StoreResult<(Subscription, bool)>;
    /// Points it at `url` and makes it active again; with `None`, disables
    /// it (operational webhooks turned off).
    async fn point_operational(
        &self,
        id: &SubscriptionId,
        url: Option<&str>,
    ) -> StoreResult<Subscription>;
    /// Queues an operational event; `false` when one with its webhook-id
    /// was queued already (an event sent once per thing it is about).
    async fn queue_operational(&self, one: &OneOff, now: DateTime<Utc>) -> StoreResult<bool>;
}

#[async_trait]
impl<B: Backend> Operational for B {
    async fn operational_subscription(&self) -> StoreResult<Option<Subscription>> {
        let sql = format!(
            "SELECT {SUB_COLS} FROM subscriptions
             WHERE creator_id = $1 AND status != 'deleted' ORDER BY created_at DESC, id LIMIT 1"
        );
        let rows = self.query(&sql, params![OPERATIONAL_CREATOR]).await?;
        rows.first().map(subscription).transpose()
    }

    async fn make_operational(&self, n: &NewSubscription) -> StoreResult<(Subscription, bool)> {
        if let Some(s) = self.operational_subscription().await? {
            return Ok((s, false));
        }
        let sql = "INSERT INTO creators (id, name, timezone, created_at)
                   VALUES ($1, 'tminus operational webhooks', NULL, $2)
                   ON CONFLICT (id) DO NOTHING";
        self.execute(sql, params![OPERATIONAL_CREATOR, self.now()])
            .await?;
        // Serialized on (creator, URL): a start racing this one gets the
        // same row back.
        self.subscribe(n).await
    }

    async fn point_operational(
        &self,
        id: &SubscriptionId,
        url: Option<&str>,
    ) -> StoreResult<Subscription> {
        let now = self.now();
        self.transact(|tx| async move {
            let sql = format!(
                "UPDATE subscriptions SET
                    hook_url = COALESCE($2, hook_url),
                    status = CASE WHEN $2 IS NULL THEN 'disabled' ELSE 'active' END,
                    disabled_reason = CASE WHEN $2 IS NULL
                        THEN 'no --operational-webhook-url' END,
                    failing_since = CASE WHEN $2 IS NULL OR status = 'active'
                        THEN failing_since END,
                    updated_at = $3
                 WHERE id = $1 AND creator_id = $4 AND status != 'deleted'
                 RETURNING {SUB_COLS}"
            );
            let p = params![id, url, now, OPERATIONAL_CREATOR];
            let sub = subscription(&tx.query_one(&sql, p).await?)?;
            tx.announce(&Change::Subscription(id.clone())).await?;
            tx.commit().await?;
            Ok(sub)
        })
        .await
    }

    async fn queue_operational(&self, o: &OneOff, now: DateTime<Utc>) -> StoreResult<bool> {
        self.transact(|tx| async move {
            // Once per event id: a repeat of the same event inserts nothing.
            let queued = super::history::insert_one_off(&*tx, o, now, true).await?;
            tx.commit().await?;
            Ok(queued)
        })
        .await
    }
}
