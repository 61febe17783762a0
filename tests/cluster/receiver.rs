//! The receiver of the cluster tests: answers 200, except the first attempt
//! of one delivery in sixteen (500, so retries are part of the story); notes
//! per webhook-id how often it was acknowledged and per participant which
//! webhook-ids it came with. Each answer takes a few milliseconds, so a
//! fan-out lasts long enough to be interrupted.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
pub struct Log {
    /// Acknowledgements per webhook-id.
    pub acked: HashMap<String, u32>,
    /// Every webhook-id seen with each participant (`webinarId/email`).
    pub ids_by_email: HashMap<String, BTreeSet<String>>,
    /// Webhook-ids already answered once (the 500s go to first attempts).
    seen: BTreeSet<String>,
    /// When the first request arrived.
    pub first_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Clone, Default)]
pub struct Receiver {
    pub log: Arc<Mutex<Log>>,
    pub requests: Arc<AtomicUsize>,
    in_flight: Arc<AtomicUsize>,
    /// The most requests it ever had in flight at once.
    pub max_in_flight: Arc<AtomicUsize>,
    pub url: String,
    /// How long each answer takes (3 ms unless started slow).
    delay: Option<Duration>,
}

impl Receiver {
    pub async fn start() -> Self {
        Self::start_slow(Duration::from_millis(3)).await
    }

    /// A receiver whose every answer takes `delay`.
    pub async fn start_slow(delay: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = Receiver {
            url: format!("http://{}/hook", listener.local_addr().unwrap()),
            delay: Some(delay),
            ..Default::default()
        };
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(handle))
            .with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        r
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Requests being answered now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Every webhook-id that reached the receiver so far.
    pub fn seen_ids(&self) -> BTreeSet<String> {
        self.log.lock().unwrap().seen.clone()
    }

    /// Participants acknowledged at least once.
    pub fn acked_people(&self) -> usize {
        let log = self.log.lock().unwrap();
        log.ids_by_email
            .values()
            .filter(|ids| ids.iter().any(|id| log.acked.contains_key(id)))
            .count()
    }
}

async fn handle(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let arrived = chrono::Utc::now();
    r.requests.fetch_add(1, Ordering::SeqCst);
    let now = r.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    r.max_in_flight.fetch_max(now, Ordering::SeqCst);
    // Counted out even when the sender dies mid-request and the server
    // drops this handler.
    let _out = Leaving(r.in_flight.clone());
    tokio::time::sleep(r.delay.unwrap_or_default()).await;
    drop(_out);
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    // A participant is an email in one webinar: a test may fan out several.
    let email = format!(
        "{}/{}",
        json["webinarId"].as_str().unwrap_or_default(),
        json["email"].as_str().unwrap_or_default()
    );
    let mut log = r.log.lock().unwrap();
    log.first_at.get_or_insert(arrived);
    log.ids_by_email
        .entry(email)
        .or_default()
        .insert(id.clone());
    let first = log.seen.insert(id.clone());
    if first && id.ends_with('d') {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    *log.acked.entry(id).or_default() += 1;
    StatusCode::OK
}

/// Takes a request out of the in-flight count when dropped.
struct Leaving(Arc<AtomicUsize>);

impl Drop for Leaving {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
