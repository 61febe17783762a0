//! A subscription's deliveries, and fired reminders' tallies, in
//! PostgreSQL, which keeps every delivery as a row: the rows' shared SQL
//! (`catalog::history`, `catalog::oversight`) is the whole answer. The twin
//! of `sqlite/history.rs`.

use super::PgStore;
use crate::store::catalog::history::{listed, page_of, retry_row, row};
use crate::store::catalog::oversight::counted;
use crate::store::catalog::upkeep::{delete_deliveries, prune_slices, settled_deliveries};
use crate::store::sql::Backend;
use crate::store::{
    Deliveries, Delivery, DeliveryId, DeliveryStatus, FanoutTally, Fired, HeldTally, PageRequest,
    Paged, StoreError, StoreResult, SubscriptionId, Tallies,
};
use crate::store::{Pruned, Pruning};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
impl Deliveries for PgStore {
    async fn list_deliveries(
        &self,
        sub: &SubscriptionId,
        status: Option<DeliveryStatus>,
        page: &PageRequest,
    ) -> StoreResult<Paged<Delivery>> {
        page_of(listed(self, sub, status, page).await?, page)
    }

    async fn get_delivery(&self, sub: &SubscriptionId, id: &DeliveryId) -> StoreResult<Delivery> {
        row(self, sub, id).await?.ok_or(StoreError::NotFound)
    }

    async fn retry_delivery(
        &self,
        sub: &SubscriptionId,
        id: &DeliveryId,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> StoreResult<Delivery> {
        retry_row(self, sub, id, now, expires).await
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
    async fn prune_history(
        &self,
        sub: &SubscriptionId,
        before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Pruned> {
        let ids = settled_deliveries(self, sub, before, limit).await?;
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

    async fn prune_slices(
        &self,
        after: i64,
        before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<(Pruned, Option<i64>)> {
        prune_slices(self, (after, before, limit), "").await
    }
}
