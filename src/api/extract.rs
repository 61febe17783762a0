//! Request extractors that turn every kind of bad input into the one JSON
//! error shape: bodies (malformed, unknown or missing fields, oversized),
//! the admin bearer token, and the integrator's `x-api-key` with its rate.

use super::AppState;
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A JSON body, parsed strictly (types say `deny_unknown_fields`).
pub struct ApiJson<T>(pub T);

/// Reads a body, answering 413 in our shape when it is too large.
pub async fn body_bytes(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "request body is too large",
            )
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "unreadable_body", e.body_text())
        }
    })
}

/// Parses a JSON body: malformed JSON is a 400, a string with a control
/// character a 422 ([`super::plain`]), then [`typed`].
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| json_error(String::new(), e))?;
    typed(value)
}

/// Types a parsed body, after refusing control characters in its strings,
/// with the path of the offending field in the error.
pub fn typed<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    super::plain::json(&value)?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        json_error(path, e.into_inner())
    })
}

/// A JSON error as the API answers it: `path` is the container the error
/// is in (`.` or empty at the top), serde's message names the field.
pub fn json_error(path: String, inner: serde_json::Error) -> ApiError {
    let msg = inner.to_string();
    let quoted = msg.split('`').nth(1).map(str::to_owned);
    let top = path == "." || path.is_empty();
    // The offending field's full path: the container, and the field
    // serde's message names.
    let at = |name: Option<String>| -> String {
        let name = name.unwrap_or_default();
        match (top, name.is_empty()) {
            (true, _) => name,
            (false, true) => path.clone(),
            (false, false) if path.ends_with(&name) => path.clone(),
            (false, false) => format!("{path}.{name}"),
        }
    };
    if inner.is_syntax() || inner.is_eof() {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("request body is not valid JSON: {msg}"),
        )
    } else if inner.is_io() {
        ApiError::new(StatusCode::BAD_REQUEST, "unreadable_body", msg)
    } else if msg.starts_with("unknown field") {
        ApiError::new(StatusCode::BAD_REQUEST, "unknown_field", msg.clone()).on(&at(quoted))
    } else if msg.starts_with("missing field") {
        ApiError::new(StatusCode::BAD_REQUEST, "missing_field", msg.clone()).on(&at(quoted))
    } else if top {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_type", msg)
    } else {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_type",
            format!("{path}: {msg}"),
        )
        .on(&path)
    }
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

/// Proof that the request carries the platform's admin token.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let given = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "missing_token",
                    "Authorization: Bearer <admin token> is required",
                )
            })?;
        // Compare digests so the comparison's timing says nothing about the token.
        if Sha256::digest(given.as_bytes()) != Sha256::digest(state.ctx.admin_token.as_bytes()) {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the admin token is not valid",
            ));
        }
        Ok(Admin)
    }
}

/// The creator an `x-api-key` belongs to, after the key's rate check.
pub struct Integrator {
    pub creator_id: String,
}

/// The stored form of an API key.
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl FromRequestParts<AppState> for Integrator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = parts
            .headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "missing_api_key",
                    "the x-api-key header is required",
                )
            })?;
        let hash = key_hash(key);
        let creator_id = match state.ctx.store.creator_for_key(&hash).await {
            Ok(c) => c,
            Err(crate::store::StoreError::NotFound) => {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_api_key",
                    "the API key is not valid or was revoked",
                ))
            }
            Err(e) => return Err(e.into()),
        };
        if state.key_limiter.check_key(&hash).is_err() {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests for this API key; retry after a second",
            ));
        }
        Ok(Integrator { creator_id })
    }
}
