//! A secret rotated in the middle of a fan-out: every request that leaves
//! after the rotation carries the new secret's signature, and the old one
//! only while its grace lasts, whatever the tick. The rotation reaches the
//! lane at once on this instance, through PostgreSQL's notifications on
//! the others, and a lane that cannot read its subscription for longer than
//! a grace stops signing with a copy it cannot confirm.

use crate::delivery::webinar_with;
use crate::helpers::*;
use crate::receiver::{Received, TestReceiver};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Participants in each fan-out here.
const N: usize = 400;

/// Whether `r` carries a valid signature by `secret` (any of its
/// space-separated signatures).
fn signed_by(r: &Received, secret: &str) -> bool {
    let ts: i64 = r.header("webhook-timestamp").parse().unwrap();
    tminus::signing::verify(
        secret,
        &r.header("webhook-id"),
        ts,
        &r.body,
        &r.header("webhook-signature"),
    )
}

/// Waits until `n` requests have arrived and `held` of them wait for
/// their answer: the lane is at its cap, and nothing more leaves until the
/// receiver answers.
async fn parked_at(rx: &TestReceiver, n: usize, held: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while rx.received().len() < n || rx.in_flight() < held {
        assert!(
            Instant::now() < deadline,
            "{} arrived, {} held; wanted {n} and {held}",
            rx.received().len(),
            rx.in_flight()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(rx.received().len(), n, "more arrived than the cap allows");
}

/// Waits until every participant's reminder has arrived (by webhook-id).
async fn all_arrived(rx: &TestReceiver) -> Vec<Received> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = rx.received();
        let ids: BTreeSet<String> = got.iter().map(|r| r.header("webhook-id")).collect();
        if ids.len() == N {
            return got;
        }
        assert!(Instant::now() < deadline, "{} of {N} arrived", ids.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn rotate(app: &TestApp, key: &str, sid: &str) -> String {
    let (s, r) = app
        .hooks(Method::POST, key, &format!("/{sid}/rotate-secret"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    r["secret"].as_str().unwrap().to_owned()
}

/// A grace of a second, shorter than the tick of five: before the lanes
/// were told of a rotation, they signed with the old secret alone until
/// their next tick.
fn short_grace(c: &mut tminus::config::Config) {
    c.tick = Duration::from_secs(5);
    c.secret_grace = Duration::from_secs(1);
}

/// A fan-out of [`N`] at `maxConcurrency` 4 under [`short_grace`], with
/// 40 requests answered and 4 more sent and held: the lane is at its cap.
struct MidFanOut {
    rx: TestReceiver,
    app: TestApp,
    key: String,
    sid: String,
    old: String,
}

async fn parked_mid_fan_out() -> MidFanOut {
    let rx = TestReceiver::start().await;
    rx.hold_after(40);
    let (app, key, w) = webinar_with("29s", N, short_grace).await;
    let sub = app
        .subscribe_with(&key, &rx.url, json!({"maxConcurrency": 4}))
        .await;
    let text = |f: &str| sub[f].as_str().unwrap().to_owned();
    let (sid, old) = (text("id"), text("secret"));
    app.starts_in(&w, 30.0);
    parked_at(&rx, 44, 4).await;
    MidFanOut {
        rx,
        app,
        key,
        sid,
        old,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_mid_fan_out_signs_every_later_request_and_the_old_secret_stops_at_its_grace() {
    let MidFanOut {
        rx,
        app,
        key,
        sid,
        old,
    } = parked_mid_fan_out().await;
    let (sid, old) = (sid.as_str(), old.as_str());
    let new = rotate(&app, &key, sid).await;
    // Within the grace: 60 more go out, then the lane is parked again.
    rx.let_through(100);
    parked_at(&rx, 104, 4).await;
    // The grace ends on the service's clock; the rest leave after it.
    app.clock.advance(chrono::Duration::seconds(2));
    rx.release();
    let got = all_arrived(&rx).await;
    for r in &got[..44] {
        assert!(signed_by(r, old), "sent before the rotation");
    }
    for (i, r) in got.iter().enumerate().skip(44) {
        assert!(
            signed_by(r, &new),
            "request {i} left after the rotation unsigned by the new secret"
        );
    }
    for (i, r) in got.iter().enumerate().skip(104) {
        assert!(
            !signed_by(r, old),
            "request {i} left after the grace, signed by the old secret"
        );
        assert_eq!(r.header("webhook-signature").split(' ').count(), 1);
    }
}

/// Renames the subscriptions table from another connection, or back: the
/// service's reads of it fail meanwhile (its other tables stay readable).
fn subscriptions_table(app: &TestApp, away: bool) {
    let c = rusqlite::Connection::open(&app.db).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    let (from, to) = if away {
        ("subscriptions", "subscriptions_away")
    } else {
        ("subscriptions_away", "subscriptions")
    };
    c.execute_batch(&format!("ALTER TABLE {from} RENAME TO {to}"))
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_that_cannot_read_its_subscription_past_a_grace_signs_nothing_with_its_old_copy() {
    let MidFanOut {
        rx,
        app,
        key,
        sid,
        old,
    } = parked_mid_fan_out().await;
    let (sid, old) = (sid.as_str(), old.as_str());
    // Rotated, and the store becomes unreadable before the lane (parked at
    // its cap) can read the subscription again; the old secret's grace
    // then ends.
    let new = rotate(&app, &key, sid).await;
    subscriptions_table(&app, true);
    app.clock.advance(chrono::Duration::seconds(2));
    rx.release();
    // While the store cannot say which secret is current, the lane's copy
    // is older than a grace: it holds its deliveries (the four answered
    // ones are recorded meanwhile). Once the store answers, it goes on
    // with the new secret.
    tokio::time::sleep(Duration::from_millis(300)).await;
    subscriptions_table(&app, false);
    let got = all_arrived(&rx).await;
    for (i, r) in got.iter().enumerate().skip(44) {
        assert!(
            signed_by(r, &new),
            "request {i}: not signed by the new secret"
        );
        assert!(
            !signed_by(r, old),
            "request {i}: signed by the old secret past its grace"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn a_rotation_through_another_instance_reaches_this_one_s_lane_on_postgres() {
    let db = crate::pg::fresh().await;
    let url = db.url.clone();
    let rx = TestReceiver::start().await;
    rx.hold_after(40);
    // A grace and a tick both longer than the fan-out: only the
    // notification can make the lane read the subscription again in time.
    let (mut app, key, w) = webinar_with("29s", N, |c| {
        c.tick = Duration::from_secs(5);
        c.secret_grace = Duration::from_secs(10);
        c.database = url;
    })
    .await;
    let sub = app
        .subscribe_with(&key, &rx.url, json!({"maxConcurrency": 4}))
        .await;
    let sid = sub["id"].as_str().unwrap();
    app.starts_in(&w, 30.0);
    parked_at(&rx, 44, 4).await;
    // Another instance's rotation: straight through a store handle of its
    // own, so only PostgreSQL's notification can tell this instance.
    let other = tminus::store::open(&db.url).await.unwrap();
    let new = tminus::signing::new_secret();
    let grace = app.clock.now() + chrono::Duration::seconds(10);
    other
        .rotate_secret(&sid.parse().unwrap(), &new, grace)
        .await
        .unwrap();
    // The notification is heard within milliseconds; a second is far
    // within the tick that bounds it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let released = Instant::now();
    rx.release();
    let got = all_arrived(&rx).await;
    assert!(
        released.elapsed() < Duration::from_secs(4),
        "the fan-out outlasted a tick: the test proves nothing"
    );
    for (i, r) in got.iter().enumerate().skip(44) {
        assert!(
            signed_by(r, &new),
            "request {i}: not signed by the new secret"
        );
    }
    drop(other);
    app.stop().await;
    db.drop_now().await;
}
