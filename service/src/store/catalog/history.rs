//! The delivery history's rows as a subscription's owner sees them, for
//! both backends: listed, fetched with their attempts, retried, replayed,
//! and test events. Each backend's [`crate::store::Deliveries`] answers from these rows
//! and the receipts it keeps (`sqlite::history`, `postgres::history`).

use super::History;
use crate::domain::status::DeliveryStatus;
use crate::store::decode::from_row;
use crate::store::page::key_cursor;
use crate::store::sql::{params, Backend, Db, Row};
use crate::store::{
    Attempt, Delivery, DeliveryId, OneOff, PageRequest, Paged, StoreError, StoreResult,
    SubscriptionId,
};
use crate::store::{Change, Listing, Retry};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

const DELIVERY_COLS: &str = "id, subscription_id, webinar_id, participant_id, label, status,
    late, attempts, due_at, next_attempt_at, expires_at, last_status, last_error, delivered_at,
    batch_id";

fn delivery(r: &Row) -> StoreResult<Delivery> {
    let mut d = from_row!(r, Delivery {
        id, subscription_id, webinar_id, participant_id, reminder, status, late, attempts, due_at,
        next_attempt_at, expires_at, last_status, last_error, delivered_at, batch_id;
        attempt_log: None,
    });
    // A settled delivery is not attempted again, whatever its row holds.
    if d.status != DeliveryStatus::Pending {
        d.next_attempt_at = None;
    }
    Ok(d)
}

fn attempt(r: &Row) -> StoreResult<Attempt> {
    Ok(Attempt {
        attempt: r.int(0)? as u32,
        started_at: r.time(1)?,
        status_code: r.opt_int(2)?.map(|v| v as u16),
        latency_ms: r.int(3)? as u64,
        error: r.opt_text(4)?,
        response: r.opt_text(5)?,
    })
}

/// A delivery's attempts: the first from its row (when it was made that
/// way), the others from `attempts`.
async fn attempts(db: &(impl Db + ?Sized), delivery_id: &DeliveryId) -> StoreResult<Vec<Attempt>> {
    let sql = "SELECT 1, first_started_at, first_status, first_latency_ms, first_error,
                      first_response
               FROM deliveries WHERE id = $1 AND first_started_at IS NOT NULL
               UNION ALL
               SELECT attempt, started_at, status_code, latency_ms, error, response
               FROM attempts WHERE delivery_id = $1
               ORDER BY 1";
    let rows = db.query(sql, params![delivery_id]).await?;
    rows.iter().map(attempt).collect()
}

/// Delivery `id` of `sub` from its row, with its attempts.
pub(crate) async fn row(
    db: &(impl Db + ?Sized),
    sub: &SubscriptionId,
    id: &DeliveryId,
) -> StoreResult<Option<Delivery>> {
    let sql =
        format!("SELECT {DELIVERY_COLS} FROM deliveries WHERE id = $1 AND subscription_id = $2");
    let Some(r) = db.query(&sql, params![id, sub]).await?.into_iter().next() else {
        return Ok(None);
    };
    let mut d = delivery(&r)?;
    d.attempt_log = Some(attempts(db, id).await?);
    Ok(Some(d))
}

/// A one-off delivery (a test event, an operational event): pending at
/// once, with a fixed payload. Binds `id, subscription, label, payload,
/// now, expires_at`.
const INSERT_ONE_OFF: &str =
    "INSERT INTO deliveries (id, subscription_id, label, payload, status, due_at,
                             next_attempt_at, expires_at, created_at, updated_at)
     VALUES ($1, $2, $3, $4, 'pending', $5, $5, $6, $5, $5)";

/// Inserts one-off delivery `o`, due `now`, and tells other instances its
/// subscription has work; with `once`, an id already there inserts
/// nothing (and tells no one). Says whether it inserted.
pub(super) async fn insert_one_off(
    tx: &dyn crate::store::sql::Tx,
    o: &OneOff,
    now: DateTime<Utc>,
    once: bool,
) -> StoreResult<bool> {
    let sql = if once {
        format!("{INSERT_ONE_OFF} ON CONFLICT (id) DO NOTHING")
    } else {
        INSERT_ONE_OFF.to_owned()
    };
    let p = params![
        &o.id,
        &o.subscription_id,
        &o.label,
        &o.payload,
        now,
        o.expires_at
    ];
    let inserted = tx.execute(&sql, p).await? == 1;
    if inserted {
        tx.announce(&Change::Work(o.subscription_id.clone()))
            .await?;
    }
    Ok(inserted)
}

/// A page of `sub`'s delivery rows with `status` (or any), after the
/// page's cursor, newest first, each with its creation instant (the
/// cursor's order): what [`page_of`] makes the answer from.
pub(crate) async fn listed<B: Backend>(
    b: &B,
    which: Listing<'_>,
) -> StoreResult<Vec<(DateTime<Utc>, Delivery)>> {
    let Listing {
        subscription_id: sub,
        status,
        page,
    } = which;
    let after = page.after_key()?.map(|k| (k.at, k.id));
    let (cond, p) = match &after {
        None => ("", params![sub, status, page.fetch()].to_vec()),
        Some((at, id)) => (
            "AND (created_at < $4 OR (created_at = $4 AND id > $5))",
            params![sub, status, page.fetch(), *at, id].to_vec(),
        ),
    };
    let sql = format!(
        "SELECT {DELIVERY_COLS}, created_at FROM deliveries
         WHERE subscription_id = $1 AND (CAST($2 AS TEXT) IS NULL OR status = $2) {cond}
         ORDER BY created_at DESC, id LIMIT $3"
    );
    let mut rows = Vec::new();
    for r in b.query(&sql, &p).await? {
        let mut d = delivery(&r)?;
        d.attempt_log = Some(attempts(b, &d.id).await?);
        rows.push((r.time(15)?, d));
    }
    Ok(rows)
}

/// The page answered from deliveries newest first (then by id), each with
/// its creation instant.
pub(crate) fn page_of(
    rows: Vec<(DateTime<Utc>, Delivery)>,
    page: &PageRequest,
) -> StoreResult<Paged<Delivery>> {
    Ok(Paged::of(rows, page, |(at, d)| key_cursor(*at, "", d.id.as_str())).map(|(_, d)| d))
}

/// Makes the retried delivery's row due again, and tells the instances:
/// [`crate::store::Deliveries::retry_delivery`] once the backend has the
/// row.
pub(crate) async fn retry_row<B: Backend>(b: &B, retry: &Retry) -> StoreResult<Delivery> {
    let (sub, id) = (&retry.subscription_id, &retry.delivery_id);
    b.transact(|tx| async move {
        let d = row(&*tx, sub, id).await?.ok_or(StoreError::NotFound)?;
        if d.status == DeliveryStatus::Cancelled {
            return Err(StoreError::Conflict(
                "a cancelled delivery cannot be retried".into(),
            ));
        }
        let sql = "UPDATE deliveries SET status = 'pending', next_attempt_at = $2,
                          locked_until = NULL, updated_at = $2,
                          expires_at = CASE WHEN expires_at > $3 THEN expires_at ELSE $3 END
                   WHERE id = $1";
        tx.execute(sql, params![id, retry.now, retry.expires_at])
            .await?;
        tx.announce(&Change::Work(sub.clone())).await?;
        let d = row(&*tx, sub, id).await?.ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(d)
    })
    .await
}

#[async_trait]
impl<B: Backend> History for B {
    async fn replay_deliveries(
        &self,
        sub: &SubscriptionId,
        status: DeliveryStatus,
        (since, until): (DateTime<Utc>, DateTime<Utc>),
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> StoreResult<u64> {
        self.transact(|tx| async move {
            let sql = "UPDATE deliveries SET status = 'pending', next_attempt_at = $5,
                              locked_until = NULL, updated_at = $5,
                              expires_at = CASE WHEN expires_at > $6 THEN expires_at ELSE $6 END
                       WHERE subscription_id = $1 AND status = $2
                         AND due_at >= $3 AND due_at < $4";
            let n = tx
                .execute(sql, params![sub, status, since, until, now, expires])
                .await?;
            if n > 0 {
                tx.announce(&Change::Work(sub.clone())).await?;
            }
            tx.commit().await?;
            Ok(n)
        })
        .await
    }

    async fn create_one_off(&self, o: &OneOff, now: DateTime<Utc>) -> StoreResult<Delivery> {
        self.transact(|tx| async move {
            insert_one_off(&*tx, o, now, false).await?;
            let d = row(&*tx, &o.subscription_id, &o.id).await?;
            tx.commit().await?;
            d.ok_or(StoreError::NotFound)
        })
        .await
    }
}
