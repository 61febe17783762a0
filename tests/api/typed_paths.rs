//! Typed paths and loaders: an id of the wrong shape, wherever a route
//! names one (its path, or `creatorId` in a new webinar's body), is a 404
//! `not_found` naming its kind, as an unknown id of the right shape is; a
//! loader shows an integrator only its own subscriptions; the dashboard
//! answers a malformed id with its own page, not JSON.

use crate::dashboard::{login, page};
use crate::helpers::{spawn_app, Auth, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const HOOKS: &str = "/api/v1/integration/webhook/webhook";
const PLATFORM: &str = "/api/v1/platform";
const WELL_FORMED: &str = "0123456789abcdef01234567";

/// Asserts a 404 `not_found` whose message names `what`.
fn not_found(path: &str, (s, b): (StatusCode, Value), what: &str) {
    assert_eq!(s, StatusCode::NOT_FOUND, "{path}: {b}");
    assert_eq!(b["error"]["code"], "not_found", "{path}: {b}");
    assert_eq!(
        b["error"]["message"],
        format!("{what} not found"),
        "{path}: {b}"
    );
}

async fn call(app: &TestApp, m: Method, path: &str, auth: Auth<'_>) -> (StatusCode, Value) {
    let body = (m == Method::POST || m == Method::PATCH).then(|| json!({}));
    app.call(m, path, auth, body).await
}

#[tokio::test]
async fn a_malformed_id_is_not_found_as_an_unknown_one_is_and_names_its_kind() {
    let app = spawn_app().await;
    let (cid, key) = app.creator().await;
    let wid = app.webinar(&cid, 3600).await;
    let sub = app.subscribe(&key, "http://127.0.0.1:9/hook", None).await;
    let sid = sub["id"].as_str().unwrap();
    let admin = [
        (Method::GET, "/webinars/x".to_owned(), "webinar"),
        (Method::PATCH, format!("/webinars/{WELL_FORMED}"), "webinar"),
        (Method::POST, "/webinars/x/cancel".to_owned(), "webinar"),
        (
            Method::GET,
            "/webinars/x/participants".to_owned(),
            "webinar",
        ),
        (
            Method::DELETE,
            format!("/webinars/{wid}/participants/x"),
            "participant",
        ),
        (Method::GET, "/creators/x".to_owned(), "creator"),
        (Method::GET, format!("/creators/{WELL_FORMED}"), "creator"),
        (Method::GET, "/creators/x/api-keys".to_owned(), "creator"),
        (
            Method::DELETE,
            format!("/creators/{cid}/api-keys/x"),
            "api key",
        ),
        (
            Method::GET,
            "/subscriptions/x/deliveries".to_owned(),
            "subscription",
        ),
        (
            Method::POST,
            format!("/subscriptions/{sid}/deliveries/x/retry"),
            "delivery",
        ),
    ];
    for (m, path, what) in admin {
        let path = format!("{PLATFORM}{path}");
        not_found(&path, call(&app, m, &path, Auth::Admin).await, what);
    }
    let integrator = [
        (Method::GET, "/x".to_owned(), "subscription"),
        (Method::DELETE, format!("/{WELL_FORMED}"), "subscription"),
        (Method::GET, format!("/{sid}/deliveries/x"), "delivery"),
        (
            Method::GET,
            format!("/{sid}/deliveries/msg_{WELL_FORMED}"),
            "delivery",
        ),
        (Method::POST, "/x/rotate-secret".to_owned(), "subscription"),
    ];
    for (m, path, what) in integrator {
        let path = format!("{HOOKS}{path}");
        not_found(&path, call(&app, m, &path, Auth::Key(&key)).await, what);
    }
    // In a body: a new webinar's creatorId.
    let body = json!({"creatorId": "x", "title": "T", "link": "https://example.com",
        "fromTime": "2030-01-01T10:00:00Z", "toTime": "2030-01-01T11:00:00Z"});
    let got = app.admin(Method::POST, "/webinars", Some(body)).await;
    not_found("POST /webinars", got, "creator");
}

#[tokio::test]
async fn an_integrator_loads_only_its_own_subscriptions() {
    let app = spawn_app().await;
    let (_, mine) = app.creator().await;
    let (_, theirs) = app.creator().await;
    let sub = app
        .subscribe(&theirs, "http://127.0.0.1:9/hook", None)
        .await;
    let sid = sub["id"].as_str().unwrap();
    for (m, path) in [
        (Method::GET, format!("/{sid}")),
        (Method::PATCH, format!("/{sid}")),
        (Method::DELETE, format!("/{sid}")),
        (Method::POST, format!("/{sid}/rotate-secret")),
        (Method::POST, format!("/{sid}/test")),
        (Method::GET, format!("/{sid}/deliveries")),
    ] {
        let path = format!("{HOOKS}{path}");
        not_found(
            &path,
            call(&app, m, &path, Auth::Key(&mine)).await,
            "subscription",
        );
    }
    // Its owner still sees it: the loader refused the other creator only.
    let (s, b) = app
        .hooks(Method::GET, &theirs, &format!("/{sid}"), None)
        .await;
    assert_eq!((s, b["id"].as_str()), (StatusCode::OK, Some(sid)));
}

#[tokio::test]
async fn the_dashboard_answers_a_malformed_id_with_its_own_page() {
    let app = spawn_app().await;
    let (cookie, _) = login(&app, "/dashboard", crate::helpers::ADMIN).await;
    for path in ["/dashboard/subscriptions/x", "/dashboard/subscriptions/%FF"] {
        let (s, html) = page(&app, &cookie, path).await;
        let want = if path.ends_with("%FF") { 400 } else { 404 };
        assert_eq!(s.as_u16(), want, "{path}: {html}");
        assert!(html.starts_with("<!DOCTYPE html>"), "{path}: {html}");
    }
}
