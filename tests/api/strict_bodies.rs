//! One reading of a request, whoever reads it: a body that is not a JSON
//! object is refused on every route that takes one (serde would read an
//! array as the fields in order), as is an object with a key twice at any
//! depth (serde_json keeps the last; a proxy in front may have read the
//! first), and a credential or idempotency key sent in two headers. Each
//! is a 400 with a stable code, worded without serde's terms, and writes
//! nothing.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;

const HOOKS: &str = "/api/v1/integration/webhook/webhook";
const PLATFORM: &str = "/api/v1/platform";

/// Request headers, as (name, value).
type Headers<'a> = [(&'a str, &'a str)];

/// Sends `body` to `path` with `headers` (as JSON unless they say).
async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, Value) {
    let mut req = app
        .http
        .request(method, format!("{}{path}", app.base))
        .body(body.to_owned());
    if !headers.iter().any(|(k, _)| *k == "content-type") {
        req = req.header("content-type", "application/json");
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// A 400 with `code`, naming `field` when given, its message free of
/// serde's terms.
fn assert_refused(got: &(StatusCode, Value), code: &str, field: Option<&str>) -> String {
    let (s, b) = got;
    assert_eq!(s.as_u16(), 400, "{b}");
    assert_eq!(b["error"]["code"], code, "{b}");
    assert_eq!(b["error"]["field"].as_str(), field, "{b}");
    let msg = b["error"]["message"].as_str().unwrap().to_owned();
    for internal in [
        "struct",
        "invalid length",
        "elements",
        "sequence",
        "Subscribe",
    ] {
        assert!(!msg.contains(internal), "{internal:?} in {msg:?}");
    }
    msg
}

fn bearer() -> String {
    format!("Bearer {ADMIN}")
}

/// The rows the refused requests could have written.
fn rows(app: &TestApp) -> [i64; 4] {
    ["creators", "subscriptions", "webinars", "participants"].map(|t| app.count(t))
}

#[tokio::test]
async fn arrays_and_other_non_objects_are_refused_on_every_json_route() {
    let app = spawn_app().await;
    let (cid, key) = app.creator().await;
    let wid = app.webinar(&cid, 3600).await;
    let sub = app.subscribe(&key, "https://example.com/hook", None).await;
    let sid = sub["id"].as_str().unwrap();
    let before = rows(&app);

    let admin = bearer();
    let as_admin = [("authorization", admin.as_str())];
    let as_integrator = [("x-api-key", key.as_str())];
    let routes: Vec<(Method, String, &Headers)> = vec![
        (Method::POST, HOOKS.into(), &as_integrator),
        (Method::PATCH, format!("{HOOKS}/{sid}"), &as_integrator),
        (
            Method::POST,
            format!("{HOOKS}/{sid}/replay"),
            &as_integrator,
        ),
        (Method::POST, format!("{PLATFORM}/creators"), &as_admin),
        (
            Method::POST,
            format!("{PLATFORM}/creators/{cid}/api-keys"),
            &as_admin,
        ),
        (
            Method::POST,
            format!("{PLATFORM}/creators/{cid}/mangoes"),
            &as_admin,
        ),
        (Method::POST, format!("{PLATFORM}/webinars"), &as_admin),
        (
            Method::PATCH,
            format!("{PLATFORM}/webinars/{wid}"),
            &as_admin,
        ),
        (
            Method::POST,
            format!("{PLATFORM}/webinars/{wid}/reschedule"),
            &as_admin,
        ),
        (
            Method::POST,
            format!("{PLATFORM}/webinars/{wid}/participants"),
            &as_admin,
        ),
        (
            Method::POST,
            format!("{PLATFORM}/subscriptions/{sid}/replay"),
            &as_admin,
        ),
    ];
    for (method, path, headers) in &routes {
        for (body, got) in [
            (r#"["Array Co", null]"#, "an array"),
            (r#"[]"#, "an array"),
            (r#""Array Co""#, "a string"),
            ("7", "a number"),
            ("null", "null"),
        ] {
            let answer = raw(&app, method.clone(), path, headers, body).await;
            let msg = assert_refused(&answer, "invalid_type", None);
            assert_eq!(
                msg,
                format!("expected a JSON object, got {got}"),
                "{method} {path}"
            );
        }
    }
    // The issue's bodies: the subscription's fields in order, and a
    // creator's; and a shorter array, which serde answered in its terms.
    let seven = r#"["https://x.example.com/h","webinar.reminder.all",null,null,null,null,null]"#;
    let r = raw(&app, Method::POST, HOOKS, &as_integrator, seven).await;
    assert_refused(&r, "invalid_type", None);
    let r = raw(
        &app,
        Method::POST,
        HOOKS,
        &as_integrator,
        r#"["https://x.example.com/h", "e"]"#,
    )
    .await;
    assert_refused(&r, "invalid_type", None);
    // A bulk registration is an array of objects: an entry that is an
    // array is refused, named by its index.
    let bulk = format!("{PLATFORM}/webinars/{wid}/participants/bulk");
    let entries = r#"[{"name": "A", "email": "a@example.com"}, ["B", "b@example.com"]]"#;
    let r = raw(&app, Method::POST, &bulk, &as_admin, entries).await;
    assert_eq!(
        assert_refused(&r, "invalid_type", Some("[1]")),
        "expected a JSON object, got an array"
    );
    assert_eq!(rows(&app), before, "nothing written");
}

#[tokio::test]
async fn a_key_given_twice_is_refused_at_any_depth() {
    let app = spawn_app().await;
    let (cid, key) = app.creator().await;
    let wid = app.webinar(&cid, 3600).await;
    let before = rows(&app);
    let as_integrator = [("x-api-key", key.as_str())];
    let admin = bearer();
    let as_admin = [("authorization", admin.as_str())];

    let twice = r#"{"hookUrl": "https://a.example/1", "hookUrl": "https://a.example/2",
        "event": "webinar.reminder.all"}"#;
    let r = raw(&app, Method::POST, HOOKS, &as_integrator, twice).await;
    let msg = assert_refused(&r, "duplicate_key", Some("hookUrl"));
    assert!(msg.contains("more than once"), "{msg}");
    // The same with the second spelled with an escape: one key still.
    let escaped = r#"{"hookUrl": "https://a.example/1", "hook\u0055rl": "https://a.example/2",
        "event": "webinar.reminder.all"}"#;
    let r = raw(&app, Method::POST, HOOKS, &as_integrator, escaped).await;
    assert_refused(&r, "duplicate_key", Some("hookUrl"));

    let r = raw(
        &app,
        Method::POST,
        &format!("{PLATFORM}/creators"),
        &as_admin,
        r#"{"name": "A", "timezone": "+05:30", "name": "B"}"#,
    )
    .await;
    assert_refused(&r, "duplicate_key", Some("name"));
    // Inside a value: named by its path.
    let r = raw(
        &app,
        Method::POST,
        &format!("{PLATFORM}/webinars"),
        &as_admin,
        &format!(
            r#"{{"creatorId": "{cid}", "title": "t", "link": "https://example.com",
            "fromTime": "2030-01-01T10:00:00Z", "toTime": "2030-01-01T11:00:00Z",
            "mangoes": [{{"id": 1, "id": 2}}]}}"#
        ),
    )
    .await;
    assert_refused(&r, "duplicate_key", Some("mangoes[0].id"));
    // In a bulk entry, and in an NDJSON line.
    let bulk = format!("{PLATFORM}/webinars/{wid}/participants/bulk");
    let entries = r#"[{"name": "A", "email": "a@example.com"},
        {"name": "B", "email": "b@example.com", "email": "c@example.com"}]"#;
    let r = raw(&app, Method::POST, &bulk, &as_admin, entries).await;
    assert_refused(&r, "duplicate_key", Some("[1].email"));
    let lines = "{\"name\": \"A\", \"email\": \"a@example.com\"}\n\
        {\"name\": \"B\", \"name\": \"C\", \"email\": \"b@example.com\"}\n";
    let r = raw(
        &app,
        Method::POST,
        &bulk,
        &[
            ("authorization", admin.as_str()),
            ("content-type", "application/x-ndjson"),
        ],
        lines,
    )
    .await;
    assert_refused(&r, "duplicate_key", Some("line 2"));
    assert_eq!(rows(&app), before, "nothing written");
}

#[tokio::test]
async fn a_credential_or_idempotency_key_sent_twice_is_refused() {
    let app = spawn_app().await;
    let (_, key) = app.creator().await;
    let (_, other) = app.creator().await;
    let before = rows(&app);
    let sub = r#"{"hookUrl": "https://example.com/hook", "event": "webinar.reminder.all"}"#;

    // Twice the same key, or a good one and another: neither is chosen.
    for second in [key.as_str(), other.as_str(), "tmk_wrong"] {
        let r = raw(
            &app,
            Method::POST,
            HOOKS,
            &[("x-api-key", &key), ("x-api-key", second)],
            sub,
        )
        .await;
        assert_refused(&r, "duplicate_header", Some("x-api-key"));
    }
    let creator = r#"{"name": "Twice"}"#;
    let admin = bearer();
    let creators = format!("{PLATFORM}/creators");
    for second in [admin.as_str(), "Bearer wrong"] {
        let headers = [("authorization", admin.as_str()), ("authorization", second)];
        let r = raw(&app, Method::POST, &creators, &headers, creator).await;
        assert_refused(&r, "duplicate_header", Some("authorization"));
    }
    let headers = [
        ("authorization", admin.as_str()),
        ("idempotency-key", "k1"),
        ("idempotency-key", "k2"),
    ];
    let r = raw(&app, Method::POST, &creators, &headers, creator).await;
    assert_refused(&r, "duplicate_header", Some("idempotency-key"));
    assert_eq!(rows(&app), before, "nothing written");

    // Once each, the same requests pass.
    let r = raw(&app, Method::POST, HOOKS, &[("x-api-key", &key)], sub).await;
    assert_eq!(r.0, StatusCode::CREATED, "{}", r.1);
    let r = raw(&app, Method::POST, &creators, &headers[..2], creator).await;
    assert_eq!(r.0, StatusCode::CREATED, "{}", r.1);
}
