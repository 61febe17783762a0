//! What a fan-out's capacity plan (`schedule::forecast`) is computed from,
//! written once for both backends: each pending reminder with each active
//! subscription it matches (as a fan-out matches them, see
//! `store::SUBSCRIPTIONS_DUE`), the participants registered now, the
//! subscription's caps, budget and early start, and its endpoint's observed
//! answer time; and the fold of new answer times into that average. The
//! plans themselves are computed by the callers, from these rows.

use super::subscriptions::tuning;
use super::Plans;
use crate::store::decode::from_row;
use crate::store::sql::{params, Backend, Db, Row, Value};
use crate::store::Change;
use crate::store::{EarlyStart, FanoutInputs, PlanScope, StoreResult, SubscriptionId, WebinarId};
use async_trait::async_trait;

/// The fan-outs not yet due, one row per reminder and subscription. Asked
/// for early starts only (`$6` = 1, the scheduler's once-a-tick look) when
/// no active subscription has one, it ends before its join: a condition
/// without columns, which both databases test once, first. Without it, the
/// join of every pending reminder with its creator's subscriptions took
/// 60–170 ms of the store each tick with 1 000 webinars pending, in the
/// scheduler's loop, and delayed their staging.
const PENDING: &str = "SELECT r.id, r.webinar_id, r.label, r.due_at, r.from_time,
        (SELECT COUNT(*) FROM participants p
         WHERE p.webinar_id = r.webinar_id AND p.unregistered_at IS NULL),
        s.id, s.answer_us, s.max_concurrency, s.rate_per_second, s.batch_size,
        s.late_budget_ms, s.send_early_ms
    FROM reminders r JOIN webinars w ON w.id = r.webinar_id
    JOIN subscriptions s ON s.creator_id = w.creator_id AND s.status = 'active'
      AND (s.event = 'webinar.reminder.all' OR s.event = 'webinar.reminder.' || r.label)
      AND (s.webinar_id IS NULL OR s.webinar_id = r.webinar_id)
      AND (s.mango_id IS NULL OR s.mango_id IN
           (SELECT mango_id FROM webinar_mangoes wm WHERE wm.webinar_id = r.webinar_id))
    WHERE r.status = 'pending' AND s.send_early_ms >= $6
      AND ($6 = 0 OR EXISTS (SELECT 1 FROM subscriptions e
                             WHERE e.status = 'active' AND e.send_early_ms >= $6))
      AND (CAST($1 AS TEXT) IS NULL OR r.webinar_id = $1)
      AND (CAST($2 AS TEXT) IS NULL OR w.creator_id = $2)
      AND (CAST($3 AS TEXT) IS NULL OR r.id = $3)
      AND r.due_at <= $4
    ORDER BY r.due_at, r.id, s.id LIMIT $5";

fn inputs(r: &Row) -> StoreResult<FanoutInputs> {
    Ok(from_row!(r, FanoutInputs {
        reminder_id, webinar_id, label, due_at, from_time, participants, subscription_id, answer_us;
        tuning: tuning(r, 8)?,
    }))
}

fn text<T: AsRef<str>>(v: Option<T>) -> Value {
    v.map_or(Value::Null, |s| Value::Text(s.as_ref().to_owned()))
}

/// The participant closing each slice of an early start: every `batch`-th
/// registered one after `after`, and the last registered (`last`).
async fn boundaries(
    db: &(impl Db + ?Sized),
    webinar: &WebinarId,
    last: i64,
    batch: u32,
) -> StoreResult<Vec<i64>> {
    let sql = "SELECT seq FROM participants
               WHERE webinar_id = $1 AND seq > $2 AND unregistered_at IS NULL
               ORDER BY seq LIMIT 1 OFFSET $3";
    let mut out = Vec::new();
    let mut after = 0;
    while after < last {
        let row = db
            .query(sql, params![webinar, after, i64::from(batch.max(1)) - 1])
            .await?;
        let end = match row.first() {
            Some(r) => r.int(0)?.min(last),
            None => last,
        };
        out.push(end);
        after = end;
    }
    Ok(out)
}

/// [`Plans::start_early`] inside its transaction.
async fn start_in(db: &(impl Db + ?Sized), e: &EarlyStart) -> StoreResult<Option<i64>> {
    // Still pending at that instant: not claimed (its own steps would
    // stage these participants) nor moved. The row lock orders this
    // against a claim on PostgreSQL.
    let sql = "UPDATE reminders SET early = $3,
                      fired_at = CASE WHEN fired_at IS NULL OR fired_at > $4 THEN $4
                                      ELSE fired_at END
               WHERE id = $1 AND status = 'pending' AND due_at = $2";
    if db
        .execute(sql, params![&e.reminder_id, e.due_at, true, e.now])
        .await?
        == 0
    {
        return Ok(None);
    }
    let sql = "SELECT r.webinar_id, r.label, r.from_time,
                      (SELECT COALESCE(MAX(seq), 0) FROM participants p
                       WHERE p.webinar_id = r.webinar_id AND p.unregistered_at IS NULL)
               FROM reminders r WHERE r.id = $1";
    let r = db.query_one(sql, params![&e.reminder_id]).await?;
    let webinar: WebinarId = r.id(0)?;
    let (label, from, last) = (r.text(1)?, r.time(2)?, r.int(3)?);
    // Once per subscription and instant, whichever instance gets here first.
    let sql =
        "INSERT INTO early_starts (reminder_id, subscription_id, due_at, last_seq, started_at)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (reminder_id, subscription_id) DO UPDATE
                 SET due_at = excluded.due_at, last_seq = excluded.last_seq,
                     started_at = excluded.started_at
                 WHERE early_starts.due_at <> excluded.due_at";
    let p = params![&e.reminder_id, &e.subscription_id, e.due_at, last, e.now];
    if db.execute(sql, p).await? == 0 {
        return Ok(None);
    }
    let sql = "INSERT INTO slices (reminder_id, subscription_id, webinar_id, label, from_time,
                   due_at, expires_at, late, after_seq, last_seq, status, created_at, send_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', $11, $12)";
    let mut after = 0;
    for end in boundaries(db, &webinar, last, e.batch).await? {
        let p = params![
            &e.reminder_id,
            &e.subscription_id,
            webinar.as_str(),
            label.as_str(),
            from,
            e.due_at,
            e.expires_at,
            false,
            after,
            end,
            e.now,
            e.send_at
        ];
        db.execute(sql, p).await?;
        after = end;
    }
    Ok(Some(last))
}

#[async_trait]
impl<B: Backend> Plans for B {
    async fn start_early(&self, e: &EarlyStart) -> StoreResult<Option<i64>> {
        self.transact(|tx| async move {
            let started = start_in(&*tx, e).await?;
            if started.is_some() {
                tx.announce(&Change::Work(e.subscription_id.clone()))
                    .await?;
                tx.commit().await?;
            }
            Ok(started)
        })
        .await
    }

    async fn pending_fanouts(&self, scope: &PlanScope) -> StoreResult<Vec<FanoutInputs>> {
        let p = vec![
            text(scope.webinar.map(|w| w.as_str())),
            text(scope.creator.map(|c| c.as_str())),
            text(scope.reminder.map(|r| r.as_str())),
            scope.until.into(),
            scope.limit.into(),
            i64::from(scope.early_only).into(),
        ];
        let rows = self.query(PENDING, &p).await?;
        rows.iter().map(inputs).collect()
    }

    async fn fold_answer_times(&self, seen: &[(SubscriptionId, i64, i64)]) -> StoreResult<()> {
        // One statement each: instances folding at once each move the
        // average from where the other left it.
        let sql = "UPDATE subscriptions SET answer_us = CASE WHEN answer_us IS NULL THEN $2
                          ELSE answer_us + ($3 * ($2 - answer_us)) / 1000000 END
                   WHERE id = $1";
        for (id, mean_us, weight_ppm) in seen {
            self.execute(sql, params![id, *mean_us, *weight_ppm])
                .await?;
        }
        Ok(())
    }
}
