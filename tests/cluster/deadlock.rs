//! A transaction PostgreSQL picks as a deadlock's victim is run again, and
//! the API call that made it succeeds.
//!
//! How the deadlock is made: a trigger in the test's schema makes every
//! insert into `reminders` take an advisory lock. An outside session holds
//! that lock. A reschedule (`PATCH fromTime`, one transaction through the
//! store's retrying `transact!`) updates the webinar's row, then arms the
//! new reminders and waits for the lock. The outside session, which has a
//! long `deadlock_timeout`, then updates the same webinar row: each waits
//! for the other, and tminus's session (default 1 s) is the one that checks
//! and is chosen as the victim. The outside session commits; tminus runs
//! the transaction again and the reschedule answers 200. The server counts
//! the deadlock, and tminus's log says it ran the victim again.

use crate::harness::*;
use serde_json::json;
use std::time::Duration;

const LOCK: i64 = 4_242_424;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn a_deadlock_victim_is_run_again() {
    let _one = crate::ONE_AT_A_TIME.lock().await;
    let db = crate::pg::fresh().await;
    let logs = logs_dir();
    let http = reqwest::Client::new();
    let i = Instance::start(&db, logs.path(), 0);
    wait_healthy(&http, &i).await;
    let admin = |m: reqwest::Method, path: &str| {
        http.request(m, format!("{}/api/v1/platform{path}", i.base))
            .bearer_auth(ADMIN)
    };
    let c: serde_json::Value = admin(reqwest::Method::POST, "/creators")
        .json(&json!({"name": "C"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cid = c["id"].as_str().unwrap().to_owned();
    let w = webinar_soon(&http, &i, &cid, 1, Duration::from_secs(3600)).await;

    let sql = db.client().await;
    sql.batch_execute(&format!(
        "CREATE FUNCTION take_test_lock() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN PERFORM pg_advisory_xact_lock({LOCK}); RETURN NEW; END $$;
         CREATE TRIGGER take_test_lock BEFORE INSERT ON reminders
           FOR EACH ROW EXECUTE FUNCTION take_test_lock();"
    ))
    .await
    .unwrap();
    let deadlocks = async || -> i64 {
        sql.query_one(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()",
            &[],
        )
        .await
        .unwrap()
        .get(0)
    };
    let before = deadlocks().await;

    let outside = db.client().await;
    outside
        .batch_execute(&format!(
            "SET deadlock_timeout = '60s'; BEGIN; SELECT pg_advisory_xact_lock({LOCK});"
        ))
        .await
        .unwrap();
    let from = chrono::Utc::now() + chrono::Duration::hours(2);
    let iso =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let patch = admin(reqwest::Method::PATCH, &format!("/webinars/{}", w.webinar))
        .json(&json!({"fromTime": iso(from)}))
        .send();
    let patch = tokio::spawn(patch);
    // tminus's transaction holds the webinar's row and waits for the lock.
    until(
        10,
        "the reschedule to wait for the advisory lock",
        async || {
            sql.query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
                &[],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
                == 1
        },
    )
    .await;
    // Closes the cycle; returns once tminus's transaction is the victim.
    outside
        .execute(
            "UPDATE webinars SET title = title WHERE id = $1",
            &[&w.webinar],
        )
        .await
        .expect("the outside session is not the victim");
    outside.batch_execute("COMMIT").await.unwrap();

    let r = patch.await.unwrap().unwrap();
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["fromTime"], iso(from));
    until(10, "the server to count the deadlock", async || {
        deadlocks().await > before
    })
    .await;
    let log = std::fs::read_to_string(logs.path().join("instance-0.log")).unwrap();
    assert!(log.contains("deadlock victim"), "{log}");
    drop(i);
    db.drop_now().await;
}
