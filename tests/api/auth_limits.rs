//! Rate limits as clients see them: every 429 says when to come back
//! (`Retry-After`), and a client address that keeps failing to authenticate
//! is refused before its credentials are looked at, even with a valid key,
//! while other clients behind the same proxy are not.

use crate::helpers::{spawn_with, TestApp, ADMIN};
use reqwest::StatusCode;
use serde_json::Value;

const HOOKS: &str = "/api/v1/integration/webhook/webhook";

/// A GET of the subscription list as `client` (behind the trusted proxy).
async fn list_as(app: &TestApp, client: &str, key: &str) -> (StatusCode, Option<u64>, Value) {
    let r = app
        .http
        .get(format!("{}{HOOKS}", app.base))
        .header("x-forwarded-for", client)
        .header("x-api-key", key)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse::<u64>().expect("whole seconds"));
    (status, retry_after, r.json().await.unwrap_or_default())
}

#[tokio::test]
async fn every_429_carries_a_retry_after_in_seconds() {
    let app = spawn_with(|c| c.api_rate = 2).await;
    let (_, key) = app.creator().await;
    let mut limited = None;
    for _ in 0..10 {
        let got = list_as(&app, "192.0.2.1", &key).await;
        if got.0 == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(got);
            break;
        }
    }
    let (_, retry_after, body) = limited.expect("a 429");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert!(
        retry_after.is_some_and(|s| (1..=2).contains(&s)),
        "{retry_after:?}"
    );
}

#[tokio::test]
async fn an_address_that_keeps_failing_is_refused_before_its_key_is_looked_at() {
    let app = spawn_with(|c| {
        c.auth_failures = 3;
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let (_, key) = app.creator().await;
    let (guesser, neighbour) = ("198.51.100.7", "203.0.113.9");
    for _ in 0..3 {
        let (s, _, b) = list_as(&app, guesser, "tmk_wrong").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
        assert_eq!(b["error"]["code"], "invalid_api_key");
    }
    // Over budget: 429 with the wait (3 a minute: one every 20 s).
    let (s, retry_after, b) = list_as(&app, guesser, "tmk_wrong").await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{b}");
    assert_eq!(b["error"]["code"], "rate_limited");
    assert!(
        retry_after.is_some_and(|s| (1..=20).contains(&s)),
        "{retry_after:?}"
    );
    // Even a valid key, or the admin token, until the budget refills.
    let (s, _, _) = list_as(&app, guesser, &key).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    let r = app
        .http
        .get(format!("{}/api/v1/platform/creators", app.base))
        .header("x-forwarded-for", guesser)
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    // Another client behind the same proxy is not held to that budget.
    let (s, _, b) = list_as(&app, neighbour, &key).await;
    assert_eq!(s, StatusCode::OK, "{b}");

    // The store is not asked for the blocked address: with the key table
    // gone, a lookup fails (500), yet the guesser still gets its 429.
    rusqlite::Connection::open(&app.db)
        .unwrap()
        .execute_batch("ALTER TABLE api_keys RENAME TO api_keys_away")
        .unwrap();
    let (s, _, b) = list_as(&app, neighbour, "tmk_other").await;
    assert_eq!(
        s,
        StatusCode::INTERNAL_SERVER_ERROR,
        "the store was asked: {b}"
    );
    let (s, _, _) = list_as(&app, guesser, "tmk_wrong").await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn missing_credentials_and_bad_admin_tokens_count_as_failures() {
    let app = spawn_with(|c| c.auth_failures = 2).await;
    let admin = |token: Option<&'static str>| {
        let mut r = app
            .http
            .get(format!("{}/api/v1/platform/creators", app.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    assert_eq!(admin(None).await.unwrap().status(), 401);
    assert_eq!(admin(Some("wrong")).await.unwrap().status(), 401);
    let r = admin(Some(ADMIN)).await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "rate_limited", "{b}");
    // Without a trusted proxy, a forged X-Forwarded-For changes nothing.
    let r = app
        .http
        .get(format!("{}{HOOKS}", app.base))
        .header("x-forwarded-for", "192.0.2.44")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}
