//! Every way a receiver can fail, and what tminus does about each: one
//! subscription per fault, each sent a test event, all at once against the
//! fault-injecting receiver. Each case checks the attempt log tminus keeps
//! and what it does next, and that docs/RELIABILITY.md's table says the same (its
//! rows are quoted here; a change to either is noticed).

use crate::faults::{Fault, FaultReceiver};
use crate::helpers::*;
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;

/// docs/RELIABILITY.md's rows, one per case, as they appear there.
const DOC_ROWS: &[&str] = &[
    "| answers `2xx` with a 100 MB body | delivered; the first 512 bytes of the answer are kept | reads no further: the connection is closed |",
    "| resets the connection | failed attempt, no status, the error says the connection was reset | retried with back-off |",
    "| trickles its answer a byte a second | failed attempt: `timeout after` the HTTP timeout | retried with back-off |",
    "| answers bytes that are not HTTP | failed attempt, no status, the error says why | retried with back-off |",
    "| answers `500` | failed attempt, status 500 | retried with back-off |",
    "| answers `503` with `Retry-After` as an HTTP date | failed attempt, status 503 | retried at that date, not before |",
    "| answers `429` with `Retry-After: 2` | failed attempt, status 429 | retried 2 s later, not before |",
    "| answers `302` with a `Location` | failed attempt, status 302; the redirect is not followed | retried with back-off |",
    "| answers `410` | failed attempt, status 410 | the subscription is disabled: no more attempts |",
    "| accepts the request and never answers | failed attempt: `timeout after` the HTTP timeout | retried with back-off |",
];

#[test]
fn the_reliability_page_describes_every_case() {
    let page = include_str!("../../docs/RELIABILITY.md");
    for row in DOC_ROWS {
        assert!(page.contains(row), "docs/RELIABILITY.md lacks: {row}");
    }
}

/// The one delivery of a subscription, once `done` holds for it.
async fn settled(app: &TestApp, key: &str, sid: &str, done: impl Fn(&Value) -> bool) -> Value {
    let d = app
        .wait_deliveries(key, sid, 30, |d| d.len() == 1 && done(&d[0]))
        .await;
    d[0].clone()
}

fn attempts(d: &Value) -> Vec<Value> {
    d["attemptLog"].as_array().cloned().unwrap_or_default()
}

fn started(a: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(a["startedAt"].as_str().unwrap())
        .unwrap()
        .to_utc()
}

/// Delivered after a failed first attempt; returns the delivery.
async fn recovered(app: &TestApp, key: &str, sid: &str) -> Value {
    settled(app, key, sid, |d| {
        d["status"] == "delivered" && attempts(d).len() == 2
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_receiver_fault_gets_the_answer_the_docs_give() {
    let app = spawn_with(|c| c.http_timeout = Duration::from_secs(2)).await;
    let rx = FaultReceiver::start().await;
    let (_, key) = app.creator().await;
    // An HTTP date a few seconds ahead, whole seconds as the format has.
    let date = chrono::DateTime::from_timestamp(app.clock.now().timestamp() + 4, 0).unwrap();
    let http_date = date.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    let location = format!("{}/elsewhere", rx.base);
    let cases: Vec<(&str, Fault)> = vec![
        ("/huge", Fault::Huge(100 * 1024 * 1024)),
        ("/reset", Fault::Reset),
        ("/trickle", Fault::Trickle),
        ("/garbage", Fault::Garbage),
        ("/500", Fault::Status(500, vec![])),
        ("/503", Fault::Status(503, vec![("retry-after", http_date)])),
        (
            "/429",
            Fault::Status(429, vec![("retry-after", "2".into())]),
        ),
        ("/302", Fault::Status(302, vec![("location", location)])),
        ("/410", Fault::Status(410, vec![])),
        ("/silent", Fault::Silent),
    ];
    let mut subs = std::collections::HashMap::new();
    for (path, fault) in cases {
        let url = rx.on(path, fault, 1);
        let sub = app.subscribe_with(&key, &url, serde_json::json!({})).await;
        let sid = sub["id"].as_str().unwrap().to_owned();
        let (s, b) = app
            .hooks(Method::POST, &key, &format!("/{sid}/test"), None)
            .await;
        assert!(s.is_success(), "{b}");
        subs.insert(path, sid);
    }

    // A huge answer: acknowledged, its start kept, the rest never read.
    let d = settled(&app, &key, &subs["/huge"], |d| d["status"] == "delivered").await;
    let a = &attempts(&d)[0];
    assert_eq!(a["statusCode"], 200);
    assert_eq!(a["response"].as_str().unwrap().len(), 512, "512 bytes kept");
    let written = rx.huge_written.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        written < 32 * 1024 * 1024,
        "tminus read on: {written} bytes sent"
    );

    // Transport failures: no status, an error, then a retry that succeeds.
    for (path, says) in [
        ("/reset", "reset"),
        ("/trickle", "timeout after"),
        ("/silent", "timeout after"),
        ("/garbage", ""),
    ] {
        let d = recovered(&app, &key, &subs[path]).await;
        let a = &attempts(&d)[0];
        assert!(a["statusCode"].is_null(), "{path}: {a}");
        let error = a["error"].as_str().unwrap_or_default();
        assert!(!error.is_empty() && error.contains(says), "{path}: {error}");
    }

    // Statuses: recorded, then retried (a redirect is never followed).
    for path in ["/500", "/302", "/503", "/429"] {
        let d = recovered(&app, &key, &subs[path]).await;
        let a = attempts(&d);
        assert_eq!(
            a[0]["statusCode"],
            path[1..].parse::<u16>().unwrap(),
            "{path}"
        );
        if path == "/503" {
            assert!(started(&a[1]) >= date, "{path}: retried before the date");
        }
        if path == "/429" {
            let gap = started(&a[1]) - started(&a[0]);
            assert!(
                gap >= chrono::Duration::seconds(2),
                "{path}: retried after {gap}"
            );
        }
    }
    assert_eq!(rx.hits("/elsewhere"), 0, "the redirect was not followed");

    // 410: the subscription is disabled and nothing more is attempted.
    let sid = &subs["/410"];
    let d = settled(&app, &key, sid, |d| !attempts(d).is_empty()).await;
    assert_eq!(attempts(&d)[0]["statusCode"], 410);
    let (_, sub) = app.hooks(Method::GET, &key, &format!("/{sid}"), None).await;
    assert_eq!(sub["status"], "disabled", "{sub}");
    app.settled().await;
    assert_eq!(rx.hits("/410"), 1, "no attempt after a 410");
}
