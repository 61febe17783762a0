//! A subscription's deliveries, and fired reminders' tallies, in SQLite:
//! its rows (the shared SQL of `catalog::history` and `catalog::oversight`)
//! and the acknowledged first attempts it keeps in receipts instead
//! (`receipts`), read back and counted exactly like rows. A receipt's
//! delivery retried gets its row back first: a row always wins over a
//! receipt. The twin of `postgres/history.rs`.

use super::{at, receipts, SqliteStore};
use crate::store::catalog::history::{listed, page_of, retry_row, row};
use crate::store::catalog::oversight::counted;
use crate::store::catalog::upkeep::{
    delete_deliveries, delete_in, firsts, prune_slices, settled_deliveries, settled_receipts,
};
use crate::store::sql::{params, Backend, Db};
use crate::store::{Cutoff, Listing, Pruned, Pruning, Retry};
use crate::store::{
    Deliveries, Delivery, DeliveryId, DeliveryStatus, FanoutTally, Fired, PageRequest, Paged,
    StoreError, StoreResult, SubscriptionId, Tallies,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashSet;

#[async_trait]
impl Deliveries for SqliteStore {
    /// Rows and, when the filter lets delivered ones through, those held
    /// in receipts, merged in the cursor's order.
    async fn list_deliveries(&self, which: Listing<'_>) -> StoreResult<Paged<Delivery>> {
        let (sub, page) = (which.subscription_id, which.page);
        let mut rows = listed(self, which).await?;
        if which.status.is_none_or(|s| s == DeliveryStatus::Delivered) {
            let held = self.held_recent(sub, page).await?;
            if !held.is_empty() {
                let seen: HashSet<DeliveryId> = rows.iter().map(|(_, d)| d.id.clone()).collect();
                rows.extend(held.into_iter().filter(|(_, d)| !seen.contains(&d.id)));
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
        let (s, i) = (sub.clone(), id.clone());
        let held = self.run(move |c| receipts::get(c, &s, &i));
        held.await?.ok_or(StoreError::NotFound)
    }

    async fn retry_delivery(&self, retry: &Retry) -> StoreResult<Delivery> {
        // A delivery held in a receipt gets its row back, to be attempted
        // again; should the retry then fail, the row reads as the receipt
        // did.
        let (s, i) = (retry.subscription_id.clone(), retry.delivery_id.clone());
        self.run(move |c| {
            let tx = c.transaction()?;
            receipts::take(&tx, &s, &i)?;
            tx.commit().map_err(Into::into)
        })
        .await?;
        retry_row(self, retry).await
    }
}

impl SqliteStore {
    /// The latest deliveries of `sub` held in receipts, after the page's
    /// cursor (an instant and an id) when it has one, each with the
    /// instant it was recorded.
    async fn held_recent(
        &self,
        sub: &SubscriptionId,
        page: &PageRequest,
    ) -> StoreResult<Vec<(DateTime<Utc>, Delivery)>> {
        let sub = sub.clone();
        let after = page.after_key()?.map(|k| (k.at.timestamp_millis(), k.id));
        let limit = page.fetch();
        let held = self
            .run(move |c| {
                let after = after.as_ref().map(|(ms, id)| (*ms, id.as_str()));
                receipts::recent(c, &sub, after, limit)
            })
            .await?;
        Ok(held.into_iter().map(|(ms, d)| (at(ms), d)).collect())
    }
}

#[async_trait]
impl Tallies for SqliteStore {
    /// Their rows, and what their receipts hold.
    async fn tallies(&self, which: Fired<'_>) -> StoreResult<Vec<FanoutTally>> {
        let mut out = Vec::new();
        for c in counted(self, which).await? {
            let id = c.reminder().clone();
            let held = self.run(move |conn| receipts::tally(conn, &id));
            out.push(c.with(held.await?));
        }
        Ok(out)
    }
}

#[async_trait]
impl Pruning for SqliteStore {
    /// Rows and the receipts of settled fan-outs, in one transaction.
    async fn prune_history(&self, sub: &SubscriptionId, cut: Cutoff) -> StoreResult<Pruned> {
        let ids = settled_deliveries(self, sub, cut).await?;
        let sql = settled_receipts();
        let p = params![sub, cut.before, i64::from(cut.limit)];
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
