//! Reading a JSON body strictly, one way for every route: malformed JSON
//! is a 400 `malformed_json`; a key given twice in any object, at any
//! depth, a 400 `duplicate_key` naming it (serde_json would keep the last,
//! and a proxy in front may have read the first); a body that is not a
//! JSON object a 400 `invalid_type` (serde would take an array for a
//! struct, field by field in order); a string with a control character a
//! 422 (`plain`); then the typing into the route's body type, whose
//! refusals are worded for people (`json_words`), naming the field.
//!
//! Duplicates are found while parsing, in the one pass that builds the
//! parse tree: a key is looked up in the object being built before it is
//! inserted, so the cost stays that of the parse (bulk bodies are large).

use super::json_words::reword;
use crate::api::error::ApiError;
use axum::http::StatusCode;
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Value};
use std::cell::RefCell;

/// Parses a JSON body that must be an object, then [`typed`].
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let dups = Duplicates::default();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = dups
        .seed()
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| {
            dups.refusal()
                .unwrap_or_else(|| json_error(String::new(), e))
        })?;
    typed(value)
}

/// Types a parsed body, which must be a JSON object, after refusing
/// control characters in its strings, with the path of the offending field
/// in the error.
pub fn typed<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(not_an_object(&value));
    }
    super::plain::json(&value)?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        json_error(path, e.into_inner())
    })
}

/// The refusal of a body (or a bulk entry) that is not a JSON object.
fn not_an_object(v: &Value) -> ApiError {
    let got = match v {
        Value::Array(_) => "an array",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "true or false",
        Value::Null => "null",
        Value::Object(_) => "an object",
    };
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_type",
        format!("expected a JSON object, got {got}"),
    )
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
    } else if let Some(what) = crate::domain::ids::NotAnId::recognize(&msg) {
        // A malformed id names nothing that could exist: a 404, as an
        // unknown one is (and as in a path).
        ApiError::not_found(what)
    } else if top {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_type", reword(&msg))
    } else {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_type",
            format!("{path}: {}", reword(&msg)),
        )
        .on(&path)
    }
}

/// Where the parse met a key given twice, if it did: the path to it,
/// innermost first (it is filled in as the error rises).
#[derive(Default)]
pub struct Duplicates(RefCell<Option<Vec<Segment>>>);

/// One step of a path: an object's key or an array's index.
enum Segment {
    Key(String),
    Index(usize),
}

impl Duplicates {
    /// Parses one JSON value, refusing duplicate keys at any depth; the
    /// error it ends in is told apart by [`Duplicates::refusal`].
    pub fn seed(&self) -> Strict<'_> {
        Strict(self)
    }

    /// The 400 `duplicate_key` for the duplicate met, naming it (`hookUrl`,
    /// `mangoes[0].id`), if the parse ended on one; taking it resets.
    pub fn refusal(&self) -> Option<ApiError> {
        let path = self.0.borrow_mut().take()?;
        let mut field = String::new();
        for s in path.iter().rev() {
            match s {
                Segment::Index(i) => field.push_str(&format!("[{i}]")),
                Segment::Key(k) if field.is_empty() => field.push_str(k),
                Segment::Key(k) => {
                    field.push('.');
                    field.push_str(k);
                }
            }
        }
        let message = format!("{field} is given more than once; each key may appear once");
        Some(ApiError::new(StatusCode::BAD_REQUEST, "duplicate_key", message).on(&field))
    }

    /// Keeps `key` as the duplicate met.
    fn found(&self, key: &str) {
        *self.0.borrow_mut() = Some(vec![Segment::Key(key.to_owned())]);
    }

    /// Adds a step to the path of a duplicate found below it.
    fn within(&self, s: impl FnOnce() -> Segment) {
        if let Some(path) = self.0.borrow_mut().as_mut() {
            path.push(s());
        }
    }
}

/// A [`Value`] parsed as serde_json parses one, but refusing an object
/// with a key twice; see [`Duplicates::seed`].
pub struct Strict<'a>(&'a Duplicates);

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // JSON has no NaN nor infinity, so this is always a number.
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        loop {
            match seq.next_element_seed(Strict(self.0)) {
                Ok(Some(v)) => items.push(v),
                Ok(None) => return Ok(Value::Array(items)),
                Err(e) => {
                    self.0.within(|| Segment::Index(items.len()));
                    return Err(e);
                }
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match object.entry(key) {
                Entry::Occupied(e) => {
                    self.0.found(e.key());
                    return Err(de::Error::custom("duplicate key"));
                }
                Entry::Vacant(e) => match map.next_value_seed(Strict(self.0)) {
                    Ok(v) => {
                        e.insert(v);
                    }
                    Err(err) => {
                        self.0.within(|| Segment::Key(e.key().clone()));
                        return Err(err);
                    }
                },
            }
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Pair {
        a: String,
        b: Option<u32>,
        #[serde(default)]
        c: Vec<Value>,
    }

    fn refused(body: &str) -> (StatusCode, &'static str, Option<String>, String) {
        match parse_json::<Pair>(body.as_bytes()) {
            Err(ApiError::Client {
                status,
                code,
                field,
                message,
                ..
            }) => (status, code, field, message),
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn a_key_given_twice_is_refused_at_any_depth() {
        let (s, code, field, msg) = refused(r#"{"a": "x", "a": "y"}"#);
        assert_eq!(
            (s.as_u16(), code, field.as_deref()),
            (400, "duplicate_key", Some("a"))
        );
        assert!(msg.contains("more than once"), "{msg}");
        for (body, at) in [
            (r#"{"a": "x", "c": [1, {"k": 1, "k": 2}]}"#, "c[1].k"),
            (
                r#"{"a": "x", "c": [{"o": {"p": [0, {"q": 1, "q": 1}]}}]}"#,
                "c[0].o.p[1].q",
            ),
            // Found before the rest is read: what follows does not matter.
            (r#"{"a": "x", "a": "y", {{{"#, "a"),
        ] {
            let (_, code, field, _) = refused(body);
            assert_eq!(
                (code, field.as_deref()),
                ("duplicate_key", Some(at)),
                "{body}"
            );
        }
        // Keys equal only after unescaping are the same key.
        let (_, code, _, _) = refused(r#"{"a": "x", "\u0061": "y"}"#);
        assert_eq!(code, "duplicate_key");
        // The same key in two objects is no duplicate.
        assert!(parse_json::<Pair>(br#"{"a": "x", "c": [{"k": 1}, {"k": 2}]}"#).is_ok());
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused_in_plain_words() {
        for (body, got) in [
            (r#"["x", 1, []]"#, "an array"),
            (r#"["x", 1]"#, "an array"),
            (r#""x""#, "a string"),
            ("7", "a number"),
            ("true", "true or false"),
            ("null", "null"),
        ] {
            let (s, code, field, msg) = refused(body);
            assert_eq!(
                (s.as_u16(), code, field),
                (400, "invalid_type", None),
                "{body}"
            );
            assert_eq!(msg, format!("expected a JSON object, got {got}"));
        }
    }

    #[test]
    fn a_field_of_the_wrong_type_is_named_in_plain_words() {
        for (body, field, msg) in [
            (r#"{"a": 1}"#, "a", "a: expected a string, got 1"),
            (
                r#"{"a": "x", "b": -1}"#,
                "b",
                "b: expected a whole number from 0 to 4294967295, got -1",
            ),
            (
                r#"{"a": "x", "c": {}}"#,
                "c",
                "c: expected an array, got an object",
            ),
        ] {
            let (_, code, f, m) = refused(body);
            assert_eq!(
                (code, f.as_deref(), m.as_str()),
                ("invalid_type", Some(field), msg)
            );
        }
    }
}
