//! `GET /metrics`: the service's Prometheus metrics (`crate::metrics`),
//! behind the admin token, on the API's listener: one listener and one
//! secret to run, and the figures (queue depth, failing endpoints) say
//! nothing to anyone without it. A scrape reads the gauges from the store.
//! Not JSON, so not in the OpenAPI document.

use super::extract::Admin;
use super::AppState;
use crate::api::error::ApiError;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

/// The exposition format's media type.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape))
}

async fn scrape(_: Admin, State(s): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let text = crate::metrics::gauges::scrape(&s.ctx).await?;
    Ok(([(CONTENT_TYPE, TEXT_FORMAT)], text))
}
