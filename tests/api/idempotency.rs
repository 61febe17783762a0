//! `Idempotency-Key` on the platform's POSTs: a repeat gets the first
//! answer and creates nothing; the same key with another body is refused;
//! answers survive a restart.

use crate::helpers::{spawn_app, TestApp, ADMIN};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn post(app: &TestApp, path: &str, key: &str, body: Value) -> (StatusCode, String) {
    let r = app
        .http
        .post(format!("{}/api/v1/platform{path}", app.base))
        .bearer_auth(ADMIN)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn count(app: &TestApp, path: &str) -> usize {
    let (_, body) = app.admin(reqwest::Method::GET, path, None).await;
    body["data"].as_array().unwrap().len()
}

#[tokio::test]
async fn a_repeat_gets_the_first_answer_and_creates_nothing() {
    let app = spawn_app().await;
    let creator = json!({"name": "Once", "timezone": "+01:00"});
    let first = post(&app, "/creators", "k-creator", creator.clone()).await;
    assert_eq!(first.0, 201);
    assert_eq!(post(&app, "/creators", "k-creator", creator).await, first);
    assert_eq!(count(&app, "/creators").await, 1);
    let id = serde_json::from_str::<Value>(&first.1).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The same key with another body: refused, nothing made.
    let (status, body) = post(&app, "/creators", "k-creator", json!({"name": "Twice"})).await;
    assert_eq!(status, 422);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "idempotency_key_reused");
    assert_eq!(count(&app, "/creators").await, 1);

    // An API key: the same key (and secret) again, not a second one.
    let keys = format!("/creators/{id}/api-keys");
    let first = post(&app, &keys, "k-key", json!({"name": "zap"})).await;
    assert_eq!(first.0, 201);
    assert_eq!(
        post(&app, &keys, "k-key", json!({"name": "zap"})).await,
        first
    );
    assert_eq!(count(&app, &keys).await, 1);

    // A webinar.
    let start = chrono::Utc::now() + chrono::Duration::days(2);
    let webinar = json!({
        "creatorId": id, "title": "T", "link": "https://meet.example.com/x",
        "fromTime": crate::helpers::iso(start),
        "toTime": crate::helpers::iso(start + chrono::Duration::hours(1)),
    });
    let first = post(&app, "/webinars", "k-webinar", webinar.clone()).await;
    assert_eq!(first.0, 201);
    assert_eq!(post(&app, "/webinars", "k-webinar", webinar).await, first);
    assert_eq!(count(&app, &format!("/webinars?creatorId={id}")).await, 1);
    let wid = serde_json::from_str::<Value>(&first.1).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A bulk registration: the first summary, not "all existing".
    let bulk = format!("/webinars/{wid}/participants/bulk");
    let people = json!([
        {"name": "A", "email": "a@example.com"},
        {"name": "B", "email": "b@example.com"}
    ]);
    let first = post(&app, &bulk, "k-bulk", people.clone()).await;
    assert_eq!(
        first,
        (StatusCode::OK, r#"{"created":2,"existing":0}"#.into())
    );
    assert_eq!(post(&app, &bulk, "k-bulk", people.clone()).await, first);
    assert_eq!(
        count(&app, &format!("/webinars/{wid}/participants")).await,
        2
    );

    // Kept in the store: the same after a restart.
    let app = app.restart().await;
    assert_eq!(post(&app, &bulk, "k-bulk", people).await, first);

    // Without the header, nothing changes: a second creator.
    let (status, _) = app
        .admin(
            reqwest::Method::POST,
            "/creators",
            Some(json!({"name": "Once"})),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(count(&app, "/creators").await, 2);
}

/// With `--secret-key`, a remembered answer is sealed at rest: an API
/// key's answer holds the key.
#[tokio::test]
async fn remembered_answers_are_sealed_at_rest() {
    let app = crate::helpers::spawn_with(|c| {
        c.secret_key = Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into());
    })
    .await;
    let (creator, _) = app.creator().await;
    let path = format!("/creators/{creator}/api-keys");
    let first = post(&app, &path, "k-sealed", json!({"name": "zap"})).await;
    assert_eq!(first.0, 201);
    assert_eq!(
        post(&app, &path, "k-sealed", json!({"name": "zap"})).await,
        first
    );
    let key = serde_json::from_str::<Value>(&first.1).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let db = rusqlite::Connection::open(&app.db).unwrap();
    let stored: Vec<u8> = db
        .query_row("SELECT body FROM idempotency", [], |r| r.get(0))
        .unwrap();
    assert!(!String::from_utf8_lossy(&stored).contains(&key));
}

#[tokio::test]
async fn a_refused_token_is_not_remembered() {
    let app = spawn_app().await;
    let creator = json!({"name": "Once", "timezone": "+01:00"});
    let r = app
        .http
        .post(format!("{}/api/v1/platform/creators", app.base))
        .bearer_auth("not-the-admin-token")
        .header("Idempotency-Key", "k-401")
        .json(&creator)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The same key with the right token: created, not the 401 again.
    let (status, body) = post(&app, "/creators", "k-401", creator).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(count(&app, "/creators").await, 1);
}

#[tokio::test]
async fn a_key_of_no_or_more_than_255_characters_is_refused() {
    let app = spawn_app().await;
    let creator = json!({"name": "Once", "timezone": "+01:00"});
    for key in [String::new(), "k".repeat(256)] {
        let (status, body) = post(&app, "/creators", &key, creator.clone()).await;
        assert_eq!(status, 422, "{} characters: {body}", key.len());
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"]["code"], "invalid_value");
        assert_eq!(body["error"]["field"], "Idempotency-Key");
    }
    assert_eq!(count(&app, "/creators").await, 0);
    // 255 is still a key.
    let (status, _) = post(&app, "/creators", &"k".repeat(255), creator).await;
    assert_eq!(status, 201);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn a_repeat_to_another_instance_gets_the_first_answer_on_postgres() {
    let db = crate::pg::fresh().await;
    let (u1, u2) = (db.url.clone(), db.url.clone());
    let mut a = crate::helpers::spawn_with(|c| c.database = u1).await;
    let mut b = crate::helpers::spawn_with(|c| c.database = u2).await;
    let creator = json!({"name": "Once", "timezone": "+01:00"});
    let first = post(&a, "/creators", "k-cluster", creator.clone()).await;
    assert_eq!(first.0, 201);
    assert_eq!(post(&b, "/creators", "k-cluster", creator).await, first);
    assert_eq!(count(&b, "/creators").await, 1);
    a.stop().await;
    b.stop().await;
    db.drop_now().await;
}

/// Two first requests with one key at once, to `a` and `b` (the same
/// service, or two instances): a bulk registration long enough for them to
/// overlap. One runs; the other gets its answer, or `409
/// idempotency_key_in_use` while it runs, and runs nothing.
async fn racing_first_requests(a: &TestApp, b: &TestApp) {
    let (cid, _) = a.creator().await;
    let wid = a.webinar(&cid, 7200).await;
    let people: Vec<Value> = (0..20_000)
        .map(|i| json!({"name": format!("P {i}"), "email": format!("p{i}@example.com")}))
        .collect();
    let path = format!("/webinars/{wid}/participants/bulk");
    let body = json!(people);
    let (one, two) = tokio::join!(
        post(a, &path, "k-race", body.clone()),
        post(b, &path, "k-race", body.clone())
    );
    let answers = [one, two];
    let ran: Vec<_> = answers.iter().filter(|(s, _)| *s == 200).collect();
    assert!(!ran.is_empty(), "{answers:?}");
    for (s, text) in &answers {
        match s.as_u16() {
            200 => assert_eq!(text, &ran[0].1, "two answers: both ran"),
            409 => assert!(text.contains("idempotency_key_in_use"), "{text}"),
            _ => panic!("{s}: {text}"),
        }
    }
    let first: Value = serde_json::from_str(&ran[0].1).unwrap();
    assert_eq!(first["created"], 20_000, "{first}");
    // Once the first has answered, a repeat gets its answer.
    assert_eq!(post(b, &path, "k-race", body).await, ran[0].clone());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_first_requests_with_one_key_run_once() {
    let app = spawn_app().await;
    racing_first_requests(&app, &app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn racing_first_requests_to_two_instances_run_once_on_postgres() {
    let db = crate::pg::fresh().await;
    let (u1, u2) = (db.url.clone(), db.url.clone());
    let mut a = crate::helpers::spawn_with(|c| c.database = u1).await;
    let mut b = crate::helpers::spawn_with(|c| c.database = u2).await;
    racing_first_requests(&a, &b).await;
    a.stop().await;
    b.stop().await;
    db.drop_now().await;
}
