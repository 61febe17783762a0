//! A refused body names every field at fault in `error.errors`, beside
//! the first in `error.field`; a single fault keeps the plain shape.

use crate::helpers::spawn_app;
use reqwest::Method;
use serde_json::{json, Value};

fn fields(body: &Value) -> Vec<(&str, &str)> {
    body["error"]["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no error.errors in {body}"))
        .iter()
        .map(|e| {
            assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
            (e["field"].as_str().unwrap(), e["code"].as_str().unwrap())
        })
        .collect()
}

#[tokio::test]
async fn every_bad_field_is_named() {
    let app = spawn_app().await;

    let (status, body) = app
        .admin(
            Method::POST,
            "/creators",
            Some(json!({"name": " ", "timezone": "Mars/Olympus"})),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["field"], "name");
    assert_eq!(
        fields(&body),
        [("name", "invalid_value"), ("timezone", "invalid_timezone")]
    );

    let (_, key) = app.creator().await;
    let (status, body) = app
        .hooks(
            Method::POST,
            &key,
            "",
            Some(json!({"hookUrl": "ftp://x", "event": "nope", "batchSize": 0, "webinar": "w"})),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "invalid_hook_url");
    assert_eq!(
        fields(&body),
        [
            ("hookUrl", "invalid_hook_url"),
            ("event", "unknown_event"),
            ("batchSize", "invalid_value"),
            ("webinar", "invalid_webinar_id"),
        ]
    );

    // In a bulk registration, the entry's index prefixes each field.
    let (creator, _) = app.creator().await;
    let webinar = app.webinar(&creator, 3600).await;
    let (status, body) = app
        .admin(
            Method::POST,
            &format!("/webinars/{webinar}/participants/bulk"),
            Some(json!([
                {"name": "A", "email": "a@example.com"},
                {"name": "", "email": "nope"}
            ])),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["field"], "[1].email");
    assert_eq!(
        fields(&body),
        [
            ("[1].email", "invalid_email"),
            ("[1].name", "invalid_value")
        ]
    );

    // One fault: the shape it always had, no list.
    let (status, body) = app
        .admin(Method::POST, "/creators", Some(json!({"name": ""})))
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"error": {"code": "invalid_value", "field": "name", "message": "name must not be empty"}})
    );
}
