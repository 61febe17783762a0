//! A subscription's life as its integrator sees it through the API:
//! disabled by a `410`, re-enabled by subscribing again with the same body
//! (and then delivered to), and each attempt's latency recorded as the
//! receiver made it.

use crate::helpers::*;
use crate::receiver::{Reply, TestReceiver};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;

/// A service, a subscription to `rx`, and a test event sent to it:
/// (app, key, subscription id).
async fn tested(rx: &TestReceiver) -> (TestApp, String, String) {
    let app = spawn_app().await;
    let (_, key) = app.creator().await;
    let sub = app.subscribe(&key, &rx.url, None).await;
    let sid = sub["id"].as_str().unwrap().to_owned();
    app.hooks(Method::POST, &key, &format!("/{sid}/test"), None)
        .await;
    (app, key, sid)
}

#[tokio::test]
async fn subscribing_again_with_the_same_body_re_enables_a_disabled_subscription() {
    let rx = TestReceiver::start().await;
    rx.script([Reply::status(410)]);
    let (app, key, sid) = tested(&rx).await;
    let sid = sid.as_str();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, s) = app.hooks(Method::GET, &key, &format!("/{sid}"), None).await;
        if s["status"] == "disabled" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never disabled: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The seed's subscribe call again, unchanged.
    let body = json!({"hookUrl": rx.url, "event": "webinar.reminder.all", "webinar": null});
    let (s, again) = app.hooks(Method::POST, &key, "", Some(body)).await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(
        (again["id"].as_str(), &again["status"]),
        (Some(sid), &json!("active"))
    );
    // And it is sent to again.
    let (s, _) = app
        .hooks(Method::POST, &key, &format!("/{sid}/test"), None)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let got = rx.wait_exactly(&app, 2, 10).await;
    assert_eq!(got[1].header("x-tminus-reminder"), "test");
}

#[tokio::test]
async fn each_attempt_s_latency_is_recorded_as_the_receiver_made_it() {
    let rx = TestReceiver::start().await;
    rx.script([
        Reply::status(500).delayed(Duration::from_millis(300)),
        Reply::status(200).delayed(Duration::from_millis(600)),
    ]);
    let (app, key, sid) = tested(&rx).await;
    let sid = sid.as_str();
    let d = app
        .wait_deliveries(&key, sid, 15, |d| {
            d.len() == 1 && d[0]["status"] == "delivered"
        })
        .await;
    let log = d[0]["attemptLog"].as_array().unwrap();
    assert_eq!(log.len(), 2, "{d:#?}");
    for (a, at_least) in log.iter().zip([300, 600]) {
        let ms = a["latencyMs"].as_u64().unwrap();
        assert!((at_least..at_least + 2000).contains(&ms), "{a}");
    }
}
