//! How deliveries behave against a receiver the test controls: retries with
//! the same webhook-id, Retry-After, expiry, 410, timeouts, redirects
//! (the target guard: `ssrf.rs`), concurrency and rate caps, isolation between endpoints,
//! manual retry and secret rotation.

use crate::helpers::*;
use crate::receiver::{Reply, TestReceiver};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

/// One participant, one subscription, reminders at the given offsets before
/// a start `secs` after the setup is complete: (app, key, subscription id).
async fn setup(
    rx: &TestReceiver,
    offsets: &str,
    secs: f64,
    tweak: impl FnOnce(&mut tminus::config::Config),
) -> (TestApp, String, String) {
    let (app, key, w) = webinar_with(offsets, 1, tweak).await;
    let sub = app.subscribe(&key, &rx.url, None).await;
    app.starts_in(&w, secs);
    (app, key, sub["id"].as_str().unwrap().to_owned())
}

/// A service with reminders at `offsets`, and a webinar with `n`
/// participants parked ahead ([`TestApp::parked`]), for the test to subscribe and then
/// bring near with [`TestApp::starts_in`]: (app, key, webinar).
pub async fn webinar_with(
    offsets: &str,
    n: usize,
    tweak: impl FnOnce(&mut tminus::config::Config),
) -> (TestApp, String, Parked) {
    let offsets = tminus::domain::offset::parse_list(offsets).unwrap();
    let app = spawn_with(|c| {
        c.reminder_offsets = offsets;
        tweak(c);
    })
    .await;
    let (cid, key) = app.creator().await;
    let w = app.parked(&cid, json!({})).await;
    app.participants(&w.id, n).await;
    (app, key, w)
}

fn log_codes(d: &Value) -> Vec<Value> {
    d["attemptLog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["statusCode"].clone())
        .collect()
}

#[tokio::test]
async fn failures_are_retried_with_the_same_webhook_id() {
    let rx = TestReceiver::start().await;
    rx.script([Reply::status(500), Reply::status(404)]);
    let (app, key, sid) = setup(&rx, "9s", 10.0, |_| {}).await;
    let got = rx.wait_for(3, 10).await;
    let ids: Vec<_> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert!(ids.iter().all(|i| *i == ids[0]));
    let attempts: Vec<_> = got.iter().map(|r| r.header("x-tminus-attempt")).collect();
    assert_eq!(attempts, ["1", "2", "3"]);
    let d = app
        .wait_deliveries(&key, &sid, 5, |d| d[0]["status"] == "delivered")
        .await;
    assert_eq!(log_codes(&d[0]), [json!(500), json!(404), json!(200)]);
    assert_eq!(d[0]["attempts"], 3);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let rx = TestReceiver::start().await;
    rx.script([
        Reply::status(429).retry_after("1"),
        Reply::status(503).retry_after("1"),
    ]);
    let (_app, _key, _sid) = setup(&rx, "8s", 9.0, |_| {}).await;
    let got = rx.wait_for(3, 10).await;
    // Without Retry-After the back-off here is 100–400 ms.
    assert!(
        got[1].at - got[0].at >= Duration::from_millis(950),
        "{:?}",
        got[1].at - got[0].at
    );
    assert!(got[2].at - got[1].at >= Duration::from_millis(950));
}

#[tokio::test]
async fn a_reminder_that_never_gets_through_expires_at_the_start() {
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(500));
    let (app, key, sid) = setup(&rx, "2s", 3.0, |_| {}).await;
    let d = app
        .wait_deliveries(&key, &sid, 10, |d| {
            d.len() == 1 && d[0]["status"] == "expired"
        })
        .await;
    assert!(d[0]["attempts"].as_u64().unwrap() >= 2, "{d:#?}");
    let n = rx.received().len();
    app.settled().await;
    assert_eq!(rx.received().len(), n, "no attempts after expiry");
}

#[tokio::test]
async fn a_back_off_past_the_start_is_clamped_so_a_recovered_endpoint_still_gets_it() {
    let rx = TestReceiver::start().await;
    rx.script([Reply::status(500)]);
    // Its second attempt would be 10–20 s after the first: past the start.
    let (app, key, sid) = setup(&rx, "5s", 6.0, |c| c.retry_base = Duration::from_secs(20)).await;
    let t = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    let d = app
        .wait_deliveries(&key, &sid, 10, |d| {
            d.len() == 1 && d[0]["nextAttemptAt"].is_string()
        })
        .await;
    let (next, start) = (t(&d[0]["nextAttemptAt"]), t(&d[0]["expiresAt"]));
    assert!(
        next < start && next >= start - chrono::Duration::seconds(2),
        "{d:#?}"
    );
    let d = app
        .wait_deliveries(&key, &sid, 10, |d| d[0]["status"] == "delivered")
        .await;
    assert!(t(&d[0]["attemptLog"][1]["startedAt"]) < start, "{d:#?}");
}

#[tokio::test]
async fn gone_disables_the_subscription() {
    let rx = TestReceiver::start().await;
    rx.script([Reply::status(410)]);
    let (app, key, w) = webinar_with("20s,1s", 1, |_| {}).await;
    let sub = app.subscribe(&key, &rx.url, None).await;
    let sid = sub["id"].as_str().unwrap().to_owned();
    app.starts_in(&w, 20.5);
    rx.wait_for(1, 10).await;
    let d = app
        .wait_deliveries(&key, &sid, 5, |d| d.iter().any(|x| x["status"] == "failed"))
        .await;
    assert_eq!(d[0]["lastStatus"], 410);
    let (_, sub) = app.hooks(Method::GET, &key, &format!("/{sid}"), None).await;
    assert_eq!(sub["status"], "disabled");
    assert!(sub["disabledReason"].as_str().unwrap().contains("410"));
    // The next reminder falls due and is fanned out, to nobody.
    app.starts_in(&w, 1.5);
    app.wait_reminders(&w.id, |r| r.iter().all(|x| x["status"] == "sent"))
        .await;
    app.settled().await;
    assert_eq!(
        rx.received().len(),
        1,
        "nothing is sent to a disabled subscription"
    );
    // Enabling it again is the integrator's call.
    let (s, sub) = app
        .hooks(
            Method::PATCH,
            &key,
            &format!("/{sid}"),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(
        (s, sub["status"].as_str()),
        (StatusCode::OK, Some("active"))
    );
}

#[tokio::test]
async fn a_slow_receiver_times_out_and_is_retried() {
    let rx = TestReceiver::start().await;
    rx.script([Reply::status(200).delayed(Duration::from_millis(1500))]);
    let (app, key, sid) = setup(&rx, "9s", 10.0, |c| {
        c.http_timeout = Duration::from_millis(300);
        c.lease = Duration::from_secs(5);
    })
    .await;
    rx.wait_for(2, 10).await;
    let d = app
        .wait_deliveries(&key, &sid, 5, |d| d[0]["status"] == "delivered")
        .await;
    let log = d[0]["attemptLog"].as_array().unwrap();
    assert!(
        log[0]["error"].as_str().unwrap().contains("timeout"),
        "{log:?}"
    );
    assert_eq!(log[1]["statusCode"], 200);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let rx = TestReceiver::start().await;
    let moved = rx.url.replace("/hook", "/moved");
    rx.script([Reply::status(307).redirect(&moved)]);
    let (app, key, sid) = setup(&rx, "9s", 10.0, |_| {}).await;
    let d = app
        .wait_deliveries(&key, &sid, 10, |d| {
            d.len() == 1 && d[0]["status"] == "delivered"
        })
        .await;
    assert_eq!(log_codes(&d[0]), [json!(307), json!(200)]);
    assert!(rx.received().iter().all(|r| r.path == "/hook"));
}

#[tokio::test]
async fn a_delivery_can_be_retried_by_hand() {
    let rx = TestReceiver::start().await;
    let (app, key, sid) = setup(&rx, "9s", 10.0, |_| {}).await;
    rx.wait_for(1, 10).await;
    let d = app
        .wait_deliveries(&key, &sid, 5, |d| {
            d.len() == 1 && d[0]["status"] == "delivered"
        })
        .await;
    let did = d[0]["id"].as_str().unwrap();
    let (s, _) = app
        .hooks(
            Method::POST,
            &key,
            &format!("/{sid}/deliveries/{did}/retry"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let got = rx.wait_for(2, 5).await;
    assert_eq!(got[1].header("webhook-id"), did);
    assert_eq!(got[1].header("x-tminus-attempt"), "2");
    // The receiver has answered; the outcome is recorded a moment later.
    let logged =
        |d: &[serde_json::Value]| d[0]["attemptLog"].as_array().is_some_and(|l| l.len() == 2);
    app.wait_deliveries(&key, &sid, 5, logged).await;
    let (s, one) = app
        .hooks(Method::GET, &key, &format!("/{sid}/deliveries/{did}"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(one["attemptLog"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_rotated_secret_signs_with_both_keys_during_the_grace() {
    let rx = TestReceiver::start().await;
    let app = spawn_app().await;
    let (_, key) = app.creator().await;
    let sub = app.subscribe(&key, &rx.url, None).await;
    let sid = sub["id"].as_str().unwrap();
    let old = sub["secret"].as_str().unwrap().to_owned();
    let (s, rotated) = app
        .hooks(Method::POST, &key, &format!("/{sid}/rotate-secret"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(old, new);
    app.hooks(Method::POST, &key, &format!("/{sid}/test"), None)
        .await;
    let r = &rx.wait_exactly(&app, 1, 5).await[0];
    assert_eq!(r.header("webhook-signature").split(' ').count(), 2);
    for secret in [&old, &new] {
        standardwebhooks::Webhook::new(secret)
            .unwrap()
            .verify(&r.body, &r.headers)
            .unwrap();
    }
}

#[tokio::test]
async fn an_endpoint_failing_too_long_is_disabled() {
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(500));
    let (app, key, sid) = setup(&rx, "9s", 10.0, |c| {
        c.disable_after = Duration::from_millis(700)
    })
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    loop {
        let (_, sub) = app.hooks(Method::GET, &key, &format!("/{sid}"), None).await;
        if sub["status"] == "disabled" {
            assert!(
                sub["disabledReason"].as_str().unwrap().contains("too long"),
                "{sub}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never disabled: {sub}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, ops) = app
        .admin(Method::GET, "/subscriptions?status=disabled", None)
        .await;
    assert_eq!(ops["data"][0]["id"], sid.as_str());
    // Nothing is sent for it until it is enabled again.
    let (s, e) = app
        .hooks(Method::POST, &key, &format!("/{sid}/test"), None)
        .await;
    assert_eq!(
        (s, &e["error"]["code"]),
        (StatusCode::CONFLICT, &json!("subscription_disabled")),
        "{e}"
    );
}

#[tokio::test]
async fn a_batched_subscription_gets_arrays_signed_and_retried_as_one() {
    let rx = TestReceiver::start().await;
    rx.script([Reply::status(500)]);
    let (app, key, w) = webinar_with("9s", 7, |_| {}).await;
    let sub = app
        .subscribe_with(&key, &rx.url, json!({"batchSize": 3}))
        .await;
    app.starts_in(&w, 10.0);
    assert_eq!(sub["batchSize"], 3);
    let secret = sub["secret"].as_str().unwrap().to_owned();
    // The first batch fails once and is retried; 3 batches in all: 3 + 3 + 1.
    rx.wait_for(4, 10).await;
    app.settled().await;
    let got = rx.received();
    assert_eq!(
        got.len(),
        4,
        "{:?}",
        got.iter()
            .map(|r| r.header("webhook-id"))
            .collect::<Vec<_>>()
    );
    let verifier = standardwebhooks::Webhook::new(&secret).unwrap();
    let mut emails = std::collections::BTreeSet::new();
    for r in &got {
        verifier.verify(&r.body, &r.headers).unwrap();
        let arr = r.json();
        let arr = arr.as_array().expect("a JSON array");
        assert!(!arr.is_empty() && arr.len() <= 3);
        for p in arr {
            assert_eq!(p.as_object().unwrap().len(), 12);
            emails.insert(p["email"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(emails.len(), 7);
    let retry = got
        .iter()
        .find(|r| r.header("x-tminus-attempt") == "2")
        .expect("a retried batch");
    let first = got.iter().find(|r| {
        r.header("x-tminus-attempt") == "1" && r.header("webhook-id") == retry.header("webhook-id")
    });
    assert_eq!(
        first.expect("a retried batch keeps its id").body,
        retry.body,
        "and its body"
    );
    let sid = sub["id"].as_str().unwrap();
    let d = app
        .wait_deliveries(&key, sid, 5, |d| {
            d.iter().filter(|x| x["status"] == "delivered").count() == 3
        })
        .await;
    let members: Vec<_> = d.iter().filter(|x| x["status"] == "batched").collect();
    assert_eq!(members.len(), 7);
    assert!(members.iter().all(|m| m["batchId"]
        .as_str()
        .is_some_and(|b| b.starts_with("msg_b"))));
}

#[tokio::test]
async fn https_targets_go_through_tls() {
    // The receiver speaks plain HTTP: a TLS handshake with it must fail as
    // an attempt (recorded, retried), not crash the sender.
    let rx = TestReceiver::start().await;
    let app = spawn_app().await;
    let (_, key) = app.creator().await;
    let sub = app
        .subscribe(&key, &rx.url.replace("http://", "https://"), None)
        .await;
    let sid = sub["id"].as_str().unwrap();
    let (s, _) = app
        .hooks(Method::POST, &key, &format!("/{sid}/test"), None)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let d = app
        .wait_deliveries(&key, sid, 5, |d| {
            d.first().is_some_and(|x| x["attempts"].as_u64() >= Some(1))
        })
        .await;
    let err = d[0]["attemptLog"][0]["error"].as_str().unwrap().to_owned();
    assert!(err.contains("connection failed"), "{err}");
}
