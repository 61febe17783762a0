//! The operator dashboard (`/dashboard`, opened with the admin token) and
//! the creator portal (`/portal`, opened with an API key or a portal link):
//! the same server-rendered pages, the portal's limited to one creator.
//! The overview shows the fan-outs due next, those running (refreshed
//! every second), the last ones with their lateness and outcomes, and the
//! failing and disabled subscriptions; a subscription's page lists its
//! deliveries with their attempts and replays one, or a time window of
//! them. No JSON API here (those routes are in `integration` and
//! `platform`), and nothing loaded from elsewhere: the stylesheet and the
//! script are in the binary.

mod link;
mod login;
mod outlook;
mod pages;
mod render;
mod session;
mod site;
mod viewer;

pub(super) use link::routes as link_routes;

use super::AppState;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

/// The pages of both sites, and their assets.
pub fn routes() -> Router<AppState> {
    let mut r = Router::new()
        .route("/dashboard/assets/style.css", get(style))
        .route("/dashboard/assets/live.js", get(script))
        .route("/portal/enter", get(login::enter));
    for base in ["/dashboard", "/portal"] {
        r = r
            .route(base, get(pages::overview))
            .route(
                &format!("{base}/login"),
                get(login::login_form).post(login::login),
            )
            .route(&format!("{base}/logout"), post(login::logout))
            .route(&format!("{base}/running"), get(pages::running))
            .route(
                &format!("{base}/subscriptions/{{id}}"),
                get(pages::subscription),
            )
            .route(
                &format!("{base}/subscriptions/{{id}}/replay"),
                post(pages::replay),
            )
            .route(
                &format!("{base}/subscriptions/{{id}}/enable"),
                post(pages::enable),
            )
            .route(
                &format!("{base}/subscriptions/{{id}}/deliveries/{{did}}/retry"),
                post(pages::retry),
            );
    }
    r
}

async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("style.css"),
    )
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("live.js"),
    )
}
