//! The connections a lane sends on: opened before a fan-out falls due, and
//! replaced when the receiver closes them, without losing or repeating a
//! delivery.

use crate::delivery::webinar_with;
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
    let wid = app.webinar(&cid, 4).await;
    app.participants(&wid, 8).await;
    app.subscribe(&key, &rx.url, None).await;
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
    let early = rx.accepted().iter().filter(|t| **t < due).count();
    assert!(early >= 1, "connections {:?}, due {due}", rx.accepted());
}

#[tokio::test]
async fn a_receiver_closing_every_connection_gets_each_delivery_once() {
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(200).closing());
    let (app, key) = webinar_with("1s", 2, 20, |_| {}).await;
    let sub = app
        .subscribe_with(&key, &rx.url, json!({"maxConcurrency": 2}))
        .await;
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
