//! What a recording says of its subscriptions' health, in PostgreSQL:
//! failing (and whether to announce it now), healthy again (and whether
//! that ends an announced failure), gone (410), failing too long. Applied
//! in the recording's transaction. The twin of `sqlite/health.rs`.

use crate::store::{
    Disabled, HealthChanges, Outcome, StoreResult, SubscriptionId, Verdict, FAILING_NOTICE_EVERY,
};
use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use std::collections::BTreeSet;

/// Marks subscriptions gone (410), failing, or healthy again; answers
/// those disabled as gone, the failures to announce and the recoveries
/// from announced failures. A subscription with a success in this call is
/// healthy, whatever else it had.
pub(super) async fn mark_health(
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

/// Disables subscriptions failing without a success since before
/// `disable_before`; answers their ids.
pub(super) async fn disable_long_failing(
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
