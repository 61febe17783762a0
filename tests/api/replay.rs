//! Bulk replay (`POST …/{id}/replay`) against a real receiver, on SQLite
//! and on PostgreSQL: a failing receiver lets a fan-out's deliveries
//! expire; once it is fixed, one call sends them all again, and only those
//! of the window and status asked for. Bad windows are refused naming the
//! field, and another creator's subscription is not found.

use crate::helpers::*;
use crate::receiver::{Reply, TestReceiver};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn a_window_of_expired_deliveries_is_replayed_once_the_receiver_is_fixed() {
    scenario(&one_reminder(None).await).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn a_window_of_expired_deliveries_is_replayed_once_the_receiver_is_fixed_on_postgres() {
    let db = crate::pg::fresh().await;
    let mut app = one_reminder(Some(db.url.clone())).await;
    scenario(&app).await;
    app.stop().await;
    db.drop_now().await;
}

/// A service with one reminder, 2 s before the start, on `database` (the
/// test's SQLite file when `None`).
pub async fn one_reminder(database: Option<String>) -> TestApp {
    spawn_with(|c| {
        c.reminder_offsets = tminus::domain::offset::parse_list("2s").unwrap();
        if let Some(url) = database {
            c.database = url;
        }
    })
    .await
}

/// A creator subscribed to `rx` for a webinar of `people` participants
/// that starts in 3 s (its one reminder falls due in 1 s): the creator's
/// key, the subscription's id and the webinar.
pub async fn subscribed_webinar(
    app: &TestApp,
    rx: &TestReceiver,
    people: usize,
) -> (String, String, crate::timing::Parked) {
    let (cid, key) = app.creator().await;
    let w = app.parked(&cid, json!({})).await;
    app.participants(&w.id, people).await;
    let sid = app.subscribe(&key, &rx.url, None).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.starts_in(&w, 3.0);
    (key, sid, w)
}

/// Three participants, a receiver answering 500 until their reminder's
/// deliveries expire at the start; then the replays.
async fn scenario(app: &TestApp) {
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(500));
    let (key, sid, w) = subscribed_webinar(app, &rx, 3).await;
    app.wait_deliveries(&key, &sid, 30, |d| {
        d.len() == 3 && d.iter().all(|x| x["status"] == "expired")
    })
    .await;
    rx.set_default(Reply::status(200));
    let sent = rx.received().len();
    let path = format!("/{sid}/replay");
    let replay = |since: chrono::DateTime<chrono::Utc>, until, status: &str| json!({"since": iso(since), "until": iso(until), "status": status});
    let hour = chrono::Duration::hours(1);
    let due = w.from - chrono::Duration::seconds(2);

    // Outside the window, or another status: nothing.
    let after = replay(
        due + chrono::Duration::milliseconds(1),
        due + hour,
        "expired",
    );
    let failed = replay(due - hour, due + hour, "failed");
    for body in [after, failed] {
        let (s, b) = app.hooks(Method::POST, &key, &path, Some(body)).await;
        assert_eq!((s, b["replayed"].as_u64()), (StatusCode::ACCEPTED, Some(0)));
    }
    // Another creator's key does not see the subscription.
    let (_, other) = app.creator().await;
    let body = replay(due - hour, due + hour, "expired");
    let (s, b) = app
        .hooks(Method::POST, &other, &path, Some(body.clone()))
        .await;
    assert_eq!(
        (s, &b["error"]["code"]),
        (StatusCode::NOT_FOUND, &json!("not_found"))
    );

    let (s, b) = app.hooks(Method::POST, &key, &path, Some(body)).await;
    assert_eq!(
        (s, b["replayed"].as_u64()),
        (StatusCode::ACCEPTED, Some(3)),
        "{b}"
    );
    crate::operator_replay::all_three_arrive(app, &rx, &key, &sid, sent).await;
}

#[tokio::test]
async fn bad_windows_and_statuses_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let (_, key) = app.creator().await;
    let sid = app.subscribe(&key, "http://127.0.0.1:9/hook", None).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/{sid}/replay");
    let (day, feb, mar) = (
        "2026-01-02T00:00:00Z",
        "2026-02-01T00:00:00Z",
        "2026-03-05T00:00:00Z",
    );
    let invalid = StatusCode::UNPROCESSABLE_ENTITY;
    let cases = [
        (
            json!({"since": "soon", "until": day, "status": "failed"}),
            invalid,
            "since",
        ),
        (
            json!({"since": feb, "until": mar, "status": "failed"}),
            invalid,
            "until",
        ),
        (
            json!({"since": feb, "until": day, "status": "expired"}),
            invalid,
            "until",
        ),
        (
            json!({"since": day, "until": feb, "status": "delivered"}),
            StatusCode::BAD_REQUEST,
            "status",
        ),
        (
            json!({"since": day, "status": "failed"}),
            StatusCode::BAD_REQUEST,
            "until",
        ),
    ];
    for (body, status, field) in cases {
        let (s, b) = app
            .hooks(Method::POST, &key, &path, Some(body.clone()))
            .await;
        assert_eq!(s, status, "{body}: {b}");
        assert_eq!(b["error"]["field"], field, "{body}: {b}");
    }
}
