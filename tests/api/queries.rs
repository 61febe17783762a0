//! Query strings, path segments, unknown routes and wrong methods: every
//! refusal is JSON in the one error shape, with a stable code and the
//! parameter to blame, never axum's plain text.

use crate::helpers::{spawn_app, TestApp, ADMIN};
use reqwest::{Method, StatusCode};
use serde_json::Value;

const HOOKS: &str = "/api/v1/integration/webhook/webhook";
const PLATFORM: &str = "/api/v1/platform";

/// Calls `path` with both credentials (each route reads its own) and
/// checks the answer is our JSON error.
async fn refused(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    status: u16,
    code: &str,
    field: Option<&str>,
) -> reqwest::header::HeaderMap {
    let r = app
        .http
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(ADMIN)
        .header("x-api-key", key)
        .send()
        .await
        .unwrap();
    let (s, headers) = (r.status(), r.headers().clone());
    let ct = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = r.text().await.unwrap();
    assert_eq!(s.as_u16(), status, "{path}: {text}");
    assert_eq!(ct.as_deref(), Some("application/json"), "{path}: {text}");
    let b: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(b["error"]["code"], code, "{path}: {b}");
    assert!(b["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    if let Some(f) = field {
        assert_eq!(b["error"]["field"], f, "{path}: {b}");
    }
    headers
}

#[tokio::test]
async fn bad_query_parameters_are_json_errors_naming_the_parameter() {
    let app = spawn_app().await;
    let (cid, key) = app.creator().await;
    let wid = app.webinar(&cid, 3600).await;
    let sub = app.subscribe(&key, "http://127.0.0.1:9/hook", None).await;
    let sid = sub["id"].as_str().unwrap();
    let get = Method::GET;
    let participants = format!("{PLATFORM}/webinars/{wid}/participants");
    let deliveries = format!("{HOOKS}/{sid}/deliveries");
    let webinars = format!("{PLATFORM}/webinars");
    let subs = format!("{PLATFORM}/subscriptions");
    let cases: Vec<(String, &str)> = vec![
        // Values of the wrong type or outside the allowed set.
        (format!("{participants}?limit=abc"), "limit"),
        (format!("{deliveries}?limit=-1"), "limit"),
        (format!("{deliveries}?status=bogus"), "status"),
        (format!("{subs}?status=bogus"), "status"),
        (
            format!("{webinars}?creatorId={cid}&creatorId=x"),
            "creatorId",
        ),
        (webinars.clone(), "creatorId"),
        // Parameters no route takes.
        (format!("{participants}?page=2"), "page"),
        (format!("{deliveries}?offset=5"), "offset"),
        (format!("{webinars}?creatorId={cid}&creator=x"), "creator"),
        (format!("{subs}?creator_id={cid}"), "creator_id"),
    ];
    for (path, field) in &cases {
        refused(
            &app,
            get.clone(),
            path,
            &key,
            400,
            "invalid_query",
            Some(field),
        )
        .await;
    }
    // The same routes, asked properly.
    for path in [
        format!("{participants}?limit=5"),
        format!("{deliveries}?status=delivered&limit=5"),
        format!("{webinars}?creatorId={cid}"),
        format!("{subs}?status=active"),
    ] {
        let r = app
            .http
            .get(format!("{}{path}", app.base))
            .bearer_auth(ADMIN)
            .header("x-api-key", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn bad_path_segments_unknown_routes_and_wrong_methods_are_json_errors() {
    let app = spawn_app().await;
    let (cid, key) = app.creator().await;
    let sub = app.subscribe(&key, "http://127.0.0.1:9/hook", None).await;
    let sid = sub["id"].as_str().unwrap();
    // A segment that is not UTF-8 once decoded.
    for (path, field) in [
        (format!("{PLATFORM}/webinars/%FF"), "id"),
        (format!("{HOOKS}/{sid}/deliveries/%FF"), "did"),
        (format!("{HOOKS}/%FF/deliveries"), "id"),
    ] {
        refused(
            &app,
            Method::GET,
            &path,
            &key,
            400,
            "invalid_path",
            Some(field),
        )
        .await;
    }
    // A route that takes only DELETE: the segment is read after the method.
    refused(
        &app,
        Method::DELETE,
        &format!("{PLATFORM}/creators/{cid}/api-keys/%C3%28"),
        &key,
        400,
        "invalid_path",
        Some("key"),
    )
    .await;
    // A well-formed id that names nothing is still a 404.
    refused(
        &app,
        Method::GET,
        &format!("{PLATFORM}/webinars/nope"),
        &key,
        404,
        "not_found",
        None,
    )
    .await;
    for path in ["/nope", "/api/v1/platform/nope", "/api/v1/integration/x"] {
        refused(&app, Method::GET, path, &key, 404, "not_found", None).await;
    }
    let h = refused(
        &app,
        Method::DELETE,
        &format!("{PLATFORM}/creators"),
        &key,
        405,
        "method_not_allowed",
        None,
    )
    .await;
    let allow = h.get("allow").map(|v| v.to_str().unwrap().to_owned());
    assert!(
        allow.as_deref().is_some_and(|a| a.contains("POST")),
        "{allow:?}"
    );
    refused(
        &app,
        Method::PUT,
        "/healthz",
        &key,
        405,
        "method_not_allowed",
        None,
    )
    .await;
}
