//! `Idempotency-Key` on the platform API's `POST`s: a repeat of a request
//! with the same key, by the same caller, within 24 h gets the first
//! answer (status and body) and runs nothing; the same key with another
//! request (method, path or body) is refused, `422
//! idempotency_key_reused`. Answers are kept in the store, so they
//! survive a restart and hold across instances on PostgreSQL.
//!
//! What is remembered: answers that depend only on the request (2xx and
//! 4xx); not 401, 408 and 429, which depend on the moment, nor a 5xx. The
//! key is reserved before the request runs: a second request with it while
//! the first runs (here or on another instance) is answered `409
//! idempotency_key_in_use` with `Retry-After: 1`, and runs nothing; a
//! reservation whose request died with its process lapses after five
//! minutes. Only a caller with the admin token is served
//! here (anyone else goes on to be refused, without a store lookup), and
//! the answers are sealed like signing secrets when `--secret-key` is set
//! (an API key's answer holds the key).

use super::extract::{body_error, read_deadline, single_header};
use super::{AppState, BODY_LIMIT, BULK_BODY_LIMIT, BULK_MIN_RATE};
use crate::api::error::ApiError;
use crate::store::Remembered;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};
use sha2::{Digest, Sha256};

/// The header.
pub const HEADER: &str = "idempotency-key";
/// How long an answer is kept.
const KEPT: chrono::Duration = chrono::Duration::hours(24);
/// Longest key.
const MAX_KEY: usize = 255;
/// The status of a reservation: the first request with the key is running.
const PENDING: u16 = 0;
/// A reservation older than this is a request that died with its process:
/// the next request with the key runs.
const STALE: chrono::Duration = chrono::Duration::minutes(5);
/// The answers kept: small JSON bodies; anything larger is not kept.
const MAX_ANSWER: usize = 1024 * 1024;

/// Whether `req` is one this applies to: a platform `POST` with the header.
fn applies(req: &Request) -> bool {
    req.method() == Method::POST
        && req.uri().path().starts_with("/api/v1/platform/")
        && req.headers().contains_key(HEADER)
}

/// Whether an answer with `status` is kept for repeats.
fn kept(status: StatusCode) -> bool {
    (status.is_success() || status.is_client_error()) && !matches!(status.as_u16(), 401 | 408 | 429)
}

fn hex_sha256(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

/// Whether `req` carries the admin token (compared as digests, as the
/// route's own check does).
fn admin(req: &Request, s: &AppState) -> bool {
    // A token sent twice is not taken here: the route refuses it.
    let given = single_header(req.headers(), header::AUTHORIZATION.as_str())
        .ok()
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    given.is_some_and(|g| {
        Sha256::digest(g.as_bytes()) == Sha256::digest(s.ctx.admin_token.as_bytes())
    })
}

pub async fn layer(State(s): State<AppState>, req: Request, next: Next) -> Response {
    if !applies(&req) || !admin(&req, &s) {
        return next.run(req).await;
    }
    match run(&s, req, next).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn run(s: &AppState, req: Request, next: Next) -> Result<Response, ApiError> {
    let key = single_header(req.headers(), HEADER)?
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEY)
        .ok_or_else(|| {
            ApiError::invalid(
                "invalid_value",
                "Idempotency-Key",
                format!("Idempotency-Key must be 1 to {MAX_KEY} visible ASCII characters"),
            )
        })?
        .to_owned();
    // The caller: the holder of the admin token.
    let caller = hex_sha256(&[s.ctx.admin_token.as_bytes()]);
    let bulk = req.uri().path().ends_with("/participants/bulk");
    let mut deadline = read_deadline(&req, s);
    if bulk {
        deadline = deadline.with_min_rate(BULK_MIN_RATE);
    }
    let limit = if bulk { BULK_BODY_LIMIT } else { BODY_LIMIT };
    let (parts, body) = req.into_parts();
    let bytes = Limited::new(deadline.wrap(body), limit)
        .collect()
        .await
        .map_err(|e| body_error(&*e, limit))?
        .to_bytes();
    let hash = hex_sha256(&[
        parts.method.as_str().as_bytes(),
        parts.uri.to_string().as_bytes(),
        &bytes,
    ]);
    let now = s.ctx.clock.now();
    // Reserve the key before running the request: a second request with
    // it, here or on another instance, waits for the answer instead of
    // running too.
    let marker = format!("pending:{}", crate::domain::ids::new_id()).into_bytes();
    let reservation = Remembered {
        caller: caller.clone(),
        key: key.clone(),
        request_hash: hash.clone(),
        status: PENDING,
        body: marker.clone(),
        created_at: now,
    };
    let held = s
        .ctx
        .catalog
        .remember(&reservation, now - KEPT, now - STALE)
        .await?;
    if held.body != marker {
        return replay(s, held, &hash);
    }
    let answer = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if !kept(answer.status()) {
        s.ctx.catalog.forget(&caller, &key, &marker).await?;
        return Ok(answer);
    }
    let (head, body) = answer.into_parts();
    let body = match Limited::new(body, MAX_ANSWER).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            s.ctx.catalog.forget(&caller, &key, &marker).await?;
            return Err(anyhow::anyhow!("reading an answer to remember: {e}").into());
        }
    };
    let sealed = s.ctx.secrets.seal(&String::from_utf8_lossy(&body));
    let r = Remembered {
        status: head.status.as_u16(),
        body: sealed.into_bytes(),
        ..reservation
    };
    s.ctx.catalog.settle(&r, &marker).await?;
    Ok(Response::from_parts(head, Body::from(body)))
}

/// The remembered answer, or the refusal of a different request, or of
/// one whose first request is still running.
fn replay(s: &AppState, r: Remembered, hash: &str) -> Result<Response, ApiError> {
    if r.request_hash != hash {
        return Err(ApiError::invalid(
            "idempotency_key_reused",
            "Idempotency-Key",
            "this Idempotency-Key was used for another request; use a new key",
        ));
    }
    if r.status == PENDING {
        return Err(ApiError::in_progress(
            "a request with this Idempotency-Key is still running; send it again in a moment to get its answer",
        ));
    }
    let status =
        StatusCode::from_u16(r.status).map_err(|e| anyhow::anyhow!("a remembered status: {e}"))?;
    let stored = String::from_utf8(r.body).map_err(anyhow::Error::from)?;
    let body = s.ctx.secrets.open(&stored).map_err(anyhow::Error::from)?;
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(resp)
}
