//! Changing `--reminder-offsets` between two starts: a webinar keeps the
//! reminders it was armed with and they fire under their old labels, and
//! an old interval's event stays subscribable (`webinar.reminder.4s` after
//! the offsets became `3s,1s`) while one of the creator's reminders is
//! still pending at it, as docs/DELIVERY.md's "When reminders fire" says.

use crate::delivery::webinar_with;
use crate::helpers::*;
use crate::receiver::TestReceiver;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn subscribe(app: &TestApp, key: &str, url: &str, event: &str) -> (StatusCode, Value) {
    let body = json!({"hookUrl": url, "event": event});
    app.hooks(Method::POST, key, "", Some(body)).await
}

fn refused(got: &(StatusCode, Value)) -> String {
    assert_eq!(got.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", got.1);
    assert_eq!(got.1["error"]["code"], "unknown_event", "{}", got.1);
    got.1["error"]["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_interval_armed_before_the_offsets_changed_stays_subscribable_until_it_fires() {
    let rx = TestReceiver::start().await;
    let (app, key, w) = webinar_with("4s", 1, |_| {}).await;
    let app = app
        .restart_with(|c| c.reminder_offsets = tminus::domain::offset::parse_list("3s,1s").unwrap())
        .await;
    // Neither configured nor pending: refused, naming what may be asked for.
    let message = refused(&subscribe(&app, &key, &rx.url, "webinar.reminder.2s").await);
    for name in ["webinar.reminder.3s", "webinar.reminder.4s"] {
        assert!(message.contains(name), "{message}");
    }
    // Another creator has no reminder pending at 4s.
    let (_, other) = app.creator().await;
    refused(&subscribe(&app, &other, &rx.url, "webinar.reminder.4s").await);
    // The webinar's creator may subscribe to its pending interval.
    let (s, sub) = subscribe(&app, &key, &rx.url, "webinar.reminder.4s").await;
    assert_eq!(s, StatusCode::CREATED, "{sub}");
    assert_eq!(sub["event"], "webinar.reminder.4s");

    app.starts_in(&w, 5.0);
    let got = rx.wait_for(1, 10).await;
    assert_eq!(got[0].header("x-tminus-reminder"), "4s");
    assert_eq!(got[0].header("x-tminus-event"), "webinar.reminder.4s");
    app.settled().await;
    // The webinar kept its one interval: the new offsets armed nothing on it.
    assert_eq!(rx.received().len(), 1);
    let (_, reminders) = app
        .admin(Method::GET, &format!("/webinars/{}/reminders", w.id), None)
        .await;
    let labels: Vec<&str> = reminders["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["4s"]);
    // Once it has fired, no reminder is pending at 4s: refused again.
    refused(&subscribe(&app, &key, &rx.url, "webinar.reminder.4s").await);
}
