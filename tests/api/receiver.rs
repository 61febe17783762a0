//! A real HTTP receiver on loopback whose answers a test controls: a queue
//! of scripted replies, then a default one. It records every request with
//! its headers, body and arrival time, when it sent each answer, and the
//! most requests it ever had in flight at once. A test can hold its answers
//! (from the n-th request on, until released, or each until n requests have
//! arrived), so that what it checks depends on events, not on how fast the
//! machine is.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub delay: Duration,
    pub retry_after: Option<String>,
    pub location: Option<String>,
    /// Answer with `Connection: close`, ending the connection.
    pub close: bool,
    /// Answer only once this many requests have arrived (then `delay`).
    pub after: usize,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Reply {
            status,
            delay: Duration::ZERO,
            retry_after: None,
            location: None,
            close: false,
            after: 0,
        }
    }
    /// Holds the answer until `n` requests have arrived, then waits `delay`.
    pub fn after_arrivals(mut self, n: usize) -> Self {
        self.after = n;
        self
    }
    pub fn closing(mut self) -> Self {
        self.close = true;
        self
    }
    pub fn delayed(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
    pub fn redirect(mut self, to: &str) -> Self {
        self.location = Some(to.into());
        self
    }
    pub fn retry_after(mut self, v: &str) -> Self {
        self.retry_after = Some(v.into());
        self
    }
}

/// A request as it arrived.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
    /// The same instant on the wall clock, as the service's.
    pub wall: chrono::DateTime<chrono::Utc>,
}

impl Received {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

#[derive(Default)]
struct Inner {
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Option<Reply>>,
    log: Mutex<Vec<Received>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// When each connection was accepted (wall clock, as the service's).
    accepted: Mutex<Vec<chrono::DateTime<chrono::Utc>>>,
    /// When each answer was sent.
    answered: Mutex<Vec<Instant>>,
    /// Requests from this index on wait for [`TestReceiver::release`];
    /// none when zero and not `holding`.
    hold_from: AtomicUsize,
    holding: std::sync::atomic::AtomicBool,
    /// Woken on each arrival and on a release.
    change: tokio::sync::Notify,
    /// Requests in flight beyond which it answers `503` with
    /// `Retry-After: 1` at once (0: no limit), and the indices of the
    /// requests it refused so.
    capacity: AtomicUsize,
    busy: Mutex<std::collections::HashSet<usize>>,
}

/// The receiver's listener, noting each connection it accepts.
struct Noting {
    inner: tokio::net::TcpListener,
    receiver: Arc<Inner>,
}

impl axum::serve::Listener for Noting {
    type Io = tokio::net::TcpStream;
    type Addr = std::net::SocketAddr;
    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let got = axum::serve::Listener::accept(&mut self.inner).await;
        self.receiver
            .accepted
            .lock()
            .unwrap()
            .push(chrono::Utc::now());
        got
    }
    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// The receiver handle.
#[derive(Clone)]
pub struct TestReceiver {
    inner: Arc<Inner>,
    pub url: String,
}

impl TestReceiver {
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    /// A receiver listening on `addr` (another loopback address, a chosen
    /// port); panics if it cannot bind.
    pub async fn start_on(addr: std::net::SocketAddr) -> Self {
        let inner = Arc::new(Inner::default());
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(handle))
            .route("/moved", axum::routing::post(handle))
            .with_state(inner.clone());
        let listener = Noting {
            inner: listener,
            receiver: inner.clone(),
        };
        tokio::spawn(async move { axum::serve(listener, app).await });
        TestReceiver { inner, url }
    }

    /// Answers `503` with `Retry-After: 1`, at once, to a request that
    /// arrives while `n` are in flight: an endpoint with a real capacity.
    pub fn set_capacity(&self, n: usize) {
        self.inner.capacity.store(n, Ordering::SeqCst);
    }

    /// How many requests it refused as busy.
    pub fn refused_busy(&self) -> usize {
        self.inner.busy.lock().unwrap().len()
    }

    /// The requests it did not refuse as busy, in arrival order.
    pub fn taken(&self) -> Vec<Received> {
        let busy = self.inner.busy.lock().unwrap().clone();
        let log = self.inner.log.lock().unwrap();
        log.iter()
            .enumerate()
            .filter(|(i, _)| !busy.contains(i))
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// Answers these first, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.script.lock().unwrap().extend(replies);
    }

    /// Answers this once the script is used up (200 when never set).
    pub fn set_default(&self, reply: Reply) {
        *self.inner.default.lock().unwrap() = Some(reply);
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.log.lock().unwrap().clone()
    }

    /// When each connection was accepted.
    pub fn accepted(&self) -> Vec<chrono::DateTime<chrono::Utc>> {
        self.inner.accepted.lock().unwrap().clone()
    }

    /// Answers the first `n` requests as usual; later ones wait for
    /// [`TestReceiver::release`] before their reply (and its delay).
    pub fn hold_after(&self, n: usize) {
        self.inner.hold_from.store(n, Ordering::SeqCst);
        self.inner.holding.store(true, Ordering::SeqCst);
    }

    /// Lets the held answers to the first `n` requests go; the later ones
    /// stay held until [`TestReceiver::release`].
    pub fn let_through(&self, n: usize) {
        self.inner.hold_from.store(n, Ordering::SeqCst);
        self.inner.change.notify_waiters();
    }

    /// Lets every held answer go, and the later ones unheld.
    pub fn release(&self) {
        self.inner.holding.store(false, Ordering::SeqCst);
        self.inner.change.notify_waiters();
    }

    /// When the first answer was sent, if one was.
    pub fn first_answer(&self) -> Option<Instant> {
        self.inner.answered.lock().unwrap().first().copied()
    }

    /// Requests arrived and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::SeqCst)
    }

    pub fn max_in_flight(&self) -> usize {
        self.inner.max_in_flight.load(Ordering::SeqCst)
    }

    /// Waits until `n` requests arrived, then until the service is quiet
    /// ([`crate::helpers::TestApp::quiet`]: nothing in progress, no lane
    /// running), and checks that exactly `n` arrived: the guard for a
    /// promise of "once". Panics after `secs`, or on an extra request.
    pub async fn wait_exactly(
        &self,
        app: &crate::helpers::TestApp,
        n: usize,
        secs: u64,
    ) -> Vec<Received> {
        self.wait_for(n, secs).await;
        app.quiet().await;
        let got = self.received();
        assert_eq!(
            got.len(),
            n,
            "more than {n} arrived: {:?}",
            got.iter()
                .map(|r| r.header("webhook-id"))
                .collect::<Vec<_>>()
        );
        got
    }

    /// Waits until at least `n` requests arrived; panics after `secs`.
    /// For "exactly n", [`TestReceiver::wait_exactly`].
    pub async fn wait_for(&self, n: usize, secs: u64) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} requests, got {} after {secs}s",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (at, wall) = (Instant::now(), chrono::Utc::now());
    let now = inner.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    inner.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let index = {
        let mut log = inner.log.lock().unwrap();
        log.push(Received {
            path: uri.path().to_owned(),
            headers,
            body,
            at,
            wall,
        });
        log.len() - 1
    };
    inner.change.notify_waiters();
    let capacity = inner.capacity.load(Ordering::SeqCst);
    if capacity > 0 && now > capacity {
        inner.busy.lock().unwrap().insert(index);
        inner.in_flight.fetch_sub(1, Ordering::SeqCst);
        let mut resp = (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response();
        resp.headers_mut()
            .insert("retry-after", "1".parse().unwrap());
        return resp;
    }
    let reply = inner
        .script
        .lock()
        .unwrap()
        .pop_front()
        .or_else(|| inner.default.lock().unwrap().clone())
        .unwrap_or(Reply::status(200));
    loop {
        let changed = inner.change.notified();
        let held =
            inner.holding.load(Ordering::SeqCst) && index >= inner.hold_from.load(Ordering::SeqCst);
        if !held && inner.log.lock().unwrap().len() >= reply.after {
            break;
        }
        changed.await;
    }
    tokio::time::sleep(reply.delay).await;
    inner.in_flight.fetch_sub(1, Ordering::SeqCst);
    inner.answered.lock().unwrap().push(Instant::now());
    let mut resp = (
        StatusCode::from_u16(reply.status).unwrap(),
        "answer from the test receiver",
    )
        .into_response();
    if let Some(ra) = reply.retry_after {
        resp.headers_mut()
            .insert("retry-after", ra.parse().unwrap());
    }
    if reply.close {
        resp.headers_mut()
            .insert("connection", "close".parse().unwrap());
    }
    if let Some(loc) = reply.location {
        resp.headers_mut().insert("location", loc.parse().unwrap());
    }
    resp
}
