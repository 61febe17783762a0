//! Every way the API refuses input: the status, the stable code, the field
//! to blame, and that nothing was written.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const HOOKS: &str = "/api/v1/integration/webhook/webhook";

fn assert_error(got: &(StatusCode, Value), status: u16, code: &str, field: Option<&str>) {
    let (s, b) = got;
    assert_eq!(s.as_u16(), status, "{b}");
    assert_eq!(b["error"]["code"], code, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{b}"
    );
    if let Some(f) = field {
        assert_eq!(b["error"]["field"], f, "{b}");
    }
}

/// Sends a raw body to the subscribe endpoint.
async fn raw(app: &TestApp, key: &str, body: &str) -> (StatusCode, Value) {
    let r = app
        .http
        .post(format!("{}{HOOKS}", app.base))
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn subscribe_refusals_write_nothing() {
    let app = spawn_with(|c| c.allow_http = false).await;
    let (cid, key) = app.creator().await;
    let (other, _) = app.creator().await;
    let theirs = app.webinar(&other, 3600).await;
    let mine = app.webinar(&cid, 3600).await;
    let good = |extra: Value| {
        let mut b = json!({"hookUrl": "https://example.com/hook", "event": "webinar.reminder.all"});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    assert_error(
        &app.call(Method::POST, HOOKS, Auth::None, Some(good(json!({}))))
            .await,
        401,
        "missing_api_key",
        None,
    );
    assert_error(
        &app.call(
            Method::POST,
            HOOKS,
            Auth::Key("tmk_wrong"),
            Some(good(json!({}))),
        )
        .await,
        401,
        "invalid_api_key",
        None,
    );
    assert_error(
        &raw(&app, &key, "{\"hookUrl\": ").await,
        400,
        "malformed_json",
        None,
    );
    assert_error(&raw(&app, &key, "").await, 400, "malformed_json", None);
    assert_error(&raw(&app, &key, "[1, 2]").await, 400, "invalid_type", None);
    let hooks = |b: Value| app.hooks(Method::POST, &key, "", Some(b));
    assert_error(
        &hooks(json!({"event": "webinar.reminder.all"})).await,
        400,
        "missing_field",
        Some("hookUrl"),
    );
    assert_error(
        &hooks(json!({"hookUrl": "https://example.com/hook"})).await,
        400,
        "missing_field",
        Some("event"),
    );
    assert_error(
        &hooks(good(json!({"webinarId": mine}))).await,
        400,
        "unknown_field",
        Some("webinarId"),
    );
    assert_error(
        &hooks(good(json!({"hookUrl": 42}))).await,
        400,
        "invalid_type",
        Some("hookUrl"),
    );
    assert_error(
        &hooks(good(json!({"event": "webinar.reminder.2h"}))).await,
        422,
        "unknown_event",
        Some("event"),
    );
    assert_error(
        &hooks(good(json!({"event": "webinar.created"}))).await,
        422,
        "unknown_event",
        Some("event"),
    );
    assert_error(
        &hooks(good(json!({"hookUrl": "<your webhook url>"}))).await,
        422,
        "invalid_hook_url",
        Some("hookUrl"),
    );
    assert_error(
        &hooks(good(json!({"hookUrl": "http://example.com/hook"}))).await,
        422,
        "invalid_hook_url",
        Some("hookUrl"),
    );
    assert_error(
        &hooks(good(json!({"webinar": theirs}))).await,
        404,
        "not_found",
        Some("webinar"),
    );
    assert_error(
        &hooks(good(json!({"webinar": "not-an-id"}))).await,
        422,
        "invalid_webinar_id",
        Some("webinar"),
    );
    assert_error(
        &hooks(good(json!({"mango": "634fc35ddaf58580e2418c40"}))).await,
        404,
        "not_found",
        Some("mango"),
    );
    assert_error(
        &hooks(good(json!({"maxConcurrency": 0}))).await,
        422,
        "invalid_value",
        Some("maxConcurrency"),
    );
    let big = format!(
        "{{\"hookUrl\": \"https://example.com/{}\", \"event\": \"webinar.reminder.all\"}}",
        "a".repeat(70_000)
    );
    let over = raw(&app, &key, &big).await;
    assert_error(&over, 413, "payload_too_large", None);
    // The answer gives the limit: nothing else tells a client what it is.
    assert_eq!(
        over.1["error"]["message"],
        "request body is over the limit of 65536 bytes (64 KiB)"
    );
    assert_eq!(app.count("subscriptions"), 0);

    // A revoked key stops working at once.
    let (_, keys) = app
        .admin(Method::GET, &format!("/creators/{cid}/api-keys"), None)
        .await;
    let kid = keys["data"][0]["id"].as_str().unwrap().to_owned();
    let (s, _) = app
        .admin(
            Method::DELETE,
            &format!("/creators/{cid}/api-keys/{kid}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_error(&hooks(good(json!({}))).await, 401, "invalid_api_key", None);
    assert_eq!(app.count("subscriptions"), 0);
}

#[tokio::test]
async fn subscription_routes_hide_other_creators_subscriptions() {
    let app = spawn_app().await;
    let (_, mine) = app.creator().await;
    let (_, theirs) = app.creator().await;
    let sub = app.subscribe(&theirs, "http://127.0.0.1:9/x", None).await;
    let sid = sub["id"].as_str().unwrap();
    for (m, path) in [
        (Method::GET, format!("/{sid}")),
        (Method::DELETE, format!("/{sid}")),
        (Method::POST, format!("/{sid}/test")),
        (Method::GET, format!("/{sid}/deliveries")),
    ] {
        assert_error(
            &app.hooks(m, &mine, &path, None).await,
            404,
            "not_found",
            None,
        );
    }
    assert_error(
        &app.hooks(Method::GET, &mine, "/nonsense", None).await,
        404,
        "not_found",
        None,
    );
    assert_eq!(app.count("deliveries"), 0);
}

#[tokio::test]
async fn api_keys_are_rate_limited() {
    let app = spawn_with(|c| c.api_rate = 2).await;
    let (_, key) = app.creator().await;
    let mut codes = vec![];
    for _ in 0..10 {
        codes.push(app.hooks(Method::GET, &key, "", None).await);
    }
    let limited = codes
        .iter()
        .find(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .expect("a 429");
    assert_error(limited, 429, "rate_limited", None);
}

#[tokio::test]
async fn platform_refusals_write_nothing() {
    let app = spawn_app().await;
    let (cid, _) = app.creator().await;
    assert_error(
        &app.call(
            Method::POST,
            "/api/v1/platform/creators",
            Auth::None,
            Some(json!({"name": "x"})),
        )
        .await,
        401,
        "missing_token",
        None,
    );
    let wrong = app
        .http
        .post(format!("{}/api/v1/platform/creators", app.base))
        .bearer_auth("nope")
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_error(
        &app.admin(Method::POST, "/creators", Some(json!({"name": " "})))
            .await,
        422,
        "invalid_value",
        Some("name"),
    );
    assert_error(
        &app.admin(
            Method::POST,
            "/creators",
            Some(json!({"name": "x", "timezone": "Mars/Base"})),
        )
        .await,
        422,
        "invalid_timezone",
        Some("timezone"),
    );
    assert_eq!(app.count("creators"), 1);

    let from = app.clock.now() + chrono::Duration::hours(2);
    let webinar = |extra: Value| {
        let mut b = json!({"creatorId": cid, "title": "T", "link": "https://meet.example.com/x", "fromTime": iso(from), "toTime": iso(from + chrono::Duration::hours(1))});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        app.admin(Method::POST, "/webinars", Some(b))
    };
    assert_error(
        &webinar(json!({"fromTime": "tomorrow"})).await,
        422,
        "invalid_time",
        Some("fromTime"),
    );
    assert_error(
        &webinar(json!({"toTime": iso(from)})).await,
        422,
        "invalid_time",
        Some("toTime"),
    );
    assert_error(
        &webinar(json!({"timezone": "+25:00"})).await,
        422,
        "invalid_timezone",
        Some("timezone"),
    );
    assert_error(
        &webinar(json!({"link": "meet"})).await,
        422,
        "invalid_link",
        Some("link"),
    );
    assert_error(
        &webinar(json!({"mangoes": ["634fc35ddaf58580e2418c40"]})).await,
        422,
        "unknown_mango",
        Some("mangoes[0]"),
    );
    assert_error(
        &webinar(json!({"creatorId": "634fc35ddaf58580e2418c40"})).await,
        404,
        "not_found",
        None,
    );
    assert_error(
        &webinar(json!({"start": "x"})).await,
        400,
        "unknown_field",
        Some("start"),
    );
    assert_eq!((app.count("webinars"), app.count("reminders")), (0, 0));

    let wid = app.webinar(&cid, 3600).await;
    let one = format!("/webinars/{wid}/participants");
    let reg = |body: Value| app.admin(Method::POST, &one, Some(body));
    assert_error(
        &reg(json!({"name": "A", "email": "not-an-email"})).await,
        422,
        "invalid_email",
        Some("email"),
    );
    assert_error(
        &reg(json!({"name": "A", "email": "a@example.com", "timezone": "Nowhere"})).await,
        422,
        "invalid_timezone",
        Some("timezone"),
    );
    assert_error(
        &reg(json!({"name": "A", "email": "a@example.com", "phone": 123})).await,
        400,
        "invalid_type",
        Some("phone"),
    );
    let bulk = json!([{"name": "A", "email": "a@example.com"}, {"name": "B", "email": "bad"}]);
    assert_error(
        &app.admin(
            Method::POST,
            &format!("/webinars/{wid}/participants/bulk"),
            Some(bulk),
        )
        .await,
        422,
        "invalid_email",
        Some("[1].email"),
    );
    let nd = app
        .http
        .post(format!(
            "{}/api/v1/platform/webinars/{wid}/participants/bulk",
            app.base
        ))
        .bearer_auth(ADMIN)
        .header("content-type", "application/x-ndjson")
        .body("{\"name\": \"A\", \"email\": \"a@example.com\"}\n{\"name\": \"B\"\n")
        .send()
        .await
        .unwrap();
    assert_eq!(nd.status(), StatusCode::BAD_REQUEST);
    let nd: Value = nd.json().await.unwrap();
    assert_eq!(nd["error"]["field"], "line 2");
    assert_eq!(app.count("participants"), 0);
    assert_error(
        &app.admin(Method::GET, "/webinars/634fc35ddaf58580e2418c40", None)
            .await,
        404,
        "not_found",
        None,
    );
}

#[tokio::test]
async fn bulk_registration_takes_json_and_ndjson_and_is_idempotent() {
    let app = spawn_app().await;
    let (cid, _) = app.creator().await;
    let wid = app.webinar(&cid, 3600).await;
    let people: Vec<Value> = (0..10_000).map(|i| json!({"name": format!("P{i}"), "email": format!("p{i}@example.com"), "phone": "1"})).collect();
    let (s, sum) = app
        .admin(
            Method::POST,
            &format!("/webinars/{wid}/participants/bulk"),
            Some(json!(people)),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{sum}");
    assert_eq!(sum, json!({"created": 10_000, "existing": 0}));
    let nd: String = (9_990..10_010)
        .map(|i| format!("{{\"name\": \"P{i}\", \"email\": \"P{i}@EXAMPLE.com\"}}\n"))
        .collect();
    let r = app
        .http
        .post(format!(
            "{}/api/v1/platform/webinars/{wid}/participants/bulk",
            app.base
        ))
        .bearer_auth(ADMIN)
        .header("content-type", "application/x-ndjson")
        .body(nd)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"created": 10, "existing": 10})
    );
    // Paging walks every participant once.
    let mut seen = 0;
    let mut after = String::new();
    loop {
        let (_, page) = app
            .admin(
                Method::GET,
                &format!("/webinars/{wid}/participants?limit=1000&after={after}"),
                None,
            )
            .await;
        seen += page["data"].as_array().unwrap().len();
        match page["next"].as_str() {
            Some(n) => after = n.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, 10_010);
}
