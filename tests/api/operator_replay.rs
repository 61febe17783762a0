//! The operator's bulk replay, `POST /api/v1/platform/subscriptions/{id}/replay`
//! with the admin token, and `tminus admin deliveries replay --since …
//! --until … --status …` over it: a real receiver that failed until a
//! fan-out's deliveries expired gets them once replayed; a bad window is
//! refused naming the field and writes nothing; an unknown subscription is
//! not found.

use crate::admin::{admin, json as admin_json};
use crate::helpers::*;
use crate::receiver::{Reply, TestReceiver};
use crate::replay::{one_reminder, subscribed_webinar};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A receiver that failed (500) until the three deliveries of a fan-out
/// expired, and answers 200 since: the app, the receiver, the creator's
/// key, the subscription and the (since, until) of an hour either side of
/// the reminder's instant.
async fn expired_three() -> (TestApp, TestReceiver, String, String, (String, String)) {
    let app = one_reminder(None).await;
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(500));
    let (key, sid, w) = subscribed_webinar(&app, &rx, 3).await;
    app.wait_deliveries(&key, &sid, 30, |d| {
        d.len() == 3 && d.iter().all(|x| x["status"] == "expired")
    })
    .await;
    rx.set_default(Reply::status(200));
    let due = w.from - chrono::Duration::seconds(2);
    let hour = chrono::Duration::hours(1);
    let window = (iso(due - hour), iso(due + hour));
    (app, rx, key, sid, window)
}

/// Waits until the three were delivered, each once.
pub(crate) async fn all_three_arrive(
    app: &TestApp,
    rx: &TestReceiver,
    key: &str,
    sid: &str,
    sent: usize,
) {
    rx.wait_for(sent + 3, 30).await;
    app.wait_deliveries(key, sid, 30, |d| {
        d.iter().all(|x| x["status"] == "delivered")
    })
    .await;
    let ids: std::collections::HashSet<String> = rx.received()[sent..]
        .iter()
        .map(|r| r.header("webhook-id"))
        .collect();
    assert_eq!(ids.len(), 3, "each expired delivery once");
}

#[tokio::test]
async fn the_operator_replays_a_window_with_the_admin_token() {
    let (app, rx, key, sid, (since, until)) = expired_three().await;
    let sent = rx.received().len();
    let path = format!("/subscriptions/{sid}/replay");

    // A bad window is refused as the integration API refuses it, and
    // writes nothing: the deliveries stay expired, nothing is sent.
    let cases = [
        (
            json!({"since": "soon", "until": until, "status": "expired"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_time",
            "since",
        ),
        (
            json!({"since": until, "until": since, "status": "expired"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
            "until",
        ),
        (
            json!({"since": "2026-01-01T00:00:00Z", "until": "2026-03-01T00:00:00Z", "status": "expired"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
            "until",
        ),
        (
            json!({"since": since, "until": until, "status": "delivered"}),
            StatusCode::BAD_REQUEST,
            "invalid_type",
            "status",
        ),
    ];
    for (body, status, code, field) in cases {
        let (s, b) = app.admin(Method::POST, &path, Some(body.clone())).await;
        assert_eq!(s, status, "{body}: {b}");
        assert_eq!(b["error"]["code"], code, "{body}: {b}");
        assert_eq!(b["error"]["field"], field, "{body}: {b}");
    }
    let body = json!({"since": since, "until": until, "status": "expired"});
    // An unknown subscription, or a creator's key instead of the token.
    let unknown = "/subscriptions/0123456789abcdef01234567/replay";
    let (s, b) = app.admin(Method::POST, unknown, Some(body.clone())).await;
    assert_eq!(
        (s, &b["error"]["code"]),
        (StatusCode::NOT_FOUND, &json!("not_found"))
    );
    let keyed = format!("/api/v1/platform{path}");
    let (s, _) = app
        .call(Method::POST, &keyed, Auth::Key(&key), Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(rx.received().len(), sent, "a refused replay sends nothing");
    let d = app.deliveries(&key, &sid).await;
    assert!(d.iter().all(|x| x["status"] == "expired"), "{d:#?}");

    let (s, b) = app.admin(Method::POST, &path, Some(body)).await;
    assert_eq!(
        (s, b["replayed"].as_u64()),
        (StatusCode::ACCEPTED, Some(3)),
        "{b}"
    );
    all_three_arrive(&app, &rx, &key, &sid, sent).await;
}

#[tokio::test]
async fn the_admin_cli_replays_a_window() {
    let (app, rx, key, sid, (since, until)) = expired_three().await;
    let sent = rx.received().len();
    let replay = ["deliveries", "replay", "--subscription", sid.as_str()];
    let window = ["--since", since.as_str(), "--until", until.as_str()];

    // Another status: nothing, said as a line.
    let run = admin(
        &app,
        &[&replay[..], &window, &["--status", "failed"]].concat(),
    )
    .await;
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(run.stdout, "0 deliveries are due again\n");
    // A reversed window is the API's refusal, one line and exit 1; a
    // window without its status, or with a delivery too, is clap's.
    let reversed = [
        "--since",
        until.as_str(),
        "--until",
        since.as_str(),
        "--status",
        "expired",
    ];
    let run = admin(&app, &[&replay[..], &reversed].concat()).await;
    assert!(
        !run.ok && run.stderr.contains("invalid_value") && run.stderr.contains("(until)"),
        "{}",
        run.stderr
    );
    let run = admin(&app, &[&replay[..], &window].concat()).await;
    assert!(!run.ok && run.stderr.contains("--status"), "{}", run.stderr);
    let both = [
        &replay[..],
        &window,
        &["--status", "expired", "--delivery", "msg_x"],
    ]
    .concat();
    assert!(!admin(&app, &both).await.ok);
    let d = app.deliveries(&key, &sid).await;
    assert!(d.iter().all(|x| x["status"] == "expired"), "{d:#?}");

    let done: Value = admin_json(
        &app,
        &[&replay[..], &window, &["--status", "expired"]].concat(),
    )
    .await;
    assert_eq!(done, json!({"replayed": 3}));
    all_three_arrive(&app, &rx, &key, &sid, sent).await;
}
