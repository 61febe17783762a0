//! SQL for subscriptions and for the delivery history their owners see.

use super::{at, at_opt, ms, receipts, touched};
use super::{own, own_opt};
use crate::domain::ids::new_id;
use crate::store::*;
use crate::store::{
    Attempt, Delivery, NewSubscription, OneOff, StoreError, StoreResult, StoredSecrets,
    Subscription, SubscriptionPatch,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::collections::HashSet;

const SUB_COLS: &str = "id, creator_id, hook_url, event, webinar_id, mango_id, secret,
    previous_secret, previous_until, status, disabled_reason, max_concurrency,
    rate_per_second, failing_since, created_at, batch_size";

fn subscription(r: &Row) -> rusqlite::Result<Subscription> {
    Ok(Subscription {
        id: r.get(0)?,
        creator_id: r.get(1)?,
        hook_url: r.get(2)?,
        event: r.get(3)?,
        webinar_id: r.get(4)?,
        mango_id: r.get(5)?,
        secret: r.get(6)?,
        previous_secret: r.get(7)?,
        previous_until: at_opt(r.get(8)?),
        status: r.get(9)?,
        disabled_reason: r.get(10)?,
        max_concurrency: r.get(11)?,
        rate_per_second: r.get(12)?,
        failing_since: at_opt(r.get(13)?),
        created_at: at(r.get(14)?),
        batch_size: r.get(15)?,
    })
}

pub fn get(c: &Connection, id: &str) -> StoreResult<Subscription> {
    Ok(c.query_row(
        &format!("SELECT {SUB_COLS} FROM subscriptions WHERE id = ?1 AND status != 'deleted'"),
        [id],
        subscription,
    )?)
}

pub fn subscribe(
    c: &mut Connection,
    n: &NewSubscription,
    now: DateTime<Utc>,
) -> StoreResult<(Subscription, bool)> {
    let tx = c.transaction()?;
    let existing: Option<String> = tx
        .query_row(
            "SELECT id FROM subscriptions
             WHERE creator_id = ?1 AND hook_url = ?2 AND event = ?3
               AND webinar_id IS ?4 AND mango_id IS ?5 AND status != 'deleted'",
            params![n.creator_id, n.hook_url, n.event, n.webinar_id, n.mango_id],
            |r| r.get(0),
        )
        .optional()?;
    let now = ms(now);
    let (id, created) = match existing {
        Some(id) => {
            // Subscribing again is how REST-hook clients recover: revive a
            // disabled subscription instead of making a twin.
            tx.execute(
                "UPDATE subscriptions SET status = 'active', disabled_reason = NULL,
                        failing_since = NULL, updated_at = ?2
                 WHERE id = ?1 AND status = 'disabled'",
                params![id, now],
            )?;
            (id, false)
        }
        None => {
            let id = new_id();
            tx.execute(
                "INSERT INTO subscriptions (id, creator_id, hook_url, event, webinar_id, mango_id,
                   secret, status, max_concurrency, rate_per_second, batch_size, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'active', ?8, ?9, ?11, ?10, ?10)",
                params![
                    id, n.creator_id, n.hook_url, n.event, n.webinar_id, n.mango_id, n.secret,
                    n.max_concurrency, n.rate_per_second, now, n.batch_size
                ],
            )?;
            (id, true)
        }
    };
    tx.commit()?;
    Ok((get(c, &id)?, created))
}

pub fn list(c: &Connection, creator_id: Option<&str>) -> StoreResult<Vec<Subscription>> {
    let mut st = c.prepare(&format!(
        "SELECT {SUB_COLS} FROM subscriptions
         WHERE status != 'deleted' AND (?1 IS NULL OR creator_id = ?1) ORDER BY id"
    ))?;
    let rows = st
        .query_map([creator_id], subscription)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub fn delete(c: &mut Connection, id: &str, now: DateTime<Utc>) -> StoreResult<()> {
    let tx = c.transaction()?;
    let now = ms(now);
    touched(tx.execute(
        "UPDATE subscriptions SET status = 'deleted', updated_at = ?2
         WHERE id = ?1 AND status != 'deleted'",
        params![id, now],
    )?)?;
    super::cancel_work(&tx, "subscription_id", id, now)?;
    tx.commit()?;
    Ok(())
}

/// One statement, answering the row it wrote: concurrent rotations each
/// get the secret they installed.
pub fn rotate(
    c: &Connection,
    id: &str,
    secret: &str,
    grace: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StoreResult<Subscription> {
    Ok(c.query_row(
        &format!(
            "UPDATE subscriptions SET previous_secret = secret, previous_until = ?3,
                    secret = ?2, updated_at = ?4
             WHERE id = ?1 AND status != 'deleted'
             RETURNING {SUB_COLS}"
        ),
        params![id, secret, ms(grace), ms(now)],
        subscription,
    )?)
}

pub fn stored_secrets(c: &Connection) -> StoreResult<Vec<StoredSecrets>> {
    let mut st = c.prepare("SELECT id, secret, previous_secret FROM subscriptions")?;
    let rows = st.query_map([], |r| {
        Ok(StoredSecrets {
            id: r.get(0)?,
            secret: r.get(1)?,
            previous: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn replace_secrets(
    c: &Connection,
    old: &StoredSecrets,
    new: &StoredSecrets,
) -> StoreResult<bool> {
    Ok(c.execute(
        "UPDATE subscriptions SET secret = ?3, previous_secret = ?4
         WHERE id = ?1 AND secret = ?2 AND previous_secret IS ?5",
        params![old.id, old.secret, new.secret, new.previous, old.previous],
    )? == 1)
}

pub fn update(
    c: &Connection,
    id: &str,
    p: &SubscriptionPatch,
    now: DateTime<Utc>,
) -> StoreResult<Subscription> {
    let cur = get(c, id)?;
    let rate = p.rate_per_second.unwrap_or(cur.rate_per_second);
    c.execute(
        "UPDATE subscriptions SET max_concurrency = ?2, rate_per_second = ?3, updated_at = ?4,
                batch_size = ?6,
                status = CASE WHEN ?5 THEN 'active' ELSE status END,
                disabled_reason = CASE WHEN ?5 THEN NULL ELSE disabled_reason END,
                failing_since = CASE WHEN ?5 THEN NULL ELSE failing_since END
         WHERE id = ?1",
        params![
            id,
            p.max_concurrency.unwrap_or(cur.max_concurrency),
            rate,
            ms(now),
            p.enable,
            p.batch_size.unwrap_or(cur.batch_size)
        ],
    )?;
    get(c, id)
}

const DELIVERY_COLS: &str = "id, subscription_id, webinar_id, participant_id, label, status,
    late, attempts, due_at, next_attempt_at, expires_at, last_status, last_error, delivered_at,
    batch_id";

fn delivery(r: &Row) -> rusqlite::Result<Delivery> {
    let status: String = r.get(5)?;
    let pending = status == "pending";
    Ok(Delivery {
        id: r.get(0)?,
        subscription_id: r.get(1)?,
        webinar_id: r.get(2)?,
        participant_id: r.get(3)?,
        reminder: r.get(4)?,
        status,
        late: r.get(6)?,
        attempts: r.get(7)?,
        due_at: at(r.get(8)?),
        next_attempt_at: pending.then(|| r.get(9).map(at)).transpose()?,
        expires_at: at(r.get(10)?),
        last_status: r.get(11)?,
        last_error: r.get(12)?,
        delivered_at: at_opt(r.get(13)?),
        batch_id: r.get(14)?,
        attempt_log: None,
    })
}

/// The latest deliveries of `sub`, newest first: rows and, when the filter
/// lets delivered ones through, those held in receipts.
pub fn list_deliveries(
    c: &Connection,
    sub: &str,
    status: Option<&str>,
    limit: u32,
) -> StoreResult<Vec<Delivery>> {
    let mut st = c.prepare(&format!(
        "SELECT {DELIVERY_COLS}, created_at FROM deliveries
         WHERE subscription_id = ?1 AND (?2 IS NULL OR status = ?2)
         ORDER BY created_at DESC, id LIMIT ?3"
    ))?;
    let mut rows: Vec<(i64, Delivery)> = st
        .query_map(params![sub, status, limit], |r| {
            Ok((r.get(15)?, delivery(r)?))
        })?
        .collect::<Result<_, _>>()?;
    for (_, d) in &mut rows {
        d.attempt_log = Some(attempts(c, &d.id)?);
    }
    if status.is_none_or(|s| s == "delivered") {
        let seen: HashSet<String> = rows.iter().map(|(_, d)| d.id.clone()).collect();
        let held = receipts::recent(c, sub, limit)?;
        rows.extend(held.into_iter().filter(|(_, d)| !seen.contains(&d.id)));
        rows.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
        rows.truncate(limit as usize);
    }
    Ok(rows.into_iter().map(|(_, d)| d).collect())
}

/// A delivery's attempts: the first from its row (when it was made that
/// way), the others from `attempts`.
fn attempts(c: &Connection, delivery_id: &str) -> StoreResult<Vec<Attempt>> {
    let mut st = c.prepare_cached(
        "SELECT 1, first_started_at, first_status, first_latency_ms, first_error, first_response
         FROM deliveries WHERE id = ?1 AND first_started_at IS NOT NULL
         UNION ALL
         SELECT attempt, started_at, status_code, latency_ms, error, response
         FROM attempts WHERE delivery_id = ?1
         ORDER BY 1",
    )?;
    let log = st
        .query_map([delivery_id], |r| {
            Ok(Attempt {
                attempt: r.get(0)?,
                started_at: at(r.get(1)?),
                status_code: r.get(2)?,
                latency_ms: r.get(3)?,
                error: r.get(4)?,
                response: r.get(5)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(log)
}

/// Delivery `id` of `sub`: its row, or else the receipt that holds it.
pub fn get_delivery(c: &Connection, sub: &str, id: &str) -> StoreResult<Delivery> {
    let row = c
        .query_row(
            &format!(
                "SELECT {DELIVERY_COLS} FROM deliveries WHERE id = ?1 AND subscription_id = ?2"
            ),
            params![id, sub],
            delivery,
        )
        .optional()?;
    match row {
        Some(mut d) => {
            d.attempt_log = Some(attempts(c, id)?);
            Ok(d)
        }
        None => receipts::get(c, sub, id)?.ok_or(StoreError::NotFound),
    }
}

pub fn retry(
    c: &Connection,
    sub: &str,
    id: &str,
    now: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> StoreResult<Delivery> {
    let tx = c.unchecked_transaction()?;
    // A delivery held in a receipt gets its row back, to be attempted again.
    let row: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM deliveries WHERE id = ?1 AND subscription_id = ?2",
            params![id, sub],
            |r| r.get(0),
        )
        .optional()?;
    if row.is_none() {
        receipts::take(&tx, sub, id)?;
    }
    let d = get_delivery(&tx, sub, id)?;
    if d.status == "cancelled" {
        return Err(StoreError::Conflict(
            "a cancelled delivery cannot be retried".into(),
        ));
    }
    c.execute(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = ?2, locked_until = NULL,
                expires_at = MAX(expires_at, ?3), updated_at = ?2
         WHERE id = ?1",
        params![id, ms(now), ms(expires)],
    )?;
    let d = get_delivery(&tx, sub, id)?;
    tx.commit()?;
    Ok(d)
}

pub fn create_one_off(c: &Connection, o: &OneOff, now: DateTime<Utc>) -> StoreResult<Delivery> {
    let now_ms = ms(now);
    c.execute(
        "INSERT INTO deliveries (id, subscription_id, label, payload, status, due_at,
                                 next_attempt_at, expires_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5, ?6, ?5, ?5)",
        params![
            o.id,
            o.subscription_id,
            o.label,
            o.payload,
            now_ms,
            ms(o.expires_at)
        ],
    )?;
    get_delivery(c, &o.subscription_id, &o.id)
}

#[async_trait]
impl Subscriptions for super::SqliteStore {
    async fn subscribe(&self, new: &NewSubscription) -> StoreResult<(Subscription, bool)> {
        let now = self.clock.now();
        let new = new.clone();
        self.run(move |c| subscribe(c, &new, now)).await
    }
    async fn list_subscriptions(&self, creator: Option<&str>) -> StoreResult<Vec<Subscription>> {
        let creator = own_opt(creator);
        self.run(move |c| list(c, creator.as_deref())).await
    }
    async fn get_subscription(&self, id: &str) -> StoreResult<Subscription> {
        let id = own(id);
        self.run(move |c| get(c, &id)).await
    }
    async fn delete_subscription(&self, id: &str) -> StoreResult<()> {
        let now = self.clock.now();
        let id = own(id);
        self.run(move |c| delete(c, &id, now)).await
    }
    async fn rotate_secret(
        &self,
        id: &str,
        secret: &str,
        grace: DateTime<Utc>,
    ) -> StoreResult<Subscription> {
        let now = self.clock.now();
        let (id, secret) = (own(id), own(secret));
        self.run(move |c| rotate(c, &id, &secret, grace, now)).await
    }
    async fn stored_secrets(&self) -> StoreResult<Vec<StoredSecrets>> {
        self.run(|c| stored_secrets(c)).await
    }
    async fn replace_secrets(&self, old: &StoredSecrets, new: &StoredSecrets) -> StoreResult<bool> {
        let (old, new) = (old.clone(), new.clone());
        self.run(move |c| replace_secrets(c, &old, &new)).await
    }
    async fn update_subscription(
        &self,
        id: &str,
        patch: &SubscriptionPatch,
    ) -> StoreResult<Subscription> {
        let now = self.clock.now();
        let (id, patch) = (own(id), patch.clone());
        self.run(move |c| update(c, &id, &patch, now)).await
    }
    async fn list_deliveries(
        &self,
        sub: &str,
        status: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        let (sub, status) = (own(sub), own_opt(status));
        self.run(move |c| list_deliveries(c, &sub, status.as_deref(), limit))
            .await
    }
    async fn get_delivery(&self, sub: &str, id: &str) -> StoreResult<Delivery> {
        let (sub, id) = (own(sub), own(id));
        self.run(move |c| get_delivery(c, &sub, &id)).await
    }
    async fn retry_delivery(
        &self,
        sub: &str,
        id: &str,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> StoreResult<Delivery> {
        let (sub, id) = (own(sub), own(id));
        self.run(move |c| retry(c, &sub, &id, now, expires)).await
    }
    async fn create_one_off(&self, one_off: &OneOff, now: DateTime<Utc>) -> StoreResult<Delivery> {
        let one_off = one_off.clone();
        self.run(move |c| create_one_off(c, &one_off, now)).await
    }
}
