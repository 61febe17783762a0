//! What operators need of the store, for both backends: the figures the
//! metrics read at scrape time (queue depth, subscriptions by status), the
//! test that a fan-out is finished (for its lateness), and retention's
//! deletes. Every prune step is one short transaction over at most `limit`
//! rows, found through an index (history by subscription and age, slices
//! by id, finished reminders by due time; a reminder goes once the start it
//! announced is that old, whatever its webinar was moved to since), and it never touches the rows
//! of a fan-out that still has pending work: a pending slice or a pending
//! delivery of the same reminder. Each backend's `Pruning` deletes history
//! over [`settled_deliveries`], [`delete_deliveries`] and [`prune_slices`]
//! (receipts go with the rest of the history there).

use super::Upkeep;
use crate::domain::status::{ReminderStatus, SubscriptionStatus};
use crate::store::sql::{params, Backend, Db, Value};
use crate::store::{Cutoff, ReminderId, StoreResult, SubscriptionId, WebinarId};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

/// The queue and the subscriptions as a scrape sees them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueFigures {
    /// Pending reminders due within the next hour (or overdue).
    pub due_next_hour: i64,
    /// Deliveries not yet attempted: pending rows never tried, and the
    /// participants of slices not yet finished (an upper bound while a
    /// slice is being sent).
    pub queued: i64,
    /// Pending deliveries waiting for a retry.
    pub retrying: i64,
    /// Live subscriptions by status.
    pub subscriptions: Vec<(SubscriptionStatus, i64)>,
    /// Active subscriptions whose endpoint is failing now.
    pub failing: i64,
}

/// Rows one prune step removed, by table.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Pruned {
    pub deliveries: u64,
    pub attempts: u64,
    pub receipts: u64,
    pub slices: u64,
    pub reminders: u64,
}

impl Pruned {
    /// Every row removed.
    pub fn total(&self) -> u64 {
        self.deliveries + self.attempts + self.receipts + self.slices + self.reminders
    }

    /// Adds another step's figures.
    pub fn add(&mut self, o: Pruned) {
        self.deliveries += o.deliveries;
        self.attempts += o.attempts;
        self.receipts += o.receipts;
        self.slices += o.slices;
        self.reminders += o.reminders;
    }
}

/// No pending slice and no pending delivery of the reminder `r` of
/// webinar `w` (column expressions): its fan-out has no work left. Both
/// probes go through the partial indexes of pending work by webinar.
pub(crate) fn settled(w: &str, r: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM slices o WHERE o.webinar_id = {w} AND o.status = 'pending'
                       AND o.reminder_id = {r})
         AND NOT EXISTS (SELECT 1 FROM deliveries p WHERE p.webinar_id = {w}
                       AND p.status = 'pending' AND p.reminder_id = {r})"
    )
}

/// `$from`, `$from+1`… for `n` values.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Deletes from `table` the rows whose `column` is one of `ids`.
pub(crate) async fn delete_in(
    db: &dyn Db,
    table: &str,
    column: &str,
    ids: &[Value],
) -> StoreResult<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "DELETE FROM {table} WHERE {column} IN ({})",
        placeholders(1, ids.len())
    );
    db.execute(&sql, ids).await
}

/// The first column of each row, as parameters.
/// The receipts of `$1` (a subscription) recorded before `$2` whose
/// fan-outs are settled, at most `$3` of them: their ids.
pub(crate) fn settled_receipts() -> String {
    format!(
        "SELECT r.id FROM receipts r JOIN slices l ON l.id = r.slice_id
         WHERE r.subscription_id = $1 AND r.created_at < $2
           AND l.status <> 'pending' AND ({})
         LIMIT $3",
        settled("l.webinar_id", "l.reminder_id")
    )
}

pub(crate) fn firsts(rows: Vec<crate::store::sql::Row>) -> Vec<Value> {
    rows.into_iter()
        .filter_map(|r| r.0.into_iter().next())
        .collect()
}

/// The cutoff's settled delivery rows of `sub`, as parameters. Found outside a transaction: most subscriptions have
/// nothing to prune most rounds, and then cost one index probe, no write.
pub(crate) async fn settled_deliveries<B: Backend>(
    b: &B,
    sub: &SubscriptionId,
    cut: Cutoff,
) -> StoreResult<Vec<Value>> {
    let sql = format!(
        "SELECT d.id FROM deliveries d
         WHERE d.subscription_id = $1 AND d.created_at < $2 AND d.status <> 'pending'
           AND (d.reminder_id IS NULL OR ({}))
         LIMIT $3",
        settled("d.webinar_id", "d.reminder_id")
    );
    Ok(firsts(
        b.query(&sql, params![sub, cut.before, i64::from(cut.limit)])
            .await?,
    ))
}

/// Deletes the delivery rows `ids` and their attempts in `tx`; a delivery
/// replayed meanwhile is pending again, and kept.
pub(crate) async fn delete_deliveries(tx: &dyn Db, ids: &[Value]) -> StoreResult<Pruned> {
    let mut p = Pruned::default();
    if ids.is_empty() {
        return Ok(p);
    }
    let sql = format!(
        "DELETE FROM deliveries WHERE id IN ({}) AND status <> 'pending' RETURNING id",
        placeholders(1, ids.len())
    );
    let gone = firsts(tx.query(&sql, ids).await?);
    p.deliveries = gone.len() as u64;
    p.attempts = delete_in(tx, "attempts", "delivery_id", &gone).await?;
    Ok(p)
}

/// Removes the cutoff's settled slices among the next `cut.limit` after id
/// `after`, and only those that also meet `kept_elsewhere` (an
/// SQL condition on slice `l`, empty for none: SQLite keeps a slice its
/// receipts still name); answers where to go on from, if the walk goes on.
pub(crate) async fn prune_slices<B: Backend>(
    b: &B,
    after: i64,
    cut: Cutoff,
    kept_elsewhere: &str,
) -> StoreResult<(Pruned, Option<i64>)> {
    let Cutoff { before, limit } = cut;
    // The next `limit` slices by id (their creation order), up to the
    // first one not old enough: the walk ends there.
    let rows = b
        .query(
            "SELECT id, created_at FROM slices WHERE id > $1 ORDER BY id LIMIT $2",
            params![after, i64::from(limit)],
        )
        .await?;
    let mut last = None;
    for r in &rows {
        if r.time(1)? >= before {
            break;
        }
        last = Some(r.int(0)?);
    }
    let Some(upto) = last else {
        return Ok((Pruned::default(), None));
    };
    let sql = format!(
        "DELETE FROM slices WHERE id IN (SELECT l.id FROM slices l
           WHERE l.id > $1 AND l.id <= $2 AND l.status <> 'pending' {kept_elsewhere} AND ({}))",
        settled("l.webinar_id", "l.reminder_id")
    );
    let n = b.execute(&sql, params![after, upto]).await?;
    let next = (rows.len() as u32 == limit && last == rows.last().map(|r| r.int(0)).transpose()?)
        .then_some(upto);
    let pruned = Pruned {
        slices: n,
        ..Pruned::default()
    };
    Ok((pruned, next))
}

#[async_trait]
impl<B: Backend> Upkeep for B {
    async fn queue_figures(&self, now: DateTime<Utc>) -> StoreResult<QueueFigures> {
        let hour = now + Duration::hours(1);
        let due = self
            .query_one(
                "SELECT COUNT(*) FROM reminders WHERE status = 'pending' AND due_at <= $1",
                params![hour],
            )
            .await?
            .int(0)?;
        let rows = self
            .query_one(
                "SELECT CAST(COUNT(*) AS BIGINT),
                        CAST(COALESCE(SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END), 0) AS BIGINT)
                 FROM deliveries WHERE status = 'pending'",
                params![],
            )
            .await?;
        let (pending, retrying) = (rows.int(0)?, rows.int(1)?);
        let in_slices = self
            .query_one(
                "SELECT CAST(COALESCE(SUM(last_seq - after_seq), 0) AS BIGINT)
                 FROM slices WHERE status = 'pending'",
                params![],
            )
            .await?
            .int(0)?;
        let subscriptions = self
            .query(
                "SELECT status, COUNT(*) FROM subscriptions WHERE status <> 'deleted'
                 GROUP BY status ORDER BY status",
                params![],
            )
            .await?
            .iter()
            .map(|r| Ok((r.status(0)?, r.int(1)?)))
            .collect::<StoreResult<_>>()?;
        let failing = self
            .query_one(
                "SELECT COUNT(*) FROM subscriptions
                 WHERE status = 'active' AND failing_since IS NOT NULL",
                params![],
            )
            .await?
            .int(0)?;
        Ok(QueueFigures {
            due_next_hour: due,
            queued: pending - retrying + in_slices,
            retrying,
            subscriptions,
            failing,
        })
    }

    async fn fanout_finished(
        &self,
        reminder: &ReminderId,
        webinar: &WebinarId,
    ) -> StoreResult<bool> {
        let sql = "SELECT status FROM reminders r WHERE id = $1 AND NOT EXISTS
                     (SELECT 1 FROM slices o WHERE o.webinar_id = $2 AND o.status = 'pending'
                        AND o.reminder_id = $1)";
        let rows = self.query(sql, params![reminder, webinar]).await?;
        Ok(match rows.first() {
            Some(r) => !matches!(
                r.status(0)?,
                ReminderStatus::Pending | ReminderStatus::Firing
            ),
            // Pruned, or a slice is left: finished only if the row is gone.
            None => self
                .query("SELECT 1 FROM reminders WHERE id = $1", params![reminder])
                .await?
                .is_empty(),
        })
    }

    async fn history_owners(&self) -> StoreResult<Vec<SubscriptionId>> {
        let rows = self
            .query("SELECT id FROM subscriptions ORDER BY id", params![])
            .await?;
        rows.iter().map(|r| r.id(0)).collect()
    }

    async fn prune_reminders(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        let sql = format!(
            "SELECT r.id FROM reminders r
             WHERE r.status IN ('sent', 'missed', 'cancelled') AND r.due_at < $1
               AND r.from_time < $1 AND ({})
             LIMIT $2",
            settled("r.webinar_id", "r.id")
        );
        let ids = firsts(self.query(&sql, params![before, i64::from(limit)]).await?);
        delete_in(self, "early_starts", "reminder_id", &ids).await?;
        delete_in(self, "reminders", "id", &ids).await
    }
}
