//! The platform API's records as docs/API.md describes them: an API key is
//! shown once and kept only as its SHA-256; registering one participant
//! answers 201 when new and 200 when the email is already registered.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::json;
use sha2::{Digest, Sha256};

#[tokio::test]
async fn an_api_key_is_shown_once_and_stored_as_its_sha256() {
    let app = spawn_app().await;
    let (cid, key) = app.creator().await;
    let (s, list) = app
        .admin(Method::GET, &format!("/creators/{cid}/api-keys"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
    assert!(
        !list.to_string().contains(&key),
        "the list shows the key: {list}"
    );
    let db = rusqlite::Connection::open(&app.db).unwrap();
    let row: Vec<String> = db
        .query_row("SELECT * FROM api_keys", [], |r| {
            (0..r.as_ref().column_count())
                .map(|i| r.get::<_, Option<rusqlite::types::Value>>(i))
                .map(|v| v.map(|v| format!("{v:?}")))
                .collect()
        })
        .unwrap();
    assert!(row.iter().all(|v| !v.contains(&key)), "{row:?}");
    let hash: String = db
        .query_row("SELECT hash FROM api_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(hash, hex::encode(Sha256::digest(key.as_bytes())));
}

#[tokio::test]
async fn registering_answers_201_when_new_and_200_when_the_email_exists() {
    let app = spawn_app().await;
    let (cid, _) = app.creator().await;
    let w = app.webinar(&cid, 86_400).await;
    let path = format!("/webinars/{w}/participants");
    let person = json!({"name": "Ann", "email": "ann@example.com"});
    let (s, first) = app.admin(Method::POST, &path, Some(person.clone())).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    let (s, again) = app.admin(Method::POST, &path, Some(person)).await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["id"], first["id"]);
    let (_, list) = app.admin(Method::GET, &path, None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
}
