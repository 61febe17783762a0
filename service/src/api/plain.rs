//! The one rule for every string the API takes: no control characters.
//! Every field tminus accepts is a single line (names, titles, emails, URLs,
//! ids, times, zones), so a Unicode control character (category Cc: C0,
//! DEL and C1, NUL included) in one is a mistake or an attack, never data.
//! PostgreSQL cannot even store a NUL, and SQLite would keep it: refusing
//! them at the edge makes both backends answer alike.
//!
//! The rule is applied in two places that between them see every string:
//! [`json`] on each JSON body after parsing, before it is typed (so a new
//! field is covered without anyone remembering to), and [`refuse_in_uri`]
//! on the path and query of every request.

use crate::api::error::ApiError;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// Whether `s` holds no control character.
pub fn is_plain(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

/// The refusal of a string with a control character, naming its field.
fn refused(field: &str) -> ApiError {
    ApiError::invalid(
        "invalid_characters",
        field,
        format!("{field} contains a control character"),
    )
}

/// Refuses a parsed JSON body whose strings hold a control character,
/// naming the first such string by its path (`name`, `mangoes[0]`,
/// `[3].email`), as serde names a field of the wrong type.
pub fn json(v: &Value) -> Result<(), ApiError> {
    match first_impure(v) {
        None => Ok(()),
        Some(path) if path.is_empty() => Err(refused("body")),
        Some(path) => Err(refused(&path)),
    }
}

/// The path of the first string in `v` with a control character.
fn first_impure(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !is_plain(s) => Some(String::new()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, x)| first_impure(x).map(|rest| join(&format!("[{i}]"), &rest))),
        Value::Object(map) => map
            .iter()
            .find_map(|(k, x)| first_impure(x).map(|rest| join(k, &rest))),
        _ => None,
    }
}

/// `name` + `[0]` is `name[0]`; `[3]` + `email` is `[3].email`.
fn join(head: &str, rest: &str) -> String {
    if rest.is_empty() || rest.starts_with('[') {
        format!("{head}{rest}")
    } else if head.is_empty() {
        rest.to_owned()
    } else {
        format!("{head}.{rest}")
    }
}

/// Middleware: a path segment with a control character names nothing that
/// can exist (404, as any malformed id); a query parameter with one is
/// refused with 422 naming the parameter.
pub async fn refuse_in_uri(req: Request, next: Next) -> Response {
    let uri = req.uri();
    let path_ok = uri
        .path()
        .split('/')
        .all(|seg| is_plain(&percent_encoding::percent_decode_str(seg).decode_utf8_lossy()));
    if !path_ok {
        return ApiError::not_found("resource").into_response();
    }
    if let Some(q) = uri.query() {
        let bad =
            url::form_urlencoded::parse(q.as_bytes()).find(|(k, v)| !is_plain(k) || !is_plain(v));
        if let Some((k, _)) = bad {
            return refused(&k).into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn control_characters_are_named_by_their_path() {
        assert!(is_plain("Ünïcode, emoji 🎉 and a line separator\u{2028}"));
        for c in ['\u{0}', '\u{7}', '\t', '\n', '\u{7f}', '\u{85}', '\u{9f}'] {
            assert!(!is_plain(&format!("a{c}b")), "{c:?}");
        }
        let field = |v: Value| match json(&v) {
            Err(ApiError::Client { field, code, .. }) => {
                assert_eq!(code, "invalid_characters");
                field
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(field(json!({"name": "\u{0}"})), Some("name".into()));
        assert_eq!(
            field(json!({"mangoes": ["a", "\u{7f}"]})),
            Some("mangoes[1]".into())
        );
        assert_eq!(
            field(json!([{"a": 1}, {"email": "x\u{85}"}])),
            Some("[1].email".into())
        );
        assert_eq!(field(json!({"a": {"b": "\u{1}"}})), Some("a.b".into()));
        assert!(json(&json!({"name": "fine", "n": 1, "list": ["ok"]})).is_ok());
    }
}
