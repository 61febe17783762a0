//! Three instances share a fan-out of 20 000 deliveries; one is killed with
//! SIGKILL partway through. Everything still arrives, repeats are only of
//! what the dead instance held, and nothing is recorded as delivered that
//! the receiver did not acknowledge.

use crate::harness::*;
use crate::receiver::Receiver;
use std::collections::BTreeSet;

const PEOPLE: usize = 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn losing_an_instance_mid_fan_out_loses_nothing() {
    let _one = crate::ONE_AT_A_TIME.lock().await;
    let db = crate::pg::fresh().await;
    let logs = logs_dir();
    let http = reqwest::Client::new();
    let rx = Receiver::start().await;
    let mut instances = busy_cluster(&http, &db, logs.path(), 3, &rx, PEOPLE).await;
    let victim = instances.remove(1);
    let pid = victim.pid();
    let mut victim = victim;
    victim.kill9();
    let sql = db.client().await;
    let held = held_by(&sql, pid).await;
    let seen_at_kill = rx.requests();
    eprintln!(
        "killed instance {pid} after {seen_at_kill} requests; it held {} unrecorded deliveries",
        held.len()
    );
    assert!(!held.is_empty(), "the killed instance was sending");
    assert!(seen_at_kill < PEOPLE, "killed partway, not after the end");

    until(90, "every participant acknowledged", async || {
        rx.acked_people() == PEOPLE
    })
    .await;
    // Three instances, one subscription with maxConcurrency 16: the cap
    // holds for all of them together.
    let most = rx.max_in_flight.load(std::sync::atomic::Ordering::SeqCst);
    eprintln!("at most {most} requests in flight at once");
    assert!(
        most <= 16,
        "{most} requests in flight, over the subscription's cap of 16"
    );
    until(30, "every outcome recorded", async || {
        pending(&sql).await == 0
    })
    .await;

    let delivered = delivered(&sql).await;
    {
        let log = rx.log.lock().unwrap();
        // At least once, each with one webhook-id.
        assert_eq!(log.ids_by_email.len(), PEOPLE);
        for (email, ids) in &log.ids_by_email {
            assert_eq!(ids.len(), 1, "{email} got several webhook-ids: {ids:?}");
        }
        // Repeats (acknowledged more than once) are only of what the dead
        // instance had in flight.
        let repeats: BTreeSet<&String> = log
            .acked
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(id, _)| id)
            .collect();
        eprintln!(
            "{} repeats, of {} the dead instance held",
            repeats.len(),
            held.len()
        );
        assert!(repeats.len() <= held.len());
        for id in &repeats {
            assert!(
                held.contains(*id),
                "{id} was repeated but the dead instance did not hold it"
            );
        }
        // Recorded as delivered only if acknowledged.
        assert_eq!(delivered.len(), PEOPLE);
        for id in &delivered {
            assert!(
                log.acked.contains_key(id),
                "{id} recorded as delivered, never acknowledged"
            );
        }
    }
    drop(instances);
    db.drop_now().await;
}
