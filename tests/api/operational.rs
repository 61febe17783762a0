//! Operational webhooks end to end: the service started with
//! `--operational-webhook-url` pointing at a real receiver on loopback,
//! each event's signature checked with the operational secret, the
//! integrators' receivers never sent one, and the operational endpoint's
//! own troubles never announced to it.

use crate::helpers::*;
use crate::receiver::{Received, Reply, TestReceiver};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A service whose operational webhooks go to `ops`.
async fn app_for(ops: &TestReceiver, tweak: impl FnOnce(&mut tminus::config::Config)) -> TestApp {
    let url = ops.url.clone();
    spawn_with(move |c| {
        c.operational_webhook_url = Some(url);
        c.operational_webhook_secret = Some(SECRET.into());
        tweak(c);
    })
    .await
}

/// The event a request carries, once its signature is checked with
/// `secret`.
fn event_signed_with(r: &Received, secret: &str) -> Value {
    let ts: i64 = r.header("webhook-timestamp").parse().unwrap();
    assert!(
        tminus::signing::verify(
            secret,
            &r.header("webhook-id"),
            ts,
            &r.body,
            &r.header("webhook-signature")
        ),
        "the signature does not verify: {r:?}"
    );
    let e = r.json();
    assert_eq!(r.header("x-tminus-event"), "tminus.operational");
    assert_eq!(r.header("x-tminus-reminder"), e["type"].as_str().unwrap());
    assert_eq!(e.as_object().unwrap().len(), 3, "{e}");
    assert!(e["timestamp"].as_str().unwrap().ends_with('Z'), "{e}");
    documented(&e);
    e
}

/// Checks an event against the OpenAPI document's `webhooks` entry for its
/// type: each object has exactly the keys the schema lists.
fn documented(e: &Value) {
    let doc: Value = serde_json::from_str(tminus::api::openapi::document_json()).unwrap();
    let schema = doc["webhooks"]
        .as_object()
        .unwrap()
        .values()
        .map(|w| &w["post"]["requestBody"]["content"]["application/json"]["schema"])
        .find(|s| s["properties"]["type"]["const"] == e["type"])
        .unwrap_or_else(|| panic!("no webhooks entry for {}", e["type"]));
    same_keys(schema, e, "");
}

fn same_keys(schema: &Value, v: &Value, at: &str) {
    let (Some(props), Some(obj)) = (schema["properties"].as_object(), v.as_object()) else {
        return;
    };
    let mut documented: Vec<&String> = props.keys().collect();
    let mut sent: Vec<&String> = obj.keys().collect();
    documented.sort();
    sent.sort();
    assert_eq!(sent, documented, "at `{at}`: {v}");
    for (k, s) in props {
        same_keys(s, &obj[k], &format!("{at}.{k}"));
    }
}

pub(crate) fn event(r: &Received) -> Value {
    event_signed_with(r, SECRET)
}

fn types(got: &[Received]) -> Vec<String> {
    got.iter()
        .map(|r| event(r)["type"].as_str().unwrap().to_owned())
        .collect()
}

/// A creator with a subscription to `rx`: (key, subscription id).
async fn subscribed(app: &TestApp, rx: &TestReceiver) -> (String, String) {
    let (_, key) = app.creator().await;
    let sub = app.subscribe(&key, &rx.url, None).await;
    (key, sub["id"].as_str().unwrap().to_owned())
}

async fn test_event(app: &TestApp, key: &str, sid: &str) {
    let (s, d) = app
        .hooks(Method::POST, key, &format!("/{sid}/test"), None)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{d}");
}

#[tokio::test]
async fn a_failure_and_the_recovery_are_announced_once_each_and_signed() {
    let ops = TestReceiver::start().await;
    let rx = TestReceiver::start().await;
    rx.script([Reply::status(500)]);
    let app = app_for(&ops, |_| {}).await;
    let (key, sid) = subscribed(&app, &rx).await;
    test_event(&app, &key, &sid).await;
    // The 500, then the retry acknowledged.
    let theirs = rx.wait_exactly(&app, 2, 10).await;
    assert!(theirs
        .iter()
        .all(|r| r.header("x-tminus-reminder") == "test"));
    let got = ops.wait_exactly(&app, 2, 10).await;
    assert_eq!(
        types(&got),
        ["subscription.failing", "subscription.recovered"]
    );
    let failing = event(&got[0]);
    let d = &failing["data"];
    assert_eq!(d["subscription"]["id"], sid.as_str());
    assert_eq!(d["subscription"]["hookUrl"], rx.url.as_str());
    assert_eq!(d["lastAttempt"]["status"], 500);
    let recovered = event(&got[1]);
    assert_eq!(recovered["data"]["failingSince"], d["failingSince"]);
    // The operator sees them as the operational subscription's deliveries.
    let (s, sub) = app.admin(Method::GET, "/operational-webhook", None).await;
    assert_eq!(s, StatusCode::OK, "{sub}");
    assert_eq!(sub["hookUrl"], ops.url.as_str());
    assert!(sub.get("secret").is_none_or(Value::is_null), "{sub}");
    let path = format!("/subscriptions/{}/deliveries", sub["id"].as_str().unwrap());
    let (s, list) = app.admin(Method::GET, &path, None).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let mut labels: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["reminder"].as_str().unwrap())
        .collect();
    labels.sort();
    assert_eq!(labels, ["subscription.failing", "subscription.recovered"]);
    // And on the dashboard, linked from the overview.
    let (cookie, _) = crate::dashboard::login(&app, "/dashboard", ADMIN).await;
    let (_, overview) = crate::dashboard::page(&app, &cookie, "/dashboard").await;
    let link = format!("/dashboard/subscriptions/{}", sub["id"].as_str().unwrap());
    assert!(overview.contains(&format!("href=\"{link}\"")), "{overview}");
    let (s, html) = crate::dashboard::page(&app, &cookie, &link).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("subscription.recovered"), "{html}");
}

#[tokio::test]
async fn a_second_failure_within_the_hour_is_not_announced_but_one_after_it_is() {
    let ops = TestReceiver::start().await;
    let rx = TestReceiver::start().await;
    rx.script([Reply::status(500), Reply::status(200), Reply::status(500)]);
    let app = app_for(&ops, |_| {}).await;
    let (key, sid) = subscribed(&app, &rx).await;
    test_event(&app, &key, &sid).await;
    rx.wait_exactly(&app, 2, 10).await;
    ops.wait_exactly(&app, 2, 10).await;
    // Failing again, and recovering, half an hour later: nothing.
    app.clock.advance(chrono::Duration::minutes(30));
    test_event(&app, &key, &sid).await;
    rx.wait_exactly(&app, 4, 10).await;
    assert_eq!(ops.received().len(), 2, "{:?}", types(&ops.received()));
    // An hour after the first announcement: announced again.
    app.clock.advance(chrono::Duration::minutes(31));
    rx.script([Reply::status(500)]);
    test_event(&app, &key, &sid).await;
    rx.wait_exactly(&app, 6, 10).await;
    let got = ops.wait_exactly(&app, 4, 10).await;
    assert_eq!(
        types(&got),
        [
            "subscription.failing",
            "subscription.recovered",
            "subscription.failing",
            "subscription.recovered"
        ]
    );
}

#[tokio::test]
async fn a_410_disables_the_subscription_and_says_why() {
    let ops = TestReceiver::start().await;
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(410));
    let app = app_for(&ops, |_| {}).await;
    let (key, sid) = subscribed(&app, &rx).await;
    test_event(&app, &key, &sid).await;
    rx.wait_exactly(&app, 1, 10).await;
    let got = ops.wait_exactly(&app, 1, 10).await;
    let e = event(&got[0]);
    assert_eq!(e["type"], "subscription.disabled");
    assert_eq!(e["data"]["reason"], "gone");
    assert_eq!(e["data"]["subscription"]["id"], sid.as_str());
    assert_eq!(e["data"]["message"], "receiver answered 410 Gone");
}

#[tokio::test]
async fn failing_past_disable_after_disables_and_says_why() {
    let ops = TestReceiver::start().await;
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(500));
    let app = app_for(&ops, |c| c.disable_after = Duration::from_millis(500)).await;
    let (key, sid) = subscribed(&app, &rx).await;
    test_event(&app, &key, &sid).await;
    let got = ops.wait_for(2, 15).await;
    assert_eq!(
        types(&got),
        ["subscription.failing", "subscription.disabled"]
    );
    let e = event(&got[1]);
    assert_eq!(e["data"]["reason"], "failing_too_long");
    assert!(e["data"]["failingSince"].is_string(), "{e}");
    let (_, s) = app.hooks(Method::GET, &key, &format!("/{sid}"), None).await;
    assert_eq!(s["status"], "disabled");
}

#[tokio::test]
async fn a_finished_fan_out_reports_its_lateness_and_counts() {
    let ops = TestReceiver::start().await;
    let rx = TestReceiver::start().await;
    let app = app_for(&ops, |c| {
        c.reminder_offsets = tminus::domain::offset::parse_list("1s").unwrap()
    })
    .await;
    let (creator, key) = app.creator().await;
    app.subscribe(&key, &rx.url, None).await;
    let w = app.webinar(&creator, 2).await;
    app.participants(&w, 3).await;
    rx.wait_exactly(&app, 3, 15).await;
    let got = ops.wait_exactly(&app, 1, 15).await;
    let e = event(&got[0]);
    assert_eq!(e["type"], "fanout.finished");
    let d = &e["data"];
    assert_eq!(d["webinar"], w.as_str());
    assert_eq!(d["reminder"], "1s");
    assert_eq!(
        d["deliveries"],
        serde_json::json!({"total": 3, "delivered": 3, "failed": 0, "expired": 0,
                           "missed": 0, "cancelled": 0, "retrying": 0})
    );
    let (first, last) = (
        d["firstLatenessMs"].as_i64().unwrap(),
        d["lastLatenessMs"].as_i64().unwrap(),
    );
    assert!((0..5_000).contains(&first) && first <= last, "{d}");
}

#[tokio::test]
async fn a_fan_out_nobody_acknowledged_is_reported_finished_too() {
    let ops = TestReceiver::start().await;
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(500));
    let app = app_for(&ops, |c| {
        c.reminder_offsets = tminus::domain::offset::parse_list("1s").unwrap()
    })
    .await;
    let (creator, key) = app.creator().await;
    app.subscribe(&key, &rx.url, None).await;
    let w = app.webinar(&creator, 2).await;
    app.participants(&w, 2).await;
    let got = ops.wait_exactly(&app, 2, 15).await;
    let mut kinds = types(&got);
    kinds.sort();
    assert_eq!(kinds, ["fanout.finished", "subscription.failing"]);
    let finished = got
        .iter()
        .map(event)
        .find(|e| e["type"] == "fanout.finished")
        .unwrap();
    let d = &finished["data"];
    assert_eq!(d["webinar"], w.as_str());
    assert_eq!(d["firstLatenessMs"], Value::Null, "{d}");
    let n = &d["deliveries"];
    assert_eq!(
        (&n["total"], &n["delivered"]),
        (&2.into(), &0.into()),
        "{d}"
    );
    let unsettled = ["retrying", "expired", "failed"]
        .iter()
        .map(|k| n[k].as_i64().unwrap())
        .sum::<i64>();
    assert_eq!(unsettled, 2, "{d}");
}

#[tokio::test]
async fn the_operational_endpoint_s_own_failures_are_never_announced_to_it() {
    let ops = TestReceiver::start().await;
    // The platform fails the first announcement, then takes it.
    ops.script([Reply::status(500)]);
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(410));
    let app = app_for(&ops, |_| {}).await;
    let (key, sid) = subscribed(&app, &rx).await;
    test_event(&app, &key, &sid).await;
    let got = ops.wait_exactly(&app, 2, 10).await;
    // One event, sent twice (the same webhook-id): no event about itself.
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    assert_eq!(
        types(&got),
        ["subscription.disabled", "subscription.disabled"]
    );
    assert_eq!(got[1].header("x-tminus-attempt"), "2");
}

#[tokio::test]
async fn the_operational_subscription_is_in_no_list() {
    let ops = TestReceiver::start().await;
    let app = app_for(&ops, |_| {}).await;
    let (creator, key) = app.creator().await;
    let (_, all) = app.admin(Method::GET, "/subscriptions", None).await;
    assert_eq!(all["data"], serde_json::json!([]), "{all}");
    let (_, creators) = app.admin(Method::GET, "/creators", None).await;
    let ids: Vec<&str> = creators["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [creator.as_str()]);
    let (_, mine) = app.hooks(Method::GET, &key, "", None).await;
    assert_eq!(mine["data"], serde_json::json!([]), "{mine}");
    // Its owner takes no key.
    let (s, _) = app
        .admin(
            Method::POST,
            "/creators/000000000000000000000000/api-keys",
            Some(serde_json::json!({"name": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_generated_secret_is_shown_once_in_a_file_and_kept() {
    let ops = TestReceiver::start().await;
    let rx = TestReceiver::start().await;
    rx.script([Reply::status(500)]);
    let url = ops.url.clone();
    let app = spawn_with(move |c| c.operational_webhook_url = Some(url)).await;
    // Serving: the start that made it is over.
    let (s, _) = app.admin(Method::GET, "/operational-webhook", None).await;
    assert_eq!(s, StatusCode::OK);
    let file = app.db.with_file_name("tminus-operational-webhook-secret");
    let secret = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // Read and deleted by the operator: not shown again, still signing.
    std::fs::remove_file(&file).unwrap();
    let app = app.restart().await;
    let (s, _) = app.admin(Method::GET, "/operational-webhook", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!file.exists(), "shown again on a restart");
    let (key, sid) = subscribed(&app, &rx).await;
    test_event(&app, &key, &sid).await;
    let got = ops.wait_exactly(&app, 2, 10).await;
    assert_eq!(
        event_signed_with(&got[0], &secret)["type"],
        "subscription.failing"
    );
}

#[tokio::test]
async fn without_the_url_nothing_is_sent_and_the_route_says_so() {
    let rx = TestReceiver::start().await;
    rx.script([Reply::status(500)]);
    let app = spawn_app().await;
    let (key, sid) = subscribed(&app, &rx).await;
    test_event(&app, &key, &sid).await;
    rx.wait_exactly(&app, 2, 10).await;
    let (s, e) = app.admin(Method::GET, "/operational-webhook", None).await;
    assert_eq!(
        (s, &e["error"]["code"]),
        (StatusCode::NOT_FOUND, &"not_found".into())
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn on_postgres_a_failure_its_recovery_and_a_finished_fan_out_are_announced() {
    let db = crate::pg::fresh().await;
    let ops = TestReceiver::start().await;
    let rx = TestReceiver::start().await;
    rx.script([Reply::status(500)]);
    let url = db.url.clone();
    let app = app_for(&ops, |c| {
        c.database = url;
        c.reminder_offsets = tminus::domain::offset::parse_list("1s").unwrap();
    })
    .await;
    let (creator, key) = app.creator().await;
    let sid = app.subscribe(&key, &rx.url, None).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    test_event(&app, &key, &sid).await;
    let got = ops.wait_exactly(&app, 2, 15).await;
    assert_eq!(
        types(&got),
        ["subscription.failing", "subscription.recovered"]
    );
    let w = app.webinar(&creator, 2).await;
    app.participants(&w, 2).await;
    let got = ops.wait_exactly(&app, 3, 15).await;
    let e = event(&got[2]);
    assert_eq!(e["type"], "fanout.finished");
    assert_eq!(e["data"]["deliveries"]["delivered"], 2);
    let mut app = app;
    app.stop().await;
    db.drop_now().await;
}
