//! What the body properties generate: strings with NUL, control
//! characters and odd Unicode; bodies of each route's shape whose fields
//! are mostly valid and now and then anything; any JSON value; raw bytes;
//! and the shapes the parse must refuse (a body that is not an object, a
//! key given twice).

use proptest::prelude::*;
use serde_json::{Map, Value};

/// Characters bodies are made of: any Unicode scalar, with NUL and the other
/// control characters, JSON's and URLs' punctuation over-represented.
pub(super) fn nasty_char() -> impl Strategy<Value = char> {
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

pub(super) fn nasty_string() -> impl Strategy<Value = String> {
    prop::collection::vec(nasty_char(), 0..40).prop_map(String::from_iter)
}

/// A valid value from `pool`, a nasty string, or a valid value with a
/// nasty character slipped in, so generated bodies get past the first
/// checks often enough to reach the later ones.
pub(super) fn field_string(pool: &'static [&'static str]) -> impl Strategy<Value = String> {
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
pub(super) fn anything() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => nasty_string().prop_map(Value::from),
        1 => any::<u32>().prop_map(Value::from),
        1 => json_value(),
    ]
}

/// A field's value: mostly a string from its pool, now and then anything.
pub(super) fn field(pool: &'static [&'static str]) -> BoxedStrategy<Value> {
    prop_oneof![9 => field_string(pool).prop_map(Value::from), 1 => anything()].boxed()
}

/// A count field: small numbers mostly, any JSON now and then.
pub(super) fn count() -> BoxedStrategy<Value> {
    prop_oneof![4 => (0u32..1100).prop_map(Value::from), 1 => anything()].boxed()
}

/// Any JSON value, a few levels deep.
pub(super) fn json_value() -> impl Strategy<Value = Value> {
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
pub(super) fn body(
    fields: Vec<(&'static str, BoxedStrategy<Value>)>,
) -> impl Strategy<Value = Value> {
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
pub(super) fn input(shape: impl Strategy<Value = Value>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => shape.prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

/// Anything but a JSON object: any other value, and the shaped bodies'
/// values as an array in the fields' order (which serde would read as the
/// struct, field by field).
pub(super) fn not_an_object() -> impl Strategy<Value = Value> {
    let shaped = prop_oneof![subscribe(), webinar(), participant()]
        .prop_map(|v| Value::Array(v.as_object().unwrap().values().cloned().collect()));
    prop_oneof![
        1 => json_value().prop_filter("not an object", |v| !v.is_object()),
        1 => shaped,
    ]
}

/// `body` as JSON text with one of its keys (picked by `at`) given again,
/// with the value `again`; the key, or `None` when the body has none.
pub(super) fn twice(
    body: &Value,
    at: prop::sample::Index,
    again: &Value,
) -> Option<(String, Vec<u8>)> {
    let m = body.as_object()?;
    let key = m.keys().nth(at.index(m.len().max(1)))?.clone();
    let mut text = serde_json::to_string(body).unwrap();
    text.pop(); // the closing brace
    text.push_str(&format!(",{}:{again}}}", Value::from(key.as_str())));
    Some((key, text.into_bytes()))
}

pub(super) fn subscribe() -> impl Strategy<Value = Value> {
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

pub(super) fn webinar() -> impl Strategy<Value = Value> {
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

pub(super) fn participant() -> impl Strategy<Value = Value> {
    body(vec![
        ("name", field(TEXTS)),
        ("email", field(EMAILS)),
        ("phone", field(PHONES)),
        ("timezone", field(ZONES)),
    ])
}
