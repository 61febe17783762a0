//! The small validators the handlers share: bounded text, instants, time
//! zones, ids in paths and queries. Each refusal names the
//! field at fault, in the API's one error shape.

use crate::api::error::ApiError;
use chrono::{DateTime, Utc};

/// Gathers every field's refusal, so that one answer names them all
/// (`error.errors`) rather than only the first.
#[derive(Default)]
pub struct Findings(Vec<ApiError>);

impl Findings {
    /// The value, or `None` with its refusal kept.
    pub fn check<T>(&mut self, r: Result<T, ApiError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(e);
                None
            }
        }
    }

    /// Keeps a refusal.
    pub fn refuse(&mut self, e: ApiError) {
        self.0.push(e);
    }

    /// Ok when nothing was refused; else the first refusal, listing all.
    pub fn done(self) -> Result<(), ApiError> {
        match ApiError::all(self.0) {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }
}

/// A required, non-blank string of bounded length.
pub fn text(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    let t = value.trim();
    if t.is_empty() {
        return Err(ApiError::invalid(
            "invalid_value",
            field,
            format!("{field} must not be empty"),
        ));
    }
    if t.chars().count() > max {
        return Err(ApiError::invalid(
            "invalid_value",
            field,
            format!("{field} is longer than {max} characters"),
        ));
    }
    Ok(t.to_owned())
}

/// An RFC 3339 instant, within the years tminus can show back.
pub fn instant(field: &str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.to_utc())
        .ok()
        .filter(|t| crate::domain::payload::in_range(*t))
        .ok_or_else(|| {
            ApiError::invalid(
                "invalid_time",
                field,
                format!("{field} must be an ISO 8601 instant between 1970 and 9998 such as 2024-03-15T10:00:00.000Z"),
            )
        })
}

/// A time zone: `±HH:MM` or an IANA name; returned in canonical form.
pub fn zone(field: &str, value: Option<&str>) -> Result<Option<String>, ApiError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse::<crate::domain::Zone>()
            .map(|z| Some(z.to_string()))
            .map_err(|e| ApiError::invalid("invalid_timezone", field, e.to_string())),
    }
}

/// An optional id in a query (`creatorId`): empty means not given; any
/// other shape than an id's is refused, naming the parameter.
pub fn query_id<T: std::str::FromStr>(
    param: &str,
    value: Option<&str>,
) -> Result<Option<T>, ApiError> {
    match value.filter(|v| !v.is_empty()).map(str::parse) {
        None => Ok(None),
        Some(Ok(v)) => Ok(Some(v)),
        Some(Err(_)) => Err(ApiError::invalid(
            "invalid_value",
            param,
            format!("{param} must be an id (24 hex digits)"),
        )),
    }
}
