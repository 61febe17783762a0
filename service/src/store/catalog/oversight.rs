//! The oversight views ([`Oversight`]) written once for both backends: the
//! statements read reminders, slices, delivery rows and subscriptions. A
//! fired reminder's tally is counted here from the rows ([`counted`]); each
//! backend's `Tallies` adds what its receipts hold.
//! A reminder's rows are found through its creator's subscriptions and the
//! history index (subscription, creation), from the instant it fired on:
//! the delivery table has no index by reminder, and the hot path is not
//! made to keep one for the dashboard's sake.

use super::subscriptions::{subscription, SUB_COLS};
use super::OPERATIONAL_CREATOR;
use crate::domain::status::DeliveryStatus;
use crate::store::decode::from_row;
use crate::store::oversight::{
    DueFanout, FanoutReminder, FanoutTally, Outcomes, Oversight, Trouble,
};
use crate::store::sql::{params, Backend, Row, Value};
use crate::store::{CreatorId, Fired, HeldTally, ReminderId, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

/// A reminder with its webinar, as every fan-out view starts.
const REMINDER_COLS: &str = "r.id, w.id, w.title, w.creator_id, r.label, r.due_at, r.fired_at";

/// Only creator `$1`'s webinars, or everyone's when `$1` is null.
const CREATOR: &str = "(CAST($1 AS TEXT) IS NULL OR w.creator_id = $1)";

/// The fan-out's active subscriptions, as a fan-out matches them (see
/// `store::SUBSCRIPTIONS_DUE`).
const MATCHING: &str = "SELECT COUNT(*) FROM subscriptions s
    WHERE s.creator_id = w.creator_id AND s.status = 'active'
      AND (s.event = 'webinar.reminder.all' OR s.event = 'webinar.reminder.' || r.label)
      AND (s.webinar_id IS NULL OR s.webinar_id = r.webinar_id)
      AND (s.mango_id IS NULL OR s.mango_id IN
           (SELECT mango_id FROM webinar_mangoes wm WHERE wm.webinar_id = r.webinar_id))";

/// The first columns of [`REMINDER_COLS`], `r.fired_at` aside.
fn reminder(r: &Row) -> StoreResult<FanoutReminder> {
    Ok(from_row!(
        r,
        FanoutReminder {
            reminder_id,
            webinar_id,
            webinar_title,
            creator_id,
            label,
            due_at
        }
    ))
}

fn due(r: &Row) -> StoreResult<DueFanout> {
    Ok(DueFanout {
        reminder: reminder(r)?,
        participants: r.int(7)?,
        subscriptions: r.int(8)?,
    })
}

/// The rows `sql` lists, its `$1` the creator (everyone's when `None`)
/// and its `$2` the limit.
async fn listed<B: Backend>(
    b: &B,
    sql: &str,
    creator: Option<&CreatorId>,
    limit: i64,
) -> StoreResult<Vec<Row>> {
    let creator = creator.map_or(Value::Null, Into::into);
    b.query(sql, &[creator, limit.into()]).await
}

/// A fired reminder's deliveries counted from the rows, with the
/// participants its slices cover: a tally once the backend adds what it
/// keeps elsewhere ([`Counted::with`]).
pub(crate) struct Counted {
    tally: FanoutTally,
    /// Participants the fan-out's slices cover.
    covered: i64,
    /// Deliveries counted in rows.
    counted: i64,
}

impl Counted {
    /// The reminder counted.
    pub(crate) fn reminder(&self) -> &ReminderId {
        &self.tally.reminder.reminder_id
    }

    /// The tally, with `held` acknowledged deliveries kept outside the rows.
    pub(crate) fn with(mut self, held: HeldTally) -> FanoutTally {
        self.tally.counts.delivered += held.count;
        widen(&mut self.tally, held.first, held.last);
        self.tally.counts.total = self.covered.max(self.counted + held.count);
        self.tally
    }
}

/// The fired reminders `which` names, each counted from the rows.
pub(crate) async fn counted<B: Backend>(b: &B, which: Fired<'_>) -> StoreResult<Vec<Counted>> {
    let (rows, all_running) = match which {
        Fired::Running(creator, limit) => {
            let sql = format!(
                "SELECT {REMINDER_COLS} FROM reminders r JOIN webinars w ON w.id = r.webinar_id
                 WHERE {CREATOR} AND (r.status = 'firing'
                    OR r.id IN (SELECT reminder_id FROM slices WHERE status = 'pending')
                    OR r.id IN (SELECT reminder_id FROM deliveries
                                WHERE status = 'pending' AND reminder_id IS NOT NULL))
                 ORDER BY r.due_at, r.id LIMIT $2"
            );
            (listed(b, &sql, creator, limit).await?, true)
        }
        Fired::Last(creator, limit) => {
            let sql = format!(
                "SELECT {REMINDER_COLS} FROM reminders r JOIN webinars w ON w.id = r.webinar_id
                 WHERE r.fired_at IS NOT NULL AND {CREATOR}
                 ORDER BY r.fired_at DESC, r.id LIMIT $2"
            );
            (listed(b, &sql, creator, limit).await?, false)
        }
        Fired::One(reminder) => {
            let sql = format!(
                "SELECT {REMINDER_COLS} FROM reminders r JOIN webinars w ON w.id = r.webinar_id
                 WHERE r.id = $1"
            );
            (b.query(&sql, params![reminder]).await?, false)
        }
    };
    let mut out = Vec::new();
    for r in &rows {
        let mut c = tally(b, r).await?;
        c.tally.running |= all_running;
        out.push(c);
    }
    Ok(out)
}

/// Counts a fired reminder's delivery rows by outcome, and the
/// participants its slices cover.
async fn tally<B: Backend>(b: &B, r: &Row) -> StoreResult<Counted> {
    let mut t = FanoutTally {
        reminder: reminder(r)?,
        fired_at: r.opt_time(6)?,
        counts: Outcomes::default(),
        running: false,
        first_at: None,
        last_at: None,
    };
    let id = t.reminder.reminder_id.as_str().to_owned();
    let covered = "SELECT COUNT(*) FROM slices s JOIN participants p
                     ON p.webinar_id = s.webinar_id AND p.seq > s.after_seq
                    AND p.seq <= s.last_seq AND p.unregistered_at IS NULL
                   WHERE s.reminder_id = $1";
    let covered = b.query_one(covered, params![id.as_str()]).await?.int(0)?;
    let busy = "SELECT (SELECT COUNT(*) FROM reminders WHERE id = $1 AND status = 'firing')
                     + (SELECT COUNT(*) FROM slices WHERE reminder_id = $1 AND status = 'pending')";
    t.running = b.query_one(busy, params![id.as_str()]).await?.int(0)? > 0;
    let due_at = t.reminder.due_at;
    let since = t.fired_at.unwrap_or(due_at).min(due_at) - Duration::minutes(1);
    let rows = "SELECT d.status, COUNT(*), MIN(d.delivered_at), MAX(d.delivered_at)
                FROM deliveries d
                WHERE d.subscription_id IN (SELECT id FROM subscriptions WHERE creator_id = $2)
                  AND d.created_at >= $3 AND d.reminder_id = $1 AND d.participant_id IS NOT NULL
                GROUP BY d.status";
    let mut counted = 0;
    for row in b
        .query(rows, params![id.as_str(), &t.reminder.creator_id, since])
        .await?
    {
        let n = row.int(1)?;
        counted += n;
        match row.status::<DeliveryStatus>(0)? {
            DeliveryStatus::Delivered | DeliveryStatus::Batched => {
                t.counts.delivered += n;
                widen(&mut t, row.opt_time(2)?, row.opt_time(3)?);
            }
            DeliveryStatus::Failed => t.counts.failed += n,
            DeliveryStatus::Expired => t.counts.expired += n,
            DeliveryStatus::Missed => t.counts.missed += n,
            DeliveryStatus::Cancelled => t.counts.cancelled += n,
            DeliveryStatus::Pending => t.running = true,
        }
    }
    Ok(Counted {
        tally: t,
        covered,
        counted,
    })
}

/// Extends the first and last acknowledgements to take in `first..last`.
fn widen(t: &mut FanoutTally, first: Option<DateTime<Utc>>, last: Option<DateTime<Utc>>) {
    t.first_at = match (t.first_at, first) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    t.last_at = match (t.last_at, last) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
}

#[async_trait]
impl<B: Backend> Oversight for B {
    async fn next_fanouts(
        &self,
        creator: Option<&CreatorId>,
        limit: i64,
    ) -> StoreResult<Vec<DueFanout>> {
        let sql = format!(
            "SELECT {REMINDER_COLS},
                    (SELECT COUNT(*) FROM participants p
                     WHERE p.webinar_id = w.id AND p.unregistered_at IS NULL),
                    ({MATCHING})
             FROM reminders r JOIN webinars w ON w.id = r.webinar_id
             WHERE r.status = 'pending' AND {CREATOR}
             ORDER BY r.due_at, r.id LIMIT $2"
        );
        let rows = listed(self, &sql, creator, limit).await?;
        rows.iter().map(due).collect()
    }

    async fn troubled_subscriptions(
        &self,
        creator: Option<&CreatorId>,
        limit: i64,
    ) -> StoreResult<Vec<Trouble>> {
        let sql = format!(
            "SELECT {SUB_COLS} FROM subscriptions
             WHERE (status = 'disabled' OR (status = 'active' AND failing_since IS NOT NULL))
               AND (CAST($1 AS TEXT) IS NULL OR creator_id = $1)
               AND creator_id != '{OPERATIONAL_CREATOR}'
             ORDER BY status DESC, failing_since, id LIMIT $2"
        );
        let mut out = Vec::new();
        for r in listed(self, &sql, creator, limit).await? {
            out.push(last_failure(self, subscription(&r)?).await?);
        }
        Ok(out)
    }
}

/// A subscription with its latest failed attempt, if a row keeps one.
async fn last_failure<B: Backend>(b: &B, sub: crate::store::Subscription) -> StoreResult<Trouble> {
    let sql = "SELECT id FROM deliveries
               WHERE subscription_id = $1 AND (last_error IS NOT NULL OR last_status >= 300)
               ORDER BY created_at DESC, id LIMIT 1";
    let mut t = Trouble {
        subscription: sub,
        delivery_id: None,
        at: None,
        status_code: None,
        error: None,
        response: None,
    };
    let Some(row) = b.query(sql, params![&t.subscription.id]).await?.pop() else {
        return Ok(t);
    };
    let id = row.id(0)?;
    // A failed delivery is a row (receipts hold acknowledged ones only).
    let d = super::history::row(b, &t.subscription.id, &id).await?;
    let d = d.ok_or(crate::store::StoreError::NotFound)?;
    let failed = d
        .attempt_log
        .unwrap_or_default()
        .into_iter()
        .rev()
        .find(|a| a.error.is_some() || a.status_code.is_none_or(|c| !(200..300).contains(&c)));
    t.delivery_id = Some(id);
    if let Some(a) = failed {
        t.at = Some(a.started_at);
        t.status_code = a.status_code;
        t.error = a.error;
        t.response = a.response;
    } else {
        t.status_code = d.last_status;
        t.error = d.last_error;
    }
    Ok(t)
}
