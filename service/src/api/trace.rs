//! The request log: a span for every call to the service, with its method
//! and its route (the matched template, `/api/v1/platform/webinars/{id}`,
//! never the raw path with its ids), and one INFO event when it is answered,
//! with the status and the latency. Neither headers nor the query string
//! are recorded: they carry credentials (`x-api-key`, the bearer token)
//! and participants' data.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The route of a request no route matched (a 404 from the fallback).
const UNMATCHED: &str = "(unmatched)";

/// Runs the request inside its span and logs its answer.
pub async fn layer(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let span = tracing::info_span!("request", method = %req.method(), route = %route);
    let started = std::time::Instant::now();
    let resp = next.run(req).instrument(span.clone()).await;
    // Milliseconds to the microsecond.
    let latency_ms = started.elapsed().as_micros() as f64 / 1000.0;
    let status = resp.status().as_u16();
    tracing::info!(parent: &span, status, latency_ms, "answered");
    resp
}
