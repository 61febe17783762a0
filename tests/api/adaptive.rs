//! Adaptive concurrency end to end: an endpoint with a real capacity
//! (more than 8 requests in flight are answered `503` with
//! `Retry-After: 1`, each answer takes 20 ms, so it can take 2 000
//! reminders in 5 s) and a subscription allowed 64 in flight. Without
//! adaptation the lane keeps 64 in flight and draws tens of thousands of
//! `503`s; with it, the lane settles near the endpoint's capacity.

use crate::delivery::webinar_with;
use crate::receiver::{Reply, TestReceiver};
use reqwest::Method;
use serde_json::json;
use std::collections::HashSet;
use std::time::{Duration, Instant};

const PARTICIPANTS: usize = 2000;

#[tokio::test]
async fn a_busy_endpoint_gets_every_reminder_within_twice_its_limit() {
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(200).delayed(Duration::from_millis(20)));
    rx.set_capacity(8);
    let (app, key, w) = webinar_with("15s", PARTICIPANTS, |_| {}).await;
    let sub = app
        .subscribe_with(&key, &rx.url, json!({"maxConcurrency": 64}))
        .await;
    let sid = sub["id"].as_str().unwrap().to_owned();
    assert_eq!(sub["currentConcurrency"], json!(null), "no lane yet: {sub}");
    app.starts_in(&w, 16.0);
    let due = w.from - chrono::Duration::seconds(15);

    // The lane's limit, as the API shows it, while the fan-out runs.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut limits = Vec::new();
    while rx.taken().len() < PARTICIPANTS {
        assert!(
            Instant::now() < deadline,
            "{} of {PARTICIPANTS} taken, {} refused as busy",
            rx.taken().len(),
            rx.refused_busy()
        );
        let (_, s) = app.hooks(Method::GET, &key, &format!("/{sid}"), None).await;
        if let Some(n) = s["currentConcurrency"].as_u64() {
            limits.push(n);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    app.quiet().await;

    let taken = rx.taken();
    let ids: HashSet<String> = taken.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(taken.len(), PARTICIPANTS, "each acknowledged once");
    assert_eq!(ids.len(), PARTICIPANTS, "every participant reminded");
    let last = taken.iter().map(|r| app.on_clock(r.wall)).max().unwrap();
    assert!(
        last - due <= chrono::Duration::seconds(10),
        "the last reminder left {} after its instant",
        last - due
    );
    let busy = rx.refused_busy();
    assert!(
        busy < PARTICIPANTS,
        "{busy} 503s for {PARTICIPANTS} reminders"
    );
    assert!(!limits.is_empty(), "the limit was never shown");
    assert!(limits.iter().all(|n| (1..=64).contains(n)), "{limits:?}");
    assert!(
        limits.iter().any(|n| *n <= 16),
        "the limit never came down towards the endpoint's capacity: {limits:?}"
    );
}
