//! One of two instances is killed mid-fan-out while their leases are long
//! (60 s): the survivor notices the silence of the dead one's heartbeat and
//! takes its work over within seconds (its first delivery of the dead one's
//! unsent work within 5 s), not when the leases lapse.

use crate::harness::*;
use crate::receiver::Receiver;
use std::time::{Duration, Instant};

const PEOPLE: usize = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn a_dead_instance_s_work_is_taken_over_within_seconds() {
    let _one = crate::ONE_AT_A_TIME.lock().await;
    let db = crate::pg::fresh().await;
    let logs = logs_dir();
    let http = reqwest::Client::new();
    let rx = Receiver::start().await;
    // Leases far longer than the wait the test allows: only the heartbeat
    // can explain a takeover in time.
    let args = ["--lease", "60s", "--http-timeout", "2s", "--tick", "200ms"];
    let mut a = Instance::spawn(&db.url, logs.path(), "a", &args);
    wait_healthy(&http, &a).await;
    let b = Instance::spawn(&db.url, logs.path(), "b", &args);
    wait_healthy(&http, &b).await;
    fan_out_soon(&http, &a, &rx, PEOPLE, Duration::from_secs(2)).await;
    until(60, "the fan-out to get going", async || {
        rx.requests() >= PEOPLE / 5
    })
    .await;
    // Killed once it holds work the receiver has not acknowledged (a slice
    // it leased and has not sent through): when it is killed is decided by
    // what it holds, not by how far the fan-out got, which on a busy
    // machine may find it between two claims.
    let pid = a.pid();
    let sql = db.client().await;
    until(60, "the instance to hold unsent work", async || {
        let held = held_by(&sql, pid).await;
        let log = rx.log.lock().unwrap();
        held.iter()
            .filter(|id| !log.acked.contains_key(*id))
            .count()
            >= 50
    })
    .await;
    a.kill9();
    let killed = Instant::now();
    let held = held_by(&sql, pid).await;
    eprintln!("killed {pid}; it held {} unrecorded deliveries", held.len());
    assert!(!held.is_empty(), "the killed instance was sending");
    // What it held and the receiver had not acknowledged: only a survivor
    // taking over its leases can send that.
    let left: Vec<String> = {
        let log = rx.log.lock().unwrap();
        held.iter()
            .filter(|id| !log.acked.contains_key(*id))
            .cloned()
            .collect()
    };
    assert!(!left.is_empty(), "the killed instance held unsent work");
    until(
        20,
        "a survivor sending the dead instance's work",
        async || {
            let log = rx.log.lock().unwrap();
            left.iter().any(|id| log.acked.contains_key(id))
        },
    )
    .await;
    let took = killed.elapsed();
    until(
        30,
        "the dead instance's deliveries acknowledged",
        async || {
            let log = rx.log.lock().unwrap();
            held.iter().all(|id| log.acked.contains_key(id))
        },
    )
    .await;
    eprintln!(
        "a survivor took over {took:?} after the kill; all it held was sent {:?} after",
        killed.elapsed()
    );
    assert!(
        took <= Duration::from_secs(5),
        "took {took:?} to take over a dead instance's work"
    );
    until(60, "every participant acknowledged", async || {
        rx.acked_people() == PEOPLE
    })
    .await;
    drop(b);
    db.drop_now().await;
}
