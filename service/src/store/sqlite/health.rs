//! What a recording says of its subscriptions' health, in SQLite: failing
//! (and whether to announce it now), healthy again (and whether that ends
//! an announced failure), gone (410), failing too long. Collected while
//! the outcomes are recorded, applied once at the end of the same
//! transaction, so a subscription with a success and a failure in one
//! call is healthy, as it was before the operational webhooks.

use crate::store::{Disabled, HealthChanges, Outcome, StoreResult, Verdict, FAILING_NOTICE_EVERY};
use chrono::DateTime;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::BTreeSet;

/// What a call learns of its subscriptions as it records.
#[derive(Default)]
pub(super) struct Health<'a> {
    /// With a success in this call.
    pub healthy: BTreeSet<&'a str>,
    /// With a failed attempt in this call.
    failing: BTreeSet<&'a str>,
    /// Answered 410 in this call.
    gone: BTreeSet<&'a str>,
}

impl<'a> Health<'a> {
    /// Notes what one outcome says of its subscription.
    pub fn note(&mut self, o: &'a Outcome) {
        let sub = o.subscription_id.as_str();
        if o.verdict == Verdict::Delivered {
            self.healthy.insert(sub);
        } else {
            self.failing.insert(sub);
        }
        if o.verdict == Verdict::Gone {
            self.gone.insert(sub);
        }
    }

    /// Applies what was noted, and disables subscriptions failing without
    /// a success since before `disable_before_ms`.
    pub fn apply(
        self,
        tx: &Connection,
        now_ms: i64,
        disable_before_ms: i64,
    ) -> StoreResult<HealthChanges> {
        let mut out = HealthChanges::default();
        let mut gone = tx.prepare_cached(
            "UPDATE subscriptions SET status = 'disabled',
                    disabled_reason = 'receiver answered 410 Gone', updated_at = ?2
             WHERE id = ?1 AND status = 'active' RETURNING id",
        )?;
        for id in &self.gone {
            if let Some(id) = gone
                .query_row(params![id, now_ms], |r| r.get(0))
                .optional()?
            {
                out.disabled.push((id, Disabled::Gone));
            }
        }
        // Failing since now unless it already was; announced now unless
        // another announcement is less than an hour old (then at the first
        // failure after that hour, if no success came in between).
        let mut failing = tx.prepare_cached(
            "UPDATE subscriptions SET failing_since = COALESCE(failing_since, ?2),
                    failing_noticed_at = CASE WHEN failing_noticed_at IS NULL
                        OR failing_noticed_at <= ?3 THEN ?2 ELSE failing_noticed_at END
             WHERE id = ?1 AND (failing_since IS NULL
                OR ((failing_noticed_at IS NULL OR failing_noticed_at < failing_since)
                    AND (failing_noticed_at IS NULL OR failing_noticed_at <= ?3)))
             RETURNING id, failing_noticed_at = ?2",
        )?;
        let hour_ago = now_ms - FAILING_NOTICE_EVERY.num_milliseconds();
        for id in self.failing.difference(&self.healthy) {
            let row: Option<(String, bool)> = failing
                .query_row(params![id, now_ms, hour_ago], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            if let Some((id, true)) = row {
                out.failing.push(crate::domain::ids::Id::trusted(id));
            }
        }
        let mut was = tx.prepare_cached(
            "SELECT failing_since, failing_noticed_at >= failing_since FROM subscriptions
             WHERE id = ?1 AND failing_since IS NOT NULL",
        )?;
        let mut cleared = tx.prepare_cached(
            "UPDATE subscriptions SET failing_since = NULL WHERE id = ?1 AND failing_since IS NOT NULL",
        )?;
        for id in &self.healthy {
            let row: Option<(i64, Option<bool>)> = was
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((since, announced)) = row else {
                continue;
            };
            cleared.execute([id])?;
            if announced == Some(true) {
                let since = DateTime::from_timestamp_millis(since).unwrap_or_default();
                out.recovered
                    .push((crate::domain::ids::Id::trusted((*id).to_owned()), since));
            }
        }
        let mut stale = tx.prepare_cached(
            "UPDATE subscriptions SET status = 'disabled', updated_at = ?2,
                    disabled_reason = 'failing without a success for too long'
             WHERE status = 'active' AND failing_since IS NOT NULL AND failing_since < ?1
             RETURNING id",
        )?;
        let long: Vec<crate::store::SubscriptionId> = stale
            .query_map(params![disable_before_ms, now_ms], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        out.disabled
            .extend(long.into_iter().map(|id| (id, Disabled::FailingTooLong)));
        out.settle();
        Ok(out)
    }
}
