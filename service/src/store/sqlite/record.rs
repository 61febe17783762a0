//! SQL for what became of attempts: each result recorded (a slice
//! delivery's row written on its first attempt, a batch and its members),
//! slices closed, failing subscriptions disabled; and the sweep that expires
//! what was not sent in time.

use super::health::Health;
use super::{ms, receipts};
use crate::domain::ids::split_webhook_id;
use crate::store::{HealthChanges, Outcome, StoreResult, Verdict};
use crate::store::{Recording, SliceId};
use rusqlite::{params, CachedStatement, Connection};

/// The statements recording prepares once per call and runs per outcome.
struct Statements<'c> {
    attempt: CachedStatement<'c>,
    insert: CachedStatement<'c>,
    member: CachedStatement<'c>,
    update: CachedStatement<'c>,
}

impl<'c> Statements<'c> {
    fn prepare(tx: &'c Connection) -> StoreResult<Self> {
        Ok(Self {
            attempt: tx.prepare_cached(
                "INSERT OR REPLACE INTO attempts
                   (delivery_id, attempt, started_at, status_code, latency_ms, error, response)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?,
            // A slice's delivery (or a batch) gets its row on its first
            // attempt. One to retry whose slice was cancelled, or whose
            // participant was unregistered, while it was in flight is
            // cancelled, not pending.
            insert: tx.prepare_cached(
                "INSERT OR IGNORE INTO deliveries (id, subscription_id, webinar_id, participant_id,
                    reminder_id, label, status, late, attempts, due_at, next_attempt_at, expires_at,
                    last_status, last_error, delivered_at, created_at, updated_at, payload,
                    first_started_at, first_status, first_latency_ms, first_error, first_response)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6,
                    CASE WHEN ?7 = 'pending' AND (
                        EXISTS (SELECT 1 FROM slices WHERE id = ?20 AND status = 'cancelled')
                        OR EXISTS (SELECT 1 FROM participants WHERE id = ?4
                                   AND unregistered_at IS NOT NULL))
                      THEN 'cancelled' ELSE ?7 END,
                    ?8, ?9, ?10, ?11, ?12, ?13, ?14,
                    CASE WHEN ?7 = 'delivered' THEN ?15 END, ?15, ?15, ?16, ?17, ?13, ?18, ?14, ?19)",
            )?,
            member: tx.prepare_cached(
                "INSERT OR IGNORE INTO deliveries (id, subscription_id, webinar_id, participant_id,
                    reminder_id, label, status, late, due_at, next_attempt_at, expires_at, batch_id,
                    created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'batched', ?7, ?8, ?11, ?9, ?10, ?11, ?11)",
            )?,
            // An acknowledged delivery is recorded whatever happened
            // meanwhile; any other verdict only applies to a delivery still
            // pending.
            update: tx.prepare_cached(
                "UPDATE deliveries SET status = ?2, attempts = MAX(attempts, ?3), next_attempt_at = ?4,
                        last_status = ?5, last_error = ?6, locked_until = NULL, updated_at = ?7,
                        delivered_at = CASE WHEN ?2 = 'delivered' THEN ?7 ELSE delivered_at END
                 WHERE id = ?1 AND (status = 'pending' OR ?2 = 'delivered')",
            )?,
        })
    }
}

pub fn record_outcomes(c: &mut Connection, r: &Recording) -> StoreResult<HealthChanges> {
    let tx = c.transaction()?;
    let now_ms = ms(r.now);
    let mut health = Health::default();
    {
        let mut st = Statements::prepare(&tx)?;
        // Acknowledged first attempts go in receipts, the rest in rows.
        let (bundles, mut rows) = crate::store::receipt::gather(&r.outcomes);
        for r in bundles {
            health.healthy.insert(r.subscription_id);
            rows.extend(receipts::insert(&tx, r, now_ms)?);
        }
        for o in rows {
            if !held_by_receipt(&tx, o)? {
                record_row(&mut st, o, now_ms, &mut health)?;
            }
        }
        close_slices(&tx, &r.done_slices)?;
    }
    let changes = health.apply(&tx, now_ms, ms(r.disable_before))?;
    tx.commit()?;
    Ok(changes)
}

/// A delivery sent twice (a lease ran out) that a receipt holds was
/// acknowledged: the other attempt changes nothing.
fn held_by_receipt(tx: &Connection, o: &Outcome) -> StoreResult<bool> {
    match (&o.fresh, split_webhook_id(o.delivery_id.as_str())) {
        (Some(f), Some((_, seq))) => receipts::holds(tx, f.slice, seq),
        _ => Ok(false),
    }
}

/// Records one outcome as a row: its delivery (and a batch's members) on a
/// first attempt, else its verdict and its attempt; then what it says of
/// its subscription.
fn record_row<'a>(
    st: &mut Statements,
    o: &'a Outcome,
    now_ms: i64,
    health: &mut Health<'a>,
) -> StoreResult<()> {
    let a = &o.attempt;
    let status = o.verdict.status().as_str();
    let next = match &o.verdict {
        Verdict::Retry(t) => ms(*t),
        _ => now_ms,
    };
    let inserted = insert_fresh(st, o, status, next, now_ms)?;
    // A batch's members are recorded as carried by it.
    for (id, m) in o.batch.iter().flat_map(|(_, members)| members) {
        st.member.execute(params![
            id,
            o.subscription_id,
            m.webinar_id,
            m.participant_id,
            m.reminder_id,
            m.label,
            m.late,
            ms(m.due_at),
            ms(m.expires_at),
            o.delivery_id,
            now_ms
        ])?;
    }
    // A new row holds its first attempt; any other goes to attempts.
    if !inserted {
        st.update.execute(params![
            o.delivery_id,
            status,
            a.attempt,
            next,
            a.status_code,
            a.error,
            now_ms
        ])?;
        st.attempt.execute(params![
            o.delivery_id,
            a.attempt,
            ms(a.started_at),
            a.status_code,
            a.latency_ms as i64,
            a.error,
            a.response
        ])?;
    }
    health.note(o);
    Ok(())
}

/// Writes a first attempt's row (a batch is one delivery with a fixed body
/// and no participant); says whether it was new.
fn insert_fresh(
    st: &mut Statements,
    o: &Outcome,
    status: &str,
    next: i64,
    now_ms: i64,
) -> StoreResult<bool> {
    let Some(f) = &o.fresh else {
        return Ok(false);
    };
    let a = &o.attempt;
    let (participant, body) = match &o.batch {
        Some((body, _)) => (None, Some(body)),
        None => (Some(&f.participant_id), None),
    };
    Ok(st.insert.execute(params![
        o.delivery_id,
        o.subscription_id,
        f.webinar_id,
        participant,
        f.reminder_id,
        f.label,
        status,
        f.late,
        a.attempt,
        ms(f.due_at),
        next,
        ms(f.expires_at),
        a.status_code,
        a.error,
        now_ms,
        body,
        ms(a.started_at),
        a.latency_ms as i64,
        a.response,
        f.slice
    ])? == 1)
}

/// Closes slices whose every job has an outcome.
fn close_slices(tx: &Connection, done_slices: &[SliceId]) -> StoreResult<()> {
    let mut done = tx.prepare_cached(
        "UPDATE slices SET status = 'done', locked_until = NULL
         WHERE id = ?1 AND status = 'pending'",
    )?;
    for id in done_slices {
        done.execute([id])?;
    }
    Ok(())
}
