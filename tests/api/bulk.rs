//! Bulk registration: overlapping bulks on two instances sharing
//! PostgreSQL all succeed and store exactly their union; a body is read as
//! it arrives and refused as early as it can be (an oversized
//! `Content-Length` before the body is sent, the entry over the maximum
//! before the rest is read).

use crate::helpers::*;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// 20 bulks of 500 drawn from 1 000 emails, in shuffled orders (and mixed
/// case), sent at once, alternately to two instances on one schema: every
/// answer is a 2xx and the union is stored, once each, with distinct
/// registration numbers.
#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn overlapping_bulks_on_two_instances_store_their_union() {
    let db = crate::pg::fresh().await;
    let (u1, u2) = (db.url.clone(), db.url.clone());
    let mut a = spawn_with(|c| c.database = u1).await;
    let (cid, _) = a.creator().await;
    let wid = a.webinar(&cid, 7200).await;
    let mut b = spawn_with(|c| c.database = u2).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut calls = tokio::task::JoinSet::new();
    for k in 0..20usize {
        // Windows 50 apart: together they cover all 1 000.
        let mut people: Vec<Value> = (0..500)
            .map(|j| {
                let i = (k * 50 + j) % 1000;
                let email = if (i + k) % 3 == 0 {
                    format!("P{i}@Example.com")
                } else {
                    format!("p{i}@example.com")
                };
                json!({"name": format!("P {i}"), "email": email})
            })
            .collect();
        people.shuffle(&mut rng);
        let app = if k % 2 == 0 { &a } else { &b };
        let (http, url) = (
            app.http.clone(),
            format!(
                "{}/api/v1/platform/webinars/{wid}/participants/bulk",
                app.base
            ),
        );
        calls.spawn(async move {
            let r = http
                .post(url)
                .bearer_auth(ADMIN)
                .json(&people)
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
        });
    }
    let mut created = 0;
    while let Some(answer) = calls.join_next().await {
        let (status, body) = answer.unwrap();
        assert!(status.is_success(), "{status}: {body}");
        assert_eq!(
            body["created"].as_u64().unwrap() + body["existing"].as_u64().unwrap(),
            500,
            "{body}"
        );
        created += body["created"].as_u64().unwrap();
    }
    assert_eq!(created, 1000, "each email is created by exactly one bulk");
    let row = db
        .client()
        .await
        .query_one(
            "SELECT COUNT(*), COUNT(DISTINCT lower(email)), COUNT(DISTINCT seq)
             FROM participants WHERE webinar_id = $1 AND unregistered_at IS NULL",
            &[&wid],
        )
        .await
        .unwrap();
    let counts: (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(counts, (1000, 1000, 1000));
    a.stop().await;
    b.stop().await;
    db.drop_now().await;
}

/// Sends a request head (and as much body as given) on a raw connection
/// and reads the answer without sending the rest of the body: the service
/// must answer without waiting for it.
async fn answer_before_the_rest(app: &TestApp, head: &str, body: &[u8]) -> (u16, Value) {
    let addr = app.base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(body).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            let n = conn.read(&mut buf).await.unwrap_or(0);
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got);
            if n == 0 || text.contains("\r\n\r\n") && text.trim_end().ends_with('}') {
                break;
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), read)
        .await
        .expect("the service answers before the rest of the body arrives");
    let text = String::from_utf8_lossy(&got).into_owned();
    let status = text[9..12].parse().unwrap();
    let json = text
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, json)
}

fn head(app: &TestApp, wid: &str, content_length: usize) -> String {
    let host = app.base.trim_start_matches("http://");
    format!(
        "POST /api/v1/platform/webinars/{wid}/participants/bulk HTTP/1.1\r\nhost: {host}\r\n\
         authorization: Bearer {ADMIN}\r\ncontent-type: application/json\r\n\
         content-length: {content_length}\r\n\r\n"
    )
}

#[tokio::test]
async fn an_oversized_bulk_is_refused_before_its_body_is_read() {
    let app = spawn_app().await;
    let (cid, _) = app.creator().await;
    let wid = app.webinar(&cid, 7200).await;
    // A declared length over the limit: 413 with no byte of the body sent.
    let (status, body) = answer_before_the_rest(&app, &head(&app, &wid, 1 << 30), b"").await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
    assert_eq!(
        body["error"]["message"],
        "request body is over the limit of 67108864 bytes (64 MiB)"
    );
    // 200 001 entries, and a declared length promising more: the entry over
    // the maximum ends the read at once, with the documented refusal.
    let mut sent = b"[".to_vec();
    for i in 0..200_001 {
        if i > 0 {
            sent.push(b',');
        }
        sent.extend_from_slice(format!(r#"{{"name":"P{i}","email":"p{i}@x.io"}}"#).as_bytes());
    }
    let promised = sent.len() + 1_000;
    let (status, body) = answer_before_the_rest(&app, &head(&app, &wid, promised), &sent).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_batch", "{body}");
    assert_eq!(body["error"]["field"], "participants", "{body}");
    assert_eq!(app.count("participants"), 0);
    // The maximum itself is taken, as NDJSON too.
    let nd: String = (0..200_000)
        .map(|i| format!("{{\"name\":\"P{i}\",\"email\":\"p{i}@x.io\"}}\n"))
        .collect();
    let r = app
        .http
        .post(format!(
            "{}/api/v1/platform/webinars/{wid}/participants/bulk",
            app.base
        ))
        .bearer_auth(ADMIN)
        .header("content-type", "application/x-ndjson")
        .body(nd)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"created": 200_000, "existing": 0})
    );
}

#[tokio::test]
async fn a_bulk_body_that_stops_arriving_is_cut_at_its_deadline() {
    let app = spawn_with(|c| c.body_timeout = std::time::Duration::from_secs(1)).await;
    let (cid, _) = app.creator().await;
    let wid = app.webinar(&cid, 7200).await;
    // Half a body, then nothing: 408 once the deadline (the body timeout,
    // plus time at the minimum rate for what arrived) has passed.
    let started = std::time::Instant::now();
    let (status, body) = answer_before_the_rest(
        &app,
        &head(&app, &wid, 10_000),
        br#"[{"name":"A","email":"a@x.io"},"#,
    )
    .await;
    assert_eq!(status, 408, "{body}");
    assert_eq!(body["error"]["code"], "request_timeout", "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(app.count("participants"), 0);
}
