//! A store that fails is a 500, logged with its cause, never a 404: the
//! handlers map only "not found" to 404. On PostgreSQL, with tables gone
//! from under the running service.

use crate::helpers::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn a_failing_store_is_a_500_not_a_missing_record() {
    let db = crate::pg::fresh().await;
    let url = db.url.clone();
    let mut app = spawn_with(|c| c.database = url).await;
    let (cid, _) = app.creator().await;
    let wid = app.webinar(&cid, 7200).await;
    let pid = app.participants(&wid, 1).await.remove(0);
    let admin = db.client().await;
    admin
        .batch_execute("DROP TABLE mangoes CASCADE; DROP TABLE api_keys CASCADE")
        .await
        .unwrap();
    // The creator is there; writing its mango or key fails.
    for path in [
        format!("/creators/{cid}/mangoes"),
        format!("/creators/{cid}/api-keys"),
    ] {
        let (s, b) = app
            .admin(Method::POST, &path, Some(json!({"name": "M"})))
            .await;
        assert_eq!(s.as_u16(), 500, "{path}: {b}");
        assert_eq!(b["error"]["code"], "internal", "{b}");
    }
    // Unregistering fails once the deliveries it cancels are gone.
    admin
        .batch_execute("DROP TABLE deliveries CASCADE")
        .await
        .unwrap();
    unregistering_is_a_500(&app, &wid, &pid).await;
    app.stop().await;
    db.drop_now().await;
}

/// Renames `table` away in the running service's SQLite file, from another
/// connection: the service's statements on it fail from then on.
fn break_table(app: &TestApp, table: &str) {
    let c = rusqlite::Connection::open(&app.db).unwrap();
    c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    c.execute_batch(&format!("ALTER TABLE {table} RENAME TO {table}_away"))
        .unwrap();
}

#[tokio::test]
async fn a_failing_sqlite_store_is_a_500_not_a_missing_record() {
    let app = spawn_app().await;
    let (cid, key) = app.creator().await;
    let wid = app.webinar(&cid, 7200).await;
    let pid = app.participants(&wid, 1).await.remove(0);
    let sub = app.subscribe(&key, "http://127.0.0.1:9/hook", None).await;
    let sid = sub["id"].as_str().unwrap();
    break_table(&app, "mangoes");
    let (s, b) = app
        .admin(
            Method::POST,
            &format!("/creators/{cid}/mangoes"),
            Some(json!({"name": "M"})),
        )
        .await;
    assert_eq!(
        (s.as_u16(), &b["error"]["code"]),
        (500, &json!("internal")),
        "{b}"
    );
    // Reading the subscription fails: a 500 for each route that looks it
    // up, never a 404 that would say it does not exist.
    break_table(&app, "subscriptions");
    for (method, path) in [
        (Method::GET, format!("/{sid}")),
        (Method::POST, format!("/{sid}/rotate-secret")),
        (Method::POST, format!("/{sid}/test")),
        (Method::DELETE, format!("/{sid}")),
    ] {
        let (s, b) = app.hooks(method.clone(), &key, &path, None).await;
        assert_eq!(s.as_u16(), 500, "{method} {path}: {b}");
    }
    break_table(&app, "deliveries");
    unregistering_is_a_500(&app, &wid, &pid).await;
}

/// Unregistering `pid` from `wid` answers 500 (the store failing under it).
async fn unregistering_is_a_500(app: &TestApp, wid: &str, pid: &str) {
    let (s, b) = app
        .admin(
            Method::DELETE,
            &format!("/webinars/{wid}/participants/{pid}"),
            None,
        )
        .await;
    assert_eq!(s.as_u16(), 500, "{b}");
}
