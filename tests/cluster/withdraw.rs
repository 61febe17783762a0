//! A change made through one instance stops the fan-out another instance is
//! sending. Two instances, a receiver answering after 100 ms and
//! `maxConcurrency: 1`, so 40 participants take seconds; the whole fan-out
//! is one slice, leased by one instance. The webinar is cancelled through
//! the other. The sender learns of it within a tick (500 ms here): after
//! the cancel has answered, at most what it had in flight and what it sends
//! in one tick arrive, not the rest of the slice.

use crate::harness::*;
use crate::receiver::Receiver;
use serde_json::json;
use std::time::Duration;

const PEOPLE: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn a_cancel_through_one_instance_stops_another_s_fan_out() {
    let _one = crate::ONE_AT_A_TIME.lock().await;
    let db = crate::pg::fresh().await;
    let logs = logs_dir();
    let http = reqwest::Client::new();
    let rx = Receiver::start_slow(Duration::from_millis(100)).await;
    let args = ["--tick", "500ms", "--lease", "60s", "--http-timeout", "2s"];
    let a = Instance::spawn(&db.url, logs.path(), "a", &args);
    wait_healthy(&http, &a).await;
    let b = Instance::spawn(&db.url, logs.path(), "b", &args);
    wait_healthy(&http, &b).await;
    let (cid, key, sub) = subscriber(&http, &a, &rx).await;
    let r = http
        .patch(format!(
            "{}/api/v1/integration/webhook/webhook/{sub}",
            a.base
        ))
        .header("x-api-key", &key)
        .json(&json!({"maxConcurrency": 1}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let f = webinar_soon(&http, &a, &cid, PEOPLE, Duration::from_secs(2)).await;
    until(30, "the fan-out to get going", async || rx.requests() >= 3).await;

    // Through the instance that does not hold the slice.
    let sql = db.client().await;
    let holder: String = sql
        .query_one("SELECT locked_by FROM slices WHERE status = 'pending'", &[])
        .await
        .unwrap()
        .get(0);
    let other = if holder.starts_with(&format!("{}-", a.pid())) {
        &b
    } else {
        &a
    };
    let r = http
        .post(format!(
            "{}/api/v1/platform/webinars/{}/cancel",
            other.base, f.webinar
        ))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let at = rx.requests();
    assert!(at < PEOPLE / 2, "cancelled partway, not after the end");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = rx.requests() - at;
    // In flight (1), and one tick of 100 ms answers (5), and the one the
    // tick's end may have started.
    eprintln!("{after} requests after the cancel through the other instance");
    assert!(after <= 7, "{after} requests arrived after the cancel");
    drop((a, b));
    db.drop_now().await;
}
