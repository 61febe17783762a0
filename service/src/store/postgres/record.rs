//! SQL for what became of attempts: each result recorded (a slice's
//! acknowledged first attempts as one receipt, any other slice delivery's
//! row written on its first attempt, a batch and its members),
//! slices closed, failing subscriptions disabled (`health`). A thousand
//! outcomes are a handful of statements, each taking its rows as arrays
//! through `unnest`; a slice's acknowledged first attempts are four with
//! `BEGIN` and `COMMIT`.

use super::receipts;
use super::rows::{gather_fresh, gather_later, Rows};
use crate::domain::ids::split_webhook_id;
use crate::store::receipt;
use crate::store::{HealthChanges, Outcome, StoreResult};
use crate::store::{Recording, SliceId};
use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use std::collections::{BTreeMap, HashSet};

/// Records a batch of outcomes in the caller's transaction, in named
/// steps whose statements run in this order (the order concurrent
/// recorders take their locks in).
pub async fn record_outcomes(tx: &Transaction<'_>, r: &Recording) -> StoreResult<HealthChanges> {
    let (outcomes, now) = (&r.outcomes[..], r.now);
    // Acknowledged first attempts go in receipts (slice by slice, in id
    // order), the rest in rows.
    let (bundles, mut rest) = receipt::gather(outcomes);
    for b in bundles {
        rest.extend(receipts::insert(tx, b, now.timestamp_millis()).await?);
    }
    let rest = not_held(tx, rest).await?;
    let (fresh, members, makers) = gather_fresh(&rest, now);
    let inserted = insert_fresh(tx, &fresh, now).await?;
    insert_members(tx, &members, now).await?;
    let (later, log) = gather_later(&rest, &makers, &inserted, now);
    write_later(tx, &later, &log, now).await?;
    let mut changes =
        super::health::mark_health(tx, outcomes, &r.done_slices, r.disable_before, now).await?;
    changes.settle();
    Ok(changes)
}
/// Of `rest`, those no receipt holds: a slice delivery sent twice (a lease
/// ran out) whose other attempt a receipt holds was acknowledged, and this
/// one changes nothing.
async fn not_held<'a>(
    tx: &Transaction<'_>,
    rest: Vec<&'a Outcome>,
) -> StoreResult<Vec<&'a Outcome>> {
    let mut by_slice: BTreeMap<SliceId, Vec<i64>> = BTreeMap::new();
    for o in &rest {
        if let (Some(f), Some((_, seq))) = (&o.fresh, split_webhook_id(o.delivery_id.as_str())) {
            by_slice.entry(f.slice).or_default().push(seq);
        }
    }
    let mut held: HashSet<(SliceId, i64)> = HashSet::new();
    for (slice, seqs) in by_slice {
        let all = receipts::seqs(tx, slice).await?;
        held.extend(
            seqs.into_iter()
                .filter(|q| all.contains(q))
                .map(|q| (slice, q)),
        );
    }
    if held.is_empty() {
        return Ok(rest);
    }
    Ok(rest
        .into_iter()
        .filter(
            |o| match (&o.fresh, split_webhook_id(o.delivery_id.as_str())) {
                (Some(f), Some((_, seq))) => !held.contains(&(f.slice, seq)),
                _ => true,
            },
        )
        .collect())
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
            &tx.prepare_cached(
                "INSERT INTO deliveries (id, subscription_id, webinar_id, participant_id,
                reminder_id, label, status, late, due_at, next_attempt_at, expires_at, batch_id,
                created_at, updated_at)
             SELECT id, sub, wid, pid, rid, label, 'batched', late, due, $10, expires, bid, $10, $10
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                         $7::bool[], $8::timestamptz[], $9::timestamptz[], $11::text[])
                  AS u(id, sub, wid, pid, rid, label, late, due, expires, bid)
             ON CONFLICT (id) DO NOTHING",
            )
            .await?,
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
