//! The benchmark's receiver: a separate process that answers `200 OK` to
//! any POST and notes when each arrived (and how many payload objects it
//! carried), so the driver can compute lateness against the due instant on
//! the same clock. `GET /stats` reports, `POST /reset` forgets (after the
//! wrk ceiling run).

use axum::extract::{Query, State};
use axum::http::Method;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Arrival instants (microseconds since the Unix epoch) and the number of
/// payload objects received (more than requests when batched).
#[derive(Clone, Default)]
struct Arrivals {
    times: Arc<Mutex<Vec<i64>>>,
    objects: Arc<AtomicUsize>,
}

/// Appears once per payload object.
const KEY: &[u8] = b"\"webinarId\"";

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Runs the receiver on 127.0.0.1:0 and prints its port on the first line.
pub async fn run() -> anyhow::Result<()> {
    let arrivals = Arrivals::default();
    let app = axum::Router::new()
        .route("/stats", axum::routing::get(stats))
        .route("/reset", axum::routing::post(reset))
        .fallback(receive)
        .with_state(arrivals);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?.port());
    axum::serve(listener, app).await?;
    Ok(())
}

async fn receive(
    State(a): State<Arrivals>,
    method: Method,
    body: axum::body::Bytes,
) -> impl IntoResponse {
    if method == Method::POST {
        let t = now_us();
        a.times.lock().expect("arrivals").push(t);
        let n = body.windows(KEY.len()).filter(|w| *w == KEY).count();
        a.objects.fetch_add(n, Ordering::Relaxed);
    }
    "OK"
}

async fn reset(State(a): State<Arrivals>) -> &'static str {
    a.times.lock().expect("arrivals").clear();
    a.objects.store(0, Ordering::Relaxed);
    "OK"
}

#[derive(Deserialize)]
struct StatsQuery {
    /// The due instant, microseconds since the epoch.
    due_us: i64,
}

/// What arrived, relative to the due instant.
#[derive(serde::Serialize, Deserialize, Debug, Default)]
pub struct Stats {
    /// Requests.
    pub count: usize,
    /// Payload objects.
    pub objects: usize,
    pub first_ms: f64,
    pub last_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

async fn stats(State(a): State<Arrivals>, Query(q): Query<StatsQuery>) -> Json<Stats> {
    let objects = a.objects.load(Ordering::Relaxed);
    let mut v: Vec<i64> = a
        .times
        .lock()
        .expect("arrivals")
        .iter()
        .map(|t| t - q.due_us)
        .collect();
    if v.is_empty() {
        return Json(Stats::default());
    }
    v.sort_unstable();
    let ms = |us: i64| us as f64 / 1000.0;
    let pct = |p: f64| ms(v[((v.len() - 1) as f64 * p).round() as usize]);
    Json(Stats {
        count: v.len(),
        objects,
        first_ms: ms(v[0]),
        last_ms: ms(v[v.len() - 1]),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: ms(v[v.len() - 1]),
    })
}
