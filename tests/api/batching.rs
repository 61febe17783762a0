//! Batched delivery as the README promises beyond the basic batch (see
//! delivery.rs): a `PATCH` of `batchSize` takes effect, and a replay of one
//! delivery of a batched subscription is still a single object.

use crate::delivery::webinar_with;
use crate::receiver::TestReceiver;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn a_patched_batch_size_batches_and_a_replay_is_one_object() {
    let rx = TestReceiver::start().await;
    let (app, key, w) = webinar_with("9s", 3, |_| {}).await;
    let sub = app.subscribe(&key, &rx.url, None).await;
    let sid = sub["id"].as_str().unwrap().to_owned();
    assert_eq!(sub["batchSize"], 1, "{sub}");
    let (s, patched) = app
        .hooks(
            Method::PATCH,
            &key,
            &format!("/{sid}"),
            Some(json!({"batchSize": 3})),
        )
        .await;
    assert_eq!((s, &patched["batchSize"]), (StatusCode::OK, &json!(3)));
    app.starts_in(&w, 10.0);
    let got = rx.wait_for(1, 10).await;
    let batch = got[0].json();
    assert_eq!(batch.as_array().map(Vec::len), Some(3), "{batch}");
    assert!(got[0].header("webhook-id").starts_with("msg_b"));
    let d = app
        .wait_deliveries(&key, &sid, 5, |d| {
            d.iter().filter(|x| x["status"] == "batched").count() == 3
        })
        .await;
    let member = d.iter().find(|x| x["status"] == "batched").unwrap();
    let did = member["id"].as_str().unwrap();
    let (s, r) = app
        .hooks(
            Method::POST,
            &key,
            &format!("/{sid}/deliveries/{did}/retry"),
            None,
        )
        .await;
    assert!(s.is_success(), "{s} {r}");
    let got = rx.wait_for(2, 10).await;
    assert_eq!(got[1].header("webhook-id"), did);
    let one = got[1].json();
    assert!(one.is_object(), "a replay is one object: {one}");
    assert_eq!(one.as_object().unwrap().len(), 12);
}
