//! SQL for subscriptions and for the delivery history their owners see.
//! Work made here (a test event, a replay) is announced to every instance.

use super::{found, notify, touched};
use crate::domain::ids::new_id;
use crate::store::*;
use crate::store::{
    Attempt, Delivery, NewSubscription, OneOff, StoreError, StoreResult, StoredSecrets,
    Subscription, SubscriptionPatch,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::{GenericClient, Row, Transaction};

const SUB_COLS: &str = "id, creator_id, hook_url, event, webinar_id, mango_id, secret,
    previous_secret, previous_until, status, disabled_reason, max_concurrency,
    rate_per_second, failing_since, created_at, batch_size";

fn subscription(r: &Row) -> Subscription {
    Subscription {
        id: r.get(0),
        creator_id: r.get(1),
        hook_url: r.get(2),
        event: r.get(3),
        webinar_id: r.get(4),
        mango_id: r.get(5),
        secret: r.get(6),
        previous_secret: r.get(7),
        previous_until: r.get(8),
        status: r.get(9),
        disabled_reason: r.get(10),
        max_concurrency: r.get::<_, i32>(11) as u32,
        rate_per_second: r.get::<_, Option<i32>>(12).map(|v| v as u32),
        failing_since: r.get(13),
        created_at: r.get(14),
        batch_size: r.get::<_, i32>(15) as u32,
    }
}

pub async fn get(c: &impl GenericClient, id: &str) -> StoreResult<Subscription> {
    let r = c
        .query_opt(
            &format!("SELECT {SUB_COLS} FROM subscriptions WHERE id = $1 AND status != 'deleted'"),
            &[&id],
        )
        .await?;
    Ok(subscription(&found(r)?))
}

pub async fn subscribe(
    tx: &Transaction<'_>,
    n: &NewSubscription,
    now: DateTime<Utc>,
) -> StoreResult<(Subscription, bool)> {
    // Two identical subscribe calls at once on two instances make one row.
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext($1))",
        &[&format!("{}\n{}", n.creator_id, n.hook_url)],
    )
    .await?;
    let existing: Option<String> = tx
        .query_opt(
            "SELECT id FROM subscriptions
             WHERE creator_id = $1 AND hook_url = $2 AND event = $3
               AND webinar_id IS NOT DISTINCT FROM $4 AND mango_id IS NOT DISTINCT FROM $5
               AND status != 'deleted'",
            &[
                &n.creator_id,
                &n.hook_url,
                &n.event,
                &n.webinar_id,
                &n.mango_id,
            ],
        )
        .await?
        .map(|r| r.get(0));
    let (id, created) = match existing {
        Some(id) => {
            // Subscribing again is how REST-hook clients recover: revive a
            // disabled subscription instead of making a twin.
            tx.execute(
                "UPDATE subscriptions SET status = 'active', disabled_reason = NULL,
                        failing_since = NULL, updated_at = $2
                 WHERE id = $1 AND status = 'disabled'",
                &[&id, &now],
            )
            .await?;
            (id, false)
        }
        None => {
            let id = new_id();
            tx.execute(
                "INSERT INTO subscriptions (id, creator_id, hook_url, event, webinar_id, mango_id,
                   secret, status, max_concurrency, rate_per_second, batch_size, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $9, $10, $11, $11)",
                &[
                    &id,
                    &n.creator_id,
                    &n.hook_url,
                    &n.event,
                    &n.webinar_id,
                    &n.mango_id,
                    &n.secret,
                    &(n.max_concurrency as i32),
                    &n.rate_per_second.map(|v| v as i32),
                    &(n.batch_size as i32),
                    &now,
                ],
            )
            .await?;
            (id, true)
        }
    };
    Ok((get(tx, &id).await?, created))
}

pub async fn list(
    c: &impl GenericClient,
    creator_id: Option<&str>,
) -> StoreResult<Vec<Subscription>> {
    let rows = c
        .query(
            &format!(
                "SELECT {SUB_COLS} FROM subscriptions
                 WHERE status != 'deleted' AND ($1::text IS NULL OR creator_id = $1) ORDER BY id"
            ),
            &[&creator_id],
        )
        .await?;
    Ok(rows.iter().map(subscription).collect())
}

pub async fn delete(tx: &Transaction<'_>, id: &str, now: DateTime<Utc>) -> StoreResult<()> {
    touched(
        tx.execute(
            "UPDATE subscriptions SET status = 'deleted', updated_at = $2
             WHERE id = $1 AND status != 'deleted'",
            &[&id, &now],
        )
        .await?,
    )?;
    super::cancel_work(tx, "subscription_id", id, now).await
}

/// One statement, answering the row it wrote: concurrent rotations each
/// get the secret they installed (each waits for the row lock of the one
/// before and moves that one's secret to `previous_secret`).
pub async fn rotate(
    c: &impl GenericClient,
    id: &str,
    secret: &str,
    grace: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StoreResult<Subscription> {
    let r = c
        .query_opt(
            &format!(
                "UPDATE subscriptions SET previous_secret = secret, previous_until = $3,
                        secret = $2, updated_at = $4
                 WHERE id = $1 AND status != 'deleted'
                 RETURNING {SUB_COLS}"
            ),
            &[&id, &secret, &grace, &now],
        )
        .await?;
    Ok(subscription(&found(r)?))
}

pub async fn stored_secrets(c: &impl GenericClient) -> StoreResult<Vec<StoredSecrets>> {
    Ok(
        c.query("SELECT id, secret, previous_secret FROM subscriptions", &[])
            .await?
            .iter()
            .map(|r| StoredSecrets {
                id: r.get(0),
                secret: r.get(1),
                previous: r.get(2),
            })
            .collect(),
    )
}

pub async fn replace_secrets(
    c: &impl GenericClient,
    old: &StoredSecrets,
    new: &StoredSecrets,
) -> StoreResult<bool> {
    Ok(c.execute(
        "UPDATE subscriptions SET secret = $3, previous_secret = $4
             WHERE id = $1 AND secret = $2 AND previous_secret IS NOT DISTINCT FROM $5",
        &[
            &old.id,
            &old.secret,
            &new.secret,
            &new.previous,
            &old.previous,
        ],
    )
    .await?
        == 1)
}

pub async fn update(
    c: &impl GenericClient,
    id: &str,
    p: &SubscriptionPatch,
    now: DateTime<Utc>,
) -> StoreResult<Subscription> {
    let cur = get(c, id).await?;
    let rate = p.rate_per_second.unwrap_or(cur.rate_per_second);
    c.execute(
        "UPDATE subscriptions SET max_concurrency = $2, rate_per_second = $3, updated_at = $4,
                batch_size = $6,
                status = CASE WHEN $5 THEN 'active' ELSE status END,
                disabled_reason = CASE WHEN $5 THEN NULL ELSE disabled_reason END,
                failing_since = CASE WHEN $5 THEN NULL ELSE failing_since END
         WHERE id = $1",
        &[
            &id,
            &(p.max_concurrency.unwrap_or(cur.max_concurrency) as i32),
            &rate.map(|v| v as i32),
            &now,
            &p.enable,
            &(p.batch_size.unwrap_or(cur.batch_size) as i32),
        ],
    )
    .await?;
    get(c, id).await
}

const DELIVERY_COLS: &str = "id, subscription_id, webinar_id, participant_id, label, status,
    late, attempts, due_at, next_attempt_at, expires_at, last_status, last_error, delivered_at,
    batch_id";

fn delivery(r: &Row) -> Delivery {
    let status: String = r.get(5);
    let pending = status == "pending";
    Delivery {
        id: r.get(0),
        subscription_id: r.get(1),
        webinar_id: r.get(2),
        participant_id: r.get(3),
        reminder: r.get(4),
        status,
        late: r.get(6),
        attempts: r.get::<_, i32>(7) as u32,
        due_at: r.get(8),
        next_attempt_at: pending.then(|| r.get(9)),
        expires_at: r.get(10),
        last_status: r.get::<_, Option<i32>>(11).map(|v| v as u16),
        last_error: r.get(12),
        delivered_at: r.get(13),
        batch_id: r.get(14),
        attempt_log: None,
    }
}

pub async fn list_deliveries(
    c: &impl GenericClient,
    sub: &str,
    status: Option<&str>,
    limit: u32,
) -> StoreResult<Vec<Delivery>> {
    let rows = c
        .query(
            &format!(
                "SELECT {DELIVERY_COLS} FROM deliveries
                 WHERE subscription_id = $1 AND ($2::text IS NULL OR status = $2)
                 ORDER BY created_at DESC, id LIMIT $3"
            ),
            &[&sub, &status, &i64::from(limit)],
        )
        .await?;
    let mut list: Vec<Delivery> = rows.iter().map(delivery).collect();
    for d in &mut list {
        d.attempt_log = Some(attempts(c, &d.id).await?);
    }
    Ok(list)
}

/// A delivery's attempts: the first from its row (when it was made that
/// way), the others from `attempts`.
async fn attempts(c: &impl GenericClient, delivery_id: &str) -> StoreResult<Vec<Attempt>> {
    let rows = c
        .query(
            "SELECT 1, first_started_at, first_status, first_latency_ms, first_error, first_response
             FROM deliveries WHERE id = $1 AND first_started_at IS NOT NULL
             UNION ALL
             SELECT attempt, started_at, status_code, latency_ms, error, response
             FROM attempts WHERE delivery_id = $1
             ORDER BY 1",
            &[&delivery_id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Attempt {
            attempt: r.get::<_, i32>(0) as u32,
            started_at: r.get(1),
            status_code: r.get::<_, Option<i32>>(2).map(|v| v as u16),
            latency_ms: r.get::<_, i64>(3) as u64,
            error: r.get(4),
            response: r.get(5),
        })
        .collect())
}

pub async fn get_delivery(c: &impl GenericClient, sub: &str, id: &str) -> StoreResult<Delivery> {
    let r = c
        .query_opt(
            &format!(
                "SELECT {DELIVERY_COLS} FROM deliveries WHERE id = $1 AND subscription_id = $2"
            ),
            &[&id, &sub],
        )
        .await?;
    let mut d = delivery(&found(r)?);
    d.attempt_log = Some(attempts(c, id).await?);
    Ok(d)
}

pub async fn retry(
    tx: &Transaction<'_>,
    channel: &str,
    sub: &str,
    id: &str,
    now: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> StoreResult<Delivery> {
    let d = get_delivery(tx, sub, id).await?;
    if d.status == "cancelled" {
        return Err(StoreError::Conflict(
            "a cancelled delivery cannot be retried".into(),
        ));
    }
    tx.execute(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = $2, locked_until = NULL,
                expires_at = GREATEST(expires_at, $3), updated_at = $2
         WHERE id = $1",
        &[&id, &now, &expires],
    )
    .await?;
    tx.execute("SELECT pg_notify($1, $2)", &[&channel, &notify::work(sub)])
        .await?;
    get_delivery(tx, sub, id).await
}

pub async fn create_one_off(
    tx: &Transaction<'_>,
    channel: &str,
    o: &OneOff,
    now: DateTime<Utc>,
) -> StoreResult<Delivery> {
    tx.execute(
        "INSERT INTO deliveries (id, subscription_id, label, payload, status, due_at,
                                 next_attempt_at, expires_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 'pending', $5, $5, $6, $5, $5)",
        &[
            &o.id,
            &o.subscription_id,
            &o.label,
            &o.payload,
            &now,
            &o.expires_at,
        ],
    )
    .await?;
    tx.execute(
        "SELECT pg_notify($1, $2)",
        &[&channel, &notify::work(&o.subscription_id)],
    )
    .await?;
    get_delivery(tx, &o.subscription_id, &o.id).await
}

#[async_trait]
impl Subscriptions for super::PgStore {
    async fn subscribe(&self, new: &NewSubscription) -> StoreResult<(Subscription, bool)> {
        in_tx!(self, |tx| subscribe(&tx, new, self.clock.now()).await?)
    }
    async fn list_subscriptions(&self, creator: Option<&str>) -> StoreResult<Vec<Subscription>> {
        list(&**self.conn().await?, creator).await
    }
    async fn get_subscription(&self, id: &str) -> StoreResult<Subscription> {
        get(&**self.conn().await?, id).await
    }
    async fn delete_subscription(&self, id: &str) -> StoreResult<()> {
        in_tx!(self, |tx| delete(&tx, id, self.clock.now()).await?)
    }
    async fn rotate_secret(
        &self,
        id: &str,
        secret: &str,
        grace: DateTime<Utc>,
    ) -> StoreResult<Subscription> {
        rotate(&**self.conn().await?, id, secret, grace, self.clock.now()).await
    }
    async fn stored_secrets(&self) -> StoreResult<Vec<StoredSecrets>> {
        stored_secrets(&**self.conn().await?).await
    }
    async fn replace_secrets(&self, old: &StoredSecrets, new: &StoredSecrets) -> StoreResult<bool> {
        replace_secrets(&**self.conn().await?, old, new).await
    }
    async fn update_subscription(
        &self,
        id: &str,
        patch: &SubscriptionPatch,
    ) -> StoreResult<Subscription> {
        update(&**self.conn().await?, id, patch, self.clock.now()).await
    }
    async fn list_deliveries(
        &self,
        sub: &str,
        status: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        list_deliveries(&**self.conn().await?, sub, status, limit).await
    }
    async fn get_delivery(&self, sub: &str, id: &str) -> StoreResult<Delivery> {
        get_delivery(&**self.conn().await?, sub, id).await
    }
    async fn retry_delivery(
        &self,
        sub: &str,
        id: &str,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> StoreResult<Delivery> {
        in_tx!(self, |tx| retry(&tx, &self.channel, sub, id, now, expires)
            .await?)
    }
    async fn create_one_off(&self, one_off: &OneOff, now: DateTime<Utc>) -> StoreResult<Delivery> {
        in_tx!(self, |tx| create_one_off(&tx, &self.channel, one_off, now)
            .await?)
    }
}
