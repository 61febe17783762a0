//! Traffic shaping per subscription: the concurrency and rate caps, the
//! slow start of a burst, and a hanging endpoint that only holds up itself.

use crate::delivery::webinar_with;
use crate::receiver::{Reply, TestReceiver};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn concurrency_cap_and_rate_cap_shape_traffic() {
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(200).delayed(Duration::from_millis(100)));
    let paced = TestReceiver::start().await;
    let (app, key) = webinar_with("8s", 9, 12, |_| {}).await;
    app.subscribe_with(&key, &rx.url, json!({"maxConcurrency": 2}))
        .await;
    app.subscribe_with(&key, &paced.url, json!({"ratePerSecond": 4}))
        .await;
    rx.wait_for(12, 15).await;
    assert!(
        rx.max_in_flight() <= 2,
        "max in flight {}",
        rx.max_in_flight()
    );
    assert_eq!(rx.max_in_flight(), 2);
    let got = paced.wait_for(12, 15).await;
    // 12 requests at 4/s with a burst of 4: at least two seconds apart end to end.
    assert!(
        got[11].at - got[0].at >= Duration::from_millis(1900),
        "{:?}",
        got[11].at - got[0].at
    );
}

#[tokio::test]
async fn a_hanging_endpoint_does_not_delay_the_others() {
    let slow = TestReceiver::start().await;
    slow.set_default(Reply::status(200).delayed(Duration::from_secs(5)));
    let fast = TestReceiver::start().await;
    let (app, key) = webinar_with("1s", 2, 20, |_| {}).await;
    app.subscribe_with(&key, &slow.url, json!({"maxConcurrency": 2}))
        .await;
    app.subscribe(&key, &fast.url, None).await;
    let start = std::time::Instant::now();
    fast.wait_for(20, 10).await;
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "healthy endpoint waited for the hanging one"
    );
    assert!(slow.received().len() <= 2);
}

#[tokio::test]
async fn a_burst_starts_slowly_then_opens_to_the_cap() {
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(200).delayed(Duration::from_millis(400)));
    let (app, key) = webinar_with("4s", 5, 40, |_| {}).await;
    app.subscribe_with(&key, &rx.url, json!({"maxConcurrency": 16}))
        .await;
    let got = rx.wait_for(40, 20).await;
    // Nothing is answered for 400 ms: until then only the first four went.
    let first = got[0].at;
    let early = got
        .iter()
        .filter(|r| r.at - first < Duration::from_millis(300))
        .count();
    assert_eq!(early, 4, "a burst starts with four requests");
    // Each answer doubles what the lane allows, up to the cap.
    assert_eq!(rx.max_in_flight(), 16);
}

#[tokio::test]
async fn a_lane_slower_than_its_lease_keeps_its_work() {
    let rx = TestReceiver::start().await;
    let (app, key) = webinar_with("20s", 21, 12, |c| {
        c.lease = Duration::from_secs(2);
        c.http_timeout = Duration::from_secs(1);
    })
    .await;
    // 12 deliveries at 2 a second: six seconds of sending, three leases.
    app.subscribe_with(&key, &rx.url, json!({"ratePerSecond": 2}))
        .await;
    let got = rx.wait_for(12, 20).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ids: std::collections::HashSet<String> = rx
        .received()
        .iter()
        .map(|r| r.header("webhook-id"))
        .collect();
    assert_eq!(ids.len(), 12);
    assert_eq!(rx.received().len(), 12, "nothing sent twice");
    assert!(got[11].at - got[0].at >= Duration::from_secs(4));
}
