//! A process killed just before or just after a reminder's due instant and
//! started again at once: the new process owns the file, so it takes back
//! the dead one's leases at start (they are 90 s long here, the default)
//! and the fan-out goes on within moments: nothing missed, nothing waiting.

use crate::file;
use crate::harness::*;
use crate::receiver::Receiver;
use std::time::{Duration, Instant};

const PEOPLE: usize = 2_000;

/// The default lease: what a restart that waited for the dead process's
/// leases would wait.
const LEASE: Duration = Duration::from_secs(90);

/// Sets up a fan-out on a fresh file, kills the process `at` the due
/// instant (negative: before it), restarts it at once and checks that
/// everything is sent well within the lease of the restart (about a second
/// on a quiet machine, a few on a busy one) with nothing missed.
async fn kill_and_restart_at(at_ms: i64) {
    let _one = crate::ONE_AT_A_TIME.lock().await;
    let logs = logs_dir();
    let db = logs.path().join("tminus.db");
    let database = db.to_str().unwrap().to_owned();
    let http = reqwest::Client::new();
    let rx = Receiver::start().await;
    let mut first = Instance::spawn(&database, logs.path(), "first", &[]);
    wait_healthy(&http, &first).await;
    let f = fan_out_soon(&http, &first, &rx, PEOPLE, Duration::from_secs(3)).await;
    let kill_at = f.due + chrono::Duration::milliseconds(at_ms);
    let wait = (kill_at - chrono::Utc::now())
        .to_std()
        .expect("set up in time");
    tokio::time::sleep(wait).await;
    first.kill9();
    let restarted = Instant::now();
    let sent_before = rx.requests();
    let second = Instance::spawn(&database, logs.path(), "second", &[]);
    until(30, "every participant acknowledged", async || {
        rx.acked_people() == PEOPLE
    })
    .await;
    let took = restarted.elapsed();
    eprintln!(
        "killed {at_ms} ms from the due instant after {sent_before} requests; \
         everything acknowledged {took:?} after the restart"
    );
    assert!(
        took <= LEASE / 9,
        "took {took:?} after the restart: the new process waited for something"
    );
    drop(second);
    file::assert_intact(&db);
    assert_eq!(file::count_rows(&db, "missed"), 0, "nothing missed");
    assert_eq!(file::delivered(&db, &f.sub).await.len(), PEOPLE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_staging_then_restarted_at_once_misses_nothing() {
    // The first participants are claimed, written and leased 100 ms ahead.
    kill_and_restart_at(-50).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_just_after_the_instant_then_restarted_at_once_misses_nothing() {
    kill_and_restart_at(20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_the_same_file_is_refused() {
    let _one = crate::ONE_AT_A_TIME.lock().await;
    let logs = logs_dir();
    let database = logs.path().join("tminus.db").to_str().unwrap().to_owned();
    let http = reqwest::Client::new();
    let first = Instance::spawn(&database, logs.path(), "first", &[]);
    wait_healthy(&http, &first).await;
    let mut second = Instance::spawn(&database, logs.path(), "second", &[]);
    let status = tokio::task::spawn_blocking(move || second.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(!status.success(), "the second process must refuse to start");
    let log = std::fs::read_to_string(logs.path().join("second.log")).unwrap();
    assert!(
        log.contains("in use by another tminus process"),
        "the refusal says why: {log}"
    );
    // The first one serves on.
    wait_healthy(&http, &first).await;
}
