//! Changes made while a fan-out is running, against a slow receiver: one
//! request at a time (`maxConcurrency: 1`), each answered after 100 ms, so
//! 40 participants take about four seconds. Unregistering, removing the
//! subscription, cancelling, deleting and rescheduling each stop what is
//! still to send, although the lane holds its whole leased slice (the first
//! 64 participants) in memory. The bound: once the API has answered, the
//! only requests that may still arrive are the ones already in flight, at
//! most the lane's concurrency (here 1), and one of those that fails is
//! not retried. Delete keeps the delivery history, and a reschedule's
//! reminders carry webhook-ids never seen before.
//!
//! The receiver holds its answer to the fourth request until the change has
//! answered, so the change always lands partway with exactly one request in
//! flight. "Nothing more" is then shown by a marker: another webinar's
//! reminder to the same subscription, brought due after the change. The
//! lane sends in order, one at a time, so anything it still held of what
//! was withdrawn would arrive before the marker.

use crate::helpers::*;
use crate::receiver::{Reply, TestReceiver};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;

const PEOPLE: usize = 40;
/// The subscription's `maxConcurrency`: what may be in flight at a change.
const IN_FLIGHT: usize = 1;

/// Requests answered before the receiver holds the next one's answer.
const BEFORE: usize = 3;

/// A fan-out of [`PEOPLE`] under way: [`BEFORE`] requests were answered,
/// the next one arrived and waits for [`TestReceiver::release`].
struct Running {
    rx: TestReceiver,
    app: TestApp,
    key: String,
    wid: String,
    sub: String,
    people: Vec<String>,
    /// Another webinar of the creator, one participant, whose reminder
    /// falls due 20 s after the fan-out's unless brought sooner.
    marker: Parked,
}

async fn running() -> Running {
    running_with(Reply::status(200)).await
}

/// [`running`] against a receiver answering `reply` after 100 ms.
async fn running_with(reply: Reply) -> Running {
    let rx = TestReceiver::start().await;
    rx.set_default(reply.delayed(Duration::from_millis(100)));
    // The default tick: a lane looks at its subscription once a second.
    let app = spawn_with(|c| {
        c.reminder_offsets = tminus::domain::offset::parse_list("30s").unwrap();
        c.tick = Duration::from_secs(1);
    })
    .await;
    let (cid, key) = app.creator().await;
    let w = app.parked(&cid, json!({})).await;
    let people = app.participants(&w.id, PEOPLE).await;
    let from = w.from + chrono::Duration::seconds(20);
    let marker = app.webinar_at(&cid, from, json!({})).await;
    let (s, _) = app
        .admin(
            Method::POST,
            &format!("/webinars/{marker}/participants"),
            Some(json!({"name": "Marker", "email": "marker@example.com"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let sub = app
        .subscribe_with(&key, &rx.url, json!({"maxConcurrency": IN_FLIGHT}))
        .await;
    let sub = sub["id"].as_str().unwrap().to_owned();
    rx.hold_after(BEFORE);
    app.starts_in(&w, 30.5);
    rx.wait_for(BEFORE + 1, 15).await;
    Running {
        rx,
        app,
        key,
        wid: w.id,
        sub,
        people,
        marker: Parked { id: marker, from },
    }
}

fn is_marker(r: &crate::receiver::Received) -> bool {
    r.json()["email"] == "marker@example.com"
}

impl Running {
    /// After a change answered when `at` requests had arrived (the last one
    /// held): lets the one in flight be answered, brings the marker due and
    /// waits for it, then checks that nothing but what was in flight
    /// arrived before it. Returns the requests of the fan-out.
    async fn nothing_more(&self, at: usize) -> usize {
        assert_eq!(at, BEFORE + IN_FLIGHT, "changed partway, one in flight");
        self.rx.release();
        self.app.starts_in(&self.marker, 30.5);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !self.rx.received().iter().any(is_marker) {
            assert!(std::time::Instant::now() < deadline, "no marker");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let now = self.rx.received().iter().filter(|r| !is_marker(r)).count();
        assert!(
            now <= at,
            "{} requests arrived after the change (the {IN_FLIGHT} in flight had arrived)",
            now - at
        );
        now
    }

    /// Waits until the deliveries list shows exactly what the receiver got
    /// of the fan-out, every one delivered: nothing pending is left.
    async fn history_is(&self, n: usize) {
        let got: HashSet<String> = self
            .rx
            .received()
            .iter()
            .filter(|r| !is_marker(r))
            .map(|r| r.header("webhook-id"))
            .collect();
        let wid = self.wid.as_str();
        let d = self
            .app
            .wait_deliveries(&self.key, &self.sub, 10, |d| {
                let d: Vec<_> = d.iter().filter(|x| x["webinarId"] == wid).collect();
                d.len() == n && d.iter().all(|x| x["status"] == "delivered")
            })
            .await;
        let d: Vec<_> = d.iter().filter(|x| x["webinarId"] == wid).collect();
        let listed: HashSet<String> = d
            .iter()
            .map(|x| x["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(listed, got, "the list shows what was sent");
    }
}

#[tokio::test]
async fn unregistering_mid_fan_out_stops_their_reminders() {
    let f = running().await;
    // Far ahead of the one in flight, in the slice the lane holds.
    let gone = &f.people[20..30];
    for p in gone {
        let (s, _) = f
            .app
            .admin(
                Method::DELETE,
                &format!("/webinars/{}/participants/{p}", f.wid),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
    }
    f.rx.release();
    f.rx.wait_for(PEOPLE - gone.len(), 20).await;
    f.app.settled().await;
    let got = f.rx.received();
    assert_eq!(got.len(), PEOPLE - gone.len(), "each other one once");
    let emails: HashSet<String> = got
        .iter()
        .map(|r| r.json()["email"].as_str().unwrap().to_owned())
        .collect();
    for i in 20..30 {
        assert!(
            !emails.contains(&format!("p{i}@example.com")),
            "p{i} was sent"
        );
    }
    f.history_is(PEOPLE - gone.len()).await;
}

#[tokio::test]
async fn removing_the_subscription_mid_fan_out_stops_it() {
    let f = running().await;
    let (s, _) = f
        .app
        .hooks(Method::DELETE, &f.key, &format!("/{}", f.sub), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    // No marker can follow the removed subscription; its lane's end can:
    // once no lane runs (`tminus_lanes 0`), nothing more can leave.
    let at = f.rx.received().len();
    assert_eq!(at, BEFORE + IN_FLIGHT, "changed partway, one in flight");
    f.rx.release();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !crate::metrics::scrape(&f.app)
        .await
        .lines()
        .any(|l| l == "tminus_lanes 0")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the lane never retired"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(f.rx.received().len(), at, "sent after the removal");
}

#[tokio::test]
async fn cancelling_mid_fan_out_stops_it() {
    let f = running().await;
    let (s, _) = f
        .app
        .admin(Method::POST, &format!("/webinars/{}/cancel", f.wid), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let n = f.nothing_more(f.rx.received().len()).await;
    f.history_is(n).await;
}

#[tokio::test]
async fn deleting_mid_fan_out_stops_it_and_keeps_the_history() {
    let f = running().await;
    let (s, _) = f
        .app
        .admin(Method::DELETE, &format!("/webinars/{}", f.wid), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let n = f.nothing_more(f.rx.received().len()).await;
    // The webinar is hidden; what was sent for it is still listed.
    let (s, _) = f
        .app
        .admin(Method::GET, &format!("/webinars/{}", f.wid), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    f.history_is(n).await;
}

#[tokio::test]
async fn rescheduling_mid_fan_out_stops_the_old_start_and_sends_new_ids() {
    let f = running().await;
    // The new start's reminder falls due half a minute from now, and is
    // brought to a second from now once the reschedule has answered.
    let new_from = f.app.clock.now() + chrono::Duration::seconds(60);
    let (s, w) = f
        .app
        .admin(
            Method::POST,
            &format!("/webinars/{}/reschedule", f.wid),
            Some(json!({"fromTime": iso(new_from)})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{w}");
    let at = f.rx.received().len();
    assert_eq!(at, BEFORE + IN_FLIGHT, "changed partway, one in flight");
    f.rx.release();
    let new_from = w["fromTime"].as_str().unwrap().to_owned();
    let from: chrono::DateTime<chrono::Utc> = new_from.parse().unwrap();
    f.app.bring(from, 31.0);
    let old = |r: &crate::receiver::Received| r.json()["webinarFromTime"] != new_from.as_str();
    // The new start's reminders queue behind whatever the lane still held
    // of the old one: once they are all in, so is anything it sent of that.
    f.rx.wait_for(at + PEOPLE, 30).await;
    f.app.settled().await;
    // The clock moved past the marker's instant too: it is not part of this.
    let got: Vec<_> =
        f.rx.received()
            .into_iter()
            .filter(|r| !is_marker(r))
            .collect();
    let (before, after): (Vec<_>, Vec<_>) = got.iter().partition(|r| old(r));
    assert!(
        before.len() <= at,
        "{} reminders of the old start arrived after the reschedule (the {IN_FLIGHT} in flight had arrived)",
        before.len() - at
    );
    assert_eq!(after.len(), PEOPLE, "the new start's reminder, once each");
    let old_ids: HashSet<String> = before.iter().map(|r| r.header("webhook-id")).collect();
    let new_ids: HashSet<String> = after.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(new_ids.len(), PEOPLE);
    assert!(
        old_ids.is_disjoint(&new_ids),
        "a reminder of the new start reused an id"
    );
}

#[tokio::test]
async fn a_failing_attempt_in_flight_at_a_cancel_is_not_retried() {
    // Every attempt fails: without the cancel each would be retried 200 ms
    // later. The one in flight when the cancel answers fails after it, and
    // is recorded cancelled, not pending.
    let f = running_with(Reply::status(500)).await;
    let (s, _) = f
        .app
        .admin(Method::POST, &format!("/webinars/{}/cancel", f.wid), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    f.nothing_more(f.rx.received().len()).await;
    let wid = f.wid.as_str();
    let d = f
        .app
        .wait_deliveries(&f.key, &f.sub, 10, |d| {
            d.iter()
                .filter(|x| x["webinarId"] == wid)
                .all(|x| x["status"] == "cancelled")
        })
        .await;
    assert!(d.iter().any(|x| x["webinarId"] == wid));
}
