//! When reminders fire: after reschedule, cancel, unregister, unsubscribe,
//! late registration, a restart, downtime (late and missed), across a
//! daylight-saving switch, and to which subscriptions. Webinars are set up
//! parked far ahead and brought near by moving the service's clock, and
//! "nothing more arrives" is checked once the store has nothing in progress.

use crate::helpers::*;
use crate::receiver::TestReceiver;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn reschedule_moves_pending_reminders() {
    let rx = TestReceiver::start().await;
    let app = spawn_app().await;
    let (cid, key) = app.creator().await;
    let wid = app.webinar(&cid, 600).await;
    app.participants(&wid, 1).await;
    app.subscribe(&key, &rx.url, None).await;
    let new_from = app.clock.now() + chrono::Duration::hours(2);
    let new_from = chrono::DateTime::from_timestamp_millis(new_from.timestamp_millis()).unwrap();
    let (s, w) = app
        .admin(
            Method::POST,
            &format!("/webinars/{wid}/reschedule"),
            Some(json!({"fromTime": iso(new_from)})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{w}");
    assert_eq!(
        w["toTime"],
        iso(new_from + chrono::Duration::hours(1)),
        "duration kept"
    );
    app.bring(new_from, 3.5);
    let got = rx.wait_for(3, 10).await;
    app.settled().await;
    assert_eq!(rx.received().len(), 3);
    assert!(got
        .iter()
        .all(|r| r.json()["webinarFromTime"] == iso(new_from)));
    let (_, rem) = app
        .admin(Method::GET, &format!("/webinars/{wid}/reminders"), None)
        .await;
    let rem = rem["data"].as_array().unwrap();
    assert_eq!(
        rem.iter().filter(|r| r["status"] == "cancelled").count(),
        3,
        "old reminders dropped"
    );
    assert_eq!(rem.iter().filter(|r| r["status"] == "sent").count(), 3);
}

/// docs/API.md's 409s for a cancelled webinar: a change is
/// `webinar_cancelled`, a registration `conflict`.
#[tokio::test]
async fn a_cancelled_webinar_refuses_changes_and_registrations() {
    let app = spawn_app().await;
    let (cid, _) = app.creator().await;
    let w = app.webinar(&cid, 86_400).await;
    let (s, _) = app
        .admin(Method::POST, &format!("/webinars/{w}/cancel"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = app
        .admin(
            Method::PATCH,
            &format!("/webinars/{w}"),
            Some(json!({"title": "Again"})),
        )
        .await;
    assert_eq!(
        (s, &e["error"]["code"]),
        (StatusCode::CONFLICT, &json!("webinar_cancelled")),
        "{e}"
    );
    let (s, e) = app
        .admin(
            Method::POST,
            &format!("/webinars/{w}/participants"),
            Some(json!({"name": "Late", "email": "late@example.com"})),
        )
        .await;
    assert_eq!(
        (s, &e["error"]["code"]),
        (StatusCode::CONFLICT, &json!("conflict")),
        "{e}"
    );
}

#[tokio::test]
async fn cancel_and_delete_drop_reminders() {
    let rx = TestReceiver::start().await;
    let app = spawn_app().await;
    let (cid, key) = app.creator().await;
    let a = app.parked(&cid, json!({})).await;
    // Starting with `a`: its reminders, when they go out, show the
    // scheduler has gone past the instants of the others.
    let control = app.webinar_at(&cid, a.from, json!({})).await;
    let b = app.webinar_at(&cid, a.from, json!({})).await;
    let (at, a) = (a.from, a.id);
    app.participants(&a, 2).await;
    app.participants(&b, 2).await;
    app.participants(&control, 2).await;
    app.subscribe(&key, &rx.url, None).await;
    let (s, w) = app
        .admin(Method::POST, &format!("/webinars/{a}/cancel"), None)
        .await;
    assert_eq!(
        (s, w["status"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    let (s, _) = app
        .admin(Method::DELETE, &format!("/webinars/{b}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app
        .admin(Method::GET, &format!("/webinars/{b}"), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    app.bring(at, 3.5);
    rx.wait_for(6, 15).await;
    app.wait_reminders(&control, |r| r.iter().all(|x| x["status"] == "sent"))
        .await;
    app.settled().await;
    let got = rx.received();
    assert_eq!(got.len(), 6, "only the control webinar's reminders");
    assert!(got
        .iter()
        .all(|r| r.json()["webinarId"] == control.as_str()));
    let (_, rem) = app
        .admin(Method::GET, &format!("/webinars/{a}/reminders"), None)
        .await;
    assert!(rem["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["status"] == "cancelled"));
}

#[tokio::test]
async fn unregistered_participants_and_removed_subscriptions_get_nothing() {
    let rx = TestReceiver::start().await;
    let gone = TestReceiver::start().await;
    let app = spawn_app().await;
    let (cid, key) = app.creator().await;
    let w = app.parked(&cid, json!({})).await;
    let wid = w.id.clone();
    let people = app.participants(&wid, 2).await;
    app.subscribe(&key, &rx.url, None).await;
    let removed = app.subscribe(&key, &gone.url, None).await;
    let (s, _) = app
        .admin(
            Method::DELETE,
            &format!("/webinars/{wid}/participants/{}", people[1]),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app
        .hooks(
            Method::DELETE,
            &key,
            &format!("/{}", removed["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    app.starts_in(&w, 3.5);
    rx.wait_for(3, 10).await;
    app.settled().await;
    let got = rx.received();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.json()["email"] == "p0@example.com"));
    assert!(gone.received().is_empty());
}

#[tokio::test]
async fn late_registration_gets_only_the_intervals_ahead() {
    let rx = TestReceiver::start().await;
    let app = spawn_with(|c| {
        c.reminder_offsets = tminus::domain::offset::parse_list("20s,2s,1s").unwrap()
    })
    .await;
    let (cid, key) = app.creator().await;
    let w = app.parked(&cid, json!({})).await;
    let wid = w.id.clone();
    app.participants(&wid, 1).await;
    app.subscribe(&key, &rx.url, None).await;
    app.starts_in(&w, 20.5);
    rx.wait_for(1, 5).await; // the 20s reminder went out; the next is 18 s away
    let (s, _) = app
        .admin(
            Method::POST,
            &format!("/webinars/{wid}/participants"),
            Some(json!({"name": "Late", "email": "late@example.com"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    app.starts_in(&w, 2.5);
    rx.wait_for(5, 10).await;
    app.settled().await;
    let late: Vec<String> = rx
        .received()
        .iter()
        .filter(|r| r.json()["email"] == "late@example.com")
        .map(|r| r.header("x-tminus-reminder"))
        .collect();
    let mut late = late;
    late.sort();
    assert_eq!(late, ["1s", "2s"]);
    assert_eq!(rx.received().len(), 5);
}

#[tokio::test]
async fn a_restart_mid_schedule_loses_and_repeats_nothing() {
    let rx = TestReceiver::start().await;
    let app = spawn_with(|c| {
        c.reminder_offsets = tminus::domain::offset::parse_list("20s,2s,1s").unwrap()
    })
    .await;
    let (cid, key) = app.creator().await;
    let w = app.parked(&cid, json!({})).await;
    app.participants(&w.id, 2).await;
    app.subscribe(&key, &rx.url, None).await;
    app.starts_in(&w, 20.5);
    rx.wait_for(2, 5).await;
    // The first reminder was sent; the next two are 18 s away.
    let app = app.restart().await;
    app.starts_in(&w, 2.5);
    let got = rx.wait_for(6, 10).await;
    app.settled().await;
    assert_eq!(rx.received().len(), 6);
    let ids: std::collections::HashSet<_> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), 6);
    drop(app);
}

/// A webinar 60 s ahead with one reminder 30 s before it, two participants
/// and a subscription; the service (configured by `tweak`) is down for
/// `secs` seconds of its clock, then started again: (receiver, app, key,
/// webinar, subscription).
pub async fn down_for(
    secs: i64,
    tweak: impl FnOnce(&mut tminus::config::Config),
) -> (TestReceiver, TestApp, String, String, serde_json::Value) {
    let rx = TestReceiver::start().await;
    let app = spawn_with(|c| {
        c.reminder_offsets = tminus::domain::offset::parse_list("30s").unwrap();
        tweak(c);
    })
    .await;
    let (cid, key) = app.creator().await;
    let wid = app.webinar(&cid, 60).await;
    app.participants(&wid, 2).await;
    let sub = app.subscribe(&key, &rx.url, None).await;
    let mut app = app;
    app.stop().await;
    app.clock.advance(chrono::Duration::seconds(secs));
    (rx, app.restart().await, key, wid, sub)
}

#[tokio::test]
async fn downtime_sends_useful_reminders_late() {
    // Due 10 s ago; the start is 20 s ahead.
    let (rx, app, key, wid, sub) = down_for(40, |_| {}).await;
    rx.wait_for(2, 5).await;
    let d = app
        .wait_deliveries(&key, sub["id"].as_str().unwrap(), 5, |d| {
            d.len() == 2 && d.iter().all(|x| x["status"] == "delivered")
        })
        .await;
    assert!(d.iter().all(|x| x["late"] == true), "{d:#?}");
    let (_, rem) = app
        .admin(Method::GET, &format!("/webinars/{wid}/reminders"), None)
        .await;
    assert_eq!(rem["data"][0]["status"], "sent");
    assert_eq!(rem["data"][0]["late"], true);
}

#[tokio::test]
async fn downtime_past_the_start_records_reminders_as_missed() {
    // The webinar already started.
    let (rx, app, key, wid, sub) = down_for(120, |_| {}).await;
    let d = app
        .wait_deliveries(&key, sub["id"].as_str().unwrap(), 5, |d| d.len() == 2)
        .await;
    assert_eq!(statuses(&d), ["missed", "missed"]);
    let (_, rem) = app
        .admin(Method::GET, &format!("/webinars/{wid}/reminders"), None)
        .await;
    assert_eq!(rem["data"][0]["status"], "missed");
    app.settled().await;
    assert!(rx.received().is_empty());
}

#[tokio::test]
async fn offsets_follow_daylight_saving_at_the_webinar_start() {
    let rx = TestReceiver::start().await;
    let app =
        spawn_with(|c| c.reminder_offsets = tminus::domain::offset::parse_list("2s").unwrap())
            .await;
    // Europe/Berlin moves to summer time at 2027-03-28T01:00:00Z. Put "now"
    // just before it: the reminder is sent in winter time, for a start in
    // summer time.
    let switch = chrono::DateTime::parse_from_rfc3339("2027-03-28T01:00:00Z")
        .unwrap()
        .to_utc();
    app.bring(switch, 3600.0);
    let (cid, key) = app.creator().await;
    let from = switch + chrono::Duration::seconds(1);
    let wid = app
        .webinar_at(&cid, from, json!({"timezone": "Europe/Berlin"}))
        .await;
    let (s, _) = app
        .admin(
            Method::POST,
            &format!("/webinars/{wid}/participants"),
            Some(json!({"name": "NY", "email": "ny@example.com", "timezone": "America/New_York"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    app.subscribe(&key, &rx.url, None).await;
    app.bring(switch, 2.5);
    let got = rx.wait_for(1, 5).await;
    let p = got[0].json();
    assert_eq!(p["creatorTimezone"], "+02:00");
    assert_eq!(p["timezone"], "-04:00");
    assert_eq!(
        p["webinarFromTimeInCreatorTimezone"],
        iso(from + chrono::Duration::hours(2))
    );
}

#[tokio::test]
async fn events_and_filters_pick_the_right_subscriptions() {
    let app = spawn_app().await;
    let (cid, key) = app.creator().await;
    let (_, m1) = app
        .admin(
            Method::POST,
            &format!("/creators/{cid}/mangoes"),
            Some(json!({"name": "One"})),
        )
        .await;
    let (_, m2) = app
        .admin(
            Method::POST,
            &format!("/creators/{cid}/mangoes"),
            Some(json!({"name": "Two"})),
        )
        .await;
    let w = app.parked(&cid, json!({"mangoes": [m1["id"]]})).await;
    let wid = w.id.clone();
    let other = app.webinar(&cid, 7200).await;
    app.participants(&wid, 1).await;
    let mut rxs = vec![];
    let bodies = [
        json!({"event": "webinar.reminder.all"}),
        json!({"event": "webinar.reminder.1s"}),
        json!({"event": "webinar.reminder.all", "webinar": other}),
        json!({"event": "webinar.reminder.all", "mango": m1["id"]}),
        json!({"event": "webinar.reminder.all", "mango": m2["id"]}),
    ];
    for mut b in bodies {
        let rx = TestReceiver::start().await;
        b["hookUrl"] = json!(rx.url);
        let (s, sub) = app.hooks(Method::POST, &key, "", Some(b)).await;
        assert_eq!(s, StatusCode::CREATED, "{sub}");
        rxs.push(rx);
    }
    app.starts_in(&w, 3.5);
    rxs[0].wait_for(3, 10).await;
    app.settled().await;
    let counts: Vec<usize> = rxs.iter().map(|r| r.received().len()).collect();
    assert_eq!(counts, [3, 1, 0, 3, 0]);
    assert_eq!(
        rxs[1].received()[0].header("x-tminus-event"),
        "webinar.reminder.1s"
    );
}

#[tokio::test]
async fn a_clean_stop_hands_back_unsent_work_at_once() {
    let rx = TestReceiver::start().await;
    rx.set_default(crate::receiver::Reply::status(200).delayed(Duration::from_millis(200)));
    let app =
        spawn_with(|c| c.reminder_offsets = tminus::domain::offset::parse_list("30s").unwrap())
            .await;
    let (cid, key) = app.creator().await;
    let w = app.parked(&cid, json!({})).await;
    app.participants(&w.id, 10).await;
    app.subscribe_with(&key, &rx.url, json!({"maxConcurrency": 1}))
        .await;
    app.starts_in(&w, 31.0);
    rx.wait_for(2, 10).await;
    let app = app.restart().await; // leases are 90 s: without hand-back the rest would wait that long
    let got = rx.wait_for(10, 8).await;
    app.settled().await;
    let ids: std::collections::HashSet<_> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), 10);
    assert!(
        rx.received().len() <= 11,
        "at most the one in flight is repeated"
    );
    drop(app);
}
