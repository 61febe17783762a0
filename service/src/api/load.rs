//! What a request's path names, typed and loaded. Each route's path is a
//! struct of typed ids ([`SubscriptionPath`], [`DeliveryPath`], …) read by
//! [`ApiPath`]: a malformed id is a 404, as an unknown one is, since it
//! cannot exist. The loaders go one step further, as svix's `Application`
//! extractor does: they authenticate the caller, read the path, fetch what
//! it names and check the caller may see it, so a handler starts from the
//! thing itself: the integrator's own subscription ([`OwnSubscription`]),
//! any subscription for the operator ([`AnySubscription`]), or the admin's
//! webinar ([`AdminWebinar`]) or creator ([`AdminCreator`]). Another
//! creator's subscription looks absent to an integrator.

use super::extract::{Admin, ApiPath, Integrator};
use super::AppState;
use crate::api::error::{ApiError, ApiResult};
use crate::store::{
    ApiKeyId, Creator, CreatorId, DeliveryId, ParticipantId, Subscription, SubscriptionId, Webinar,
    WebinarId,
};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::Deserialize;

/// A subscription: `…/subscriptions/{id}`, or the integrators' `…/{id}`.
#[derive(Deserialize)]
pub struct SubscriptionPath {
    pub id: SubscriptionId,
}

/// One delivery of a subscription, `…/{id}/deliveries/{did}`: the
/// delivery's id (the subscription's is its loader's).
#[derive(Deserialize)]
pub struct DeliveryPath {
    pub did: DeliveryId,
}

/// A webinar: `/webinars/{id}`.
#[derive(Deserialize)]
pub struct WebinarPath {
    pub id: WebinarId,
}

/// A webinar's participant, `/webinars/{id}/participants/{pid}`: the
/// participant's id (the webinar's is its loader's).
#[derive(Deserialize)]
pub struct ParticipantPath {
    pub pid: ParticipantId,
}

/// A creator: `/creators/{id}`.
#[derive(Deserialize)]
pub struct CreatorPath {
    pub id: CreatorId,
}

/// A creator's API key: `/creators/{id}/api-keys/{key}`.
#[derive(Deserialize)]
pub struct ApiKeyPath {
    pub id: CreatorId,
    pub key: ApiKeyId,
}

/// Creator `id`, or a 404.
pub(super) async fn creator(s: &AppState, id: &CreatorId) -> ApiResult<Creator> {
    let found = s.ctx.catalog.get_creator(id).await;
    found.map_err(ApiError::lookup("creator"))
}

/// Webinar `id`, or a 404.
pub(super) async fn webinar(s: &AppState, id: &WebinarId) -> ApiResult<Webinar> {
    let found = s.ctx.catalog.get_webinar(id).await;
    found.map_err(ApiError::lookup("webinar"))
}

/// Subscription `id`, whoever's it is, or a 404.
pub(super) async fn subscription(s: &AppState, id: &SubscriptionId) -> ApiResult<Subscription> {
    let found = s.ctx.catalog.get_subscription(id).await;
    found.map_err(ApiError::lookup("subscription"))
}

/// The path's subscription, whoever's it is.
pub(super) async fn path_subscription(parts: &mut Parts, s: &AppState) -> ApiResult<Subscription> {
    let ApiPath(p) = ApiPath::<SubscriptionPath>::from_request_parts(parts, s).await?;
    subscription(s, &p.id).await
}

/// The integrator's own subscription `{id}`; another creator's is a 404.
pub struct OwnSubscription(pub Subscription);

impl FromRequestParts<AppState> for OwnSubscription {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> ApiResult<Self> {
        let who = Integrator::from_request_parts(parts, s).await?;
        let sub = path_subscription(parts, s).await?;
        if sub.creator_id != who.creator_id {
            return Err(ApiError::not_found("subscription"));
        }
        Ok(Self(sub))
    }
}

/// Subscription `{id}`, whoever's it is, for the operator.
pub struct AnySubscription(pub Subscription);

impl FromRequestParts<AppState> for AnySubscription {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> ApiResult<Self> {
        Admin::from_request_parts(parts, s).await?;
        Ok(Self(path_subscription(parts, s).await?))
    }
}

/// Webinar `{id}`, for the platform's admin.
pub struct AdminWebinar(pub Webinar);

impl FromRequestParts<AppState> for AdminWebinar {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> ApiResult<Self> {
        Admin::from_request_parts(parts, s).await?;
        let ApiPath(p) = ApiPath::<WebinarPath>::from_request_parts(parts, s).await?;
        Ok(Self(webinar(s, &p.id).await?))
    }
}

/// Creator `{id}`, for the platform's admin.
pub struct AdminCreator(pub Creator);

impl FromRequestParts<AppState> for AdminCreator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> ApiResult<Self> {
        Admin::from_request_parts(parts, s).await?;
        let ApiPath(p) = ApiPath::<CreatorPath>::from_request_parts(parts, s).await?;
        Ok(Self(creator(s, &p.id).await?))
    }
}
