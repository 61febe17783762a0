//! Property tests of the request bodies' parse path, the one the handlers
//! use: `extract::parse_json` into the handler's body type, then the checks
//! that need no store (`integration::check_subscribe`, `webinars::fields`,
//! `participants::participant`). Whatever arrives (arbitrary bytes, any
//! JSON value, bodies of the right shape whose strings carry NUL, control
//! characters, quotes, odd Unicode), nothing panics, and the answer is a
//! parse or a client error (4xx) with a code, never an internal one.

use super::extract::parse_json;
use super::{integration, participants, webinars};
use crate::domain::payload::iso_millis;
use crate::error::ApiError;
use axum::response::IntoResponse;
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Characters bodies are made of: any Unicode scalar, with NUL and the other
/// control characters, JSON's and URLs' punctuation over-represented.
fn nasty_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => any::<char>(),
        2 => prop::char::range('\0', '\x1f'),
        1 => prop::sample::select(vec![
            '\u{7f}', '"', '\\', '/', '@', ':', '.', '-', '+', ' ', '%', '[', ']',
            '\u{85}', '\u{2028}', '\u{feff}', '\u{10ffff}',
        ]),
        3 => prop::char::range('a', 'z'),
        2 => prop::char::range('0', '9'),
    ]
}

fn nasty_string() -> impl Strategy<Value = String> {
    prop::collection::vec(nasty_char(), 0..40).prop_map(String::from_iter)
}

/// A valid value from `pool`, a nasty string, or a valid value with a
/// nasty character slipped in, so generated bodies get past the first
/// checks often enough to reach the later ones.
fn field_string(pool: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        5 => prop::sample::select(pool).prop_map(str::to_owned),
        1 => nasty_string(),
        1 => (prop::sample::select(pool), any::<prop::sample::Index>(), nasty_char()).prop_map(
            |(v, at, c)| {
                let mut chars: Vec<char> = v.chars().collect();
                chars.insert(at.index(chars.len() + 1), c);
                chars.into_iter().collect()
            }
        ),
    ]
}

const URLS: &[&str] = &[
    "https://example.com/hook",
    "http://hooks.example.com:8080/x?y=1",
    "https://127.0.0.1/hook",
    "https://[::ffff:7f00:1]/",
    "https://localhost./",
];
const EVENTS: &[&str] = &[
    "webinar.reminder.all",
    "webinar.reminder.30min",
    " webinar.reminder.1day ",
];
const IDS: &[&str] = &["0123456789abcdef01234567", ""];
const TEXTS: &[&str] = &[
    "Introduction to Digital Marketing",
    "John Doe",
    " x ",
    "名前",
];
const TIMES: &[&str] = &[
    "2030-03-15T10:00:00.000Z",
    "2030-03-15T11:00:00+05:30",
    "1970-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999Z",
    "9999-12-31T23:59:59-23:59",
    "0000-01-01T00:00:00+23:59",
];
const ZONES: &[&str] = &[
    "+05:30",
    "-09:30",
    "+14:00",
    "Asia/Kolkata",
    "Europe/Berlin",
    "",
];
const EMAILS: &[&str] = &["john@example.com", "a@b", "x@y.z"];
const PHONES: &[&str] = &["1234567890", "+1 (555) 010-0000", ""];

/// Anything at all, for any field: a string or another JSON value.
fn anything() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => nasty_string().prop_map(Value::from),
        1 => any::<u32>().prop_map(Value::from),
        1 => json_value(),
    ]
}

/// A field's value: mostly a string from its pool, now and then anything.
fn field(pool: &'static [&'static str]) -> BoxedStrategy<Value> {
    prop_oneof![9 => field_string(pool).prop_map(Value::from), 1 => anything()].boxed()
}

/// A count field: small numbers mostly, any JSON now and then.
fn count() -> BoxedStrategy<Value> {
    prop_oneof![4 => (0u32..1100).prop_map(Value::from), 1 => anything()].boxed()
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        nasty_string().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((nasty_string(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// An object with each of `fields` (absent now and then), and now and then
/// a key of another name.
fn body(fields: Vec<(&'static str, BoxedStrategy<Value>)>) -> impl Strategy<Value = Value> {
    let present = fields
        .into_iter()
        .map(|(k, v)| prop::option::weighted(0.9, v).prop_map(move |v| (k, v)))
        .collect::<Vec<_>>();
    let extra = prop::collection::vec((nasty_string(), anything()), 0..2);
    (present, prop::bool::weighted(0.1), extra).prop_map(|(present, odd, extra)| {
        let mut m: Map<String, Value> = present
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
            .collect();
        if odd {
            m.extend(extra);
        }
        Value::Object(m)
    })
}

/// Any of: a shaped body, any JSON value, or raw bytes.
fn input(shape: impl Strategy<Value = Value>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => shape.prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

/// A client error with a code, which renders without panicking.
fn client_error(e: ApiError) -> Result<(), TestCaseError> {
    match &e {
        ApiError::Client { status, code, .. } => {
            prop_assert!(status.is_client_error(), "{e:?}");
            prop_assert!(!code.is_empty() && code.is_ascii(), "{e:?}");
        }
        ApiError::Internal(cause) => prop_assert!(false, "internal error: {cause:#}"),
    }
    prop_assert!(e.into_response().status().is_client_error());
    Ok(())
}

fn subscribe() -> impl Strategy<Value = Value> {
    body(vec![
        ("hookUrl", field(URLS)),
        ("event", field(EVENTS)),
        ("webinar", field(IDS)),
        ("mango", field(IDS)),
        ("maxConcurrency", count()),
        ("ratePerSecond", count()),
        ("batchSize", count()),
    ])
}

fn webinar() -> impl Strategy<Value = Value> {
    let mangoes = prop_oneof![
        4 => prop::collection::vec(field(IDS), 0..3).prop_map(Value::Array),
        1 => anything(),
    ];
    body(vec![
        ("creatorId", field(IDS)),
        ("title", field(TEXTS)),
        ("link", field(URLS)),
        ("fromTime", field(TIMES)),
        ("toTime", field(TIMES)),
        ("timezone", field(ZONES)),
        ("mangoes", mangoes.boxed()),
    ])
}

fn participant() -> impl Strategy<Value = Value> {
    body(vec![
        ("name", field(TEXTS)),
        ("email", field(EMAILS)),
        ("phone", field(PHONES)),
        ("timezone", field(ZONES)),
    ])
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
        people in prop::collection::vec(participant(), 0..4),
    ) {
        let bytes = serde_json::to_vec(&people).unwrap();
        match parse_json::<Vec<participants::ParticipantIn>>(&bytes) {
            Err(e) => client_error(e)?,
            Ok(list) => {
                for p in list {
                    if let Err(e) = participants::participant(p) {
                        client_error(e)?;
                    }
                }
            }
        }
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
