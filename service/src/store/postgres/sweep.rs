//! SQL for work that is not being sent: the sweep that expires what was not
//! sent in time (each unsent delivery of a slice gets its row), and the
//! hand-back of a stopping instance's leases, announced to the others.

use super::work::{slice_people, slice_row};
use super::{notify, receipts};
use crate::domain::ids::split_webhook_id;
use crate::store::jobs::SLICE_COLS;
use crate::store::StoreResult;
use crate::store::{InstanceId, Renewal};
use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use tokio_postgres::types::ToSql;

pub async fn renew_leases(tx: &Transaction<'_>, r: &Renewal) -> StoreResult<()> {
    renew(tx, "slices", &r.slices, r).await?;
    renew(tx, "deliveries", &r.deliveries, r).await
}

/// Moves the lease of each pending row of `table` among `ids` that the
/// renewal's `owner` holds on to its `until`; nothing to do (and no statement) when `ids` is empty.
async fn renew<T: ToSql + Sync>(
    tx: &Transaction<'_>,
    table: &str,
    ids: &[T],
    r: &Renewal,
) -> StoreResult<()> {
    if !ids.is_empty() {
        tx.execute(
            &tx.prepare_cached(&format!(
                "UPDATE {table} SET locked_until = $3
                 WHERE id = ANY($1) AND locked_by = $2 AND status = 'pending'"
            ))
            .await?,
            &[&ids, &r.owner, &r.until],
        )
        .await?;
    }
    Ok(())
}

/// Hands back every lease the `owners` hold: a stopping instance's own, or
/// those of instances whose heartbeat lapsed (they are gone, and their work
/// should not wait for their leases to run out).
pub async fn release_leases(
    tx: &Transaction<'_>,
    channel: &str,
    owners: &[InstanceId],
) -> StoreResult<u64> {
    let mut n = 0;
    for table in ["reminders", "slices", "deliveries"] {
        // The epoch, not NULL: a firing reminder is claimed again once its
        // lease is past.
        n += tx
            .execute(
                &tx.prepare_cached(&format!(
                    "UPDATE {table} SET locked_until = 'epoch'
                     WHERE locked_by = ANY($1) AND locked_until > 'epoch'
                       AND status IN ('pending', 'firing')"
                ))
                .await?,
                &[&owners],
            )
            .await?;
    }
    if n > 0 {
        // The others pick it up now, not at their next scan.
        notify::send(tx, channel, notify::SCHEDULE).await?;
        let subs = tx
            .query(
                &tx.prepare_cached(
                    "SELECT DISTINCT subscription_id FROM slices
                 WHERE status = 'pending' AND locked_until = 'epoch'
                 UNION SELECT DISTINCT subscription_id FROM deliveries
                 WHERE status = 'pending' AND locked_until = 'epoch'",
                )
                .await?,
                &[],
            )
            .await?;
        for r in subs {
            let sub: String = r.get(0);
            notify::send(tx, channel, &notify::work(&sub)).await?;
        }
    }
    Ok(n)
}

/// Expires pending rows and slices past their time. A slice's unsent
/// deliveries get rows of their own, so each is recorded as expired. Slices
/// another instance is expiring at the same moment are skipped.
pub async fn expire_overdue(tx: &Transaction<'_>, now: DateTime<Utc>) -> StoreResult<u64> {
    let mut n = tx
        .execute(
            &tx.prepare_cached(
                "UPDATE deliveries SET status = 'expired', locked_until = NULL, updated_at = $1,
                    last_error = COALESCE(last_error, 'not delivered before it expired')
             WHERE status = 'pending' AND expires_at <= $1
               AND (locked_until IS NULL OR locked_until <= $1)",
            )
            .await?,
            &[&now],
        )
        .await?;
    let stale = tx
        .query(
            &tx.prepare_cached(&format!(
                "SELECT {SLICE_COLS} FROM slices WHERE status = 'pending' AND expires_at <= $1
                   AND (locked_until IS NULL OR locked_until <= $1)
                 FOR UPDATE SKIP LOCKED"
            ))
            .await?,
            &[&now],
        )
        .await?;
    for row in stale {
        let s = slice_row(&row);
        // What a receipt holds was acknowledged: only the rest expires.
        let acknowledged = receipts::seqs(tx, s.id).await?;
        let mut people = slice_people(tx, &s).await?;
        people.retain(|p| {
            split_webhook_id(p.0.as_str()).is_none_or(|(_, q)| !acknowledged.contains(&q))
        });
        let ids: Vec<&str> = people.iter().map(|p| p.0.as_str()).collect();
        let pids: Vec<&str> = people.iter().map(|p| p.1.as_str()).collect();
        let p = &s.proto;
        n += tx
            .execute(
                &tx.prepare_cached(
                    "INSERT INTO deliveries (id, subscription_id, webinar_id, participant_id,
                    reminder_id, label, status, late, due_at, next_attempt_at, expires_at,
                    last_error, created_at, updated_at)
                 SELECT id, $3, $4, pid, $5, $6, 'expired', $7, $8, $9, $10,
                    'not delivered before it expired', $9, $9
                 FROM unnest($1::text[], $2::text[]) AS u(id, pid)
                 ON CONFLICT (id) DO NOTHING",
                )
                .await?,
                &[
                    &ids,
                    &pids,
                    &s.subscription_id,
                    &p.webinar_id,
                    &p.reminder_id,
                    &p.label,
                    &p.late,
                    &p.due_at,
                    &now,
                    &p.expires_at,
                ],
            )
            .await?;
        tx.execute(
            &tx.prepare_cached(
                "UPDATE slices SET status = 'expired', locked_until = NULL WHERE id = $1",
            )
            .await?,
            &[&s.id],
        )
        .await?;
    }
    Ok(n)
}
