//! Slow clients against the real binary under a low open-file limit: more
//! connections trickling their headers than the process has files, while
//! `/healthz` keeps answering at once; each slow connection cut by the
//! header deadline, an idle keep-alive connection closed by it too, and a
//! trickled body cut with a 408.

use crate::child::Service;
use crate::helpers::ADMIN;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The child's open-file limit; its connection cap is left to be derived
/// from it.
const NOFILE: u32 = 256;
/// More slow connections than the child has files.
const ATTACKERS: usize = 300;
const HEADER_TIMEOUT: Duration = Duration::from_secs(4);
const BODY_TIMEOUT: Duration = Duration::from_secs(2);
/// Allowance for a loaded machine on top of each deadline.
const SLACK: Duration = Duration::from_secs(4);

#[tokio::test]
async fn slow_clients_are_cut_while_normal_requests_are_answered_under_a_low_file_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (header, body) = (
        format!("{}s", HEADER_TIMEOUT.as_secs()),
        format!("{}s", BODY_TIMEOUT.as_secs()),
    );
    let mut svc = Service::start(
        dir.path(),
        "slow-clients",
        &["--header-timeout", &header, "--body-timeout", &body],
        Some(NOFILE),
    );
    svc.wait_healthy().await;
    let addr = svc.addr;
    let slow_body = tokio::spawn(slow_body(addr));

    // The flood: each connection sends its headers a byte at a time.
    let open = Arc::new(AtomicUsize::new(0));
    let mut attackers = Vec::new();
    for _ in 0..ATTACKERS {
        let stream = TcpStream::connect(addr).await.unwrap();
        attackers.push(tokio::spawn(slow_headers(stream, open.clone())));
    }

    // A normal client gets in and is answered at once, while the flood is
    // still open (without the cap the process is out of files; with a cap
    // but no eviction, it waits for the header deadline).
    for _ in 0..3 {
        let t = Instant::now();
        let r = reqwest::Client::new()
            .get(format!("{}/healthz", svc.base))
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        let took = t.elapsed();
        let still_open = open.load(Ordering::SeqCst);
        assert!(
            r.as_ref().is_ok_and(|r| r.status().is_success()),
            "{r:?}\n{}",
            svc.log()
        );
        assert!(took < Duration::from_secs(2), "/healthz took {took:?}");
        assert!(still_open >= 100, "the flood was over: {still_open} open");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A keep-alive connection left idle is closed by the header deadline.
    let idle = idle_keep_alive(addr).await;
    assert!(
        idle > HEADER_TIMEOUT - Duration::from_secs(1) && idle < HEADER_TIMEOUT + SLACK,
        "idle keep-alive connection closed after {idle:?}"
    );

    // Every slow connection was cut, by the header deadline or to make room.
    for a in attackers {
        let lived = a.await.unwrap();
        assert!(
            lived.is_some_and(|l| l < HEADER_TIMEOUT + SLACK),
            "a slow-header connection lived {lived:?}"
        );
    }

    let (took, answer) = slow_body.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"request_timeout\""), "{answer}");
    assert!(
        took > BODY_TIMEOUT - Duration::from_millis(500) && took < BODY_TIMEOUT + SLACK,
        "the trickled body was cut after {took:?}"
    );
    let log = svc.log();
    assert!(log.contains("max_connections=192"), "{log}");
}

/// Sends a request head a byte every 250 ms (it would take 10 s); returns
/// how long the connection lived, `None` if it outlived the test.
async fn slow_headers(mut s: TcpStream, open: Arc<AtomicUsize>) -> Option<Duration> {
    let start = Instant::now();
    open.fetch_add(1, Ordering::SeqCst);
    let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaa\r\n\r\n";
    let mut buf = [0u8; 256];
    let mut lived = None;
    for byte in head.chunks(1) {
        if s.write_all(byte).await.is_err() {
            lived = Some(start.elapsed());
            break;
        }
        tokio::select! {
            r = s.read(&mut buf) => {
                // Closed (the server sends nothing else to these).
                let _ = r;
                lived = Some(start.elapsed());
                break;
            }
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
    open.fetch_sub(1, Ordering::SeqCst);
    lived
}

/// Sends an admin request whose 100-byte body comes a byte every 300 ms;
/// returns when the server closed it, and what it answered.
async fn slow_body(addr: std::net::SocketAddr) -> (Duration, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/v1/platform/creators HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let start = Instant::now();
    let mut got = Vec::new();
    while start.elapsed() < Duration::from_secs(15) {
        // JSON allows leading white space: the body is valid, only slow.
        let _ = s.write_all(b" ").await;
        tokio::select! {
            r = s.read_buf(&mut got) => match r {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
            _ = tokio::time::sleep(Duration::from_millis(300)) => {}
        }
    }
    (start.elapsed(), String::from_utf8_lossy(&got).into_owned())
}

/// Makes one request on a keep-alive connection, then leaves it idle;
/// returns how long after the answer the server closed it.
async fn idle_keep_alive(addr: std::net::SocketAddr) -> Duration {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("\"ok\"}") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read_buf(&mut got))
            .await
            .expect("an answer")
            .unwrap();
        assert!(n > 0, "closed before answering");
    }
    let start = Instant::now();
    let mut buf = [0u8; 64];
    let _ = tokio::time::timeout(Duration::from_secs(15), s.read(&mut buf)).await;
    start.elapsed()
}
