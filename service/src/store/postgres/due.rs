//! SQL for the scheduler's reminders falling due: when the next one does,
//! the subscriptions with one due by an instant, and claiming the due ones
//! with `SKIP LOCKED` (the instances race, one wins each) for `engine` to
//! fan out.

use crate::store::ReminderClaim;
use crate::store::{DueReminder, StoreResult, SubscriptionId};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

pub async fn next_reminder_due(c: &impl GenericClient) -> StoreResult<Option<DateTime<Utc>>> {
    let r = c
        .query_one(
            &c.prepare_cached(
                "SELECT LEAST(
               (SELECT MIN(due_at) FROM reminders WHERE status = 'pending'),
               (SELECT MIN(locked_until) FROM reminders WHERE status = 'firing'))",
            )
            .await?,
            &[],
        )
        .await?;
    Ok(r.get(0))
}

pub async fn subscriptions_due(
    c: &impl GenericClient,
    until: DateTime<Utc>,
) -> StoreResult<Vec<SubscriptionId>> {
    let rows = c
        .query(
            &c.prepare_cached(&format!(
                "{} WHERE r.status = 'pending' AND r.due_at <= $1",
                crate::store::SUBSCRIPTIONS_DUE
            ))
            .await?,
            &[&until],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Claims the reminders due (or whose firing instance's lease ran out):
/// one statement, outside any transaction.
pub async fn claim_due_reminders(
    tx: &impl GenericClient,
    claim: &ReminderClaim,
) -> StoreResult<Vec<DueReminder>> {
    let ReminderClaim {
        now,
        horizon,
        ref owner,
        lease_until,
        limit,
    } = *claim;
    // Who it is for is frozen by its first step at or after the due instant
    // (`freeze`), whether claimed ahead of it or not.
    let st = tx
        .prepare_cached(
            "WITH due AS (
               SELECT id FROM reminders
               WHERE (status = 'pending' AND due_at <= $5)
                  OR (status = 'firing' AND locked_until <= $1)
               ORDER BY due_at LIMIT $2
               FOR UPDATE SKIP LOCKED)
             UPDATE reminders r SET status = 'firing', locked_until = $3, locked_by = $4,
                    fired_at = COALESCE(r.fired_at, GREATEST($1, r.due_at))
             FROM due WHERE r.id = due.id
             RETURNING r.id, r.webinar_id, r.label, r.due_at, r.from_time",
        )
        .await?;
    let rows = tx
        .query(
            &st,
            &[&now, &i64::from(limit), &lease_until, &owner, &horizon],
        )
        .await?;
    let mut due: Vec<DueReminder> = rows
        .iter()
        .map(|r| DueReminder {
            id: r.get(0),
            webinar_id: r.get(1),
            label: r.get(2),
            due_at: r.get(3),
            from_time: r.get(4),
        })
        .collect();
    due.sort_by_key(|r| r.due_at);
    Ok(due)
}
