//! A webinar created through one instance wakes the timer of another at
//! once (`NOTIFY`), not at its next look at the store. Both run with a tick
//! of 30 s, so without the notification the second would not look for up
//! to 30 s. The first is killed before the reminder is due, so only the
//! second can fire it, and it does so on time.

use crate::harness::*;
use crate::receiver::Receiver;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn a_webinar_made_elsewhere_fires_on_time_here() {
    let _one = crate::ONE_AT_A_TIME.lock().await;
    let db = crate::pg::fresh().await;
    let logs = logs_dir();
    let http = reqwest::Client::new();
    let rx = Receiver::start().await;
    let args = ["--tick", "30s", "--lease", "60s", "--http-timeout", "2s"];
    let mut a = Instance::spawn(&db.url, logs.path(), "a", &args);
    wait_healthy(&http, &a).await;
    let b = Instance::spawn(&db.url, logs.path(), "b", &args);
    wait_healthy(&http, &b).await;
    // B has looked at the store (nothing due) and sleeps for a tick.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let f = fan_out_soon(&http, &a, &rx, 5, Duration::from_secs(4)).await;
    let left = f.due - chrono::Utc::now();
    assert!(
        left > chrono::Duration::milliseconds(500),
        "A was set up too slowly to be killed in time ({left})"
    );
    a.kill9();

    until(15, "B to fire the reminder", async || {
        rx.acked_people() == 5
    })
    .await;
    let first = rx.log.lock().unwrap().first_at.unwrap();
    let late = first - f.due;
    eprintln!("first delivery {late} after the due instant");
    assert!(first >= f.due, "sent before it was due");
    assert!(
        late <= chrono::Duration::seconds(1),
        "first delivery {late} after the due instant: B's timer was not woken"
    );
    drop(b);
    db.drop_now().await;
}
