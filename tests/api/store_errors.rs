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
    let (s, b) = app
        .admin(
            Method::DELETE,
            &format!("/webinars/{wid}/participants/{pid}"),
            None,
        )
        .await;
    assert_eq!(s.as_u16(), 500, "{b}");
    app.stop().await;
    db.drop_now().await;
}
