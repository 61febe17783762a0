//! Staging: a reminder's first participants are claimed and leased a moment
//! before its due instant (`stage_ahead`) and held by their lane until the
//! instant; nothing leaves early, and who the reminder is for is still
//! decided at the instant.

use crate::helpers::*;
use crate::receiver::TestReceiver;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;

#[tokio::test]
async fn a_staged_reminder_leaves_at_its_instant_and_counts_late_registrations() {
    let rx = TestReceiver::start().await;
    let app = spawn_with(|c| {
        c.reminder_offsets = tminus::domain::offset::parse_list("2s").unwrap();
        c.stage_ahead = Duration::from_millis(1500);
    })
    .await;
    let (cid, key) = app.creator().await;
    let now = app.clock.now();
    let from = chrono::DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap()
        + chrono::Duration::milliseconds(4500);
    let due = from - chrono::Duration::seconds(2);
    let wid = app.webinar_at(&cid, from, json!({})).await;
    app.participants(&wid, 3).await;
    app.subscribe(&key, &rx.url, None).await;

    // Between staging (due − 1.5 s) and the instant: staged, nothing sent.
    let mid = due - chrono::Duration::milliseconds(750);
    tokio::time::sleep((mid - app.clock.now()).to_std().unwrap()).await;
    let (_, rem) = app
        .admin(Method::GET, &format!("/webinars/{wid}/reminders"), None)
        .await;
    assert_eq!(rem["data"][0]["status"], "firing", "{rem}");
    assert!(
        rx.received().is_empty(),
        "nothing leaves before the instant"
    );
    // Registered after staging, before the instant: still reminded.
    let (s, b) = app
        .admin(
            Method::POST,
            &format!("/webinars/{wid}/participants"),
            Some(json!({"name": "Late", "email": "late@example.com"})),
        )
        .await;
    assert!(s == StatusCode::CREATED || s == StatusCode::OK, "{s} {b}");

    let got = rx.wait_for(4, 10).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.received().len(), 4, "each once");
    let ids: HashSet<String> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), 4);
    let first = got.iter().map(|r| r.wall).min().unwrap();
    assert!(first >= due, "first request at {first}, due {due}");
    assert!(got.iter().any(|r| r.json()["email"] == "late@example.com"));
    let (_, rem) = app
        .admin(Method::GET, &format!("/webinars/{wid}/reminders"), None)
        .await;
    assert_eq!(rem["data"][0]["status"], "sent");
    assert_eq!(rem["data"][0]["firedAt"], iso(due));
}
