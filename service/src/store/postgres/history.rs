//! A subscription's deliveries, and fired reminders' tallies, in
//! PostgreSQL: its rows (the shared SQL of `catalog::history` and
//! `catalog::oversight`) and the acknowledged first attempts it keeps in
//! receipts instead (`receipts`), read back and counted exactly like rows.
//! A receipt's delivery retried gets its row back first: a row always wins
//! over a receipt. The twin of `sqlite/history.rs`.

use super::{receipts, PgStore};
use crate::store::catalog::history::{listed, page_of, retry_row, row};
use crate::store::catalog::oversight::counted;
use crate::store::catalog::upkeep::{
    delete_deliveries, delete_in, firsts, prune_slices, settled_deliveries, settled_receipts,
};
use crate::store::sql::{params, Backend, Db};
use crate::store::{Cutoff, Listing, Pruned, Pruning, Retry};
use crate::store::{
    Deliveries, Delivery, DeliveryId, DeliveryStatus, FanoutTally, Fired, Paged, StoreError,
    StoreResult, SubscriptionId, Tallies,
};
use async_trait::async_trait;
use chrono::DateTime;
use std::collections::HashSet;

#[async_trait]
impl Deliveries for PgStore {
    /// Rows and, when the filter lets delivered ones through, those held
    /// in receipts, merged in the cursor's order.
    async fn list_deliveries(&self, which: Listing<'_>) -> StoreResult<Paged<Delivery>> {
        let (sub, page) = (which.subscription_id, which.page);
        let mut rows = listed(self, which).await?;
        if which.status.is_none_or(|s| s == DeliveryStatus::Delivered) {
            let after = page.after_key()?.map(|k| (k.at.timestamp_millis(), k.id));
            let after = after.as_ref().map(|(ms, id)| (*ms, id.as_str()));
            let held = receipts::recent(&self.conn().await?, sub, after, page.fetch()).await?;
            if !held.is_empty() {
                let seen: HashSet<DeliveryId> = rows.iter().map(|(_, d)| d.id.clone()).collect();
                let at = |ms| DateTime::from_timestamp_millis(ms).unwrap_or_default();
                rows.extend(
                    held.into_iter()
                        .filter(|(_, d)| !seen.contains(&d.id))
                        .map(|(ms, d)| (at(ms), d)),
                );
                rows.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
            }
        }
        page_of(rows, page)
    }

    /// Its row, or else the receipt that holds it.
    async fn get_delivery(&self, sub: &SubscriptionId, id: &DeliveryId) -> StoreResult<Delivery> {
        if let Some(d) = row(self, sub, id).await? {
            return Ok(d);
        }
        let held = receipts::get(&self.conn().await?, sub, id).await?;
        held.ok_or(StoreError::NotFound)
    }

    async fn retry_delivery(&self, retry: &Retry) -> StoreResult<Delivery> {
        // A delivery held in a receipt gets its row back, to be attempted
        // again; should the retry then fail, the row reads as the receipt
        // did.
        let (s, i) = (&retry.subscription_id, &retry.delivery_id);
        in_tx!(self, |tx| receipts::take(&tx, s, i).await?)?;
        retry_row(self, retry).await
    }
}

#[async_trait]
impl Tallies for PgStore {
    /// Their rows, and what their receipts hold.
    async fn tallies(&self, which: Fired<'_>) -> StoreResult<Vec<FanoutTally>> {
        let mut out = Vec::new();
        for c in counted(self, which).await? {
            let held = receipts::tally(&self.conn().await?, c.reminder()).await?;
            out.push(c.with(held));
        }
        Ok(out)
    }
}

#[async_trait]
impl Pruning for PgStore {
    /// Rows and the receipts of settled fan-outs, in one transaction.
    async fn prune_history(&self, sub: &SubscriptionId, cut: Cutoff) -> StoreResult<Pruned> {
        let ids = settled_deliveries(self, sub, cut).await?;
        let sql = settled_receipts();
        let p = params![sub, cut.before.timestamp_millis(), i64::from(cut.limit)];
        let held = firsts(self.query(&sql, p).await?);
        if ids.is_empty() && held.is_empty() {
            return Ok(Pruned::default());
        }
        self.transact(|tx| {
            let (ids, held) = (ids.clone(), held.clone());
            async move {
                let mut p = delete_deliveries(&*tx, &ids).await?;
                p.receipts = delete_in(&*tx, "receipts", "id", &held).await?;
                tx.commit().await?;
                Ok(p)
            }
        })
        .await
    }

    /// A slice goes only once no receipt names it.
    async fn prune_slices(&self, after: i64, cut: Cutoff) -> StoreResult<(Pruned, Option<i64>)> {
        let kept = "AND NOT EXISTS (SELECT 1 FROM receipts h WHERE h.slice_id = l.id)";
        prune_slices(self, after, cut, kept).await
    }
}
