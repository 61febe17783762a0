//! The one error type of the HTTP API. Client errors carry a status, a
//! stable machine-readable `code`, a message and, where one field is to
//! blame, its name; everything else is logged with its cause and answered as
//! an opaque 500.

use crate::store::StoreError;
use crate::telemetry::causes;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use schemars::JsonSchema;
use serde::Serialize;

/// The body of every error answer (CONTRACT §2).
#[derive(Serialize, JsonSchema, Debug)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong. Keys are in the order the API always wrote them
/// (sorted).
#[derive(Serialize, JsonSchema, Debug)]
pub struct ErrorDetail {
    /// Stable and machine-readable, e.g. `invalid_hook_url`, `not_found`,
    /// `rate_limited`, `internal`.
    pub code: String,
    /// When several fields are wrong: each of them, the first included.
    /// Absent otherwise (`default` tells the schema it may be).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The field, query parameter or path parameter to blame, when one is
    /// (`hookUrl`, `[3].email`, `mangoes[0]`).
    pub field: Option<String>,
    /// For people.
    pub message: String,
}

/// One field at fault, in `error.errors`.
#[derive(Serialize, JsonSchema, Debug, Clone, PartialEq)]
pub struct FieldError {
    pub code: String,
    pub field: String,
    pub message: String,
}

impl ErrorBody {
    fn new(
        code: &str,
        message: String,
        field: Option<String>,
        errors: Vec<FieldError>,
    ) -> Json<Self> {
        Json(ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                errors,
                field,
                message,
            },
        })
    }
}

/// An API error, rendered as `{"error": {"code", "message", "field"}}`.
#[derive(Debug)]
pub enum ApiError {
    /// Something the client can fix.
    Client {
        status: StatusCode,
        code: &'static str,
        message: String,
        field: Option<String>,
        /// Seconds the client should wait before trying again (`Retry-After`).
        retry_after: Option<u64>,
        /// Close the connection after answering (`Connection: close`), for a
        /// request whose body was not read to its end.
        close: bool,
        /// Every field at fault when there are several (this one first).
        errors: Vec<FieldError>,
    },
    /// Something we must fix; the cause goes to the log, not the client.
    Internal(anyhow::Error),
}

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// A client error without a field.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Client {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
            close: false,
            errors: Vec::new(),
        }
    }

    /// A 429 telling the client to wait `wait` (rounded up to whole
    /// seconds, at least one) before trying again.
    pub fn rate_limited(message: impl Into<String>, wait: std::time::Duration) -> Self {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        ApiError::Client {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "rate_limited",
            message: message.into(),
            field: None,
            retry_after: Some(secs.max(1)),
            close: false,
            errors: Vec::new(),
        }
    }

    /// 409: the same idempotent request is still running; try again in a
    /// second.
    pub fn in_progress(message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::CONFLICT, "idempotency_key_in_use", message);
        if let ApiError::Client { retry_after, .. } = &mut e {
            *retry_after = Some(1);
        }
        e
    }

    /// A 408: the request's body did not arrive in time. The connection is
    /// closed after the answer, as the rest of the body may still be coming.
    pub fn request_timeout() -> Self {
        ApiError::Client {
            status: StatusCode::REQUEST_TIMEOUT,
            code: "request_timeout",
            message: "the request body did not arrive in time".into(),
            field: None,
            retry_after: None,
            close: true,
            errors: Vec::new(),
        }
    }

    /// A 422 about one field's value.
    pub fn invalid(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message).on(field)
    }

    /// A 404 naming what was not found.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// The answer to a store call that looked up `what`: only
    /// [`StoreError::NotFound`] is a 404. Anything else keeps its own
    /// answer (a conflict is a 409; a failure a 500, logged with its cause),
    /// so a database that fails is never reported as a missing record.
    pub fn lookup(what: &'static str) -> impl FnOnce(StoreError) -> Self {
        move |e| match e {
            StoreError::NotFound => Self::not_found(what),
            other => other.into(),
        }
    }

    /// Puts the field to blame inside a container, e.g. `[3]` + `email`
    /// gives `[3].email`.
    pub fn within(self, prefix: &str) -> Self {
        self.map_field(|field| match field {
            Some(f) => format!("{prefix}.{f}"),
            None => prefix.to_owned(),
        })
    }

    /// Names the field to blame.
    pub fn on(self, f: &str) -> Self {
        self.map_field(|_| f.to_owned())
    }

    /// Sets a client error's field (and those of `errors`) from the one
    /// it had.
    fn map_field(mut self, f: impl Fn(Option<String>) -> String) -> Self {
        if let ApiError::Client { field, errors, .. } = &mut self {
            *field = Some(f(field.take()));
            for e in errors.iter_mut() {
                e.field = f(Some(std::mem::take(&mut e.field)));
            }
        }
        self
    }

    /// One answer for several refusals: the first, with every field at
    /// fault listed in `errors` when there are several. An internal error
    /// among them wins: it is ours to fix.
    pub fn all(mut found: Vec<ApiError>) -> Option<Self> {
        if let Some(i) = found
            .iter()
            .position(|e| matches!(e, ApiError::Internal(_)))
        {
            return Some(found.swap_remove(i));
        }
        let listed: Vec<FieldError> = found
            .iter()
            .filter_map(|e| match e {
                ApiError::Client {
                    code,
                    message,
                    field: Some(field),
                    ..
                } => Some(FieldError {
                    code: (*code).to_owned(),
                    field: field.clone(),
                    message: message.clone(),
                }),
                _ => None,
            })
            .collect();
        let mut first = found.into_iter().next()?;
        if let ApiError::Client { errors, .. } = &mut first {
            if listed.len() > 1 {
                *errors = listed;
            }
        }
        Some(first)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found("resource"),
            StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            StoreError::InvalidCursor => ApiError::invalid(
                "invalid_value",
                "after",
                "after is not a cursor this list gave (use the `next` of the page before)",
            ),
            StoreError::Other(e) => ApiError::Internal(e),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        ApiError::Internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Client {
                status,
                code,
                message,
                field,
                retry_after,
                close,
                errors,
            } => {
                let body = ErrorBody::new(code, message, field, errors);
                let mut resp = (status, body).into_response();
                let headers = resp.headers_mut();
                if let Some(secs) = retry_after {
                    headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
                }
                if close {
                    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                resp
            }
            ApiError::Internal(e) => {
                tracing::error!(error = %causes(&e), "request failed");
                let body = ErrorBody::new("internal", "internal error".into(), None, Vec::new());
                (StatusCode::INTERNAL_SERVER_ERROR, body).into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_logged_on_one_line() {
        let db = std::io::Error::other("ERROR: deadlock detected");
        let e = anyhow::Error::new(db).context("db error");
        assert_eq!(causes(&e), "db error: ERROR: deadlock detected");
        // A store error hands the whole chain on, as the handlers log it.
        let e = StoreError::Other(e);
        assert_eq!(causes(&e), "db error: ERROR: deadlock detected");
        assert_eq!(causes(&StoreError::NotFound), "not found");
    }
}
