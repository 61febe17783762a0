//! SQL for work that is not being sent, in SQLite: leases renewed while a
//! lane holds them, handed back when an instance stops (or, at open, all of
//! a dead process's), and the sweep that expires what was not sent in time.
//! The twin of `postgres/sweep.rs`.

use super::work::{slice_people, slice_row};
use super::{ms, receipts};
use crate::store::jobs::{SliceRow, SLICE_COLS};
use crate::store::StoreResult;
use crate::store::{InstanceId, Renewal};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

pub fn renew_leases(c: &mut Connection, r: &Renewal) -> StoreResult<()> {
    let tx = c.transaction()?;
    renew(&tx, "slices", &r.slices, r)?;
    renew(&tx, "deliveries", &r.deliveries, r)?;
    tx.commit()?;
    Ok(())
}

/// Extends to the renewal's `until` the leases its `owner` holds on rows
/// `ids` of `table` that are still pending.
fn renew<T: rusqlite::ToSql>(
    c: &Connection,
    table: &str,
    ids: &[T],
    r: &Renewal,
) -> StoreResult<()> {
    let mut s = c.prepare_cached(&format!(
        "UPDATE {table} SET locked_until = ?3
         WHERE id = ?1 AND locked_by = ?2 AND status = 'pending'"
    ))?;
    for id in ids {
        s.execute(params![id, r.owner, ms(r.until)])?;
    }
    Ok(())
}

pub fn release_leases(c: &mut Connection, owner: &InstanceId) -> StoreResult<u64> {
    release(c, Some(owner))
}

/// Hands back every lease in the file, whoever took it: at open, when the
/// file is locked for this process, they are all a dead process's.
pub fn release_all_leases(c: &mut Connection) -> StoreResult<u64> {
    release(c, None)
}

fn release(c: &mut Connection, owner: Option<&InstanceId>) -> StoreResult<u64> {
    let tx = c.transaction()?;
    let mut n = 0;
    for table in ["reminders", "slices", "deliveries"] {
        // 0, not NULL: a firing reminder is claimed again once its lease is past.
        n += tx.execute(
            &format!(
                "UPDATE {table} SET locked_until = 0
                 WHERE (?1 IS NULL OR locked_by = ?1) AND locked_until > 0
                   AND status IN ('pending', 'firing')"
            ),
            [owner],
        )? as u64;
    }
    tx.commit()?;
    Ok(n)
}

/// Expires pending rows and slices past their time. A slice's unsent
/// deliveries get rows of their own, so each is recorded as expired.
pub fn expire_overdue(c: &mut Connection, now: DateTime<Utc>) -> StoreResult<u64> {
    let tx = c.transaction()?;
    let now_ms = ms(now);
    let mut n = tx.execute(
        "UPDATE deliveries SET status = 'expired', locked_until = NULL, updated_at = ?1,
                last_error = COALESCE(last_error, 'not delivered before it expired')
         WHERE status = 'pending' AND expires_at <= ?1
           AND (locked_until IS NULL OR locked_until <= ?1)",
        [now_ms],
    )? as u64;
    let stale: Vec<SliceRow> = {
        let mut st = tx.prepare(&format!(
            "SELECT {SLICE_COLS} FROM slices WHERE status = 'pending' AND expires_at <= ?1
               AND (locked_until IS NULL OR locked_until <= ?1)"
        ))?;
        let rows = st.query_map([now_ms], slice_row)?;
        rows.collect::<Result<_, _>>()?
    };
    for s in stale {
        let mut ins = tx.prepare_cached(
            "INSERT OR IGNORE INTO deliveries (id, subscription_id, webinar_id, participant_id,
                reminder_id, label, status, late, due_at, next_attempt_at, expires_at, last_error,
                created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'expired', ?7, ?8, ?9, ?10,
                'not delivered before it expired', ?9, ?9)",
        )?;
        let p = &s.proto;
        let acknowledged = receipts::seqs(&tx, s.id)?;
        for (seq, wid, pid, _) in slice_people(&tx, &s)? {
            if acknowledged.contains(&seq) {
                continue;
            }
            n += ins.execute(params![
                wid,
                s.subscription_id,
                p.webinar_id,
                pid,
                p.reminder_id,
                p.label,
                p.late,
                ms(p.due_at),
                now_ms,
                ms(p.expires_at)
            ])? as u64;
        }
        tx.execute(
            "UPDATE slices SET status = 'expired', locked_until = NULL WHERE id = ?1",
            [s.id],
        )?;
    }
    tx.commit()?;
    Ok(n)
}
