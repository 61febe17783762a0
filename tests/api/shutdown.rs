//! SIGTERM against the real binary: it exits within `--shutdown-timeout`
//! whatever its clients and receivers do, with status 0, and work dropped
//! at the deadline is handed back, so the next start sends it at once with
//! the same webhook-id.

use crate::child::Service;
use crate::helpers::{iso, ADMIN};
use crate::receiver::{Reply, TestReceiver};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Allowance for a loaded machine on top of the shutdown deadline.
const SLACK: Duration = Duration::from_secs(5);

#[tokio::test]
async fn sigterm_with_a_half_sent_request_and_a_stalled_body_exits_by_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    // Header and body deadlines far beyond the shutdown's: only the latter
    // can end these connections in time.
    let mut svc = Service::start(
        dir.path(),
        "sigterm",
        &[
            "--shutdown-timeout",
            "2s",
            "--header-timeout",
            "60s",
            "--body-timeout",
            "60s",
        ],
        None,
    );
    svc.wait_healthy().await;
    // A request whose head never ends.
    let mut half = TcpStream::connect(svc.addr).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // A request in progress: its handler is reading a body that stalls.
    // `Expect: 100-continue` makes the server say when it starts reading.
    let mut stalled = TcpStream::connect(svc.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/platform/creators HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n"
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("100 Continue") {
        let n = tokio::time::timeout(Duration::from_secs(10), stalled.read_buf(&mut got))
            .await
            .expect("100 Continue")
            .unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
    }
    stalled.write_all(b"{\"name\": ").await.unwrap();

    let t = Instant::now();
    svc.terminate();
    let status = svc.exited(Duration::from_secs(2) + SLACK).await;
    let took = t.elapsed();
    let status = status.unwrap_or_else(|| panic!("still running after {took:?}:\n{}", svc.log()));
    assert!(status.success(), "{status}:\n{}", svc.log());
    // The request in progress was given the whole deadline.
    assert!(took >= Duration::from_millis(1500), "exited after {took:?}");
    let log = svc.log();
    assert!(log.contains("tminus stopped"), "{log}");
}

#[tokio::test]
async fn a_delivery_in_flight_at_the_deadline_is_sent_again_after_a_restart() {
    let rx = TestReceiver::start().await;
    // The first attempt never gets an answer; the next ones get a 200.
    rx.script([Reply::status(200).delayed(Duration::from_secs(120))]);
    let dir = tempfile::tempdir().unwrap();
    let flags = [
        "--shutdown-timeout",
        "1s",
        "--http-timeout",
        "30s",
        "--reminder-offsets",
        "20s",
    ];
    let mut svc = Service::start(dir.path(), "first", &flags, None);
    svc.wait_healthy().await;

    let c = svc.admin("/creators", json!({"name": "C"})).await;
    let cid = c["id"].as_str().unwrap();
    let key = svc
        .admin(&format!("/creators/{cid}/api-keys"), json!({}))
        .await;
    let key = key["key"].as_str().unwrap();
    // The reminder falls due 2 s from now; the webinar starts 20 s later,
    // so the delivery is still worth sending after the restart.
    let from = chrono::Utc::now() + chrono::Duration::seconds(22);
    let w = svc
        .admin(
            "/webinars",
            json!({"creatorId": cid, "title": "T", "link": "https://example.com/w",
                   "fromTime": iso(from), "toTime": iso(from + chrono::Duration::hours(1))}),
        )
        .await;
    let wid = w["id"].as_str().unwrap();
    svc.admin(
        &format!("/webinars/{wid}/participants"),
        json!({"name": "P", "email": "p@example.com"}),
    )
    .await;
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/integration/webhook/webhook", svc.base))
        .header("x-api-key", key)
        .json(&json!({"hookUrl": rx.url, "event": "webinar.reminder.all", "webinar": wid}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let first = rx.wait_for(1, 15).await[0].clone();
    let t = Instant::now();
    svc.terminate();
    let status = svc.exited(Duration::from_secs(1) + SLACK).await;
    let took = t.elapsed();
    let status = status.unwrap_or_else(|| panic!("still running after {took:?}:\n{}", svc.log()));
    assert!(status.success(), "{status}:\n{}", svc.log());
    assert!(
        svc.log().contains("dropping attempts in flight"),
        "{}",
        svc.log()
    );

    // The next start on the same database sends it again, at once (the
    // lease was handed back, not left to lapse after 90 s).
    let mut again = Service::start(dir.path(), "second", &flags, None);
    again.wait_healthy().await;
    let got = rx.wait_for(2, 10).await;
    assert_eq!(
        got[1].header("webhook-id"),
        first.header("webhook-id"),
        "the same delivery, under the same id"
    );
    assert_eq!(got[1].body, first.body);
    again.terminate();
    assert!(again.exited(Duration::from_secs(1) + SLACK).await.is_some());
}
