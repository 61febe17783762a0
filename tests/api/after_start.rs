//! The after-start policy end to end: a fan-out too long for its endpoint
//! (20 participants, one request at a time, 300 ms each, the reminder 2 s
//! before the start) reaches the webinar's start with most of its
//! deliveries unsent. By default (`--after-start expire`) those are
//! recorded as expired with the reason and never sent; with `send-late`
//! they are sent, marked `x-tminus-late: true` and recorded as late.

use crate::delivery::webinar_with;
use crate::helpers::TestApp;
use crate::receiver::{Reply, TestReceiver};
use crate::timing::Parked;
use serde_json::{json, Value};
use std::time::Duration;
use tminus::config::AfterStart;

const PARTICIPANTS: usize = 20;
const STARTED: &str = "the webinar had started before it could leave; not sent";

/// Runs the fan-out under `policy`; every delivery has its final state.
async fn past_the_start(policy: AfterStart) -> (TestApp, TestReceiver, Parked, Vec<Value>) {
    past_the_start_with(policy, json!({"maxConcurrency": 1})).await
}

/// The same, for a subscription with these settings.
async fn past_the_start_with(
    policy: AfterStart,
    settings: Value,
) -> (TestApp, TestReceiver, Parked, Vec<Value>) {
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(200).delayed(Duration::from_millis(300)));
    let (app, key, w) = webinar_with("2s", PARTICIPANTS, |c| c.after_start = policy).await;
    let sub = app.subscribe_with(&key, &rx.url, settings).await;
    app.starts_in(&w, 3.0);
    let sid = sub["id"].as_str().unwrap();
    let d = app
        .wait_deliveries(&key, sid, 30, |d| {
            d.len() == PARTICIPANTS && d.iter().all(|x| x["status"] != "pending")
        })
        .await;
    app.quiet().await;
    (app, rx, w, d)
}

fn with_status<'a>(d: &'a [Value], status: &str) -> Vec<&'a Value> {
    d.iter().filter(|x| x["status"] == status).collect()
}

fn counted(metrics: &str, action: &str) -> usize {
    let series = format!("tminus_after_start_total{{action=\"{action}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |v| v.parse().unwrap())
}

#[tokio::test]
async fn what_would_leave_after_the_start_is_expired_and_never_sent_by_default() {
    let (app, rx, w, d) = past_the_start(AfterStart::Expire).await;
    let (delivered, expired) = (with_status(&d, "delivered"), with_status(&d, "expired"));
    assert_eq!(delivered.len() + expired.len(), PARTICIPANTS, "{d:#?}");
    assert!(!delivered.is_empty() && !expired.is_empty(), "{d:#?}");
    assert!(
        expired.iter().all(|x| x["lastError"] == STARTED),
        "{expired:#?}"
    );
    let got = rx.received();
    assert_eq!(got.len(), delivered.len(), "an expired one was sent");
    let slack = chrono::Duration::milliseconds(200);
    for r in &got {
        assert!(
            app.on_clock(r.wall) < w.from + slack,
            "sent after the start"
        );
        assert_eq!(r.header("x-tminus-late"), "");
    }
    let metrics = crate::metrics::scrape(&app).await;
    assert_eq!(counted(&metrics, "expired"), expired.len(), "{metrics}");
    assert_eq!(counted(&metrics, "sent_late"), 0);
}

#[tokio::test]
async fn with_send_late_it_is_sent_marked_late() {
    let (app, rx, w, d) = past_the_start(AfterStart::SendLate).await;
    assert_eq!(with_status(&d, "delivered").len(), PARTICIPANTS, "{d:#?}");
    let got = rx.received();
    assert_eq!(got.len(), PARTICIPANTS, "each sent once");
    let late: Vec<String> = d
        .iter()
        .filter(|x| x["late"] == true)
        .map(|x| x["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!late.is_empty() && late.len() < PARTICIPANTS, "{d:#?}");
    let slack = chrono::Duration::milliseconds(200);
    for r in &got {
        let marked = r.header("x-tminus-late") == "true";
        assert_eq!(
            marked,
            late.contains(&r.header("webhook-id")),
            "the header and the record agree"
        );
        let at = app.on_clock(r.wall);
        if marked {
            assert!(at >= w.from, "marked late before the start");
        } else {
            assert!(at < w.from + slack, "sent after the start unmarked");
        }
    }
    let metrics = crate::metrics::scrape(&app).await;
    assert_eq!(counted(&metrics, "sent_late"), late.len(), "{metrics}");
    assert_eq!(counted(&metrics, "expired"), 0);
}

#[tokio::test]
async fn an_early_start_too_short_for_the_endpoint_still_expires_what_would_leave_after_the_start()
{
    // Allowed to start one second early, which is not enough: 20 × 300 ms
    // need 6 s, and the reminder is 2 s before the start.
    let early = json!({"maxConcurrency": 1, "sendEarly": 1, "lateBudget": 1});
    let (app, rx, w, d) = past_the_start_with(AfterStart::Expire, early).await;
    let (delivered, expired) = (with_status(&d, "delivered"), with_status(&d, "expired"));
    assert_eq!(delivered.len() + expired.len(), PARTICIPANTS, "{d:#?}");
    assert!(!expired.is_empty(), "{d:#?}");
    assert!(expired.iter().all(|x| x["lastError"] == STARTED));
    let got = rx.received();
    assert_eq!(got.len(), delivered.len(), "an expired one was sent");
    let due = w.from - chrono::Duration::seconds(2);
    let first = app.on_clock(got[0].wall);
    assert!(first < due, "it started early: first at {first}, due {due}");
    let slack = chrono::Duration::milliseconds(200);
    assert!(got.iter().all(|r| app.on_clock(r.wall) < w.from + slack));
}
