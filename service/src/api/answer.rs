//! The shapes of successful answers around the views: the page a list
//! answers with, and
//! the statuses other than 200 (201 created, 202 accepted, 201-or-200 for
//! an idempotent create). Each is a type, so the OpenAPI document can say
//! which status a route answers with which body.

use crate::store::Paged;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use schemars::JsonSchema;
use serde::Serialize;

/// One page of a list; `next` is the cursor for `?after=`, null on the
/// last page. Every list answers this way (`paging`).
#[derive(Serialize, JsonSchema, Debug)]
#[schemars(rename = "{T}Page")]
pub struct Page<T> {
    pub data: Vec<T>,
    /// The cursor of the next page, for `?after=`; null on the last page.
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// Views each record of a store's page.
    pub fn all<R: Into<T>>(page: Paged<R>) -> Self {
        Self {
            data: page.items.into_iter().map(Into::into).collect(),
            next: page.next,
        }
    }

    /// Views each record; a record the view refuses fails the answer.
    pub fn of<R, E>(page: Paged<R>, view: impl Fn(R) -> Result<T, E>) -> Result<Self, E> {
        Ok(Self {
            data: page.items.into_iter().map(view).collect::<Result<_, E>>()?,
            next: page.next,
        })
    }
}

/// 201 Created with the new thing.
#[derive(Debug)]
pub struct Created<T>(pub T);

impl<T: Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        (StatusCode::CREATED, Json(self.0)).into_response()
    }
}

/// 202 Accepted: the work is queued (a delivery to send).
#[derive(Debug)]
pub struct Accepted<T>(pub T);

impl<T: Serialize> IntoResponse for Accepted<T> {
    fn into_response(self) -> Response {
        (StatusCode::ACCEPTED, Json(self.0)).into_response()
    }
}

/// An idempotent create: 201 with a new thing, 200 with the existing one
/// the same request made before.
#[derive(Debug)]
pub struct Stored<T> {
    pub new: bool,
    pub body: T,
}

impl<T: Serialize> IntoResponse for Stored<T> {
    fn into_response(self) -> Response {
        let status = if self.new {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        (status, Json(self.body)).into_response()
    }
}

/// `/healthz`: the process is up.
#[derive(Serialize, JsonSchema, Debug)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

/// `/readyz` answered 503: the database does not answer.
#[derive(Debug)]
pub struct Unready;

impl IntoResponse for Unready {
    fn into_response(self) -> Response {
        let body = Readiness {
            reason: Some("the database does not answer".into()),
            status: "unavailable".into(),
        };
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

/// `/readyz`: whether this instance can reach its database.
#[derive(Serialize, JsonSchema, Debug)]
pub struct Readiness {
    /// Why not ready, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `ready` or `unavailable`.
    pub status: String,
}
