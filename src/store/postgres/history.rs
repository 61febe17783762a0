//! SQL for the delivery history as a subscription's owner sees it.
//! Work made here (a test event, a replay) is announced to every instance.

use super::{found, notify};
use crate::store::*;
use crate::store::{Attempt, Delivery, OneOff, StoreError, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::{GenericClient, Row, Transaction};

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
impl History for super::PgStore {
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
