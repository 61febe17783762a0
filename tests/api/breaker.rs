//! An endpoint that refuses connections gets probes, not traffic: once it
//! has failed twice in a row at a limit of one request, its lane pauses
//! before each next request (100 ms doubling to 5 s), and its deliveries
//! wait instead of each drawing a failed attempt. A healthy endpoint of the
//! same webinar is not held up, and a refusing endpoint that comes back is
//! found by the next probe.

use crate::delivery::webinar_with;
use crate::receiver::TestReceiver;
use serde_json::Value;

const PARTICIPANTS: usize = 200;

/// A loopback address nobody listens on (for now).
async fn refusing() -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

fn attempts(d: &[Value]) -> u64 {
    d.iter().map(|x| x["attempts"].as_u64().unwrap()).sum()
}

#[tokio::test]
async fn a_refusing_endpoint_gets_probes_and_its_deliveries_wait() {
    let down = refusing().await;
    let healthy = TestReceiver::start().await;
    let (app, key, w) = webinar_with("3s", PARTICIPANTS, |_| {}).await;
    let dead = app
        .subscribe(&key, &format!("http://{down}/hook"), None)
        .await;
    app.subscribe(&key, &healthy.url, None).await;
    app.starts_in(&w, 4.0);
    healthy.wait_exactly(&app, PARTICIPANTS, 30).await;
    let sid = dead["id"].as_str().unwrap();
    let d = app
        .wait_deliveries(&key, sid, 30, |d| {
            d.len() == PARTICIPANTS && d.iter().all(|x| x["status"] == "expired")
        })
        .await;
    assert_eq!(d.len(), PARTICIPANTS);
    // Three seconds of probes, 100 ms doubling to 5 s apart, after the
    // first few failures that brought the limit from 4 to 1 (the healthy
    // endpoint failed none). An expired delivery never sent is not an
    // attempt.
    let metrics = crate::metrics::scrape(&app).await;
    let failed =
        crate::metrics::value(&metrics, "tminus_deliveries_total{outcome=\"failed\"}").unwrap();
    assert!(
        (1.0..30.0).contains(&failed),
        "{failed} attempts at a refusing endpoint for {PARTICIPANTS} deliveries"
    );
}

#[tokio::test]
async fn a_refusing_endpoint_that_comes_back_is_found_by_the_next_probe() {
    let addr = refusing().await;
    let (app, key, w) = webinar_with("20s", PARTICIPANTS, |_| {}).await;
    let sub = app
        .subscribe(&key, &format!("http://{addr}/hook"), None)
        .await;
    app.starts_in(&w, 21.0);
    let sid = sub["id"].as_str().unwrap();
    // A few failed attempts, and the lane pausing between probes.
    app.wait_deliveries(&key, sid, 30, |d| attempts(d) >= 8)
        .await;
    let back = TestReceiver::start_on(addr).await;
    back.wait_exactly(&app, PARTICIPANTS, 30).await;
    let d = app.deliveries(&key, sid).await;
    assert!(
        d.iter().all(|x| x["status"] == "delivered"),
        "{:?}",
        crate::helpers::statuses(&d)
    );
}
