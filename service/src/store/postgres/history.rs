//! A subscription's deliveries, and fired reminders' tallies, in
//! PostgreSQL, which keeps every delivery as a row: the rows' shared SQL
//! (`catalog::history`, `catalog::oversight`) is the whole answer. The twin
//! of `sqlite/history.rs`.

use super::PgStore;
use crate::store::catalog::history::{listed, page_of, retry_row, row};
use crate::store::catalog::oversight::counted;
use crate::store::catalog::upkeep::{delete_deliveries, prune_slices, settled_deliveries};
use crate::store::sql::Backend;
use crate::store::{Cutoff, Listing, Pruned, Pruning, Retry};
use crate::store::{
    Deliveries, Delivery, DeliveryId, FanoutTally, Fired, HeldTally, Paged, StoreError,
    StoreResult, SubscriptionId, Tallies,
};
use async_trait::async_trait;

#[async_trait]
impl Deliveries for PgStore {
    async fn list_deliveries(&self, which: Listing<'_>) -> StoreResult<Paged<Delivery>> {
        page_of(listed(self, which).await?, which.page)
    }

    async fn get_delivery(&self, sub: &SubscriptionId, id: &DeliveryId) -> StoreResult<Delivery> {
        row(self, sub, id).await?.ok_or(StoreError::NotFound)
    }

    async fn retry_delivery(&self, retry: &Retry) -> StoreResult<Delivery> {
        retry_row(self, retry).await
    }
}

#[async_trait]
impl Tallies for PgStore {
    /// Their rows.
    async fn tallies(&self, which: Fired<'_>) -> StoreResult<Vec<FanoutTally>> {
        let rows = counted(self, which).await?;
        Ok(rows
            .into_iter()
            .map(|c| c.with(HeldTally::default()))
            .collect())
    }
}

#[async_trait]
impl Pruning for PgStore {
    async fn prune_history(&self, sub: &SubscriptionId, cut: Cutoff) -> StoreResult<Pruned> {
        let ids = settled_deliveries(self, sub, cut).await?;
        if ids.is_empty() {
            return Ok(Pruned::default());
        }
        self.transact(|tx| {
            let ids = ids.clone();
            async move {
                let p = delete_deliveries(&*tx, &ids).await?;
                tx.commit().await?;
                Ok(p)
            }
        })
        .await
    }

    async fn prune_slices(&self, after: i64, cut: Cutoff) -> StoreResult<(Pruned, Option<i64>)> {
        prune_slices(self, after, cut, "").await
    }
}
