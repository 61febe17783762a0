//! Request extractors that turn every kind of bad input into the one JSON
//! error shape: bodies (malformed, unknown or missing fields, oversized,
//! too slow), query strings and path segments, the admin bearer token, and
//! the integrator's `x-api-key` with its rate. Failed authentications are
//! counted per client address (`auth_limit`).

use super::client::ClientAddr;
pub use super::deadline::{body_error, is_timeout, over_limit, too_large, ReadDeadline};
pub use super::json_body::{json_error, parse_json, typed};
use super::AppState;
use crate::api::error::ApiError;
use axum::body::{Body, Bytes};
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

/// A JSON body, parsed strictly ([`parse_json`]: an object, no key twice;
/// types say `deny_unknown_fields`).
pub struct ApiJson<T>(pub T);

/// When `req`'s body must have arrived: `--body-timeout` after its headers.
/// A large body calls [`ReadDeadline::with_min_rate`] on it.
pub fn read_deadline(req: &Request, state: &AppState) -> ReadDeadline {
    ReadDeadline::new(req.extensions(), state.ctx.config.body_timeout)
}

/// Reads a body within [`read_deadline`], answering 413 in our shape when
/// it is too large and 408 when it is too slow.
pub async fn body_bytes(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    let deadline = read_deadline(&req, state);
    body_bytes_within(req, state, deadline).await
}

/// Reads a body within `deadline` (the route's body limit, the router's
/// [`super::BODY_LIMIT`], still applies).
pub async fn body_bytes_within(
    req: Request,
    state: &AppState,
    deadline: ReadDeadline,
) -> Result<Bytes, ApiError> {
    let req = req.map(|b| Body::new(deadline.wrap(b)));
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large(super::BODY_LIMIT)
        } else if is_timeout(&e) {
            ApiError::request_timeout()
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "unreadable_body", e.body_text())
        }
    })
}

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = body_bytes(req, state).await?;
        if bytes.is_empty() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                "request body is empty; a JSON object is expected",
            ));
        }
        parse_json(&bytes).map(ApiJson)
    }
}

/// A query string, parsed strictly (types say `deny_unknown_fields`): an
/// unknown, missing or invalid parameter is a 400 `invalid_query` naming it.
pub struct ApiQuery<T>(pub T);

/// Parses a query string into `T`, naming the parameter at fault.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let msg = super::json_words::reword(&e.into_inner().to_string());
        // serde names an unknown or missing parameter in its message; the
        // path names the one whose value is wrong.
        let named = msg.split('`').nth(1).unwrap_or_default().to_owned();
        let (param, message) = if ["unknown field", "missing field", "duplicate field"]
            .iter()
            .any(|p| msg.starts_with(p))
        {
            (named, msg.replacen("field", "query parameter", 1))
        } else {
            let p = if path == "." { named } else { path };
            let m = format!("query parameter `{p}`: {msg}");
            (p, m)
        };
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", message).on(&param)
    })
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parse_query(parts.uri.query().unwrap_or_default()).map(ApiQuery)
    }
}

/// Path parameters, read as the route's typed path (`super::load`): a
/// malformed id is a 404 `not_found` (it cannot exist); a segment that
/// cannot be read otherwise (not UTF-8, or not the type asked for) is a 400
/// `invalid_path` naming it.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(t)) => Ok(ApiPath(t)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                // A malformed id names nothing that could exist: a 404, as
                // an unknown one is.
                if let ErrorKind::Message(m) = e.kind() {
                    if let Some(what) = crate::domain::ids::NotAnId::recognize(m) {
                        return Err(ApiError::not_found(what));
                    }
                }
                let key = match e.kind() {
                    ErrorKind::ParseErrorAtKey { key, .. }
                    | ErrorKind::InvalidUtf8InPathParam { key }
                    | ErrorKind::DeserializeError { key, .. } => Some(key.clone()),
                    _ => None,
                };
                let err = ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text());
                Err(match key {
                    Some(k) => err.on(&k),
                    None => err,
                })
            }
            // The route and the handler disagree: ours to fix.
            Err(e) => Err(anyhow::anyhow!("path parameters: {}", e.body_text()).into()),
        }
    }
}

/// Refuses, before any look at its credentials, a client address that has
/// spent its failed-authentication budget.
pub(crate) fn not_blocked(state: &AppState, client: ClientAddr) -> Result<(), ApiError> {
    match state.auth_failures.blocked(client.0) {
        Some(wait) => Err(ApiError::rate_limited(
            "too many failed authentications from this address; retry later",
            wait,
        )),
        None => Ok(()),
    }
}

/// Counts a failed authentication against the client address.
pub(crate) fn failed(state: &AppState, client: ClientAddr, e: ApiError) -> ApiError {
    state.auth_failures.failed(client.0);
    e
}

/// A 401 with `code` and `message`, counted against the client address.
fn unauthorized(
    state: &AppState,
    client: ClientAddr,
    code: &'static str,
    message: &str,
) -> ApiError {
    let e = ApiError::new(StatusCode::UNAUTHORIZED, code, message);
    failed(state, client, e)
}

/// The caller's address, once it is not blocked for failed
/// authentications, and its credential header `name` as text (if sent).
async fn credential<'p>(
    parts: &'p mut Parts,
    state: &AppState,
    name: &str,
) -> Result<(ClientAddr, Option<&'p str>), ApiError> {
    let Ok(client) = ClientAddr::from_request_parts(parts, state).await;
    not_blocked(state, client)?;
    let value = single_header(&parts.headers, name)?.and_then(|v| v.to_str().ok());
    Ok((client, value))
}

/// Header `name`'s value, if sent; a 400 `duplicate_header` naming it if
/// sent more than once. A credential or a key given twice could be read
/// one way by a proxy in front and another by tminus, so neither is
/// chosen.
pub fn single_header<'h>(
    headers: &'h HeaderMap,
    name: &str,
) -> Result<Option<&'h HeaderValue>, ApiError> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "duplicate_header",
            format!("the {name} header is given more than once; send it once"),
        )
        .on(name));
    }
    Ok(first)
}

/// Proof that the request carries the platform's admin token.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (client, given) = credential(parts, state, "authorization").await?;
        let given = given
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                let required = "Authorization: Bearer <admin token> is required";
                unauthorized(state, client, "missing_token", required)
            })?;
        // Compare digests so the comparison's timing says nothing about the token.
        if Sha256::digest(given.as_bytes()) != Sha256::digest(state.ctx.admin_token.as_bytes()) {
            let wrong = "the admin token is not valid";
            return Err(unauthorized(state, client, "invalid_token", wrong));
        }
        Ok(Admin)
    }
}

/// The creator an `x-api-key` belongs to, after the key's rate check.
pub struct Integrator {
    pub creator_id: crate::store::CreatorId,
}

/// The stored form of an API key.
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl FromRequestParts<AppState> for Integrator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (client, key) = credential(parts, state, "x-api-key").await?;
        let key = key.filter(|k| !k.is_empty()).ok_or_else(|| {
            let required = "the x-api-key header is required";
            unauthorized(state, client, "missing_api_key", required)
        })?;
        let hash = key_hash(key);
        let creator_id = match state.ctx.catalog.creator_for_key(&hash).await {
            Ok(c) => c,
            Err(crate::store::StoreError::NotFound) => {
                let wrong = "the API key is not valid or was revoked";
                return Err(unauthorized(state, client, "invalid_api_key", wrong));
            }
            Err(e) => return Err(e.into()),
        };
        if let Err(not_until) = state.key_limiter.check_key(&hash) {
            use governor::clock::{Clock, DefaultClock};
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Err(ApiError::rate_limited(
                "too many requests for this API key",
                wait,
            ));
        }
        Ok(Integrator { creator_id })
    }
}
