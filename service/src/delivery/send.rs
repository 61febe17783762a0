//! One HTTP attempt: POST the signed body with the Standard Webhooks and
//! `x-tminus-*` headers, time it, keep the start of the answer. Redirects are
//! not followed (a 3xx is a failed attempt), and every connection goes
//! through the target guard (`guard`: the URL's host before each attempt,
//! every resolved address inside the connector's resolver). Each sender
//! worker owns one keep-alive HTTP/1.1 connection ([`Conn`]) and drives it
//! in its own task: no pool to check out of and no connection task to hand
//! each request to and take each answer from, which a fan-out of tens of
//! thousands of requests a second pays for in wake-ups.

use super::failure::{describe, BoxError, Failure};
use super::guard::{system_lookup, GuardedResolver, Lookup, Policy};
use super::retry::{parse_retry_after, Response};
use crate::store::Attempt;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST, USER_AGENT};
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use hyper::client::conn::http1;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower_service::Service;

/// How much of a receiver's answer is kept for the attempt log.
const SNIPPET_BYTES: usize = 512;

const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");
const X_EVENT: HeaderName = HeaderName::from_static("x-tminus-event");
const X_REMINDER: HeaderName = HeaderName::from_static("x-tminus-reminder");
const X_ATTEMPT: HeaderName = HeaderName::from_static("x-tminus-attempt");
const X_LATE: HeaderName = HeaderName::from_static("x-tminus-late");
const AGENT: &str = concat!("tminus/", env!("CARGO_PKG_VERSION"));

/// One request to make.
pub struct Message<'a> {
    pub url: &'a url::Url,
    pub webhook_id: &'a str,
    pub timestamp: i64,
    pub signature: String,
    pub event: &'a str,
    pub reminder: &'a str,
    pub attempt: u32,
    /// Sent after its due time had passed: a reminder fired late, or one
    /// first leaving after its webinar started (`--after-start send-late`).
    pub late: bool,
    pub body: Bytes,
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector<GuardedResolver>>;
type Io = hyper_rustls::MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>;

/// The shared outbound configuration: how to connect, and the time limit.
#[derive(Clone, Debug)]
pub struct Sender {
    connector: Connector,
    policy: Arc<Policy>,
    timeout: Duration,
}

/// One keep-alive connection to one origin, owned by one worker. Its
/// driver is polled only while that worker waits on it.
pub struct Conn {
    /// The address it was opened for; any URL of the same origin may use it.
    opened_for: url::Url,
    tx: http1::SendRequest<Full<Bytes>>,
    /// The connection's state machine; `None` once it has finished (and
    /// been dropped, which fails whatever still waits on it).
    driver: Option<Driver>,
}

type Driver = Pin<Box<http1::Connection<Io, Full<Bytes>>>>;

/// Awaits `f` while driving the connection, which a request and its answer
/// need. Once the connection ends it is dropped and `f` is awaited alone
/// (it then fails, or yields what had already arrived).
async fn drive<T>(driver: &mut Option<Driver>, f: impl Future<Output = T>) -> T {
    tokio::pin!(f);
    if let Some(d) = driver.as_mut() {
        tokio::select! {
            biased;
            out = &mut f => return out,
            _ = d.as_mut() => *driver = None,
        }
    }
    f.await
}

impl Conn {
    /// Whether `url` has this connection's origin: scheme, host and port.
    fn serves(&self, url: &url::Url) -> bool {
        let o = &self.opened_for;
        o.scheme() == url.scheme()
            && o.host_str() == url.host_str()
            && o.port_or_known_default() == url.port_or_known_default()
    }
}

impl Sender {
    /// Builds the connector: `timeout` per attempt, the system resolver
    /// behind the target guard, and receivers' certificates checked (their
    /// names included) against the public web roots and the certificates in
    /// `ca`, if given, which are also pinned (`tls`).
    pub fn new(
        timeout: Duration,
        policy: Policy,
        ca: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        Self::with_lookup(timeout, policy, ca, system_lookup())
    }

    /// [`Sender::new`] with names looked up by `lookup` (tests script it).
    pub fn with_lookup(
        timeout: Duration,
        policy: Policy,
        ca: Option<&std::path::Path>,
        lookup: Lookup,
    ) -> anyhow::Result<Self> {
        let policy = Arc::new(policy);
        let resolver = GuardedResolver::new(policy.clone(), lookup);
        let mut http = HttpConnector::new_with_resolver(resolver);
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout.min(Duration::from_secs(10))));
        let tls = super::tls::client_config(ca)?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Self {
            connector,
            policy,
            timeout,
        })
    }

    /// What the target guard lets through.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Opens a connection to `url`'s origin.
    async fn connect(&self, url: &url::Url) -> Result<Conn, BoxError> {
        let uri: http::Uri = url.as_str().parse()?;
        let mut connector = self.connector.clone();
        std::future::poll_fn(|cx| connector.poll_ready(cx)).await?;
        let io = connector.call(uri).await?;
        let (tx, driver) = http1::handshake(io).await?;
        Ok(Conn {
            opened_for: url.clone(),
            tx,
            driver: Some(Box::pin(driver)),
        })
    }

    /// Opens a connection ahead of a burst, unless `conn` already is one to
    /// `url`'s origin. A failure is left for the first attempt to report.
    pub async fn warm(&self, url: &url::Url, conn: &mut Option<Conn>) {
        if conn
            .as_ref()
            .is_some_and(|c| c.serves(url) && c.driver.is_some())
        {
            return;
        }
        if self.policy.check_url(url).is_ok() {
            if let Ok(Ok(c)) = tokio::time::timeout(self.timeout, self.connect(url)).await {
                *conn = Some(c);
            }
        }
    }

    /// A connection ready for a request to `url`: `conn` if it still is
    /// one, else a new one.
    async fn ready<'c>(
        &self,
        url: &url::Url,
        conn: &'c mut Option<Conn>,
    ) -> Result<&'c mut Conn, Failure> {
        if let Some(c) = conn.as_mut().filter(|c| c.serves(url)) {
            let Conn { tx, driver, .. } = c;
            if drive(driver, tx.ready()).await.is_err() {
                *conn = None;
            }
        } else {
            *conn = None;
        }
        if conn.is_none() {
            let c = self.connect(url).await.map_err(Failure::Connect)?;
            *conn = Some(c);
        }
        let c = conn.as_mut().expect("set above");
        let Conn { tx, driver, .. } = c;
        drive(driver, tx.ready())
            .await
            .map_err(|e| Failure::Connect(e.into()))?;
        Ok(c)
    }

    /// Makes the attempt on the worker's connection (opening one if it has
    /// none). Never fails: every failure is an attempt result. A connection
    /// that failed, timed out or was left mid-answer is dropped.
    pub async fn send(
        &self,
        m: Message<'_>,
        started_at: DateTime<Utc>,
        conn: &mut Option<Conn>,
    ) -> (Attempt, Response) {
        let t0 = Instant::now();
        let record = |code: Option<u16>, error: Option<String>, response: Option<String>| Attempt {
            attempt: m.attempt,
            started_at,
            status_code: code,
            latency_ms: t0.elapsed().as_millis() as u64,
            error,
            response,
        };
        if let Err(e) = self.policy.check_url(m.url) {
            return (record(None, Some(e), None), Response::Failed);
        }
        let first = match request(&m) {
            Ok(r) => Some(r),
            Err(e) => {
                return (
                    record(None, Some(format!("request failed: {e}")), None),
                    Response::Failed,
                )
            }
        };
        let exchange = self.exchange(&m, first, conn, started_at, t0);
        let result = tokio::time::timeout(self.timeout, exchange).await;
        if !matches!(result, Ok(Ok(Answer { ended: true, .. }))) {
            *conn = None;
        }
        match result {
            Err(_) => (
                record(
                    None,
                    Some(format!("timeout after {:?}", self.timeout)),
                    None,
                ),
                Response::Failed,
            ),
            Ok(Err(f)) => (record(None, Some(describe(&f)), None), Response::Failed),
            Ok(Ok(Answer {
                code,
                retry_after,
                snippet,
                ..
            })) => {
                let text =
                    (!snippet.is_empty()).then(|| String::from_utf8_lossy(&snippet).into_owned());
                let error =
                    (!(200..300).contains(&code)).then(|| format!("receiver answered {code}"));
                (
                    record(Some(code), error, text),
                    Response::Status { code, retry_after },
                )
            }
        }
    }

    /// Sends the request on the worker's connection and reads the start of
    /// the answer (at most [`SNIPPET_BYTES`]). A kept connection the
    /// receiver closed before the request went out is replaced once: the
    /// request was never sent on it.
    async fn exchange(
        &self,
        m: &Message<'_>,
        mut first: Option<http::Request<Full<Bytes>>>,
        conn: &mut Option<Conn>,
        started_at: DateTime<Utc>,
        t0: Instant,
    ) -> Result<Answer, Failure> {
        // A kept connection the receiver closed before the request went
        // out is replaced once; the request was never sent on it.
        let mut fresh = false;
        let resp = loop {
            let Conn { tx, driver, .. } = self.ready(m.url, conn).await?;
            let req = match first.take() {
                Some(r) => r,
                None => request(m).map_err(|e| Failure::Request(e.into()))?,
            };
            match drive(driver, tx.send_request(req)).await {
                Ok(r) => break r,
                Err(e) if e.is_canceled() && !fresh => {
                    fresh = true;
                    *conn = None;
                }
                Err(e) => return Err(Failure::Request(e.into())),
            }
        };
        let Conn { driver, .. } = conn.as_mut().expect("answered on it");
        let code = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, answered_at(started_at, t0)));
        let mut body = resp.into_body();
        let mut snippet = Vec::new();
        let mut ended = false;
        while snippet.len() < SNIPPET_BYTES {
            match drive(driver, body.frame()).await {
                Some(Ok(f)) => {
                    if let Some(d) = f.data_ref() {
                        snippet.extend_from_slice(&d[..d.len().min(SNIPPET_BYTES - snippet.len())]);
                    }
                }
                _ => {
                    ended = true;
                    break;
                }
            }
        }
        // An answer not read to its end leaves the connection unusable.
        Ok(Answer {
            code,
            retry_after,
            snippet,
            ended: ended || body.is_end_stream(),
        })
    }
}

/// The start of an answer: its status, its `Retry-After`, up to
/// [`SNIPPET_BYTES`] of its body, and whether it was read to its end (else
/// the connection cannot be used again).
struct Answer {
    code: u16,
    retry_after: Option<chrono::Duration>,
    snippet: Vec<u8>,
    ended: bool,
}

/// When the answer came, on the service's clock: the attempt's start (read
/// from it) plus the time the exchange took.
fn answered_at(started_at: DateTime<Utc>, t0: Instant) -> DateTime<Utc> {
    started_at + chrono::Duration::from_std(t0.elapsed()).unwrap_or_default()
}

fn request(m: &Message<'_>) -> Result<http::Request<Full<Bytes>>, http::Error> {
    let value = |s: &str| HeaderValue::from_str(s);
    // On a connection of its own, a request names its path, and its origin
    // in `Host` (with the port unless it is the scheme's default).
    let path = &m.url[url::Position::BeforePath..url::Position::AfterQuery];
    let mut b = http::Request::post(if path.is_empty() { "/" } else { path });
    let h = b.headers_mut().expect("a fresh builder has headers");
    let host = m.url.host_str().unwrap_or_default();
    match m.url.port() {
        Some(port) => h.insert(HOST, value(&format!("{host}:{port}"))?),
        None => h.insert(HOST, value(host)?),
    };
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(USER_AGENT, HeaderValue::from_static(AGENT));
    h.insert(WEBHOOK_ID, value(m.webhook_id)?);
    h.insert(WEBHOOK_TIMESTAMP, HeaderValue::from(m.timestamp));
    h.insert(WEBHOOK_SIGNATURE, value(&m.signature)?);
    h.insert(X_EVENT, value(m.event)?);
    h.insert(X_REMINDER, value(m.reminder)?);
    h.insert(X_ATTEMPT, HeaderValue::from(m.attempt));
    if m.late {
        h.insert(X_LATE, HeaderValue::from_static("true"));
    }
    b.body(Full::new(m.body.clone()))
}
