//! A subscription's deliveries in PostgreSQL, which keeps every delivery
//! as a row: the rows' shared SQL (`catalog::history`) is the whole answer.
//! The twin of `sqlite/history.rs`.

use super::PgStore;
use crate::store::catalog::history::{listed, page_of, retry_row, row};
use crate::store::{
    Deliveries, Delivery, DeliveryId, DeliveryStatus, PageRequest, Paged, StoreError, StoreResult,
    SubscriptionId,
};
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
