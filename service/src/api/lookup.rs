//! Finding the stored thing a request names by id: the id parsed (a
//! malformed one is simply not found), the record fetched, and a 404 that
//! names what was missing. Whether the caller may see what was found is the
//! caller's to decide (its creator's key, the operator, a portal viewer).

use super::validate::id;
use super::AppState;
use crate::api::error::{ApiError, ApiResult};
use crate::store::{Creator, CreatorId, Subscription, SubscriptionId, Webinar, WebinarId};

/// Creator `cid`.
pub(super) async fn creator(s: &AppState, cid: &str) -> ApiResult<Creator> {
    let cid: CreatorId = id("creator", cid)?;
    let found = s.ctx.store.get_creator(&cid).await;
    found.map_err(ApiError::lookup("creator"))
}

/// Webinar `wid`.
pub(super) async fn webinar(s: &AppState, wid: &str) -> ApiResult<Webinar> {
    let wid: WebinarId = id("webinar", wid)?;
    let found = s.ctx.store.get_webinar(&wid).await;
    found.map_err(ApiError::lookup("webinar"))
}

/// Subscription `sid`, whoever's it is.
pub(super) async fn subscription(s: &AppState, sid: &str) -> ApiResult<Subscription> {
    let sid: SubscriptionId = id("subscription", sid)?;
    let found = s.ctx.store.get_subscription(&sid).await;
    found.map_err(ApiError::lookup("subscription"))
}
