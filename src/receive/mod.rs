//! `tminus receive`: a reference receiver, the seed's "Handling the
//! webhook" done right. Short on purpose: integrators read it.
//!
//! Each POST is checked (`check`: signature with the service's own signing
//! code, timestamp within 5 minutes), dropped if its `webhook-id` was seen
//! already (`seen`), put on a bounded queue and acknowledged with 200 at
//! once; a single task then hands each reminder, one per batch member, to
//! the output (`output`). When the queue is full the answer is 503 with
//! `Retry-After`, and the id is not remembered, so tminus retries it later.

mod check;
mod output;
mod seen;

pub use check::TOLERANCE_SECS;
pub use output::Output;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use tminus::clock::Clock;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Requests acknowledged and not yet handed on, by default: with the
/// output taking what has queued up in one write, a fan-out at tminus's
/// default caps never fills it.
pub const DEFAULT_QUEUE: usize = 1024;

/// `tminus receive`'s command line. No `Debug`: it holds the secrets.
#[derive(clap::Args, Clone)]
pub struct ReceiveArgs {
    /// Address to listen on; every path takes POSTs.
    #[arg(long, default_value = "127.0.0.1:9000", env = "TMINUS_RECEIVE_LISTEN")]
    pub listen: String,
    /// The subscription's signing secret (`whsec_…`). Repeat it, or separate
    /// secrets with commas, to accept several (a rotation).
    #[arg(
        long = "secret",
        value_name = "WHSEC",
        env = "TMINUS_RECEIVE_SECRET",
        value_delimiter = ',',
        required = true,
        hide_env_values = true
    )]
    pub secrets: Vec<String>,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Requests acknowledged but not yet handed to the output; when full,
    /// new ones are answered 503 (tminus retries them).
    #[arg(long, default_value_t = DEFAULT_QUEUE)]
    pub queue: usize,
}

/// Exactly one output.
#[derive(clap::Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct OutputArgs {
    /// Append one JSON line per reminder to this file.
    #[arg(long, value_name = "FILE")]
    pub jsonl: Option<std::path::PathBuf>,
    /// Run this shell command once per reminder, the JSON on its stdin.
    #[arg(long, value_name = "CMD")]
    pub exec: Option<String>,
    /// POST each reminder's JSON to this URL.
    #[arg(long, value_name = "URL")]
    pub forward: Option<String>,
}

impl OutputArgs {
    fn output(&self) -> Output {
        match (&self.jsonl, &self.exec, &self.forward) {
            (Some(path), _, _) => Output::Jsonl(path.clone()),
            (_, Some(cmd), _) => Output::Exec(cmd.clone()),
            (_, _, Some(url)) => Output::Forward(url.clone()),
            _ => unreachable!("clap requires one output"),
        }
    }
}

/// What the handler shares.
struct Receiver {
    secrets: Vec<String>,
    clock: Clock,
    /// Held while checking for a repeat and queueing, so two copies of one
    /// id arriving together are queued once.
    seen: Mutex<seen::Seen>,
    queue: mpsc::Sender<Vec<Value>>,
}

/// Serves on `listener` until `shutdown`, then hands what is queued to the
/// output and returns.
pub async fn run(
    args: ReceiveArgs,
    listener: TcpListener,
    clock: Clock,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    for s in &args.secrets {
        tminus::signing::Signer::new(s).with_context(|| "a --secret is not whsec_ + base64")?;
    }
    let (queue, rx) = mpsc::channel(args.queue.max(1));
    let abort = CancellationToken::new();
    let worker = tokio::spawn(output::drain(args.output.output(), rx, abort.clone()));
    let state = Arc::new(Receiver {
        secrets: args.secrets,
        clock,
        seen: Mutex::new(seen::Seen::new(seen::CAPACITY)),
        queue,
    });
    // A batch of 1 000 reminders is about 500 KB.
    let app = axum::Router::new()
        .fallback(axum::routing::post(receive))
        .layer(DefaultBodyLimit::max(8 * 1024 * 1024))
        .with_state(state);
    tracing::info!(addr = %listener.local_addr()?, "tminus receive listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await?;
    // The router (and with it the queue's sender) is gone: the worker ends
    // once the queue is empty. A second signal would not reach it, so give
    // a failing output 10 s.
    let stop = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(10)).await;
        abort.cancel();
    });
    let drained = worker.await?;
    stop.abort();
    drained
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> Response {
    let now = r.clock.now().timestamp();
    let id = match check::check(&headers, &body, &r.secrets, now) {
        Ok(genuine) => genuine.id,
        Err(refusal) => {
            tracing::warn!(%refusal, "refused");
            return (refusal.status(), refusal.to_string()).into_response();
        }
    };
    let Some(reminders) = reminders(&headers, &id, &body) else {
        return (
            StatusCode::BAD_REQUEST,
            "the body is not a JSON object or array",
        )
            .into_response();
    };
    let mut seen = r.seen.lock().expect("not poisoned");
    if seen.contains(&id) {
        tracing::info!(%id, "repeat dropped");
        return (StatusCode::OK, "repeat").into_response();
    }
    match r.queue.try_send(reminders) {
        Ok(()) => {
            seen.insert(id);
            (StatusCode::OK, "OK").into_response()
        }
        Err(_) => {
            tracing::warn!(%id, "queue full: answered 503");
            let retry = [(axum::http::header::RETRY_AFTER, "5")];
            (StatusCode::SERVICE_UNAVAILABLE, retry, "busy").into_response()
        }
    }
}

/// The reminders in one body, each with what the headers say about it: one
/// for a single delivery, one per member for a batch (a JSON array).
fn reminders(headers: &HeaderMap, id: &str, body: &[u8]) -> Option<Vec<Value>> {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let members = match serde_json::from_slice(body).ok()? {
        Value::Array(members) => members,
        one @ Value::Object(_) => vec![one],
        _ => return None,
    };
    let line = |payload| {
        json!({
            "webhookId": id,
            "event": header("x-tminus-event"),
            "reminder": header("x-tminus-reminder"),
            "payload": payload,
        })
    };
    Some(members.into_iter().map(line).collect())
}
