//! The capacity plan of every fan-out (issue 22 §2): a subscription's
//! lateness budget and early start, checked and shown; the endpoint's
//! observed answer time, folded in from acknowledged attempts; the
//! prediction in the reminders API, the dashboard, the portal and the
//! metric; and the prediction against a receiver of known latency.

use crate::dashboard::{login, page};
use crate::helpers::*;
use crate::receiver::{Reply, TestReceiver};
use crate::timing::Parked;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

/// The webinar's reminders, soonest first.
async fn reminders(app: &TestApp, webinar: &str) -> Vec<Value> {
    let (s, r) = app
        .admin(Method::GET, &format!("/webinars/{webinar}/reminders"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    r["data"].as_array().unwrap().clone()
}

/// Reminders 90 s before the start, and endpoints never heard from
/// answering in 200 ms.
pub(crate) fn planned(c: &mut tminus::config::Config) {
    c.reminder_offsets = tminus::domain::offset::parse_list("90s").unwrap();
    c.assumed_latency = Duration::from_millis(200);
}

/// A webinar of 50 participants parked ahead, and two subscriptions to
/// it, one predicted late and one on time: (key, webinar, late, on time).
pub(crate) async fn late_and_on_time(app: &TestApp) -> (String, Parked, Value, Value) {
    let (cid, key) = app.creator().await;
    let w = app.parked(&cid, json!({})).await;
    app.participants(&w.id, 50).await;
    // 50 at one in flight, 200 ms each: 10 s, past a 2 s budget.
    let slow = app
        .subscribe_with(
            &key,
            "https://slow.example.com/hook",
            json!({"maxConcurrency": 1, "lateBudget": 2}),
        )
        .await;
    // 50 at 64 in flight: one wave, 200 ms.
    let fast = app
        .subscribe_with(
            &key,
            "https://fast.example.com/hook",
            json!({"maxConcurrency": 64}),
        )
        .await;
    (key, w, slow, fast)
}

#[tokio::test]
async fn budgets_and_early_starts_are_checked_and_shown() {
    let app = spawn_app().await;
    let (_, key) = app.creator().await;
    let url = "https://example.com/hook";
    let refused = [
        (json!({"lateBudget": 86_401}), "lateBudget"),
        (json!({"sendEarly": 601}), "sendEarly"),
    ];
    for (extra, field) in refused {
        let mut body = json!({"hookUrl": url, "event": "webinar.reminder.all"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (s, e) = app.hooks(Method::POST, &key, "", Some(body)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert_eq!(e["error"]["code"], "invalid_value", "{e}");
        assert_eq!(e["error"]["field"], field, "{e}");
    }
    let (_, list) = app.hooks(Method::GET, &key, "", None).await;
    assert_eq!(list["data"], json!([]), "nothing written");

    let sub = app.subscribe(&key, url, None).await;
    assert_eq!(
        (&sub["lateBudget"], &sub["sendEarly"]),
        (&json!(60), &json!(0))
    );
    assert_eq!(sub["observedLatencyMs"], Value::Null);
    let path = format!("/{}", sub["id"].as_str().unwrap());
    let (s, p) = app
        .hooks(
            Method::PATCH,
            &key,
            &path,
            Some(json!({"lateBudget": 5, "sendEarly": 600})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(
        (&p["lateBudget"], &p["sendEarly"]),
        (&json!(5), &json!(600))
    );
    let (s, e) = app
        .hooks(Method::PATCH, &key, &path, Some(json!({"sendEarly": 900})))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(
        (&e["error"]["code"], &e["error"]["field"]),
        (&json!("invalid_value"), &json!("sendEarly"))
    );
    let (_, shown) = app.hooks(Method::GET, &key, &path, None).await;
    assert_eq!(shown["sendEarly"], 600, "the refused change wrote nothing");
}

#[tokio::test]
async fn a_fanout_predicted_past_its_budget_is_marked_everywhere() {
    let app = spawn_with(planned).await;
    let (key, w, slow, fast) = late_and_on_time(&app).await;
    let r = reminders(&app, &w.id).await;
    let due = w.from - chrono::Duration::seconds(90);
    assert_eq!(r[0]["dueAt"], iso(due));
    let fanouts = r[0]["fanouts"].as_array().unwrap();
    let of = |sub: &Value| {
        fanouts
            .iter()
            .find(|f| f["subscriptionId"] == sub["id"])
            .unwrap()
            .clone()
    };
    let (s, f) = (of(&slow), of(&fast));
    assert_eq!(
        (&s["deliveries"], &s["predictedDurationMs"]),
        (&json!(50), &json!(10_000))
    );
    assert_eq!(
        s["predictedLastAt"],
        iso(due + chrono::Duration::seconds(10))
    );
    assert_eq!(
        (&s["predictedLate"], &s["startAt"]),
        (&json!(true), &json!(iso(due)))
    );
    assert_eq!(
        (&f["predictedDurationMs"], &f["predictedLate"]),
        (&json!(200), &json!(false))
    );
    // The reminder shows its slowest fan-out.
    assert_eq!(r[0]["predictedDurationMs"], 10_000);
    assert_eq!(r[0]["predictedLastAt"], s["predictedLastAt"]);

    // The metric counts the late one (fan-outs due within a day).
    let text = crate::metrics::scrape_until(&app, "tminus_fanouts_predicted_late", 1.0).await;
    assert_eq!(
        crate::metrics::value(&text, "tminus_fanouts_predicted_late"),
        Some(1.0),
        "{text}"
    );
    // The dashboard and the creator's portal mark it.
    for (base, credential) in [("/dashboard", ADMIN), ("/portal", key.as_str())] {
        let (cookie, _) = login(&app, base, credential).await;
        let (st, html) = page(&app, &cookie, base).await;
        assert_eq!(st, StatusCode::OK);
        assert!(html.contains("over budget (1)"), "{base}: {html}");
        assert!(html.contains("10.000 s"), "{base}: {html}");
    }
    // The subscription's page shows its budget and its endpoint's time.
    let (cookie, _) = login(&app, "/dashboard", ADMIN).await;
    let sub_page = format!("/dashboard/subscriptions/{}", slow["id"].as_str().unwrap());
    let (_, html) = page(&app, &cookie, &sub_page).await;
    assert!(
        html.contains("<dt>Lateness budget</dt><dd>2 s</dd>"),
        "{html}"
    );
    assert!(html.contains("<dd>not seen yet</dd>"), "{html}");
    // Within its budget once the budget allows it: no mark, no count.
    let path = format!("/{}", slow["id"].as_str().unwrap());
    let (st, _) = app
        .hooks(Method::PATCH, &key, &path, Some(json!({"lateBudget": 30})))
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        reminders(&app, &w.id).await[0]["fanouts"][0]["predictedLate"],
        false
    );
    let (cookie, _) = login(&app, "/dashboard", ADMIN).await;
    let (_, html) = page(&app, &cookie, "/dashboard").await;
    assert!(!html.contains("over budget"), "{html}");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let text = crate::metrics::scrape(&app).await;
        match crate::metrics::value(&text, "tminus_fanouts_predicted_late") {
            Some(0.0) => break,
            v => assert!(std::time::Instant::now() < deadline, "still {v:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn predicted_and_actual_durations_agree_at_a_receiver_of_known_latency() {
    known_latency(None).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn predicted_and_actual_durations_agree_on_postgres() {
    let db = crate::pg::fresh().await;
    known_latency(Some(db.url.clone())).await;
    db.drop_now().await;
}

/// The prediction against a 100 ms receiver, on SQLite or on the
/// PostgreSQL database at `pg`.
async fn known_latency(pg: Option<String>) {
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(200).delayed(Duration::from_millis(100)));
    let mut app = spawn_with(|c| {
        c.reminder_offsets = tminus::domain::offset::parse_list("60s,30s").unwrap();
        // Far from the receiver's: the first prediction uses it, the
        // second the answer time the first fan-out showed.
        c.assumed_latency = Duration::from_millis(5);
        if let Some(url) = pg {
            c.database = url;
        }
    })
    .await;
    let (cid, key) = app.creator().await;
    let w = app.parked(&cid, json!({})).await;
    app.participants(&w.id, 40).await;
    let sub = app
        .subscribe_with(&key, &rx.url, json!({"maxConcurrency": 2}))
        .await;
    let sid = sub["id"].as_str().unwrap();
    let r = reminders(&app, &w.id).await;
    // 20 waves of 2, at the assumed 5 ms.
    assert_eq!(r[0]["fanouts"][0]["predictedDurationMs"], 100);

    // The first fan-out teaches the service the endpoint's answer time.
    let first_due = w.from - chrono::Duration::seconds(60);
    app.bring(first_due, 0.2);
    rx.wait_for(40, 30).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let observed = loop {
        let (_, s) = app.hooks(Method::GET, &key, &format!("/{sid}"), None).await;
        if let Some(ms) = s["observedLatencyMs"].as_f64() {
            break ms;
        }
        assert!(std::time::Instant::now() < deadline, "never observed: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!((100.0..130.0).contains(&observed), "{observed} ms");

    let r = reminders(&app, &w.id).await;
    let second = r.iter().find(|r| r["status"] == "pending").unwrap();
    let predicted = second["predictedDurationMs"].as_i64().unwrap();
    assert!((2_000..2_600).contains(&predicted), "{predicted} ms");
    let due = w.from - chrono::Duration::seconds(30);
    app.bring(due, 0.2);
    rx.wait_exactly(&app, 80, 30).await;
    let last = app
        .deliveries(&key, sid)
        .await
        .iter()
        .filter(|d| d["dueAt"] == iso(due))
        .map(|d| d["deliveredAt"].as_str().unwrap().to_owned())
        .max()
        .unwrap();
    let last = chrono::DateTime::parse_from_rfc3339(&last)
        .unwrap()
        .to_utc();
    let actual = (last - due).num_milliseconds();
    let off = (actual - predicted).abs() as f64 / actual as f64;
    assert!(
        off <= 0.2,
        "predicted {predicted} ms, took {actual} ms ({:.0} % off)",
        off * 100.0
    );
    app.stop().await;
}
