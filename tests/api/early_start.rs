//! The opt-in early start (issue 22 §3): a fan-out predicted to miss its
//! lateness budget starts early enough that its last delivery lands within
//! it, never earlier than the instant minus `sendEarly`, in participant
//! order; who is reminded is decided as before (a registration after the
//! early start is reminded at the instant); without `sendEarly` nothing
//! leaves before the instant. The service's clock is moved a few seconds
//! before the instant, so the early start happens in real time, against a
//! slow receiver.

use crate::helpers::*;
use crate::receiver::{Received, Reply, TestReceiver};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;

/// Each participant once: the distinct webhook-ids.
fn once_each(got: &[Received]) -> usize {
    got.iter()
        .map(|r| r.header("webhook-id"))
        .collect::<HashSet<_>>()
        .len()
}

#[tokio::test]
async fn an_early_start_lands_within_the_budget_and_nothing_else_leaves_early() {
    early_start(None).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn an_early_start_lands_within_the_budget_on_postgres() {
    let db = crate::pg::fresh().await;
    early_start(Some(db.url.clone())).await;
    db.drop_now().await;
}

/// The story, on SQLite or on the PostgreSQL database at `pg`.
async fn early_start(pg: Option<String>) {
    let early_rx = TestReceiver::start().await;
    let plain_rx = TestReceiver::start().await;
    for rx in [&early_rx, &plain_rx] {
        rx.set_default(Reply::status(200).delayed(Duration::from_millis(100)));
    }
    let mut app = spawn_with(|c| {
        c.reminder_offsets = tminus::domain::offset::parse_list("30s").unwrap();
        // Slower than the receiver answers: the plan errs on the early side.
        c.assumed_latency = Duration::from_millis(150);
        if let Some(url) = pg {
            c.database = url;
        }
    })
    .await;
    let (cid, key) = app.creator().await;
    let w = app.parked(&cid, json!({})).await;
    let due = w.from - chrono::Duration::seconds(30);
    app.participants(&w.id, 40).await;
    // 40 at 2 in flight, 150 ms each: 3 s, past a 1 s budget; allowed to
    // start 10 min early, it starts 2 s before the instant.
    let budget = json!({"maxConcurrency": 2, "lateBudget": 1});
    let mut early_body = budget.clone();
    early_body["sendEarly"] = json!(600);
    let early = app.subscribe_with(&key, &early_rx.url, early_body).await;
    let plain = app.subscribe_with(&key, &plain_rx.url, budget).await;
    let r = app
        .wait_reminders(&w.id, |r| r[0]["status"] == "pending")
        .await;
    let plans = r[0]["fanouts"].as_array().unwrap();
    let start = |sub: &serde_json::Value| {
        plans
            .iter()
            .find(|f| f["subscriptionId"] == sub["id"])
            .map(|f| f["startAt"].clone())
            .unwrap()
    };
    let planned = due - chrono::Duration::seconds(2);
    assert_eq!(start(&early), json!(iso(planned)));
    assert_eq!(start(&plain), json!(iso(due)));

    app.bring(due, 4.0);
    // Started early: the first requests arrive, before the instant.
    early_rx.wait_for(1, 30).await;
    // Registered after the early start, before the instant: still reminded,
    // at the instant, by both.
    let (s, b) = app
        .admin(
            Method::POST,
            &format!("/webinars/{}/participants", w.id),
            Some(json!({"name": "Late", "email": "late@example.com"})),
        )
        .await;
    assert!(s == StatusCode::CREATED || s == StatusCode::OK, "{s} {b}");
    assert!(
        app.clock.now() < due,
        "the setup must end before the instant"
    );
    let plain_got = plain_rx.wait_exactly(&app, 41, 30).await;
    let got = early_rx.wait_exactly(&app, 41, 30).await;
    assert_eq!(once_each(&got), 41);
    assert_eq!(once_each(&plain_got), 41);

    let on_clock = |r: &Received| app.on_clock(r.wall);
    // Early, never before the plan's start (itself within sendEarly).
    let first = got.iter().map(on_clock).min().unwrap();
    assert!(
        first >= planned,
        "first request at {first}, planned {planned}"
    );
    assert!(first < due, "first request at {first}, due {due}");
    // In participant order, the late registration last, at the instant.
    let emails: Vec<String> = got
        .iter()
        .map(|r| r.json()["email"].as_str().unwrap().to_owned())
        .collect();
    let late = got
        .iter()
        .find(|r| r.json()["email"] == "late@example.com")
        .unwrap();
    assert!(on_clock(late) >= due, "the late registration left early");
    assert_eq!(emails.last().unwrap(), "late@example.com");
    for (i, e) in emails[..40].iter().enumerate() {
        // Two in flight: each within one place of its own.
        let n: usize = e[1..e.find('@').unwrap()].parse().unwrap();
        assert!(n.abs_diff(i) <= 1, "{emails:?}");
    }
    // The last delivery within the budget.
    let sid = early["id"].as_str().unwrap();
    let last = app
        .deliveries(&key, sid)
        .await
        .iter()
        .map(|d| d["deliveredAt"].as_str().unwrap().to_owned())
        .max()
        .unwrap();
    let last = chrono::DateTime::parse_from_rfc3339(&last)
        .unwrap()
        .to_utc();
    assert!(
        last <= due + chrono::Duration::seconds(1),
        "last delivery at {last}, budget until {}",
        due + chrono::Duration::seconds(1)
    );
    // Without sendEarly, nothing before the instant.
    let plain_first = plain_got.iter().map(on_clock).min().unwrap();
    assert!(plain_first >= due, "first at {plain_first}, due {due}");

    // The reminder keeps its instant; firedAt says when it started.
    let r = app
        .wait_reminders(&w.id, |r| r[0]["status"] == "sent")
        .await;
    assert_eq!(r[0]["dueAt"], iso(due));
    let fired = r[0]["firedAt"].as_str().unwrap();
    let fired = chrono::DateTime::parse_from_rfc3339(fired)
        .unwrap()
        .to_utc();
    assert!(fired >= planned && fired < due, "fired at {fired}");
    for d in app.deliveries(&key, sid).await {
        assert_eq!(d["dueAt"], iso(due), "{d}");
    }
    app.stop().await;
}
