//! How a list request says which page it wants: `?after=` (the `next` of
//! the page before) and `?limit=` (1 to 1000, 100 when not given), read the
//! same way by every list route. A limit that is not a number is refused by
//! the query parser (400 `invalid_query`); one out of range here (422
//! `invalid_value`); a cursor the list never gave by the store, which owns
//! each list's order (422 `invalid_value` naming `after`).

use crate::api::error::ApiError;
use crate::store::page::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::store::PageRequest;

/// Declares a list's query string: its own filters, then the paging every
/// list takes (`after`, `limit`), documented once here, and `request()`,
/// the page it asks for.
macro_rules! paged_query {
    ($(#[$m:meta])* $vis:vis struct $name:ident {
        $($(#[$fm:meta])* $fvis:vis $f:ident: $t:ty,)*
    }) => {
        #[derive(serde::Deserialize, schemars::JsonSchema)]
        $(#[$m])*
        $vis struct $name {
            $($(#[$fm])* $fvis $f: $t,)*
            /// The previous page's `next`; the first page when absent.
            pub after: Option<String>,
            /// 1 to 1000 items; 100 when not given.
            #[schemars(range(min = 1, max = 1000))]
            pub limit: Option<u32>,
        }

        impl $name {
            /// The page asked for, or why not.
            pub fn request(&self) -> Result<crate::store::PageRequest, crate::api::error::ApiError> {
                crate::api::paging::request(self.after.clone(), self.limit)
            }
        }
    };
}
pub(crate) use paged_query;

paged_query! {
    /// Paging through a list, for a route that takes nothing else.
    #[serde(deny_unknown_fields)]
    pub struct PageQuery {}
}

/// The page asked for by `?after=` and `?limit=`, or why not.
pub fn request(after: Option<String>, limit: Option<u32>) -> Result<PageRequest, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(
            "invalid_value",
            "limit",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        ));
    }
    Ok(PageRequest { after, limit })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_defaults_and_is_bounded() {
        assert_eq!(request(None, None).unwrap().limit, 100);
        assert_eq!(request(None, Some(1000)).unwrap().limit, 1000);
        for bad in [0, 1001] {
            let e = request(None, Some(bad)).unwrap_err();
            assert!(matches!(
                e,
                ApiError::Client { status, field: Some(f), .. }
                    if status == axum::http::StatusCode::UNPROCESSABLE_ENTITY && f == "limit"
            ));
        }
    }
}
