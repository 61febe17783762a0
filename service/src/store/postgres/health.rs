//! What a recording says of its subscriptions' health, in PostgreSQL:
//! failing (and whether to announce it now), healthy again (and whether
//! that ends an announced failure), gone (410), failing too long. Applied
//! in the recording's transaction, in three statements at most, the last
//! of which also closes the slices done. The twin of `sqlite/health.rs`.

use crate::store::{
    Disabled, HealthChanges, Outcome, SliceId, StoreResult, SubscriptionId, Verdict,
    FAILING_NOTICE_EVERY,
};
use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use std::collections::BTreeSet;

/// Marks subscriptions gone (410), failing, healthy again, or failing too
/// long, and closes `done_slices`; answers those disabled, the failures to
/// announce and the recoveries from announced failures. A subscription with a success in this call is
/// healthy, whatever else it had.
pub(super) async fn mark_health(
    tx: &Transaction<'_>,
    outcomes: &[Outcome],
    done_slices: &[SliceId],
    disable_before: DateTime<Utc>,
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
    settle_health(tx, &healthy, done_slices, disable_before, now, &mut out).await?;
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

/// Ends the failing of the subscriptions with a success in this call
/// (noting those whose failure had been announced, as recovered), disables
/// the others failing without a success since before `disable_before`
/// (noting them as failing too long), and closes the slices whose every
/// job has an outcome: one statement, so a recording that only succeeded
/// costs one round trip here, where it was three.
pub(super) async fn settle_health(
    tx: &Transaction<'_>,
    healthy: &[&str],
    done_slices: &[SliceId],
    disable_before: DateTime<Utc>,
    now: DateTime<Utc>,
    out: &mut HealthChanges,
) -> StoreResult<()> {
    // `o` is the row as it was: whether the failure a success ends was
    // announced. A subscription with a success is never disabled here.
    let rows = tx
        .query(
            &tx.prepare_cached(
                "WITH closed AS (
                   UPDATE slices SET status = 'done', locked_until = NULL
                   WHERE id = ANY($4) AND status = 'pending')
                 UPDATE subscriptions s SET
                    failing_since = CASE WHEN h THEN NULL ELSE s.failing_since END,
                    status = CASE WHEN h THEN s.status ELSE 'disabled' END,
                    updated_at = CASE WHEN h THEN s.updated_at ELSE $3 END,
                    disabled_reason = CASE WHEN h THEN s.disabled_reason
                        ELSE 'failing without a success for too long' END
                 FROM subscriptions o, LATERAL (SELECT o.id = ANY($1) AS h) k
                 WHERE o.id = s.id AND s.failing_since IS NOT NULL
                   AND (s.id = ANY($1) OR (s.status = 'active' AND s.failing_since < $2))
                 RETURNING s.id, k.h, o.failing_since,
                    COALESCE(o.failing_noticed_at >= o.failing_since, false)",
            )
            .await?,
            &[&healthy, &disable_before, &now, &done_slices],
        )
        .await?;
    for r in &rows {
        let id = r.get::<_, SubscriptionId>(0);
        if !r.get::<_, bool>(1) {
            out.disabled.push((id, Disabled::FailingTooLong));
        } else if r.get::<_, bool>(3) {
            out.recovered.push((id, r.get(2)));
        }
    }
    Ok(())
}
