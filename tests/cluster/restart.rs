//! Two instances share a fan-out of 20 000 deliveries while the PostgreSQL
//! server restarts. They reconnect and finish, nothing is lost, and nothing
//! is repeated: the leases (60 s here) outlast the outage, and neither
//! instance judges the other gone (after an outage every heartbeat is old
//! alike), so no work changes hands, and each instance's recorder keeps
//! what receivers acknowledged until it can record it. Only the local
//! cluster is ever restarted: a `TMINUS_TEST_POSTGRES_URL` naming another
//! server is refused: the test fails, saying why.

use crate::harness::*;
use crate::receiver::Receiver;
use std::process::Command;
use std::time::Instant;

const PEOPLE: usize = 20_000;

/// Restarts the local cluster the way the machine starts it.
fn restart_postgres(version: &str) -> bool {
    Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", version, "main", "restart"])
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn a_database_restart_mid_fan_out_loses_and_repeats_nothing() {
    let _one = crate::ONE_AT_A_TIME.lock().await;
    // It restarts the server: refuse any but the local cluster.
    let version = tests_use_local_cluster(&crate::pg::server_url()).unwrap_or_else(|why| {
        panic!("this test restarts PostgreSQL, so it runs only on the local cluster: {why}")
    });
    let db = crate::pg::fresh().await;
    let logs = logs_dir();
    let http = reqwest::Client::new();
    let rx = Receiver::start().await;
    let args = ["--lease", "60s", "--http-timeout", "2s", "--tick", "200ms"];
    let instances = busy_cluster_with(&http, &db, logs.path(), 2, &rx, PEOPLE, &args).await;
    let at = rx.requests();
    let t = Instant::now();
    assert!(restart_postgres(&version), "pg_ctlcluster restart failed");
    eprintln!(
        "restarted PostgreSQL after {at} requests, in {:?}",
        t.elapsed()
    );
    assert!(at < PEOPLE, "restarted partway, not after the end");

    until(120, "every participant acknowledged", async || {
        rx.acked_people() == PEOPLE
    })
    .await;
    let sql = db.client().await;
    until(60, "every outcome recorded", async || {
        pending(&sql).await == 0
    })
    .await;
    let delivered = delivered(&sql).await;
    let took_over = (0..instances.len()).any(|n| {
        std::fs::read_to_string(logs.path().join(format!("instance-{n}.log")))
            .unwrap()
            .contains("took over their work")
    });
    {
        let log = rx.log.lock().unwrap();
        assert_eq!(
            delivered.len(),
            PEOPLE,
            "every delivery recorded as delivered"
        );
        for id in &delivered {
            assert!(
                log.acked.contains_key(id),
                "{id} recorded as delivered, never acknowledged"
            );
        }
        for (who, ids) in &log.ids_by_email {
            assert_eq!(ids.len(), 1, "{who} got several webhook-ids");
        }
        let repeats: Vec<_> = log.acked.iter().filter(|(_, n)| **n > 1).collect();
        eprintln!("{} repeats", repeats.len());
        // Both instances were alive throughout: after the outage neither
        // may judge the other gone (their heartbeats are all old alike).
        assert!(
            !took_over,
            "an instance took over the other's work after a database restart"
        );
        assert!(repeats.is_empty(), "repeated: {repeats:?}");
    }
    drop(instances);
    db.drop_now().await;
}
