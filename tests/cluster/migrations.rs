//! Several instances started at the same moment on an empty schema race for
//! the migrations: one applies them while the others wait on its advisory
//! lock and find them done. Every instance comes up ready, and each
//! migration is recorded once.

use crate::harness::*;

const INSTANCES: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn instances_starting_together_migrate_once() {
    let _one = crate::ONE_AT_A_TIME.lock().await;
    let db = crate::pg::fresh().await;
    let logs = logs_dir();
    let http = reqwest::Client::new();
    let instances: Vec<Instance> = (0..INSTANCES)
        .map(|n| Instance::start(&db, logs.path(), n))
        .collect();
    for (n, i) in instances.iter().enumerate() {
        wait_healthy(&http, i).await;
        let r = http.get(format!("{}/readyz", i.base)).send().await.unwrap();
        let log = std::fs::read_to_string(logs.path().join(format!("instance-{n}.log")));
        assert_eq!(r.status(), 200, "instance {n}: {log:?}");
    }
    let files = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/service/migrations/postgres"
    ))
    .unwrap()
    .count() as i64;
    let sql = db.client().await;
    let r = sql
        .query_one(
            "SELECT count(*), count(DISTINCT version), min(version), max(version)
             FROM tminus_migrations",
            &[],
        )
        .await
        .unwrap();
    let (rows, versions): (i64, i64) = (r.get(0), r.get(1));
    assert_eq!((rows, versions), (files, files), "each migration once");
    assert_eq!((r.get::<_, i32>(2), r.get::<_, i32>(3)), (1, files as i32));
    drop(instances);
    db.drop_now().await;
}
