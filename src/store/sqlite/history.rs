//! SQL for the delivery history as a subscription's owner sees it: rows, and
//! the receipts of deliveries acknowledged on their first attempt (`receipts`).

use super::{at, at_opt, ms, receipts};
use super::{own, own_opt};
use crate::store::*;
use crate::store::{Attempt, Delivery, OneOff, StoreError, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::collections::HashSet;

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
impl History for super::SqliteStore {
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
