//! SQL for what became of attempts: each result recorded (a slice
//! delivery's row written on its first attempt, a batch and its members),
//! slices closed, failing subscriptions disabled. A thousand outcomes are a
//! handful of statements, each taking its rows as arrays through `unnest`.

use super::rows::{gather_fresh, gather_later, Rows};
use crate::store::{
    Disabled, HealthChanges, Outcome, StoreResult, SubscriptionId, Verdict, FAILING_NOTICE_EVERY,
};
use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use std::collections::{BTreeSet, HashSet};

/// Records a batch of outcomes in the caller's transaction, in named
/// steps whose statements run in this order (the order concurrent
/// recorders take their locks in).
pub async fn record_outcomes(
    tx: &Transaction<'_>,
    outcomes: &[Outcome],
    done_slices: &[i64],
    now: DateTime<Utc>,
    disable_before: DateTime<Utc>,
) -> StoreResult<HealthChanges> {
    let (fresh, members, makers) = gather_fresh(outcomes, now);
    let inserted = insert_fresh(tx, &fresh, now).await?;
    insert_members(tx, &members, now).await?;
    let (later, log) = gather_later(outcomes, &makers, &inserted, now);
    write_later(tx, &later, &log, now).await?;
    let mut changes = mark_health(tx, outcomes, now).await?;
    close_slices(tx, done_slices).await?;
    let long = disable_long_failing(tx, disable_before, now).await?;
    changes
        .disabled
        .extend(long.into_iter().map(|id| (id, Disabled::FailingTooLong)));
    changes.settle();
    Ok(changes)
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

/// Marks subscriptions gone (410), failing, or healthy again; answers
/// those disabled as gone, the failures to announce and the recoveries
/// from announced failures. A subscription with a success in this call is
/// healthy, whatever else it had.
async fn mark_health(
    tx: &Transaction<'_>,
    outcomes: &[Outcome],
    now: DateTime<Utc>,
) -> StoreResult<HealthChanges> {
    // Sorted, so two instances recording at once lock them in the same
    // order.
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
    let mut out = HealthChanges::default();
    let gone: Vec<&str> = gone.into_iter().collect();
    mark_gone(tx, &gone, now, &mut out).await?;
    let failing: Vec<&str> = failing.difference(&healthy).copied().collect();
    mark_failing(tx, &failing, now, &mut out).await?;
    let healthy: Vec<&str> = healthy.into_iter().collect();
    mark_recovered(tx, &healthy, &mut out).await?;
    Ok(out)
}

/// Disables the active subscriptions that answered 410 in this call; notes
/// them as disabled because gone.
async fn mark_gone(
    tx: &Transaction<'_>,
    gone: &[&str],
    now: DateTime<Utc>,
    out: &mut HealthChanges,
) -> StoreResult<()> {
    if !gone.is_empty() {
        let rows = tx
            .query(
                &tx.prepare_cached(
                    "UPDATE subscriptions SET status = 'disabled',
                        disabled_reason = 'receiver answered 410 Gone', updated_at = $2
                 WHERE id = ANY($1) AND status = 'active' RETURNING id",
                )
                .await?,
                &[&gone, &now],
            )
            .await?;
        out.disabled.extend(
            rows.iter()
                .map(|r| (r.get::<_, SubscriptionId>(0), Disabled::Gone)),
        );
    }
    Ok(())
}

/// Marks failing the subscriptions with a failure and no success in this
/// call; notes those whose failure is to be announced now.
async fn mark_failing(
    tx: &Transaction<'_>,
    failing: &[&str],
    now: DateTime<Utc>,
    out: &mut HealthChanges,
) -> StoreResult<()> {
    if !failing.is_empty() {
        // Failing since now unless it already was; announced now unless
        // another announcement is less than an hour old (then at the first
        // failure after that hour, if no success came in between).
        let rows = tx
            .query(
                &tx.prepare_cached(
                    "UPDATE subscriptions SET failing_since = COALESCE(failing_since, $2),
                        failing_noticed_at = CASE WHEN failing_noticed_at IS NULL
                            OR failing_noticed_at <= $3 THEN $2 ELSE failing_noticed_at END
                 WHERE id = ANY($1) AND (failing_since IS NULL
                    OR ((failing_noticed_at IS NULL OR failing_noticed_at < failing_since)
                        AND (failing_noticed_at IS NULL OR failing_noticed_at <= $3)))
                 RETURNING id, failing_noticed_at = $2",
                )
                .await?,
                &[&failing, &now, &(now - FAILING_NOTICE_EVERY)],
            )
            .await?;
        out.failing.extend(
            rows.iter()
                .filter(|r| r.get::<_, bool>(1))
                .map(|r| r.get::<_, SubscriptionId>(0)),
        );
    }
    Ok(())
}

/// Ends the failing of the subscriptions with a success in this call;
/// notes those whose failure had been announced, as recovered.
async fn mark_recovered(
    tx: &Transaction<'_>,
    healthy: &[&str],
    out: &mut HealthChanges,
) -> StoreResult<()> {
    if !healthy.is_empty() {
        // `o` is the row as it was: whether the failure it ends was
        // announced.
        let rows = tx
            .query(
                &tx.prepare_cached(
                    "UPDATE subscriptions s SET failing_since = NULL FROM subscriptions o
                 WHERE o.id = s.id AND s.id = ANY($1) AND s.failing_since IS NOT NULL
                 RETURNING s.id, o.failing_since,
                    COALESCE(o.failing_noticed_at >= o.failing_since, false)",
                )
                .await?,
                &[&healthy],
            )
            .await?;
        out.recovered.extend(
            rows.iter()
                .filter(|r| r.get::<_, bool>(2))
                .map(|r| (r.get::<_, SubscriptionId>(0), r.get(1))),
        );
    }
    Ok(())
}

/// Closes slices whose every job has an outcome.
async fn close_slices(tx: &Transaction<'_>, done_slices: &[i64]) -> StoreResult<()> {
    if !done_slices.is_empty() {
        tx.execute(
            &tx.prepare_cached(
                "UPDATE slices SET status = 'done', locked_until = NULL
             WHERE id = ANY($1) AND status = 'pending'",
            )
            .await?,
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
) -> StoreResult<Vec<SubscriptionId>> {
    let rows = tx
        .query(
            &tx.prepare_cached(
                "UPDATE subscriptions SET status = 'disabled', updated_at = $2,
                    disabled_reason = 'failing without a success for too long'
             WHERE status = 'active' AND failing_since IS NOT NULL AND failing_since < $1
             RETURNING id",
            )
            .await?,
            &[&disable_before, &now],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get::<_, SubscriptionId>(0)).collect())
}
