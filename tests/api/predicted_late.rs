//! `fanout.predicted_late` from the capacity plan to the platform: the
//! watcher that counts the fan-outs predicted late announces each one once,
//! signed, with its figures. Two fan-outs of one reminder: the slow one is
//! late from the start; the other is made late later, and its announcement
//! arriving proves the watcher ran again without repeating the first.

use crate::helpers::*;
use crate::receiver::TestReceiver;
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn each_fan_out_predicted_late_is_announced_once_with_its_figures() {
    let ops = TestReceiver::start().await;
    let url = ops.url.clone();
    let app = spawn_with(move |c| {
        c.operational_webhook_url = Some(url);
        c.operational_webhook_secret = Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into());
        crate::capacity::planned(c);
    })
    .await;
    let (key, w, slow, other) = crate::capacity::late_and_on_time(&app).await;
    let got = ops.wait_for(1, 30).await;
    let first = crate::operational::event(&got[0]);
    assert_eq!(first["type"], "fanout.predicted_late", "{first}");
    let due = w.from - chrono::Duration::seconds(90);
    assert_eq!(
        first["data"],
        json!({
            "webinar": w.id,
            "reminder": "90s",
            "subscription": slow["id"],
            "dueAt": iso(due),
            "predictedDurationMs": 10_000,
            "predictedLastAt": iso(due + chrono::Duration::seconds(10)),
            "predictedLatenessMs": 10_000,
            "lateBudgetMs": 2_000,
        })
    );

    let oid = other["id"].as_str().unwrap();
    let (s, _) = app
        .hooks(
            Method::PATCH,
            &key,
            &format!("/{oid}"),
            Some(json!({"maxConcurrency": 2, "lateBudget": 1})),
        )
        .await;
    assert!(s.is_success());
    let got = ops.wait_for(2, 30).await;
    let subs: Vec<Value> = got
        .iter()
        .map(|r| crate::operational::event(r)["data"]["subscription"].clone())
        .collect();
    assert_eq!(subs, [slow["id"].clone(), other["id"].clone()]);
    let got = ops.wait_exactly(&app, 2, 30).await;
    assert_eq!(got.len(), 2);
}
