//! One HTTP attempt: POST the signed body with the Standard Webhooks and
//! `x-tminus-*` headers, time it, keep the start of the answer. Redirects are
//! not followed (a 3xx is a failed attempt), and every connection goes
//! through the target guard unless private targets are allowed.

use super::guard::{check_literal, GuardedResolver};
use super::retry::{parse_retry_after, Response};
use crate::store::Attempt;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How much of a receiver's answer is kept for the attempt log.
const SNIPPET_BYTES: usize = 512;

/// One request to make.
pub struct Message<'a> {
    pub url: &'a reqwest::Url,
    pub webhook_id: &'a str,
    pub timestamp: i64,
    pub signature: String,
    pub event: &'a str,
    pub reminder: &'a str,
    pub attempt: u32,
    pub body: bytes::Bytes,
}

/// The shared outbound client.
#[derive(Clone, Debug)]
pub struct Sender {
    client: reqwest::Client,
    allow_private: bool,
}

impl Sender {
    /// Builds the client: `timeout` per attempt, no redirects, guarded DNS.
    pub fn new(timeout: Duration, allow_private: bool) -> anyhow::Result<Self> {
        let mut b = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tminus/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(1024)
            .tcp_nodelay(true);
        if !allow_private {
            b = b.dns_resolver(Arc::new(GuardedResolver));
        }
        Ok(Self {
            client: b.build()?,
            allow_private,
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
        let req = self
            .client
            .post(m.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", m.webhook_id)
            .header("webhook-timestamp", m.timestamp.to_string())
            .header("webhook-signature", &m.signature)
            .header("x-tminus-event", m.event)
            .header("x-tminus-reminder", m.reminder)
            .header("x-tminus-attempt", m.attempt.to_string())
            .body(m.body.clone());
        let mut resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return (record(None, Some(describe(&e)), None), Response::Failed),
        };
        let code = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, Utc::now()));
        let mut snippet = Vec::new();
        while snippet.len() < SNIPPET_BYTES {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    snippet.extend_from_slice(&c[..c.len().min(SNIPPET_BYTES - snippet.len())])
                }
                _ => break,
            }
        }
        let text = (!snippet.is_empty()).then(|| String::from_utf8_lossy(&snippet).into_owned());
        let error = (!(200..300).contains(&code)).then(|| format!("receiver answered {code}"));
        (
            record(Some(code), error, text),
            Response::Status { code, retry_after },
        )
    }
}

/// A short, operator-readable reason for a transport failure.
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error;
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
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
