//! The connections a lane sends on: exactly as many opened before a fan-out
//! falls due as its burst starts with, and replaced when the receiver
//! closes them (after an answer, or once idle), without losing or
//! repeating a delivery or costing an attempt. Webinars are set up parked
//! far ahead and brought near once subscribed.

use crate::delivery::webinar_with;
use crate::faults::{Fault, FaultReceiver};
use crate::helpers::spawn_with;
use crate::receiver::{Reply, TestReceiver};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_lane_warmed_for_a_fan_out_connects_before_it_falls_due() {
    let rx = TestReceiver::start().await;
    let app = spawn_with(|c| {
        c.reminder_offsets = tminus::domain::offset::parse_list("2s").unwrap();
        // The lanes are warmed within a tick of the due instant.
        c.tick = Duration::from_secs(1);
    })
    .await;
    let (cid, key) = app.creator().await;
    let w = app.parked(&cid, json!({})).await;
    let wid = w.id.clone();
    app.participants(&wid, 8).await;
    app.subscribe(&key, &rx.url, None).await;
    app.starts_in(&w, 4.0);
    let (_, r) = app
        .admin(
            axum::http::Method::GET,
            &format!("/webinars/{wid}/reminders"),
            None,
        )
        .await;
    let due: chrono::DateTime<chrono::Utc> =
        r["data"][0]["dueAt"].as_str().unwrap().parse().unwrap();
    rx.wait_for(8, 10).await;
    let early = rx
        .accepted()
        .iter()
        .filter(|t| app.on_clock(**t) < due)
        .count();
    // As many as the burst starts with (SLOW_START), no more, no fewer.
    assert_eq!(early, 4, "connections {:?}, due {due}", rx.accepted());
}

#[tokio::test]
async fn a_kept_connection_closed_by_the_receiver_is_replaced_at_no_cost() {
    // Each answer keeps the connection alive, which the receiver then
    // closes after 30 ms idle; deliveries go a second apart (one a second,
    // one at a time), so each one finds its kept connection closed.
    let rx = FaultReceiver::start().await;
    let url = rx.on(
        "/idle",
        Fault::CloseWhenIdle(Duration::from_millis(30)),
        1000,
    );
    let (app, key, w) = webinar_with("10s", 4, |_| {}).await;
    let sub = app
        .subscribe_with(&key, &url, json!({"maxConcurrency": 1, "ratePerSecond": 1}))
        .await;
    app.starts_in(&w, 11.0);
    let sid = sub["id"].as_str().unwrap();
    let d = app
        .wait_deliveries(&key, sid, 15, |d| {
            d.len() == 4 && d.iter().all(|x| x["status"] == "delivered")
        })
        .await;
    for x in &d {
        assert_eq!(x["attempts"], 1, "{x:#}");
        let log = x["attemptLog"].as_array().unwrap();
        assert_eq!(log.len(), 1, "one attempt: {x:#}");
        assert_eq!(log[0]["statusCode"], 200);
    }
    assert_eq!(rx.hits("/idle"), 4, "each sent once");
    let accepted = rx.accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        accepted, 4,
        "a new connection for each: the kept one was closed"
    );
}

#[tokio::test]
async fn a_receiver_closing_every_connection_gets_each_delivery_once() {
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(200).closing());
    let (app, key, w) = webinar_with("1s", 20, |_| {}).await;
    let sub = app
        .subscribe_with(&key, &rx.url, json!({"maxConcurrency": 2}))
        .await;
    app.starts_in(&w, 2.0);
    let sid = sub["id"].as_str().unwrap();
    rx.wait_for(20, 10).await;
    let d = app
        .wait_deliveries(&key, sid, 10, |d| {
            d.len() == 20 && d.iter().all(|x| x["status"] == "delivered")
        })
        .await;
    assert!(d.iter().all(|x| x["attempts"] == 1), "{d:?}");
    assert_eq!(rx.received().len(), 20, "nothing sent twice");
    // Every answer closed its connection: one connection per request.
    assert_eq!(rx.accepted().len(), 20);
}
