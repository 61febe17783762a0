//! The HTTP API: the platform's admin routes (creators, keys, mangoes,
//! webinars, participants), the integrators' REST-hook routes under the
//! seed's path, the operator dashboard and creator portal (HTML,
//! `dashboard`), the probes (`/healthz`: the process is up; `/readyz`:
//! and its database answers), and `/metrics` for Prometheus. Handlers validate, call the store and
//! wake the scheduler or the delivery lanes; they never write SQL.

mod answer;
mod auth_limit;
mod bulk;
mod client;
mod dashboard;
mod deadline;
mod docs;
mod error;
mod extract;
#[cfg(test)]
mod fuzz;
mod hook_checks;
mod idempotency;
mod integration;
mod json_body;
mod json_words;
mod load;
mod metrics;
pub mod openapi;
mod operator;
mod paging;
mod participants;
mod plain;
mod platform;
mod reminders;
mod replay;
mod trace;
mod validate;
mod views;
mod webinars;

use crate::api::error::ApiError;
use crate::delivery::Dispatcher;
use crate::AppContext;
use aide::axum::routing::get_with;
use aide::axum::ApiRouter;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::{Json, Router};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::Arc;
use tokio::sync::Notify;

/// Largest ordinary request body.
pub const BODY_LIMIT: usize = 64 * 1024;
/// Largest bulk registration body (200 000 participants of about 300
/// bytes); read as it arrives, never held whole (`bulk`).
pub const BULK_BODY_LIMIT: usize = 64 * 1024 * 1024;
/// The slowest upload a bulk registration is given time for, in bytes per
/// second (2 Mbit/s): on top of `--body-timeout`, each byte received earns
/// the time this rate takes for it, so a 64 MiB body sent at this rate or
/// faster is never cut, and a trickle still is.
pub const BULK_MIN_RATE: u64 = 256 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub ctx: Arc<AppContext>,
    pub dispatcher: Dispatcher,
    /// Wakes the scheduler when a reminder may now be due sooner.
    pub scheduler: Arc<Notify>,
    /// Requests per second per API key.
    pub key_limiter: Arc<DefaultKeyedRateLimiter<String>>,
    /// Failed authentications per client address.
    pub auth_failures: Arc<auth_limit::FailureLimit>,
}

impl AppState {
    /// Builds the state; the key limiter allows bursts of twice the rate.
    pub fn new(ctx: Arc<AppContext>, dispatcher: Dispatcher, scheduler: Arc<Notify>) -> Self {
        let rate = NonZeroU32::new(ctx.config.api_rate.max(1)).expect("positive");
        let burst =
            NonZeroU32::new(ctx.config.api_rate.max(1).saturating_mul(2)).expect("positive");
        let key_limiter = Arc::new(RateLimiter::keyed(
            Quota::per_second(rate).allow_burst(burst),
        ));
        let auth_failures = Arc::new(auth_limit::FailureLimit::new(ctx.config.auth_failures));
        Self {
            ctx,
            dispatcher,
            scheduler,
            key_limiter,
            auth_failures,
        }
    }
}

/// Every documented route: the probes and both APIs.
fn api_routes() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route(
            "/healthz",
            get_with(healthy, |op| op.summary("Liveness").tag("probes")),
        )
        .api_route(
            "/readyz",
            get_with(ready, |op| {
                op.summary("Readiness: whether the database answers")
                    .tag("probes")
            }),
        )
        .nest(
            "/api/v1/platform",
            platform::routes()
                .merge(dashboard::link_routes())
                .merge(webinars::routes())
                .merge(participants::routes())
                .merge(operator::routes()),
        )
        .nest("/api/v1/integration/webhook/webhook", integration::routes())
}

/// The whole API, its OpenAPI document and the docs page.
pub fn router(state: AppState) -> Router {
    // The document itself is generated once (`openapi::document`); this
    // one is only the by-product of turning the routes into a router.
    let mut generated = aide::openapi::OpenApi::default();
    api_routes()
        .finish_api(&mut generated)
        .route("/api/openapi.json", get(openapi_json))
        .merge(docs::routes())
        .merge(dashboard::routes())
        .merge(metrics::routes())
        .fallback(no_route)
        // Set last: it applies to the routes added before it. axum still
        // adds the `Allow` header.
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        ))
        .layer(axum::middleware::from_fn(plain::refuse_in_uri))
        // Outermost, so its latency and status are what the client got.
        .layer(axum::middleware::from_fn(trace::layer))
        .with_state(state)
}

async fn healthy() -> Json<answer::Health> {
    Json(answer::Health {
        status: "ok".into(),
    })
}

/// The OpenAPI document, as `tminus openapi` prints it.
async fn openapi_json() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        openapi::document_json(),
    )
}

/// An unknown path, in our error shape.
async fn no_route() -> ApiError {
    ApiError::not_found("route")
}

/// A known path with a method it does not take, in our error shape.
async fn wrong_method(method: axum::http::Method) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed here; see the Allow header"),
    )
}

/// Ready when the store answers: a load balancer stops sending to an
/// instance that cannot reach its database.
async fn ready(
    axum::extract::State(s): axum::extract::State<AppState>,
) -> Result<Json<answer::Readiness>, answer::Unready> {
    // The scheduler's own first query, on the scheduler's handle: ready
    // means this instance can do its work, not only answer the API.
    match s.ctx.engine.next_reminder_due().await {
        Ok(_) => Ok(Json(answer::Readiness {
            reason: None,
            status: "ready".into(),
        })),
        Err(e) => {
            tracing::warn!(error = %crate::telemetry::causes(&e), "not ready: the store does not answer");
            Err(answer::Unready)
        }
    }
}
