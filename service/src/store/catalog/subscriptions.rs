//! Subscriptions and their secrets: one statement text and one row mapper
//! for both backends (see [`crate::store::sql`]).

use super::{cancel_work, Settings, Subscriptions};
use crate::domain::status::SubscriptionStatus;
use crate::store::decode::from_row;
use crate::store::sql::{params, touched, Backend, Db, Row};
use crate::store::Change;
use crate::store::{
    CreatorId, NewSubscription, PageRequest, Paged, StoreResult, StoredSecrets, Subscription,
    SubscriptionId, SubscriptionPatch, Tuning,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub(super) const SUB_COLS: &str = "id, creator_id, hook_url, event, webinar_id, mango_id, secret,
    previous_secret, previous_until, status, disabled_reason, failing_since, created_at,
    answer_us, max_concurrency, rate_per_second, batch_size, late_budget_ms, send_early_ms";

pub(super) fn subscription(r: &Row) -> StoreResult<Subscription> {
    Ok(from_row!(r, Subscription {
        id, creator_id, hook_url, event, webinar_id, mango_id, secret, previous_secret,
        previous_until, status, disabled_reason, failing_since, created_at, answer_us;
        tuning: tuning(r, 14)?,
    }))
}

/// A subscription's [`Tuning`], from five columns starting at `at`:
/// `max_concurrency, rate_per_second, batch_size, late_budget_ms,
/// send_early_ms`.
pub(super) fn tuning(r: &Row, at: usize) -> StoreResult<Tuning> {
    Ok(from_row!(r, at at, Tuning {
        max_concurrency, rate_per_second, batch_size, late_budget_ms, send_early_ms
    }))
}

async fn get(db: &(impl Db + ?Sized), id: &SubscriptionId) -> StoreResult<Subscription> {
    let sql = format!("SELECT {SUB_COLS} FROM subscriptions WHERE id = $1 AND status != 'deleted'");
    subscription(&db.query_one(&sql, params![id]).await?)
}

/// The live subscription with the same (creator, hookUrl, event, webinar,
/// mango) as `n`, if any.
async fn twin(db: &(impl Db + ?Sized), n: &NewSubscription) -> StoreResult<Option<SubscriptionId>> {
    let sql = "SELECT id FROM subscriptions
               WHERE creator_id = $1 AND hook_url = $2 AND event = $3
                 AND webinar_id IS NOT DISTINCT FROM $4 AND mango_id IS NOT DISTINCT FROM $5
                 AND status != 'deleted'";
    let p = params![
        &n.creator_id,
        &n.hook_url,
        &n.event,
        &n.webinar_id,
        &n.mango_id
    ];
    db.query(sql, p).await?.first().map(|r| r.id(0)).transpose()
}

/// Subscribes in one transaction: the twin revived, or a new row.
async fn subscribe_in(
    db: &(impl Db + ?Sized),
    n: &NewSubscription,
    now: DateTime<Utc>,
) -> StoreResult<(Subscription, bool)> {
    let (id, created) = match twin(db, n).await? {
        Some(id) => {
            // Subscribing again is how REST-hook clients recover: revive a
            // disabled subscription instead of making a twin.
            let sql = "UPDATE subscriptions SET status = 'active', disabled_reason = NULL,
                              failing_since = NULL, updated_at = $2
                       WHERE id = $1 AND status = 'disabled'";
            db.execute(sql, params![&id, now]).await?;
            (id, false)
        }
        None => {
            let id = SubscriptionId::new();
            let sql = "INSERT INTO subscriptions (id, creator_id, hook_url, event, webinar_id,
                         mango_id, secret, status, max_concurrency, rate_per_second, batch_size,
                         created_at, updated_at, late_budget_ms, send_early_ms)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $9, $10, $11, $11,
                               $12, $13)";
            let p = params![
                &id,
                &n.creator_id,
                &n.hook_url,
                &n.event,
                &n.webinar_id,
                &n.mango_id,
                &n.secret,
                n.tuning.max_concurrency,
                n.tuning.rate_per_second,
                n.tuning.batch_size,
                now,
                n.tuning.late_budget_ms,
                n.tuning.send_early_ms
            ];
            db.execute(sql, p).await?;
            (id, true)
        }
    };
    Ok((get(db, &id).await?, created))
}

#[async_trait]
impl<B: Backend> Settings for B {
    async fn get_subscription(&self, id: &SubscriptionId) -> StoreResult<Subscription> {
        get(self, id).await
    }
}

#[async_trait]
impl<B: Backend> Subscriptions for B {
    async fn subscribe(&self, n: &NewSubscription) -> StoreResult<(Subscription, bool)> {
        let now = self.now();
        self.transact(|tx| async move {
            // Two identical subscribe calls at once on two instances make
            // one row.
            tx.serialize_on(&format!("{}\n{}", n.creator_id, n.hook_url))
                .await?;
            let out = subscribe_in(&*tx, n, now).await?;
            tx.commit().await?;
            Ok(out)
        })
        .await
    }

    async fn list_subscriptions(
        &self,
        creator_id: Option<&CreatorId>,
        status: Option<SubscriptionStatus>,
        page: &PageRequest,
    ) -> StoreResult<Paged<Subscription>> {
        let sql = format!(
            "SELECT {SUB_COLS} FROM subscriptions
             WHERE status != 'deleted' AND (CAST($1 AS TEXT) IS NULL OR creator_id = $1)
               AND (CAST($2 AS TEXT) IS NULL OR status = $2)
               AND (CAST($3 AS TEXT) IS NULL OR id > $3) AND creator_id != $5
             ORDER BY id LIMIT $4"
        );
        // The operational subscription is in no list (`operational.rs`).
        let p = params![
            creator_id,
            status,
            page.after_id()?,
            page.fetch(),
            super::OPERATIONAL_CREATOR
        ];
        let rows = self.query(&sql, p).await?;
        let rows = rows.iter().map(subscription).collect::<StoreResult<_>>()?;
        Ok(Paged::of(rows, page, |s: &Subscription| s.id.to_string()))
    }

    async fn delete_subscription(&self, id: &SubscriptionId) -> StoreResult<()> {
        let now = self.now();
        self.transact(|tx| async move {
            let sql = "UPDATE subscriptions SET status = 'deleted', updated_at = $2
                       WHERE id = $1 AND status != 'deleted'";
            touched(tx.execute(sql, params![id, now]).await?)?;
            cancel_work(&*tx, "subscription_id", id, now).await?;
            tx.commit().await
        })
        .await
    }

    /// One statement, answering the row it wrote: concurrent rotations each
    /// get the secret they installed (each waits for the row lock of the one
    /// before and moves that one's secret to `previous_secret`). Announced
    /// to the other instances on commit, so their lanes sign with the new
    /// secret at once rather than at their next tick.
    async fn rotate_secret(
        &self,
        id: &SubscriptionId,
        secret: &str,
        grace: DateTime<Utc>,
    ) -> StoreResult<Subscription> {
        let now = self.now();
        self.transact(|tx| async move {
            let sql = format!(
                "UPDATE subscriptions SET previous_secret = secret, previous_until = $3,
                        secret = $2, updated_at = $4
                 WHERE id = $1 AND status != 'deleted'
                 RETURNING {SUB_COLS}"
            );
            let sub = subscription(&tx.query_one(&sql, params![id, secret, grace, now]).await?)?;
            tx.announce(&Change::Subscription(id.clone())).await?;
            tx.commit().await?;
            Ok(sub)
        })
        .await
    }

    async fn stored_secrets(&self) -> StoreResult<Vec<StoredSecrets>> {
        let rows = self
            .query("SELECT id, secret, previous_secret FROM subscriptions", &[])
            .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredSecrets {
                    id: r.id(0)?,
                    secret: r.text(1)?,
                    previous: r.opt_text(2)?,
                })
            })
            .collect()
    }

    async fn replace_secrets(&self, old: &StoredSecrets, new: &StoredSecrets) -> StoreResult<bool> {
        let sql = "UPDATE subscriptions SET secret = $3, previous_secret = $4
                   WHERE id = $1 AND secret = $2 AND previous_secret IS NOT DISTINCT FROM $5";
        let p = params![
            &old.id,
            &old.secret,
            &new.secret,
            &new.previous,
            &old.previous
        ];
        Ok(self.execute(sql, p).await? == 1)
    }

    async fn update_subscription(
        &self,
        id: &SubscriptionId,
        p: &SubscriptionPatch,
    ) -> StoreResult<Subscription> {
        let cur = get(self, id).await?;
        let rate = p.rate_per_second.unwrap_or(cur.tuning.rate_per_second);
        let sql = "UPDATE subscriptions SET max_concurrency = $2, rate_per_second = $3,
                          updated_at = $4, batch_size = $6, late_budget_ms = $7,
                          send_early_ms = $8,
                          status = CASE WHEN $5 THEN 'active' ELSE status END,
                          disabled_reason = CASE WHEN $5 THEN NULL ELSE disabled_reason END,
                          failing_since = CASE WHEN $5 THEN NULL ELSE failing_since END
                   WHERE id = $1";
        let values = params![
            id,
            p.max_concurrency.unwrap_or(cur.tuning.max_concurrency),
            rate,
            self.now(),
            p.enable,
            p.batch_size.unwrap_or(cur.tuning.batch_size),
            p.late_budget_ms.unwrap_or(cur.tuning.late_budget_ms),
            p.send_early_ms.unwrap_or(cur.tuning.send_early_ms)
        ];
        self.execute(sql, values).await?;
        get(self, id).await
    }
}
