//! A fan-out step that sends (`FanoutMode::Send`, every step but a missed
//! reminder's) as one statement outside any transaction: lock the firing
//! reminder, freeze who it is for, find the matching subscriptions and the
//! next participants, write one slice per subscription, announce the work,
//! move the cursor and finish the reminder when no one is left. The same
//! decisions as `engine::fanout_batch`, which still runs a missed
//! reminder's steps, as data-modifying CTEs: one round trip where there
//! were eight.

use super::engine::FIRST_STEP;
use crate::store::{FanoutProgress, FanoutStep, StoreResult, SubscriptionId};
use deadpool_postgres::GenericClient;

/// The statement. `f` is the reminder, locked, held by this instance and
/// still firing (none: the step does nothing and the fan-out is over for
/// this instance); `u` the last registration number it covers (frozen by
/// the first step at or after its instant; unbounded while a step only
/// stages ahead of it); `go` the step's last participant and how many it
/// took, when there are participants and subscriptions.
const STEP: &str = "
WITH f AS (
  SELECT r.id, r.webinar_id, r.label, r.from_time, r.due_at, r.cursor_seq, r.until_seq,
         w.creator_id, r.early, $5::timestamptz < r.due_at AS staged,
         CASE WHEN r.cursor_seq = 0 THEN LEAST($6::int8, $7::int8) ELSE $7::int8 END AS step
  FROM reminders r JOIN webinars w ON w.id = r.webinar_id
  WHERE r.id = $1 AND r.status = 'firing' AND r.locked_by = $2
  FOR UPDATE OF r),
u AS (
  SELECT COALESCE(f.until_seq, CASE WHEN f.staged THEN 9223372036854775807 ELSE
           (SELECT COALESCE(MAX(seq), 0) FROM participants
            WHERE webinar_id = f.webinar_id AND unregistered_at IS NULL) END) AS until
  FROM f),
subs AS (
  SELECT s.id FROM f CROSS JOIN LATERAL (
    SELECT id FROM subscriptions
    WHERE creator_id = f.creator_id AND status = 'active' AND webinar_id = f.webinar_id
    AND (event = 'webinar.reminder.all' OR event = 'webinar.reminder.' || f.label)
    AND (mango_id IS NULL OR mango_id IN
      (SELECT mango_id FROM webinar_mangoes WHERE webinar_id = f.webinar_id))
    UNION ALL
    SELECT id FROM subscriptions
    WHERE creator_id = f.creator_id AND status = 'active' AND webinar_id IS NULL
    AND (event = 'webinar.reminder.all' OR event = 'webinar.reminder.' || f.label)
    AND (mango_id IS NULL OR mango_id IN
      (SELECT mango_id FROM webinar_mangoes WHERE webinar_id = f.webinar_id))) s),
people AS (
  SELECT p.seq FROM f CROSS JOIN u CROSS JOIN LATERAL (
    SELECT seq FROM participants
    WHERE webinar_id = f.webinar_id AND seq > f.cursor_seq AND seq <= u.until
      AND unregistered_at IS NULL
    ORDER BY seq LIMIT f.step) p),
go AS (
  SELECT MAX(seq) AS last, COUNT(*) AS n FROM people
  HAVING COUNT(*) > 0 AND EXISTS (SELECT 1 FROM subs)),
ins AS (
  INSERT INTO slices (reminder_id, subscription_id, webinar_id, label,
      from_time, due_at, expires_at, late, after_seq, last_seq, status, created_at)
  SELECT f.id, s.id, f.webinar_id, f.label, f.from_time, f.due_at, $3::timestamptz, $4::bool, a.after, go.last,
         'pending', $5::timestamptz
  FROM f CROSS JOIN go CROSS JOIN subs s
  LEFT JOIN early_starts e
    ON f.early AND e.reminder_id = f.id AND e.due_at = f.due_at AND e.subscription_id = s.id
  CROSS JOIN LATERAL (SELECT GREATEST(f.cursor_seq, COALESCE(e.last_seq, f.cursor_seq)) AS after) a
  WHERE a.after < go.last
  ORDER BY s.id
  RETURNING 1),
heard AS (
  SELECT pg_notify($8::text, 'w:' || s.id) FROM subs s CROSS JOIN go),
upd AS (
  UPDATE reminders r SET
    until_seq = CASE WHEN f.until_seq IS NULL AND NOT f.staged THEN u.until ELSE r.until_seq END,
    cursor_seq = COALESCE(go.last, r.cursor_seq),
    late = $4,
    status = CASE WHEN NOT f.staged AND COALESCE(go.n, 0) < f.step THEN $9::text ELSE r.status END,
    locked_until = CASE WHEN NOT f.staged AND COALESCE(go.n, 0) < f.step THEN NULL
                        ELSE $10::timestamptz END
  FROM f CROSS JOIN u LEFT JOIN go ON true
  WHERE r.id = f.id AND (go.last IS NOT NULL OR NOT f.staged)
  RETURNING r.status)
SELECT (SELECT COUNT(*) FROM f), (SELECT n FROM go), ARRAY(SELECT id FROM subs ORDER BY id),
       (SELECT COUNT(*) FROM heard), (SELECT COUNT(*) FROM ins), (SELECT status FROM upd)";

/// Runs one sending step of `ask`'s fan-out; announces work on `channel`.
pub async fn send_step(
    c: &impl GenericClient,
    channel: &str,
    ask: &FanoutStep,
    late: bool,
) -> StoreResult<FanoutProgress> {
    let st = c.prepare_cached(STEP).await?;
    let final_status = ask.mode.final_status().as_str();
    let row = c
        .query_one(
            &st,
            &[
                &ask.reminder_id,
                &ask.owner,
                &ask.expires_at,
                &late,
                &ask.now,
                &i64::from(FIRST_STEP),
                &i64::from(ask.batch),
                &channel,
                &final_status,
                &ask.lease_until,
            ],
        )
        .await?;
    let found: i64 = row.get(0);
    let status: Option<String> = row.get(5);
    let mut progress = FanoutProgress {
        // Gone from this instance, or finished now.
        done: found == 0 || status.is_some_and(|s| s != "firing"),
        ..Default::default()
    };
    if let Some(n) = row.get::<_, Option<i64>>(1) {
        let subs: Vec<SubscriptionId> = row.get(2);
        progress.created = n as usize * subs.len();
        progress.subscriptions = subs;
    }
    Ok(progress)
}
