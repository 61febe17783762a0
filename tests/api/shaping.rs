//! Traffic shaping per subscription: the concurrency and rate caps, the
//! slow start of a burst, and a hanging endpoint that only holds up itself.
//! Each webinar is set up parked far ahead and brought near once its
//! subscriptions exist; what is checked is ordered by the receivers' own
//! events (arrivals, answers), not by wall-clock windows.

use crate::delivery::webinar_with;
use crate::receiver::{Reply, TestReceiver};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn concurrency_cap_and_rate_cap_shape_traffic() {
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(200).delayed(Duration::from_millis(100)));
    let paced = TestReceiver::start().await;
    let (app, key, w) = webinar_with("8s", 12, |_| {}).await;
    app.subscribe_with(&key, &rx.url, json!({"maxConcurrency": 2}))
        .await;
    app.subscribe_with(&key, &paced.url, json!({"ratePerSecond": 4}))
        .await;
    app.starts_in(&w, 9.0);
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
    // The hanging endpoint holds each request ten minutes, and tminus waits
    // two for an answer: far longer than the healthy one's whole run.
    let slow = TestReceiver::start().await;
    slow.set_default(Reply::status(200).delayed(Duration::from_secs(600)));
    let fast = TestReceiver::start().await;
    let (app, key, w) = webinar_with("1s", 20, |c| {
        c.http_timeout = Duration::from_secs(120);
    })
    .await;
    app.subscribe_with(&key, &slow.url, json!({"maxConcurrency": 2}))
        .await;
    app.subscribe(&key, &fast.url, None).await;
    app.starts_in(&w, 2.0);
    // The hanging lane is stuck: both its requests are held.
    slow.wait_for(2, 30).await;
    // The healthy one finishes meanwhile, while the other still hangs.
    fast.wait_for(20, 60).await;
    assert_eq!(slow.in_flight(), 2, "the hanging endpoint still hangs");
    assert_eq!(slow.received().len(), 2);
    assert!(
        slow.first_answer().is_none(),
        "the hanging endpoint answered before the healthy one finished"
    );
}

#[tokio::test]
async fn a_burst_starts_slowly_then_opens_to_the_cap() {
    let rx = TestReceiver::start().await;
    // No answer before four requests arrived, then 400 ms more: what is sent
    // before the first answer is what the burst starts with.
    rx.set_default(
        Reply::status(200)
            .after_arrivals(4)
            .delayed(Duration::from_millis(400)),
    );
    let (app, key, w) = webinar_with("4s", 40, |_| {}).await;
    app.subscribe_with(&key, &rx.url, json!({"maxConcurrency": 16}))
        .await;
    app.starts_in(&w, 5.0);
    let got = rx.wait_for(40, 30).await;
    let first_answer = rx.first_answer().unwrap();
    let early = got.iter().filter(|r| r.at < first_answer).count();
    assert_eq!(early, 4, "a burst starts with four requests");
    // Each answer doubles what the lane allows, up to the cap.
    assert_eq!(rx.max_in_flight(), 16);
}

#[tokio::test]
async fn a_lane_slower_than_its_lease_keeps_its_work() {
    let rx = TestReceiver::start().await;
    let (app, key, w) = webinar_with("20s", 12, |c| {
        c.lease = Duration::from_secs(2);
        c.http_timeout = Duration::from_secs(1);
    })
    .await;
    // 12 deliveries at 2 a second: six seconds of sending, three leases.
    let sub = app
        .subscribe_with(&key, &rx.url, json!({"ratePerSecond": 2}))
        .await;
    app.starts_in(&w, 21.0);
    let got = rx.wait_for(12, 20).await;
    // Every delivery has its final state: nothing more can be sent.
    app.settled().await;
    let ids: std::collections::HashSet<String> = rx
        .received()
        .iter()
        .map(|r| r.header("webhook-id"))
        .collect();
    assert_eq!(ids.len(), 12);
    assert_eq!(rx.received().len(), 12, "nothing sent twice");
    let d = app.deliveries(&key, sub["id"].as_str().unwrap()).await;
    assert!(d.iter().all(|x| x["attempts"] == 1), "{d:#?}");
    assert!(got[11].at - got[0].at >= Duration::from_secs(4));
}

#[tokio::test]
async fn a_subscription_without_a_cap_gets_sixteen() {
    let rx = TestReceiver::start().await;
    // Answers held 400 ms: the lane opens as far as its cap lets it.
    rx.set_default(Reply::status(200).delayed(Duration::from_millis(400)));
    let (app, key, w) = webinar_with("4s", 60, |_| {}).await;
    let sub = app.subscribe(&key, &rx.url, None).await;
    assert_eq!(sub["maxConcurrency"], 16, "{sub}");
    app.starts_in(&w, 5.0);
    rx.wait_for(60, 30).await;
    assert_eq!(rx.max_in_flight(), 16);
}
