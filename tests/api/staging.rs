//! Staging: a reminder's first participants are claimed and leased a moment
//! before its due instant (`stage_ahead`) and held by their lane until the
//! instant; nothing leaves early, and who the reminder is for is still
//! decided at the instant. The service's clock is moved into the staging
//! window and then to the instant, so the checks in between do not race it.

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
        c.stage_ahead = Duration::from_secs(60);
    })
    .await;
    let (cid, key) = app.creator().await;
    let w = app.parked(&cid, json!({})).await;
    let due = w.from - chrono::Duration::seconds(2);
    app.participants(&w.id, 3).await;
    let sub = app.subscribe(&key, &rx.url, None).await;

    // Inside the staging window, half a minute before the instant: staged,
    // nothing sent.
    app.bring(due, 30.0);
    app.wait_reminders(&w.id, |r| r[0]["status"] == "firing")
        .await;
    assert!(
        rx.received().is_empty(),
        "nothing leaves before the instant"
    );
    // Registered after staging, before the instant: still reminded.
    let (s, b) = app
        .admin(
            Method::POST,
            &format!("/webinars/{}/participants", w.id),
            Some(json!({"name": "Late", "email": "late@example.com"})),
        )
        .await;
    assert!(s == StatusCode::CREATED || s == StatusCode::OK, "{s} {b}");
    assert!(rx.received().is_empty());

    app.bring(due, 0.3);
    let got = rx.wait_for(4, 10).await;
    app.settled().await;
    assert_eq!(rx.received().len(), 4, "each once");
    let ids: HashSet<String> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), 4);
    let first = app.on_clock(got.iter().map(|r| r.wall).min().unwrap());
    assert!(first >= due, "first request at {first}, due {due}");
    assert!(got.iter().any(|r| r.json()["email"] == "late@example.com"));
    let sid = sub["id"].as_str().unwrap();
    let d = app.deliveries(&key, sid).await;
    assert_eq!(statuses(&d), ["delivered"; 4]);
    let (_, rem) = app
        .admin(Method::GET, &format!("/webinars/{}/reminders", w.id), None)
        .await;
    assert_eq!(rem["data"][0]["status"], "sent");
    assert_eq!(rem["data"][0]["firedAt"], iso(due));
}
