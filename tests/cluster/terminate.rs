//! Every connection of two instances is killed by the server
//! (`pg_terminate_backend`) in the middle of a fan-out of 20 000, twice.
//! They reconnect on their own, the fan-out finishes, nothing acknowledged
//! is lost, and the store agrees with the receiver.

use crate::harness::*;
use crate::receiver::Receiver;

const PEOPLE: usize = 20_000;

/// Kills every other session on the test database; returns how many.
async fn terminate_all(sql: &tokio_postgres::Client) -> i64 {
    sql.query_one(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn connections_killed_mid_fan_out_lose_nothing() {
    let _one = crate::ONE_AT_A_TIME.lock().await;
    let db = crate::pg::fresh().await;
    let logs = logs_dir();
    let http = reqwest::Client::new();
    let rx = Receiver::start().await;
    let instances = busy_cluster(&http, &db, logs.path(), 2, &rx, PEOPLE).await;
    let admin = db.client().await;
    let killed = terminate_all(&admin).await;
    eprintln!(
        "killed {killed} connections after {} requests",
        rx.requests()
    );
    assert!(killed >= 2, "the instances had connections to kill");
    until(60, "the fan-out to go on", async || {
        rx.requests() >= PEOPLE * 3 / 5
    })
    .await;
    let again = terminate_all(&admin).await;
    eprintln!("killed {again} more after {} requests", rx.requests());
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
    {
        let log = rx.log.lock().unwrap();
        let acked: std::collections::BTreeSet<String> = log.acked.keys().cloned().collect();
        assert_eq!(delivered.len(), PEOPLE, "every delivery recorded");
        assert_eq!(delivered, acked, "the store agrees with the receiver");
        for (who, ids) in &log.ids_by_email {
            assert_eq!(ids.len(), 1, "{who} got several webhook-ids");
        }
        let repeats = log.acked.values().filter(|n| **n > 1).count();
        eprintln!("{repeats} repeats");
    }
    for n in 0..instances.len() {
        let log = std::fs::read_to_string(logs.path().join(format!("instance-{n}.log"))).unwrap();
        assert!(
            log.contains("terminating connection") || log.contains("connection closed"),
            "instance {n}'s log says what happened"
        );
    }
    drop(instances);
    db.drop_now().await;
}
