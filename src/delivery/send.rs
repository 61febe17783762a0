//! One HTTP attempt: POST the signed body with the Standard Webhooks and
//! `x-tminus-*` headers, time it, keep the start of the answer. Redirects are
//! not followed (a 3xx is a failed attempt), and every connection goes
//! through the target guard unless private targets are allowed. Built on
//! hyper's pooled client directly: a fan-out makes tens of thousands of
//! requests a second, and a general-purpose client's layers (redirect and
//! retry policies, header re-parsing) cost a tenth of the CPU.

use super::guard::{check_literal, GuardedResolver};
use super::retry::{parse_retry_after, Response};
use crate::store::Attempt;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, USER_AGENT};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::{Duration, Instant};

/// How much of a receiver's answer is kept for the attempt log.
const SNIPPET_BYTES: usize = 512;

const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");
const X_EVENT: HeaderName = HeaderName::from_static("x-tminus-event");
const X_REMINDER: HeaderName = HeaderName::from_static("x-tminus-reminder");
const X_ATTEMPT: HeaderName = HeaderName::from_static("x-tminus-attempt");
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
    pub body: Bytes,
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector<GuardedResolver>>;

/// The shared outbound client.
#[derive(Clone, Debug)]
pub struct Sender {
    client: Client<Connector, Full<Bytes>>,
    allow_private: bool,
    timeout: Duration,
}

impl Sender {
    /// Builds the client: `timeout` per attempt, no redirects, guarded DNS.
    pub fn new(timeout: Duration, allow_private: bool) -> anyhow::Result<Self> {
        let mut http = HttpConnector::new_with_resolver(GuardedResolver { allow_private });
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout.min(Duration::from_secs(10))));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1024)
            .build(https);
        Ok(Self {
            client,
            allow_private,
            timeout,
        })
    }

    /// Makes the attempt. Never fails: every failure is an attempt result.
    pub async fn send(&self, m: Message<'_>, started_at: DateTime<Utc>) -> (Attempt, Response) {
        let t0 = Instant::now();
        let record = |code: Option<u16>, error: Option<String>, response: Option<String>| Attempt {
            attempt: m.attempt,
            started_at,
            status_code: code,
            latency_ms: t0.elapsed().as_millis() as u64,
            error,
            response,
        };
        if let Err(e) = check_literal(m.url, self.allow_private) {
            return (record(None, Some(e), None), Response::Failed);
        }
        let req = match request(&m) {
            Ok(r) => r,
            Err(e) => {
                return (
                    record(None, Some(format!("request failed: {e}")), None),
                    Response::Failed,
                )
            }
        };
        let exchange = async {
            let resp = self.client.request(req).await?;
            let code = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, Utc::now()));
            let mut body = resp.into_body();
            let mut snippet = Vec::new();
            while snippet.len() < SNIPPET_BYTES {
                match body.frame().await {
                    Some(Ok(f)) => {
                        if let Some(d) = f.data_ref() {
                            snippet.extend_from_slice(
                                &d[..d.len().min(SNIPPET_BYTES - snippet.len())],
                            );
                        }
                    }
                    _ => break,
                }
            }
            Ok::<_, hyper_util::client::legacy::Error>((code, retry_after, snippet))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => (
                record(
                    None,
                    Some(format!("timeout after {:?}", self.timeout)),
                    None,
                ),
                Response::Failed,
            ),
            Ok(Err(e)) => (record(None, Some(describe(&e)), None), Response::Failed),
            Ok(Ok((code, retry_after, snippet))) => {
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
}

fn request(m: &Message<'_>) -> Result<http::Request<Full<Bytes>>, http::Error> {
    let value = |s: &str| HeaderValue::from_str(s);
    let mut b = http::Request::post(m.url.as_str());
    let h = b.headers_mut().expect("a fresh builder has headers");
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(USER_AGENT, HeaderValue::from_static(AGENT));
    h.insert(WEBHOOK_ID, value(m.webhook_id)?);
    h.insert(WEBHOOK_TIMESTAMP, HeaderValue::from(m.timestamp));
    h.insert(WEBHOOK_SIGNATURE, value(&m.signature)?);
    h.insert(X_EVENT, value(m.event)?);
    h.insert(X_REMINDER, value(m.reminder)?);
    h.insert(X_ATTEMPT, HeaderValue::from(m.attempt));
    b.body(Full::new(m.body.clone()))
}

/// A short, operator-readable reason for a transport failure.
fn describe(e: &hyper_util::client::legacy::Error) -> String {
    use std::error::Error;
    let kind = if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut cause = String::new();
    let mut src = e.source();
    while let Some(s) = src {
        cause = s.to_string();
        src = s.source();
    }
    if cause.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {cause}")
    }
}
