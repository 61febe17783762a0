//! SQL for the scheduler's reminders falling due, in SQLite: when the next
//! one does, the subscriptions with one due by an instant, and claiming the
//! due ones (one writer: no race) for `engine` to fan out. The twin of
//! `postgres/due.rs`.

use super::{at, ms};
use crate::store::ReminderClaim;
use crate::store::{DueReminder, StoreResult, SubscriptionId};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

pub fn next_reminder_due(c: &Connection) -> StoreResult<Option<DateTime<Utc>>> {
    let v: Option<i64> = c
        .prepare_cached(
            "SELECT MIN(CASE status WHEN 'pending' THEN due_at ELSE locked_until END)
             FROM reminders WHERE status IN ('pending', 'firing')",
        )?
        .query_row([], |r| r.get(0))?;
    Ok(v.map(at))
}

pub fn subscriptions_due(c: &Connection, until: DateTime<Utc>) -> StoreResult<Vec<SubscriptionId>> {
    let mut st = c.prepare_cached(&format!(
        "{} WHERE r.status = 'pending' AND r.due_at <= ?1",
        crate::store::SUBSCRIPTIONS_DUE
    ))?;
    let rows = st.query_map([ms(until)], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn claim_due_reminders(
    c: &mut Connection,
    claim: &ReminderClaim,
) -> StoreResult<Vec<DueReminder>> {
    let tx = c.transaction()?;
    let now_ms = ms(claim.now);
    let due: Vec<DueReminder> = {
        let mut st = tx.prepare_cached(
            "SELECT id, webinar_id, label, due_at, from_time FROM reminders
             WHERE (status = 'pending' AND due_at <= ?3)
                OR (status = 'firing' AND locked_until <= ?1)
             ORDER BY due_at LIMIT ?2",
        )?;
        let rows = st.query_map(params![now_ms, claim.limit, ms(claim.horizon)], |r| {
            Ok(DueReminder {
                id: r.get(0)?,
                webinar_id: r.get(1)?,
                label: r.get(2)?,
                due_at: at(r.get(3)?),
                from_time: at(r.get(4)?),
            })
        })?;
        rows.collect::<Result<_, _>>()?
    };
    for r in &due {
        // Who it is for is frozen by its first step at or after the due
        // instant (`freeze`), whether claimed ahead of it or not.
        tx.prepare_cached(
            "UPDATE reminders SET status = 'firing', locked_until = ?2, locked_by = ?3,
                    fired_at = COALESCE(fired_at, MAX(?4, due_at))
             WHERE id = ?1",
        )?
        .execute(params![r.id, ms(claim.lease_until), claim.owner, now_ms])?;
    }
    tx.commit()?;
    Ok(due)
}
