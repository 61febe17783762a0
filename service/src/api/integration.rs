//! The integrators' REST-hook API at the seed's path
//! (`/api/v1/integration/webhook/webhook`), authenticated by `x-api-key`:
//! subscribe (idempotent), list, show, change caps, unsubscribe, rotate the
//! secret, send a test event, and see or retry deliveries.

mod docs;

use super::answer::{Accepted, Page, Stored};
use super::extract::{ApiJson, ApiPath, ApiQuery, Integrator};
use super::hook_checks::{self, caps, timing, Checked, Patch};
pub(super) use super::hook_checks::{check_subscribe, Subscribe};
use super::load::{DeliveryPath, OwnSubscription};
use super::openapi::Routes;
use super::paging::{paged_query, PageQuery};
use super::replay;
use super::validate::Findings;
use super::views::{self, DeliveryStatus};
use super::AppState;
use crate::api::error::{ApiError, ApiResult};
use crate::domain::event::PREFIX;
use crate::domain::{ids, payload, Event, ReminderOffset};
use crate::store::{
    DeliveryId, Listing, NewSubscription, OneOff, Retry, Subscription, SubscriptionPatch, Tuning,
};
use aide::axum::routing::{get, post};
use aide::axum::ApiRouter;
use axum::extract::State;
use axum::response::NoContent;
use axum::Json;
use chrono::Duration;

pub fn routes() -> ApiRouter<AppState> {
    Routes::new(docs::describe)
        .route("/", get(list).post(subscribe))
        .route("/{id}", get(show).patch(update).delete(unsubscribe))
        .route("/{id}/rotate-secret", post(rotate))
        .route("/{id}/test", post(test_event))
        .route("/{id}/deliveries", get(deliveries))
        .route("/{id}/deliveries/{did}", get(delivery))
        .route("/{id}/deliveries/{did}/retry", post(retry))
        .route("/{id}/replay", post(bulk_replay))
        .tagged("integration")
}

async fn subscribe(
    who: Integrator,
    State(s): State<AppState>,
    ApiJson(b): ApiJson<Subscribe>,
) -> ApiResult<Stored<views::Subscription>> {
    let cfg = &s.ctx.config;
    let offsets = subscribable(&s, &who.creator_id, &b.event).await?;
    let Checked {
        hook,
        event,
        webinar,
        mango,
        late_budget_ms: checked_budget,
        send_early_ms: checked_early,
    } = check_subscribe(&b, cfg, &offsets, s.dispatcher.target_policy())?;
    if let Some(w) = &webinar {
        let found = s
            .ctx
            .catalog
            .get_webinar(w)
            .await
            .map_err(|e| ApiError::lookup("webinar")(e).on("webinar"))?;
        if found.creator_id != who.creator_id {
            return Err(ApiError::not_found("webinar").on("webinar"));
        }
    }
    let mango = if let Some(m) = &mango {
        // Every mango of the creator's: this is a check, not a list.
        let all = crate::store::PageRequest::all();
        let owned = s.ctx.catalog.list_mangoes(&who.creator_id, &all).await?;
        let m = m.parse::<ids::MangoId>().ok();
        match owned.items.into_iter().find(|o| Some(&o.id) == m.as_ref()) {
            Some(o) => Some(o.id),
            None => return Err(ApiError::not_found("mango").on("mango")),
        }
    } else {
        None
    };
    let new = NewSubscription {
        creator_id: who.creator_id,
        hook_url: hook.as_str().to_owned(),
        event: event.name(),
        webinar_id: webinar,
        mango_id: mango,
        secret: s.ctx.secrets.seal(&crate::signing::new_secret()),
        tuning: Tuning {
            max_concurrency: b.max_concurrency.unwrap_or(cfg.default_max_concurrency),
            rate_per_second: b.rate_per_second,
            batch_size: b.batch_size.unwrap_or(1),
            late_budget_ms: checked_budget
                .unwrap_or(crate::delivery::forecast::DEFAULT_LATE_BUDGET_MS),
            send_early_ms: checked_early.unwrap_or(0),
        },
    };
    let (sub, created) = s.ctx.catalog.subscribe(&new).await?;
    // The API key holder may see the secret again on an idempotent
    // re-subscribe: a client that lost the first answer must not be stuck.
    let secret = s
        .ctx
        .secrets
        .open(&sub.secret)
        .map_err(anyhow::Error::from)?;
    Ok(Stored {
        new: created,
        body: views::Subscription::new(&sub, Some(secret))?,
    })
}

/// The intervals a subscription may name: those `--reminder-offsets`
/// configures now, and those still armed on a pending reminder of the
/// creator's webinars. A webinar keeps the intervals it was armed with when
/// the setting changes, and those reminders still fire, so their events stay
/// subscribable until the last of them has. The store is asked only when
/// `event` is none of the configured ones.
async fn subscribable(
    s: &AppState,
    creator: &ids::CreatorId,
    event: &str,
) -> ApiResult<Vec<ReminderOffset>> {
    let mut offsets = s.ctx.config.reminder_offsets.clone();
    let event = event.trim();
    if !event.starts_with(PREFIX) || Event::parse(event, &offsets).is_some() {
        return Ok(offsets);
    }
    for label in s.ctx.catalog.pending_labels(creator).await? {
        match label.parse::<ReminderOffset>() {
            Ok(o) if !offsets.contains(&o) => offsets.push(o),
            _ => {}
        }
    }
    Ok(offsets)
}

async fn list(
    who: Integrator,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<views::Subscription>>> {
    let page = q.request()?;
    let subs = s
        .ctx
        .catalog
        .list_subscriptions(Some(&who.creator_id), None, &page)
        .await?;
    Ok(Json(Page::of(subs, |x| {
        views::Subscription::new(&x, None).map(|v| v.live(&s.dispatcher))
    })?))
}

async fn show(
    OwnSubscription(sub): OwnSubscription,
    State(s): State<AppState>,
) -> ApiResult<Json<views::Subscription>> {
    Ok(Json(
        views::Subscription::new(&sub, None)?.live(&s.dispatcher),
    ))
}

async fn update(
    OwnSubscription(sub): OwnSubscription,
    State(s): State<AppState>,
    ApiJson(p): ApiJson<Patch>,
) -> ApiResult<Json<views::Subscription>> {
    let mut f = Findings::default();
    caps(
        &mut f,
        p.max_concurrency,
        p.rate_per_second.flatten(),
        p.batch_size,
    );
    let (late_budget_ms, send_early_ms) = timing(&mut f, p.late_budget, p.send_early);
    f.done()?;
    if p.enabled == Some(false) {
        return Err(ApiError::invalid(
            "invalid_value",
            "enabled",
            "use DELETE to stop a subscription; enabled only accepts true",
        ));
    }
    let patch = SubscriptionPatch {
        max_concurrency: p.max_concurrency,
        rate_per_second: p.rate_per_second,
        batch_size: p.batch_size,
        late_budget_ms,
        send_early_ms,
        enable: p.enabled == Some(true),
    };
    let sub = s.ctx.catalog.update_subscription(&sub.id, &patch).await?;
    s.dispatcher.changed(&sub.id);
    s.dispatcher.wake(&sub.id);
    Ok(Json(views::Subscription::new(&sub, None)?))
}

async fn unsubscribe(
    OwnSubscription(sub): OwnSubscription,
    State(s): State<AppState>,
) -> ApiResult<NoContent> {
    s.ctx.catalog.delete_subscription(&sub.id).await?;
    s.dispatcher.withdraw();
    Ok(NoContent)
}

async fn rotate(
    OwnSubscription(sub): OwnSubscription,
    State(s): State<AppState>,
) -> ApiResult<Json<views::Subscription>> {
    let grace =
        s.ctx.clock.now() + Duration::from_std(s.ctx.config.secret_grace).unwrap_or_default();
    let secret = crate::signing::new_secret();
    let sub = s
        .ctx
        .catalog
        .rotate_secret(&sub.id, &s.ctx.secrets.seal(&secret), grace)
        .await?;
    // This instance's lane signs with the new secret from its next request.
    s.dispatcher.changed(&sub.id);
    Ok(Json(views::Subscription {
        previous_secret_valid_until: Some(payload::iso_millis(grace)),
        ..views::Subscription::new(&sub, Some(secret))?
    }))
}

/// Sends the seed's example payload once, labelled `test`.
async fn test_event(
    OwnSubscription(sub): OwnSubscription,
    State(s): State<AppState>,
) -> ApiResult<Accepted<views::Delivery>> {
    hook_checks::active(&sub)?;
    let (w, p) = payload::seed_example();
    let now = s.ctx.clock.now();
    let one = OneOff {
        id: ids::one_off_webhook_id(),
        subscription_id: sub.id.clone(),
        label: "test".into(),
        payload: payload::render(&w, &p),
        expires_at: now + Duration::hours(1),
    };
    let d = s.ctx.catalog.create_one_off(&one, now).await?;
    s.dispatcher.wake(&sub.id);
    Ok(Accepted(d.try_into()?))
}

paged_query! {
    /// Which deliveries to list.
    #[serde(deny_unknown_fields)]
    pub(super) struct DeliveryQuery {
        pub(super) status: Option<DeliveryStatus>,
    }
}

async fn deliveries(
    OwnSubscription(sub): OwnSubscription,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> ApiResult<Json<Page<views::Delivery>>> {
    deliveries_of(&s, &sub, q).await
}

/// A page of `sub`'s deliveries; the caller has checked who may see them.
pub(super) async fn deliveries_of(
    s: &AppState,
    sub: &Subscription,
    q: DeliveryQuery,
) -> ApiResult<Json<Page<views::Delivery>>> {
    let page = q.request()?;
    let rows = s
        .ctx
        .catalog
        .list_deliveries(Listing::of(&sub.id, q.status, &page))
        .await?;
    Ok(Json(Page::of(rows, views::Delivery::try_from)?))
}

async fn delivery(
    OwnSubscription(sub): OwnSubscription,
    State(s): State<AppState>,
    ApiPath(p): ApiPath<DeliveryPath>,
) -> ApiResult<Json<views::Delivery>> {
    let d = s
        .ctx
        .catalog
        .get_delivery(&sub.id, &p.did)
        .await
        .map_err(ApiError::lookup("delivery"))?;
    Ok(Json(d.try_into()?))
}

/// Sends a delivery again now, whatever became of it (a replay of a
/// delivered one included), with at least an hour to succeed.
async fn retry(
    OwnSubscription(sub): OwnSubscription,
    State(s): State<AppState>,
    ApiPath(p): ApiPath<DeliveryPath>,
) -> ApiResult<Accepted<views::Delivery>> {
    retry_of(&s, &sub, &p.did).await
}

/// Sends one of `sub`'s deliveries again now (see `retry`); the caller has
/// checked who may.
pub(crate) async fn retry_of(
    s: &AppState,
    sub: &Subscription,
    did: &DeliveryId,
) -> ApiResult<Accepted<views::Delivery>> {
    hook_checks::active(sub)?;
    let now = s.ctx.clock.now();
    let d = s
        .ctx
        .catalog
        .retry_delivery(&Retry {
            subscription_id: sub.id.clone(),
            delivery_id: did.clone(),
            now,
            expires_at: now + Duration::hours(1),
        })
        .await
        .map_err(ApiError::lookup("delivery"))?;
    s.dispatcher.wake(&sub.id);
    Ok(Accepted(d.try_into()?))
}

/// Sends again every delivery of a subscription with one status in a time
/// window (`replay`).
async fn bulk_replay(
    OwnSubscription(sub): OwnSubscription,
    State(s): State<AppState>,
    ApiJson(b): ApiJson<replay::Replay>,
) -> ApiResult<Accepted<replay::Replayed>> {
    replay::replay_of(&s, &sub, &b).await
}
