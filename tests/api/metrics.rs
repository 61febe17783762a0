//! `GET /metrics` end to end: behind the admin token; a fan-out to a real
//! receiver shows in the counters and histograms; failing, expired,
//! refused and gone (410) deliveries each in their outcome; the gauges read
//! the store (a subscription disabled by a 410 among them).
//! Every service has a recorder of its own, so the figures each test reads
//! are its own service's, though all run in one process.

use crate::delivery::webinar_with;
use crate::helpers::*;
use crate::receiver::{Reply, TestReceiver};
use reqwest::StatusCode;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;

/// The exposition text, read with the admin token.
pub async fn scrape(app: &TestApp) -> String {
    let resp = app
        .http
        .get(format!("{}/metrics", app.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let kind = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    resp.text().await.unwrap()
}

/// The value of one series (`name{labels}` as rendered), if present.
pub fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// Scrapes until `series` reaches `at_least`; returns that scrape.
pub async fn scrape_until(app: &TestApp, series: &str, at_least: f64) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let text = scrape(app).await;
        if value(&text, series).is_some_and(|v| v >= at_least) {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{series} never reached {at_least}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn outcome(text: &str, o: &str) -> f64 {
    value(text, &format!("tminus_deliveries_total{{outcome=\"{o}\"}}")).unwrap()
}

#[tokio::test]
async fn metrics_are_behind_the_admin_token_and_read_the_store() {
    let app = spawn_app().await;
    let url = format!("{}/metrics", app.base);
    let none = app.http.get(&url).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    let wrong = app.http.get(&url).bearer_auth("nope").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let (cid, key) = app.creator().await;
    let keyed = app
        .http
        .get(&url)
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        keyed.status(),
        StatusCode::UNAUTHORIZED,
        "an API key is not enough"
    );

    gauges_follow_the_store(&app, &cid, &key).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn the_gauges_read_a_postgres_store() {
    let db = crate::pg::fresh().await;
    let url = db.url.clone();
    let app = spawn_with(|c| c.database = url).await;
    let (cid, key) = app.creator().await;
    gauges_follow_the_store(&app, &cid, &key).await;
    db.drop_now().await;
}

/// The gauges before and after a webinar and a subscription are made.
async fn gauges_follow_the_store(app: &TestApp, cid: &str, key: &str) {
    let text = scrape(app).await;
    assert_eq!(
        value(&text, "tminus_subscriptions{status=\"active\"}"),
        Some(0.0)
    );
    assert_eq!(value(&text, "tminus_reminders_due_next_hour"), Some(0.0));
    // A webinar in 30 minutes arms reminders 3s, 2s and 1s before it.
    app.webinar(cid, 1800).await;
    app.subscribe(key, "http://127.0.0.1:9/", None).await;
    let text = scrape(app).await;
    assert_eq!(
        value(&text, "tminus_subscriptions{status=\"active\"}"),
        Some(1.0)
    );
    assert_eq!(value(&text, "tminus_reminders_due_next_hour"), Some(3.0));
    assert_eq!(value(&text, "tminus_endpoints_failing"), Some(0.0));
    assert_eq!(
        value(&text, "tminus_deliveries_pending{state=\"queued\"}"),
        Some(0.0)
    );
    assert!(text.contains("tminus_store_call_duration_seconds_count{call=\"gauges\"}"));
}

#[tokio::test]
async fn a_fan_out_shows_in_the_counters_and_histograms() {
    let rx = TestReceiver::start().await;
    let (app, key, w) = webinar_with("2s", 5, |_| {}).await;
    app.subscribe(&key, &rx.url, None).await;
    app.starts_in(&w, 2.5);
    rx.wait_for(5, 10).await;
    let text = scrape_until(
        &app,
        "tminus_fanout_last_delivery_lateness_seconds_count",
        1.0,
    )
    .await;
    assert_eq!(outcome(&text, "delivered"), 5.0);
    assert_eq!(outcome(&text, "failed"), 0.0);
    assert_eq!(
        value(&text, "tminus_attempt_duration_seconds_count"),
        Some(5.0)
    );
    for h in ["first", "last"] {
        let series = format!("tminus_fanout_{h}_delivery_lateness_seconds");
        assert_eq!(value(&text, &format!("{series}_count")), Some(1.0), "{h}");
        let late = value(&text, &format!("{series}_sum")).unwrap();
        assert!((0.0..2.0).contains(&late), "{h}: {late} s late\n{text}");
        // Buckets, not quantiles: Prometheus can aggregate them.
        assert!(
            text.contains(&format!("{series}_bucket{{le=\"60\"}} 1")),
            "{text}"
        );
    }
    assert!(value(&text, "tminus_scheduler_lag_seconds_count").unwrap() >= 1.0);
    for call in [
        "claim_due_reminders",
        "fanout_batch",
        "claim_deliveries",
        "record_outcomes",
    ] {
        let series = format!("tminus_store_call_duration_seconds_count{{call=\"{call}\"}}");
        assert!(value(&text, &series).unwrap() >= 1.0, "{call}");
    }
    // No participant, subscription or webinar is a label.
    assert!(
        !text.contains(&w.id) && !text.contains("subscription="),
        "{text}"
    );
    // Every metric is served now; docs/OPERATIONS.md lists those, and the
    // dashboard charts those.
    let served: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect();
    let documented = documented();
    assert_eq!(served, documented, "docs/OPERATIONS.md's Metrics table");
    assert_eq!(
        charted(&documented),
        documented,
        "docs/grafana-dashboard.json"
    );
}

/// The metrics docs/OPERATIONS.md's Metrics table lists.
fn documented() -> BTreeSet<String> {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/OPERATIONS.md"))
        .unwrap();
    page.lines()
        .filter_map(|l| l.strip_prefix("| `tminus_"))
        .filter_map(|l| l.split('`').next())
        .map(|n| format!("tminus_{n}"))
        .collect()
}

/// The metrics the Grafana dashboard's queries name (a histogram by its
/// name, not its `_bucket`, `_sum` or `_count` series); it must be valid
/// JSON.
fn charted(known: &BTreeSet<String>) -> BTreeSet<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/grafana-dashboard.json");
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut names = BTreeSet::new();
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if !word.starts_with("tminus_") {
                    continue;
                }
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| word.strip_suffix(s).filter(|b| known.contains(*b)))
                    .unwrap_or(word);
                names.insert(base.to_owned());
            }
        }
    }
    names
}

#[tokio::test]
async fn failing_expired_and_refused_deliveries_show_in_their_outcomes() {
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(500));
    let (app, key, w) = webinar_with("2s", 1, |_| {}).await;
    app.subscribe(&key, &rx.url, None).await;
    // Stored while the guard was off; refused at send time once it is on.
    let refused = rx.url.replace("127.0.0.1", "[::1]");
    app.subscribe(&key, &refused, None).await;
    let app = app
        .restart_with(|c| {
            c.allow_private_targets = false;
            c.allow_targets = vec!["127.0.0.1/32".into()];
        })
        .await;
    app.starts_in(&w, 2.5);
    let text = scrape_until(&app, "tminus_deliveries_total{outcome=\"expired\"}", 2.0).await;
    assert!(outcome(&text, "failed") >= 1.0, "{text}");
    assert!(outcome(&text, "refused") >= 1.0, "{text}");
    assert_eq!(outcome(&text, "delivered"), 0.0);
    assert_eq!(outcome(&text, "expired"), 2.0, "one per subscription");
    let text = scrape(&app).await;
    assert_eq!(
        value(&text, "tminus_endpoints_failing"),
        Some(2.0),
        "{text}"
    );
    // The sweep that expires what was not sent in time is timed each tick.
    let sweeps = "tminus_store_call_duration_seconds_count{call=\"expire_overdue\"}";
    assert!(value(&text, sweeps).unwrap_or(0.0) >= 1.0, "{text}");
}

#[tokio::test]
async fn a_receiver_answering_410_shows_as_gone_and_disabled() {
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(410));
    let (app, key, w) = webinar_with("2s", 2, |_| {}).await;
    app.subscribe(&key, &rx.url, None).await;
    let text = scrape(&app).await;
    let disabled = "tminus_subscriptions{status=\"disabled\"}";
    assert_eq!(value(&text, disabled), Some(0.0), "{text}");
    app.starts_in(&w, 2.5);
    scrape_until(&app, "tminus_deliveries_total{outcome=\"gone\"}", 1.0).await;
    let text = scrape_until(&app, disabled, 1.0).await;
    assert_eq!(value(&text, disabled), Some(1.0), "{text}");
    assert_eq!(
        value(&text, "tminus_subscriptions{status=\"active\"}"),
        Some(0.0)
    );
    assert_eq!(outcome(&text, "delivered"), 0.0);
    assert_eq!(
        value(&text, "tminus_endpoints_failing"),
        Some(0.0),
        "a disabled endpoint is not counted as failing: {text}"
    );
}

#[tokio::test]
async fn reminders_missed_during_downtime_show_with_the_scheduler_s_lag() {
    // Down 120 s: the reminder fell due 90 s ago, after the start.
    let (_rx, app, _key, _wid, _sub) = crate::scheduling::down_for(120, |_| {}).await;
    let text = scrape_until(&app, "tminus_deliveries_total{outcome=\"missed\"}", 2.0).await;
    assert_eq!(outcome(&text, "missed"), 2.0, "one per participant");
    assert_eq!(outcome(&text, "delivered"), 0.0);
    let lag = value(&text, "tminus_scheduler_lag_seconds_sum").unwrap();
    let n = value(&text, "tminus_scheduler_lag_seconds_count").unwrap();
    assert_eq!(n, 1.0, "{text}");
    assert!((90.0..100.0).contains(&lag), "taken up {lag} s late");
}

/// The series a scrape holds (lines that are not comments).
fn series(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.rsplit_once(' ').map(|(s, _)| s.to_owned()))
        .collect()
}

#[tokio::test]
async fn the_number_of_series_stays_flat_as_webinars_and_subscriptions_grow() {
    let rx = TestReceiver::start().await;
    let app = spawn_with(|c| {
        c.reminder_offsets = tminus::domain::offset::parse_list("2s").unwrap();
    })
    .await;
    let (cid, key) = app.creator().await;
    let first = app.parked(&cid, json!({})).await;
    app.participants(&first.id, 3).await;
    app.subscribe(&key, &rx.url, None).await;
    app.starts_in(&first, 2.5);
    rx.wait_for(3, 10).await;
    let lateness = "tminus_fanout_last_delivery_lateness_seconds_count";
    let one = series(&scrape_until(&app, lateness, 1.0).await);
    // Ten more subscriptions and ten more webinars; one of them fans out
    // to all eleven subscriptions.
    for i in 0..10 {
        app.subscribe(&key, &format!("{}?n={i}", rx.url), None)
            .await;
    }
    let mut webinars = Vec::new();
    for _ in 0..10 {
        let w = app.parked(&cid, json!({})).await;
        app.participants(&w.id, 3).await;
        webinars.push(w);
    }
    app.starts_in(&webinars[0], 2.5);
    rx.wait_for(3 + 3 * 11, 20).await;
    let many = series(&scrape_until(&app, lateness, 2.0).await);
    assert_eq!(many, one, "series came or went with the traffic");
}
