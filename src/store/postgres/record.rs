//! SQL for what became of attempts: each result recorded (a slice
//! delivery's row written on its first attempt, a batch and its members),
//! slices closed, failing subscriptions disabled. A thousand outcomes are a
//! handful of statements, each taking its rows as arrays through `unnest`.

use crate::store::{Outcome, StoreResult, Verdict};
use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// One column per field of the rows to write, filled outcome by outcome.
#[derive(Default)]
struct Rows<'a> {
    id: Vec<&'a str>,
    sub: Vec<&'a str>,
    webinar: Vec<&'a str>,
    participant: Vec<Option<&'a str>>,
    reminder: Vec<&'a str>,
    label: Vec<&'a str>,
    status: Vec<&'static str>,
    late: Vec<bool>,
    attempt: Vec<i32>,
    due: Vec<DateTime<Utc>>,
    next: Vec<DateTime<Utc>>,
    expires: Vec<DateTime<Utc>>,
    code: Vec<Option<i32>>,
    error: Vec<Option<&'a str>>,
    body: Vec<Option<&'a [u8]>>,
    started: Vec<DateTime<Utc>>,
    latency: Vec<i64>,
    response: Vec<Option<&'a str>>,
    batch: Vec<Option<&'a str>>,
    slice: Vec<i64>,
}

fn verdict(v: &Verdict, now: DateTime<Utc>) -> (&'static str, DateTime<Utc>) {
    match v {
        Verdict::Delivered => ("delivered", now),
        Verdict::Retry(t) => ("pending", *t),
        Verdict::Expired => ("expired", now),
        Verdict::Gone => ("failed", now),
    }
}

/// Records a batch of outcomes in the caller's transaction, in named
/// steps whose statements run in this order (the order concurrent
/// recorders take their locks in).
pub async fn record_outcomes(
    tx: &Transaction<'_>,
    outcomes: &[Outcome],
    done_slices: &[i64],
    now: DateTime<Utc>,
    disable_before: DateTime<Utc>,
) -> StoreResult<Vec<String>> {
    let (fresh, members, makers) = gather_fresh(outcomes, now);
    let inserted = insert_fresh(tx, &fresh, now).await?;
    insert_members(tx, &members, now).await?;
    let (later, log) = gather_later(outcomes, &makers, &inserted, now);
    write_later(tx, &later, &log, now).await?;
    let mut disabled = mark_health(tx, outcomes, now).await?;
    close_slices(tx, done_slices).await?;
    disabled.extend(disable_long_failing(tx, disable_before, now).await?);
    Ok(disabled)
}

/// The rows first attempts make: slice deliveries' and batches' own rows
/// (`fresh`), the members batches carry, and which outcomes made a row.
fn gather_fresh(outcomes: &[Outcome], now: DateTime<Utc>) -> (Rows<'_>, Rows<'_>, HashSet<usize>) {
    // First attempts of slice deliveries and batches: new rows.
    let mut fresh = Rows::default();
    // Members carried by a batch.
    let mut members = Rows::default();
    // A batch may carry two outcomes of one delivery (a replay of one in
    // flight, a lease that lapsed). The first fresh one makes the row; the
    // others are later attempts (below).
    let mut made: HashSet<&str> = HashSet::new();
    let mut makers: HashSet<usize> = HashSet::new();
    for (k, o) in outcomes.iter().enumerate() {
        let Some(f) = &o.fresh else { continue };
        if !made.insert(&o.delivery_id) {
            continue;
        }
        makers.insert(k);
        let a = &o.attempt;
        let (status, next) = verdict(&o.verdict, now);
        let (participant, body) = match &o.batch {
            Some((body, _)) => (None, Some(body.as_slice())),
            None => (Some(f.participant_id.as_str()), None),
        };
        fresh.id.push(&o.delivery_id);
        fresh.sub.push(&o.subscription_id);
        fresh.webinar.push(&f.webinar_id);
        fresh.participant.push(participant);
        fresh.reminder.push(&f.reminder_id);
        fresh.label.push(&f.label);
        fresh.status.push(status);
        fresh.late.push(f.late);
        fresh.attempt.push(a.attempt as i32);
        fresh.due.push(f.due_at);
        fresh.next.push(next);
        fresh.expires.push(f.expires_at);
        fresh.code.push(a.status_code.map(i32::from));
        fresh.error.push(a.error.as_deref());
        fresh.body.push(body);
        fresh.started.push(a.started_at);
        fresh.latency.push(a.latency_ms as i64);
        fresh.response.push(a.response.as_deref());
        fresh.slice.push(f.slice);
        for (id, m) in o.batch.iter().flat_map(|(_, ms)| ms) {
            members.id.push(id);
            members.sub.push(&o.subscription_id);
            members.webinar.push(&m.webinar_id);
            members.participant.push(Some(&m.participant_id));
            members.reminder.push(&m.reminder_id);
            members.label.push(&m.label);
            members.late.push(m.late);
            members.due.push(m.due_at);
            members.expires.push(m.expires_at);
            members.batch.push(Some(&o.delivery_id));
        }
    }
    (fresh, members, makers)
}

/// Writes the fresh rows; answers the ids actually inserted (not there
/// already).
async fn insert_fresh(
    tx: &Transaction<'_>,
    fresh: &Rows<'_>,
    now: DateTime<Utc>,
) -> StoreResult<HashSet<String>> {
    let st = tx
        .prepare_cached(
            "INSERT INTO deliveries (id, subscription_id, webinar_id, participant_id,
                reminder_id, label, status, late, attempts, due_at, next_attempt_at, expires_at,
                last_status, last_error, delivered_at, created_at, updated_at, payload,
                first_started_at, first_status, first_latency_ms, first_error, first_response)
             SELECT id, sub, wid, pid, rid, label,
                CASE WHEN status = 'pending' AND (
                    EXISTS (SELECT 1 FROM slices l WHERE l.id = u.slice AND l.status = 'cancelled')
                    OR EXISTS (SELECT 1 FROM participants p WHERE p.id = u.pid
                               AND p.unregistered_at IS NOT NULL))
                  THEN 'cancelled' ELSE status END,
                late, attempt, due, next, expires,
                code, error, CASE WHEN status = 'delivered' THEN $19::timestamptz END, $19, $19, body,
                started, code, latency, error, response
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                         $7::text[], $8::bool[], $9::int[], $10::timestamptz[],
                         $11::timestamptz[], $12::timestamptz[], $13::int[], $14::text[],
                         $15::bytea[], $16::timestamptz[], $17::int8[], $18::text[],
                         $20::int8[])
                  AS u(id, sub, wid, pid, rid, label, status, late, attempt, due, next, expires,
                       code, error, body, started, latency, response, slice)
             ON CONFLICT (id) DO NOTHING
             RETURNING id",
        )
        .await?;
    let inserted = if fresh.id.is_empty() {
        HashSet::new()
    } else {
        let f = fresh;
        tx.query(
            &st,
            &[
                &f.id,
                &f.sub,
                &f.webinar,
                &f.participant,
                &f.reminder,
                &f.label,
                &f.status,
                &f.late,
                &f.attempt,
                &f.due,
                &f.next,
                &f.expires,
                &f.code,
                &f.error,
                &f.body,
                &f.started,
                &f.latency,
                &f.response,
                &now,
                &f.slice,
            ],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect()
    };
    Ok(inserted)
}

/// Writes the members batches carry, as `batched` rows.
async fn insert_members(
    tx: &Transaction<'_>,
    members: &Rows<'_>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    if !members.id.is_empty() {
        let m = members;
        tx.execute(
            "INSERT INTO deliveries (id, subscription_id, webinar_id, participant_id,
                reminder_id, label, status, late, due_at, next_attempt_at, expires_at, batch_id,
                created_at, updated_at)
             SELECT id, sub, wid, pid, rid, label, 'batched', late, due, $10, expires, bid, $10, $10
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                         $7::bool[], $8::timestamptz[], $9::timestamptz[], $11::text[])
                  AS u(id, sub, wid, pid, rid, label, late, due, expires, bid)
             ON CONFLICT (id) DO NOTHING",
            &[
                &m.id,
                &m.sub,
                &m.webinar,
                &m.participant,
                &m.reminder,
                &m.label,
                &m.late,
                &m.due,
                &m.expires,
                &now,
                &m.batch,
            ],
        )
        .await?;
    }

    Ok(())
}

/// Every attempt that made no row: the verdict of each delivery, and a
/// log row per attempt.
fn gather_later<'a>(
    outcomes: &'a [Outcome],
    makers: &HashSet<usize>,
    inserted: &HashSet<String>,
    now: DateTime<Utc>,
) -> (Rows<'a>, Rows<'a>) {
    // Every other attempt: the row's verdict, and a row in `attempts`. One
    // verdict per delivery (an acknowledgement wins, else the latest
    // attempt) and one log row per attempt, so that no statement touches a
    // row twice; in id order, so concurrent recorders lock alike.
    let mut verdicts: BTreeMap<&str, &Outcome> = BTreeMap::new();
    let mut logged: BTreeMap<(&str, u32), &Outcome> = BTreeMap::new();
    for (k, o) in outcomes.iter().enumerate() {
        if makers.contains(&k) && inserted.contains(&o.delivery_id) {
            continue;
        }
        let key = o.delivery_id.as_str();
        let wins = |cur: &&Outcome| {
            let (new, old) = (
                o.verdict == Verdict::Delivered,
                cur.verdict == Verdict::Delivered,
            );
            new && !old || new == old && o.attempt.attempt >= cur.attempt.attempt
        };
        match verdicts.get(key) {
            Some(cur) if !wins(cur) => {}
            _ => {
                verdicts.insert(key, o);
            }
        }
        logged.insert((key, o.attempt.attempt), o);
    }
    let mut later = Rows::default();
    for o in verdicts.values() {
        let a = &o.attempt;
        let (status, next) = verdict(&o.verdict, now);
        later.id.push(&o.delivery_id);
        later.status.push(status);
        later.attempt.push(a.attempt as i32);
        later.next.push(next);
        later.code.push(a.status_code.map(i32::from));
        later.error.push(a.error.as_deref());
    }
    let mut log = Rows::default();
    for o in logged.values() {
        let a = &o.attempt;
        log.id.push(&o.delivery_id);
        log.attempt.push(a.attempt as i32);
        log.code.push(a.status_code.map(i32::from));
        log.error.push(a.error.as_deref());
        log.started.push(a.started_at);
        log.latency.push(a.latency_ms as i64);
        log.response.push(a.response.as_deref());
    }
    (later, log)
}

/// Applies the later verdicts and logs their attempts.
async fn write_later(
    tx: &Transaction<'_>,
    later: &Rows<'_>,
    log: &Rows<'_>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    if !later.id.is_empty() {
        let l = later;
        // An acknowledged delivery is recorded whatever happened meanwhile;
        // any other verdict only applies to a delivery still pending.
        let st = tx
            .prepare_cached(
                "UPDATE deliveries d SET status = u.status,
                        attempts = GREATEST(d.attempts, u.attempt), next_attempt_at = u.next,
                        last_status = u.code, last_error = u.error, locked_until = NULL,
                        updated_at = $7,
                        delivered_at = CASE WHEN u.status = 'delivered' THEN $7 ELSE d.delivered_at END
                 FROM unnest($1::text[], $2::text[], $3::int[], $4::timestamptz[], $5::int[],
                             $6::text[]) AS u(id, status, attempt, next, code, error)
                 WHERE d.id = u.id AND (d.status = 'pending' OR u.status = 'delivered')",
            )
            .await?;
        tx.execute(
            &st,
            &[
                &l.id, &l.status, &l.attempt, &l.next, &l.code, &l.error, &now,
            ],
        )
        .await?;
        let st = tx
            .prepare_cached(
                "INSERT INTO attempts
                   (delivery_id, attempt, started_at, status_code, latency_ms, error, response)
                 SELECT * FROM unnest($1::text[], $2::int[], $3::timestamptz[], $4::int[],
                                      $5::int8[], $6::text[], $7::text[])
                 ON CONFLICT (delivery_id, attempt) DO UPDATE SET
                   started_at = excluded.started_at, status_code = excluded.status_code,
                   latency_ms = excluded.latency_ms, error = excluded.error,
                   response = excluded.response",
            )
            .await?;
        let g = log;
        tx.execute(
            &st,
            &[
                &g.id,
                &g.attempt,
                &g.started,
                &g.code,
                &g.latency,
                &g.error,
                &g.response,
            ],
        )
        .await?;
    }

    Ok(())
}

/// Marks subscriptions failing, healthy again, or gone (410); answers
/// those disabled as gone.
async fn mark_health(
    tx: &Transaction<'_>,
    outcomes: &[Outcome],
    now: DateTime<Utc>,
) -> StoreResult<Vec<String>> {
    // Subscriptions: healthy again, failing, gone. Sorted, so two instances
    // recording at once lock them in the same order.
    let mut healthy = BTreeSet::new();
    let mut failing = BTreeSet::new();
    let mut gone = BTreeSet::new();
    for o in outcomes {
        let sub = o.subscription_id.as_str();
        if o.verdict == Verdict::Delivered {
            healthy.insert(sub);
        } else {
            failing.insert(sub);
        }
        if o.verdict == Verdict::Gone {
            gone.insert(sub);
        }
    }
    let failing: Vec<&str> = failing.into_iter().collect();
    if !failing.is_empty() {
        tx.execute(
            "UPDATE subscriptions SET failing_since = COALESCE(failing_since, $2)
             WHERE id = ANY($1) AND failing_since IS NULL",
            &[&failing, &now],
        )
        .await?;
    }
    let healthy: Vec<&str> = healthy.into_iter().collect();
    if !healthy.is_empty() {
        tx.execute(
            "UPDATE subscriptions SET failing_since = NULL
             WHERE id = ANY($1) AND failing_since IS NOT NULL",
            &[&healthy],
        )
        .await?;
    }
    let mut disabled: Vec<String> = Vec::new();
    let gone: Vec<&str> = gone.into_iter().collect();
    if !gone.is_empty() {
        let rows = tx
            .query(
                "UPDATE subscriptions SET status = 'disabled',
                        disabled_reason = 'receiver answered 410 Gone', updated_at = $2
                 WHERE id = ANY($1) AND status = 'active' RETURNING id",
                &[&gone, &now],
            )
            .await?;
        disabled.extend(rows.iter().map(|r| r.get::<_, String>(0)));
    }
    Ok(disabled)
}

/// Closes slices whose every job has an outcome.
async fn close_slices(tx: &Transaction<'_>, done_slices: &[i64]) -> StoreResult<()> {
    if !done_slices.is_empty() {
        tx.execute(
            "UPDATE slices SET status = 'done', locked_until = NULL
             WHERE id = ANY($1) AND status = 'pending'",
            &[&done_slices],
        )
        .await?;
    }
    Ok(())
}

/// Disables subscriptions failing without a success since before
/// `disable_before`; answers their ids.
async fn disable_long_failing(
    tx: &Transaction<'_>,
    disable_before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StoreResult<Vec<String>> {
    let rows = tx
        .query(
            "UPDATE subscriptions SET status = 'disabled', updated_at = $2,
                    disabled_reason = 'failing without a success for too long'
             WHERE status = 'active' AND failing_since IS NOT NULL AND failing_since < $1
             RETURNING id",
            &[&disable_before, &now],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
}
