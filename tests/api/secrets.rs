//! Signing secrets under concurrency: rotations made at once each answer
//! the secret they installed, and the webhooks are then signed with the
//! last one and its predecessor (kept for the grace period), on SQLite and
//! on PostgreSQL; and the predecessor stops signing when the grace ends.

use crate::helpers::*;
use crate::receiver::{Reply, TestReceiver};
use reqwest::{Method, StatusCode};

use std::collections::BTreeSet;
use std::time::Duration;

async fn concurrent_rotations_each_answer_what_they_stored(app: &TestApp) {
    let rx = TestReceiver::start().await;
    let (_, key) = app.creator().await;
    let sub = app.subscribe(&key, &rx.url, None).await;
    let sid = sub["id"].as_str().unwrap().to_owned();
    let mut rotations = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let req = app
            .http
            .post(format!(
                "{}/api/v1/integration/webhook/webhook/{sid}/rotate-secret",
                app.base
            ))
            .header("x-api-key", &key);
        rotations.spawn(async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let b: serde_json::Value = r.json().await.unwrap();
            b["secret"].as_str().unwrap().to_owned()
        });
    }
    let answers: Vec<String> = rotations.join_all().await;
    let distinct: BTreeSet<&String> = answers.iter().collect();
    assert_eq!(
        distinct.len(),
        10,
        "each rotation installed its own secret: {answers:?}"
    );
    let (s, b) = app
        .hooks(Method::POST, &key, &format!("/{sid}/test"), None)
        .await;
    assert!(s.is_success(), "{b}");
    let got = rx.wait_for(1, 10).await;
    let signature = got[0].header("webhook-signature");
    let signing: Vec<&String> = answers
        .iter()
        .filter(|secret| {
            standardwebhooks::Webhook::new(secret)
                .unwrap()
                .verify(&got[0].body, &got[0].headers)
                .is_ok()
        })
        .collect();
    assert_eq!(
        signing.len(),
        2,
        "the last secret installed and its predecessor sign ({signature})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_rotations_on_sqlite() {
    concurrent_rotations_each_answer_what_they_stored(&spawn_app().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn concurrent_rotations_on_postgres() {
    let db = crate::pg::fresh().await;
    let url = db.url.clone();
    let mut app = spawn_with(|c| c.database = url).await;
    concurrent_rotations_each_answer_what_they_stored(&app).await;
    app.stop().await;
    db.drop_now().await;
}

/// The previous secret stops signing when its grace ends, even in a lane
/// that read the subscription before then and has not looked at it again
/// (a tick longer than the test): the retry after the grace carries one
/// signature, the new secret's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_old_secret_stops_signing_when_its_grace_ends() {
    let mut app = spawn_with(|c| {
        c.secret_grace = Duration::from_secs(1);
        c.tick = Duration::from_secs(60);
    })
    .await;
    let rx = TestReceiver::start().await;
    // The first attempt is answered 503 and retried 2 s later, past the grace.
    rx.script([Reply::status(503).retry_after("2")]);
    let (_, key) = app.creator().await;
    let sub = app.subscribe(&key, &rx.url, None).await;
    let (sid, old) = (sub["id"].as_str().unwrap(), sub["secret"].as_str().unwrap());
    let (s, rotated) = app
        .hooks(Method::POST, &key, &format!("/{sid}/rotate-secret"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{rotated}");
    let new = rotated["secret"].as_str().unwrap();
    let (s, b) = app
        .hooks(Method::POST, &key, &format!("/{sid}/test"), None)
        .await;
    assert!(s.is_success(), "{b}");
    let got = rx.wait_for(2, 15).await;
    let verifies = |i: usize, secret: &str| {
        standardwebhooks::Webhook::new(secret)
            .unwrap()
            .verify(&got[i].body, &got[i].headers)
            .is_ok()
    };
    let signatures = |i: usize| got[i].header("webhook-signature").split(' ').count();
    assert_eq!(signatures(0), 2, "within the grace, both secrets sign");
    assert!(verifies(0, old) && verifies(0, new));
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    assert_eq!(signatures(1), 1, "after the grace, one signature only");
    assert!(verifies(1, new) && !verifies(1, old));
    app.stop().await;
}

/// Straight through the store: each of many rotations at once answers the
/// subscription as it wrote it.
async fn rotations_through_the_store(store: tminus::store::DynStore) {
    let c = store.create_creator("C", None).await.unwrap();
    let new = tminus::store::NewSubscription {
        creator_id: c.id,
        hook_url: "https://example.com/hook".into(),
        event: "webinar.reminder.all".into(),
        webinar_id: None,
        mango_id: None,
        secret: "whsec_first".into(),
        tuning: tminus::store::Tuning {
            max_concurrency: 16,
            rate_per_second: None,
            batch_size: 1,
            late_budget_ms: 60_000,
            send_early_ms: 0,
        },
    };
    let (sub, _) = store.subscribe(&new).await.unwrap();
    let mut rotations = tokio::task::JoinSet::new();
    for i in 0..40 {
        let (store, id) = (store.clone(), sub.id.clone());
        rotations.spawn(async move {
            let mine = format!("whsec_{i}");
            let grace = chrono::Utc::now() + chrono::Duration::hours(1);
            let got = store.rotate_secret(&id, &mine, grace).await.unwrap();
            (mine, got.secret)
        });
    }
    for (mine, got) in rotations.join_all().await {
        assert_eq!(got, mine, "a rotation answered another one's secret");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_rotations_at_once_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = tminus::store::open(dir.path().join("s.db").to_str().unwrap())
        .await
        .unwrap();
    rotations_through_the_store(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn store_rotations_at_once_on_postgres() {
    let db = crate::pg::fresh().await;
    rotations_through_the_store(tminus::store::open(&db.url).await.unwrap()).await;
    db.drop_now().await;
}
