//! Two instances share a fan-out of 20 000 deliveries while the PostgreSQL
//! server restarts. They reconnect and finish, and nothing is lost.

use crate::harness::*;
use crate::receiver::Receiver;
use std::process::Command;

const PEOPLE: usize = 20_000;

/// Restarts the local cluster the way the machine starts it.
fn restart_postgres() -> bool {
    let Ok(versions) = std::fs::read_dir("/etc/postgresql") else {
        return false;
    };
    let Some(version) = versions.flatten().next() else {
        return false;
    };
    Command::new("pg_ctlcluster")
        .args([
            "--skip-systemctl-redirect",
            &version.file_name().to_string_lossy(),
            "main",
            "restart",
        ])
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn a_database_restart_mid_fan_out_loses_nothing() {
    let _one = crate::ONE_AT_A_TIME.lock().await;
    let db = crate::pg::fresh().await;
    if !std::path::Path::new("/etc/postgresql").exists() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI must be able to restart PostgreSQL"
        );
        eprintln!("NOT RUN: no local PostgreSQL cluster to restart");
        return;
    }
    let logs = logs_dir();
    let http = reqwest::Client::new();
    let rx = Receiver::start().await;
    let instances = busy_cluster(&http, &db, logs.path(), 2, &rx, PEOPLE).await;
    let at = rx.requests();
    assert!(restart_postgres(), "pg_ctlcluster restart failed");
    eprintln!("restarted PostgreSQL after {at} requests");
    assert!(at < PEOPLE, "restarted partway, not after the end");

    until(120, "every participant acknowledged", async || {
        eprintln!(
            "{} requests, {} acknowledged",
            rx.requests(),
            rx.acked_people()
        );
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
        let repeats = log.acked.values().filter(|n| **n > 1).count();
        eprintln!("{repeats} repeats (sent, acknowledged, not recorded before the restart)");
    }
    drop(instances);
    db.drop_now().await;
}
