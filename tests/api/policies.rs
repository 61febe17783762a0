//! Settings that change what happens to a reminder, end to end:
//! `--expire-after-start` (a failing delivery is retried that long after the
//! start, then expired; by default it expires at the start), `--late-policy`
//! (`never`, and a duration: a reminder whose moment passed while the
//! service was down is sent late within it and missed beyond it), and the
//! rate cap of a batched subscription, which counts a batch once. Webinars
//! are set up parked far ahead and brought near once subscribed.

use crate::delivery::webinar_with;
use crate::helpers::*;
use crate::receiver::{Reply, TestReceiver};
use crate::scheduling::down_for;
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

/// A failing receiver, one participant, a reminder 2 s before a start 3 s
/// after the setup: every attempt's arrival (on the service's clock) and the
/// start, once the delivery expired.
async fn failing_until_expired(
    after_start: Duration,
) -> (
    Vec<chrono::DateTime<chrono::Utc>>,
    chrono::DateTime<chrono::Utc>,
) {
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(500));
    let (app, key, w) = webinar_with("2s", 1, |c| {
        c.expire_after_start = after_start;
        // Attempts at most half a second apart.
        c.retry_max = Duration::from_millis(500);
    })
    .await;
    let sub = app.subscribe(&key, &rx.url, None).await;
    app.starts_in(&w, 3.0);
    let sid = sub["id"].as_str().unwrap();
    let d = app
        .wait_deliveries(&key, sid, 20, |d| {
            d.len() == 1 && d[0]["status"] == "expired"
        })
        .await;
    let from: chrono::DateTime<chrono::Utc> = {
        let (_, w) = app
            .admin(
                Method::GET,
                &format!("/webinars/{}", d[0]["webinarId"].as_str().unwrap()),
                None,
            )
            .await;
        w["fromTime"].as_str().unwrap().parse().unwrap()
    };
    let n = rx.received().len();
    app.settled().await;
    assert_eq!(rx.received().len(), n, "no attempt after expiry");
    let got = rx.received();
    (got.iter().map(|r| app.on_clock(r.wall)).collect(), from)
}

#[tokio::test]
async fn a_failing_delivery_is_retried_until_the_start_by_default() {
    let (attempts, from) = failing_until_expired(Duration::ZERO).await;
    assert!(attempts.len() >= 2, "{attempts:?}");
    let slack = chrono::Duration::milliseconds(100);
    assert!(
        attempts.iter().all(|t| *t < from + slack),
        "{attempts:?}, start {from}"
    );
}

#[tokio::test]
async fn expire_after_start_retries_that_long_after_the_start() {
    let (attempts, from) = failing_until_expired(Duration::from_secs(3)).await;
    let slack = chrono::Duration::milliseconds(100);
    let after = attempts
        .iter()
        .filter(|t| **t > from + chrono::Duration::seconds(1))
        .count();
    assert!(
        after >= 1,
        "retried after the start: {attempts:?}, start {from}"
    );
    let end = from + chrono::Duration::seconds(3);
    assert!(
        attempts.iter().all(|t| *t < end + slack),
        "{attempts:?}, expiry {end}"
    );
}

/// Downtime of 40 s: the reminder was due 10 s ago, the start is 20 s ahead.
async fn late_by_ten_seconds(policy: &str) -> Vec<serde_json::Value> {
    let policy = policy.parse().unwrap();
    let (rx, app, key, wid, sub) = down_for(40, |c| c.late_policy = policy).await;
    let d = app
        .wait_deliveries(&key, sub["id"].as_str().unwrap(), 10, |d| {
            d.len() == 2 && d.iter().all(|x| x["status"] != "pending")
        })
        .await;
    let (_, rem) = app
        .admin(Method::GET, &format!("/webinars/{wid}/reminders"), None)
        .await;
    let status = rem["data"][0]["status"].as_str().unwrap();
    let sent = statuses(&d) == ["delivered", "delivered"];
    assert_eq!(status, if sent { "sent" } else { "missed" }, "{rem}");
    assert_eq!(rx.received().len(), if sent { 2 } else { 0 });
    d
}

#[tokio::test]
async fn late_policy_never_records_a_late_reminder_as_missed() {
    let d = late_by_ten_seconds("never").await;
    assert_eq!(statuses(&d), ["missed", "missed"]);
}

#[tokio::test]
async fn late_policy_duration_sends_late_within_it_and_misses_beyond_it() {
    let d = late_by_ten_seconds("15s").await;
    assert_eq!(statuses(&d), ["delivered", "delivered"]);
    assert!(d.iter().all(|x| x["late"] == true), "{d:#?}");
    let d = late_by_ten_seconds("5s").await;
    assert_eq!(statuses(&d), ["missed", "missed"]);
}

#[tokio::test]
async fn a_batch_counts_once_against_the_rate_cap() {
    // 30 participants in batches of 5 at 2 requests a second: 6 requests,
    // about 2 s end to end. Counted per payload it would take 15 s.
    let rx = TestReceiver::start().await;
    let (app, key, w) = webinar_with("3s", 30, |_| {}).await;
    app.subscribe_with(&key, &rx.url, json!({"batchSize": 5, "ratePerSecond": 2}))
        .await;
    app.starts_in(&w, 4.0);
    let got = rx.wait_for(6, 20).await;
    app.settled().await;
    assert_eq!(rx.received().len(), 6, "six batches");
    assert!(got
        .iter()
        .all(|r| r.json().as_array().is_some_and(|a| a.len() == 5)));
    let span = got[5].at - got[0].at;
    // A burst of 2, then one every half second: at least 1.5 s; at 2
    // payloads a second it would be at least 14 s (below 10 s leaves a
    // loaded machine room).
    assert!(
        span >= Duration::from_millis(1400),
        "{span:?}: over the cap"
    );
    assert!(
        span < Duration::from_secs(10),
        "{span:?}: the cap counted payloads"
    );
}
