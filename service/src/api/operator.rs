//! Platform routes for the operator's look at one subscription's
//! deliveries (the operational webhooks' subscription's included, found
//! at `/operational-webhook`), a replay of one of them, and the bulk
//! replay of a time window: the integration API's own views and actions, reached with the
//! admin token instead of the creator's key, so `tminus admin` (and an
//! operator with curl) needs no creator's key.

use super::answer::{Accepted, Page};
use super::extract::{Admin, ApiJson, ApiPath, ApiQuery};
use super::integration::{deliveries_of, retry_of, DeliveryQuery};
use super::load::{AnySubscription, DeliveryPath};
use super::openapi::{errors, BAD_PAGE};
use super::replay::{self, Replay, Replayed};
use super::views;
use super::AppState;
use crate::api::error::ApiResult;
use aide::axum::routing::{get_with, post_with};
use aide::axum::ApiRouter;
use axum::extract::State;
use axum::Json;

pub fn routes() -> ApiRouter<AppState> {
    let no_sub = (404, "No such subscription (`not_found`).");
    let no_delivery = (404, "No such subscription or delivery (`not_found`).");
    let disabled = (
        409,
        "The subscription is disabled (`subscription_disabled`); enable it first.",
    );
    ApiRouter::new()
        .api_route(
            "/operational-webhook",
            get_with(operational, |op| {
                errors(
                    op.summary("Show the operational webhooks' subscription")
                        .description(
                            "The platform's own endpoint for tminus's operational events \
                             (`--operational-webhook-url`; see the document's `webhooks`), \
                             as the operator sees any subscription, never its secret. Its \
                             deliveries are listed, retried and replayed with the \
                             `/subscriptions/{id}/…` routes below, with this `id`. It is in \
                             no other list.",
                        ),
                    &[(
                        404,
                        "Operational webhooks are off: no `--operational-webhook-url` (`not_found`).",
                    )],
                )
            }),
        )
        .api_route(
            "/subscriptions/{id}/deliveries",
            get_with(deliveries, move |op| {
                errors(
                    op.summary("List a subscription's deliveries, newest first")
                        .description("As the integration API lists them, for any creator's subscription."),
                    &[no_sub, BAD_PAGE],
                )
            }),
        )
        .api_route(
            "/subscriptions/{id}/deliveries/{did}/retry",
            post_with(retry, move |op| {
                errors(
                    op.summary("Send a delivery again now").description(
                        "Whatever became of it, a delivered one included, with at least an hour to succeed.",
                    ),
                    &[no_delivery, disabled],
                )
            }),
        )
        .api_route(
            "/subscriptions/{id}/replay",
            post_with(bulk_replay, move |op| {
                errors(
                    op.summary("Send again every failed, expired or missed delivery of a time window")
                        .description(
                            "As the integration API's bulk replay, for any creator's subscription: \
                             deliveries with `status`, due at or after `since` and before `until` \
                             (at most 31 days apart), are due now again, each with at least an hour \
                             to succeed. Answers how many.",
                        ),
                    &[no_sub, disabled],
                )
            }),
        )
        .with_path_items(|p| p.tag("platform"))
}

async fn operational(_: Admin, State(s): State<AppState>) -> ApiResult<Json<views::Subscription>> {
    let Some(id) = &s.ctx.operational else {
        return Err(crate::api::error::ApiError::not_found(
            "operational webhook",
        ));
    };
    let sub = s.ctx.catalog.get_subscription(id).await?;
    Ok(Json(views::Subscription::for_operator(&sub)?))
}

async fn deliveries(
    AnySubscription(sub): AnySubscription,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> ApiResult<Json<Page<views::Delivery>>> {
    deliveries_of(&s, &sub, q).await
}

async fn retry(
    AnySubscription(sub): AnySubscription,
    State(s): State<AppState>,
    ApiPath(p): ApiPath<DeliveryPath>,
) -> ApiResult<Accepted<views::Delivery>> {
    retry_of(&s, &sub, &p.did).await
}

async fn bulk_replay(
    AnySubscription(sub): AnySubscription,
    State(s): State<AppState>,
    ApiJson(b): ApiJson<Replay>,
) -> ApiResult<Accepted<Replayed>> {
    replay::replay_of(&s, &sub, &b).await
}
