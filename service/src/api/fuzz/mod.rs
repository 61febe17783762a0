//! Property tests of the request bodies' parse path, the one the handlers
//! use: `extract::parse_json` into the handler's body type, then the checks
//! that need no store (`integration::check_subscribe`, `webinars::fields`,
//! `participants::participant`). Whatever arrives (arbitrary bytes, any
//! JSON value, bodies of the right shape whose strings carry NUL, control
//! characters, quotes, odd Unicode), nothing panics, and the answer is a
//! parse or a client error (4xx) with a code, never an internal one, and
//! worded without serde's or Rust's terms (struct names, `invalid length`,
//! `u32`). A body that is not a JSON object (the fields' values as an array
//! in their order included) is a 400 `invalid_type`, and one with a key
//! given twice a 400 `duplicate_key` naming it. The generators are in
//! `bodies`.

use super::bulk;
use super::extract::parse_json;
use super::{integration, participants, webinars};
use crate::api::error::ApiError;
use crate::domain::payload::iso_millis;
use axum::response::IntoResponse;
use proptest::prelude::*;
use serde_json::Value;

mod bodies;
use bodies::*;

/// A client error with a code, worded in [`plain_words`], which renders
/// without panicking.
fn client_error(e: ApiError) -> Result<(), TestCaseError> {
    match &e {
        ApiError::Client {
            status,
            code,
            message,
            field,
            errors,
            ..
        } => {
            prop_assert!(status.is_client_error(), "{e:?}");
            prop_assert!(!code.is_empty() && code.is_ascii(), "{e:?}");
            plain_words(message, field.as_deref())?;
            for f in errors {
                plain_words(&f.message, Some(&f.field))?;
            }
        }
        ApiError::Internal(cause) => prop_assert!(false, "internal error: {cause:#}"),
    }
    prop_assert!(e.into_response().status().is_client_error());
    Ok(())
}

/// serde's and Rust's words, which mean nothing to a client.
const INTERNAL_WORDS: &[&str] = &[
    "struct", "elements", "sequence", "variant", "unit", "option", "newtype", "tuple", "serde",
    "u8", "u16", "u32", "u64", "usize", "i8", "i16", "i32", "i64", "isize", "f32", "f64",
];
const INTERNAL_PHRASES: &[&str] = &[
    "invalid length",
    "invalid type",
    "invalid value",
    "floating point",
    "digit found",
];

/// A message says what is wrong in the API's terms: none of serde's or
/// Rust's words, apart from what it quotes of the request (between
/// backticks, or the field it names).
fn plain_words(message: &str, field: Option<&str>) -> Result<(), TestCaseError> {
    let mut ours: String = message.split('`').step_by(2).collect();
    if let Some(f) = field.filter(|f| !f.is_empty()) {
        // The field as the message names it: whole (`[0].name.i8`), or
        // without the entry's index (`name.i8`).
        ours = ours.replace(f, " ");
        if let Some((_, path)) = f.split_once("].") {
            ours = ours.replace(path, " ");
        }
    }
    let lower = ours.to_lowercase();
    for p in INTERNAL_PHRASES {
        prop_assert!(!lower.contains(p), "{p:?} in {message:?}");
    }
    for w in lower.split(|c: char| !c.is_alphanumeric()) {
        prop_assert!(!INTERNAL_WORDS.contains(&w), "{w:?} in {message:?}");
    }
    Ok(())
}

/// The refusal `code` (400), naming `field` when given.
fn refused_as(
    got: Result<impl Sized, ApiError>,
    code: &str,
    field: Option<&str>,
) -> Result<(), TestCaseError> {
    match got {
        Err(ApiError::Client {
            status,
            code: c,
            field: f,
            message,
            ..
        }) => {
            prop_assert_eq!((status.as_u16(), c), (400, code), "{}", message);
            if field.is_some() {
                prop_assert_eq!(f.as_deref(), field, "{}", message);
            }
            if code == "invalid_type" {
                prop_assert!(message.starts_with("expected a JSON object"), "{message}");
            }
            plain_words(&message, f.as_deref())
        }
        Err(e) => Err(TestCaseError::fail(format!("{e:?}"))),
        Ok(_) => Err(TestCaseError::fail(format!("{code} was accepted"))),
    }
}

proptest! {
    #[test]
    fn subscribe_bodies_parse_or_answer_a_client_error(
        bytes in input(subscribe()),
        allow_http in any::<bool>(),
    ) {
        let mut cfg = crate::config::Config::defaults();
        cfg.allow_http = allow_http;
        let guard = crate::delivery::guard::Policy::on(vec![]);
        match parse_json::<integration::Subscribe>(&bytes) {
            Err(e) => client_error(e)?,
            Ok(b) => match integration::check_subscribe(&b, &cfg, &cfg.reminder_offsets, &guard) {
                Err(e) => client_error(e)?,
                Ok(c) => {
                    // Only what the guard lets through, over an allowed scheme.
                    let url = c.hook.url();
                    prop_assert!(guard.check_url(url).is_ok(), "{}", url);
                    prop_assert!(url.scheme() == "https" || allow_http, "{}", url);
                }
            },
        }
    }

    #[test]
    fn webinar_bodies_parse_or_answer_a_client_error(bytes in input(webinar())) {
        match parse_json::<webinars::NewWebinar>(&bytes) {
            Err(e) => client_error(e)?,
            Ok(b) => match webinars::fields(b) {
                Err(e) => client_error(e)?,
                Ok((f, _)) => {
                    prop_assert!(!f.title.is_empty() && f.title.chars().count() <= 500);
                    // Every instant accepted is shown back in a form that
                    // parses to it (the payload's and the API's times).
                    for t in [f.from_time, f.to_time] {
                        let shown = iso_millis(t);
                        let back = chrono::DateTime::parse_from_rfc3339(&shown);
                        prop_assert!(back.is_ok(), "{t:?} is shown as {shown}");
                    }
                }
            },
        }
    }

    #[test]
    fn participant_bodies_parse_or_answer_a_client_error(bytes in input(participant())) {
        match parse_json::<participants::ParticipantIn>(&bytes) {
            Err(e) => client_error(e)?,
            Ok(p) => match participants::participant(p) {
                Err(e) => client_error(e)?,
                Ok(p) => {
                    prop_assert!(p.email.contains('@'));
                    prop_assert!(!p.email.contains(char::is_whitespace));
                    prop_assert!(!p.name.is_empty());
                }
            },
        }
    }

    #[test]
    fn bulk_bodies_parse_or_answer_a_client_error(
        people in prop::collection::vec(
            prop_oneof![6 => participant(), 1 => not_an_object(), 1 => json_value()],
            0..4,
        ),
    ) {
        let bytes = serde_json::to_vec(&people).unwrap();
        let limits = bulk::Limits { bytes: 1 << 20, entries: 10, what: "participants" };
        let stop = Default::default();
        match bulk::array(&bytes[..], stop, limits, participants::participant) {
            Err(e) => client_error(e)?,
            Ok(list) => {
                prop_assert!(people.iter().all(Value::is_object));
                for p in list {
                    prop_assert!(p.email.contains('@'));
                }
            }
        }
    }

    #[test]
    fn bodies_that_are_not_objects_are_refused_as_such(v in not_an_object()) {
        let bytes = serde_json::to_vec(&v).unwrap();
        refused_as(parse_json::<integration::Subscribe>(&bytes), "invalid_type", None)?;
        refused_as(parse_json::<webinars::NewWebinar>(&bytes), "invalid_type", None)?;
        refused_as(parse_json::<participants::ParticipantIn>(&bytes), "invalid_type", None)?;
    }

    #[test]
    fn a_key_given_twice_is_refused_naming_it(
        body in prop_oneof![subscribe(), webinar(), participant()],
        at in any::<prop::sample::Index>(),
        again in anything(),
    ) {
        let Some((key, bytes)) = twice(&body, at, &again) else {
            return Ok(());
        };
        let k = Some(key.as_str());
        refused_as(parse_json::<integration::Subscribe>(&bytes), "duplicate_key", k)?;
        refused_as(parse_json::<webinars::NewWebinar>(&bytes), "duplicate_key", k)?;
        refused_as(parse_json::<participants::ParticipantIn>(&bytes), "duplicate_key", k)?;
    }
}

/// Found by the webinar property: an instant whose UTC form has a
/// five-digit year was accepted, then shown as `+10000-01-01T…`, which no
/// client parses. Times are now refused outside 1970–9998.
#[test]
fn webinar_times_the_api_cannot_show_back_are_refused() {
    for t in [
        "9999-12-31T23:59:59-23:59",
        "9999-06-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
    ] {
        let body = serde_json::json!({
            "creatorId": "0123456789abcdef01234567", "title": "t",
            "link": "https://example.com", "fromTime": t, "toTime": t,
        });
        let b = parse_json::<webinars::NewWebinar>(body.to_string().as_bytes()).unwrap();
        match webinars::fields(b) {
            Err(ApiError::Client { code, field, .. }) => {
                assert_eq!(
                    (code, field.as_deref()),
                    ("invalid_time", Some("fromTime")),
                    "{t}"
                );
            }
            other => panic!("{t}: {:?}", other.map(|f| f.0.from_time)),
        }
    }
}

/// Found by the fuzzer: a control character under a key of an object
/// where a string belongs is refused naming the path, and the message's
/// path (the entry's, without its index) is the client's own words.
#[test]
fn a_control_character_deep_in_a_bulk_entry_is_named_in_plain_words() {
    let bytes = br#"[{"name":{"i8":"\u0000"}}]"#;
    let limits = bulk::Limits {
        bytes: 1 << 20,
        entries: 10,
        what: "participants",
    };
    let found = bulk::array(
        &bytes[..],
        Default::default(),
        limits,
        participants::participant,
    );
    let Err(e) = found else {
        panic!("accepted");
    };
    client_error(e).unwrap();
}
