//! The benchmark's receiver: a separate process that answers `200 OK` to
//! any POST and notes when each arrived, for which webinar and subscription
//! (its path is `/hook/{webinar}/{subscription}`), and how many payload
//! objects it carried, so the driver can compute lateness against the due
//! instant on the same clock, over all deliveries, webinar by webinar and
//! fan-out by fan-out, for all subscriptions or a range of them (a fleet's
//! healthy endpoints). With `--tls-cert` it serves HTTPS too
//! ([`super::tls`]), on a second port, the first staying plain HTTP for the
//! driver's own calls. It counts the
//! connections open to it and keeps their peak. `GET /stats` reports,
//! `POST /reset` forgets (after the wrk ceiling run), `POST /shape` sets
//! how it answers from then on ([`super::shape::Shape`]: an answer time on
//! a timer, never a blocked thread, and a capacity past which it answers
//! `503`; those are counted, not noted as arrivals).

use axum::extract::{Query, State};
use axum::http::{Method, Uri};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::counted::{Conns, Counting};
use super::shape::Shape;

/// An arrival: microseconds since the Unix epoch, the webinar's and the
/// subscription's index, and the payload objects it carried (more than one
/// when batched).
type Arrival = (i64, u32, u32, u32);

/// Arrivals, connections and the receiver's shape.
#[derive(Clone, Default)]
struct Arrivals {
    times: Arc<Mutex<Vec<Arrival>>>,
    conns: Arc<Conns>,
    shape: Arc<Mutex<Shape>>,
    /// Requests being answered now, and those refused as busy.
    in_flight: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
}

/// Appears once per payload object.
const KEY: &[u8] = b"\"webinarId\"";

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Options of the benchmark's receiver.
#[derive(clap::Args, Debug)]
pub struct ReceiverArgs {
    /// Serve HTTPS too, on a second port, with this certificate (DER)…
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// …and its PKCS#8 key (DER).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
}

/// Runs the receiver on 127.0.0.1:0 (a listen backlog of
/// [`tminus::server::BACKLOG`], not the standard 128) and prints its port
/// on the first line; with a certificate, the HTTPS port on the second.
pub async fn run(args: ReceiverArgs) -> anyhow::Result<()> {
    let arrivals = Arrivals::default();
    let counting = |inner| Counting {
        inner,
        conns: arrivals.conns.clone(),
    };
    let listener = tminus::server::listen("127.0.0.1:0", tminus::server::BACKLOG).await?;
    println!("{}", listener.local_addr()?.port());
    let app = axum::Router::new()
        .route("/stats", axum::routing::get(stats))
        .route("/reset", axum::routing::post(reset))
        .route("/shape", axum::routing::post(set_shape))
        .fallback(receive)
        .with_state(arrivals.clone());
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let acceptor = super::tls::acceptor(cert, key)?;
        let secure = tminus::server::listen("127.0.0.1:0", tminus::server::BACKLOG).await?;
        println!("{}", secure.local_addr()?.port());
        tokio::spawn(super::tls::serve(counting(secure), acceptor, app.clone()));
    }
    axum::serve(counting(listener), app).await?;
    Ok(())
}

/// The fan-out a path is for: `/hook/{w}/{s}` gives `(w, s)`; a path
/// without them is wrk's (`/hook`, the ceiling), recorded as [`CEILING`].
fn fanout_of(path: &str) -> Option<(u32, u32)> {
    let mut parts = path.trim_start_matches('/').split('/').skip(1);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Where wrk's requests are recorded: as much work as a delivery's, in no
/// range of subscriptions a query asks for (they end before `u32::MAX`),
/// so a request of the ceiling's still in flight when the run's arrivals
/// were reset is never taken for a delivery.
const CEILING: (u32, u32) = (u32::MAX, u32::MAX);

async fn receive(
    State(a): State<Arrivals>,
    method: Method,
    uri: Uri,
    body: axum::body::Bytes,
) -> axum::response::Response {
    if method != Method::POST {
        return "OK".into_response();
    }
    let shape = *a.shape.lock().expect("shape");
    let now = a.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
    if shape.busy.is_some_and(|n| now > n) {
        a.in_flight.fetch_sub(1, Ordering::Relaxed);
        a.refused.fetch_add(1, Ordering::Relaxed);
        let retry = [(axum::http::header::RETRY_AFTER, "1")];
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, retry, "busy").into_response();
    }
    let t = now_us();
    let (w, s) = fanout_of(uri.path()).unwrap_or(CEILING);
    let n = body.windows(KEY.len()).filter(|w| *w == KEY).count();
    a.times.lock().expect("arrivals").push((t, w, s, n as u32));
    let delay = shape.delay(s, rand::random());
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    a.in_flight.fetch_sub(1, Ordering::Relaxed);
    "OK".into_response()
}

async fn set_shape(State(a): State<Arrivals>, Json(shape): Json<Shape>) -> &'static str {
    *a.shape.lock().expect("shape") = shape;
    "OK"
}

async fn reset(State(a): State<Arrivals>) -> &'static str {
    a.times.lock().expect("arrivals").clear();
    a.refused.store(0, Ordering::Relaxed);
    let open = a.conns.open.load(Ordering::Relaxed);
    a.conns.peak.store(open, Ordering::Relaxed);
    "OK"
}

#[derive(Deserialize)]
struct StatsQuery {
    /// The due instant, microseconds since the epoch.
    due_us: i64,
    /// Only the arrivals for subscriptions from this index…
    subs_from: Option<u32>,
    /// …and before this one.
    subs_to: Option<u32>,
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
    /// Webinars that received anything.
    pub webinars: usize,
    /// Each webinar's first arrival after the due instant, over webinars.
    pub webinar_first: Spread,
    /// Each webinar's last arrival after the due instant, over webinars.
    pub webinar_last: Spread,
    /// Each fan-out's (webinar × subscription) last arrival after the due
    /// instant, over fan-outs.
    #[serde(default)]
    pub fanout_last: Spread,
    /// The most connections open at once since the last reset.
    pub peak_connections: usize,
    /// Requests answered `503` because more than its capacity were in
    /// flight (`--receiver-busy`).
    #[serde(default)]
    pub refused: usize,
}

/// Percentiles of a set of lateness figures, in milliseconds.
#[derive(serde::Serialize, Deserialize, Debug, Default, Clone, Copy)]
pub struct Spread {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

fn ms(us: i64) -> f64 {
    us as f64 / 1000.0
}

/// The `p` percentile of sorted `v` (nearest rank).
fn pct(v: &[i64], p: f64) -> f64 {
    ms(v[((v.len() - 1) as f64 * p).round() as usize])
}

fn spread(mut v: Vec<i64>) -> Spread {
    if v.is_empty() {
        return Spread::default();
    }
    v.sort_unstable();
    Spread {
        p50_ms: pct(&v, 0.50),
        p99_ms: pct(&v, 0.99),
        max_ms: ms(v[v.len() - 1]),
    }
}

async fn stats(State(a): State<Arrivals>, Query(q): Query<StatsQuery>) -> Json<Stats> {
    let subs = q.subs_from.unwrap_or(0)..q.subs_to.unwrap_or(u32::MAX);
    let stats = summarize(&a.times.lock().expect("arrivals"), q.due_us, subs);
    Json(Stats {
        peak_connections: a.conns.peak.load(Ordering::Relaxed),
        refused: a.refused.load(Ordering::Relaxed),
        ..stats
    })
}

/// What arrived for the subscriptions in `subs`, relative to `due_us`.
fn summarize(all: &[Arrival], due_us: i64, subs: std::ops::Range<u32>) -> Stats {
    let arrivals: Vec<Arrival> = all
        .iter()
        .filter(|(_, _, s, _)| subs.contains(s))
        .copied()
        .collect();
    if arrivals.is_empty() {
        return Stats::default();
    }
    let mut by_webinar: std::collections::HashMap<u32, (i64, i64)> = Default::default();
    let mut by_fanout: std::collections::HashMap<(u32, u32), i64> = Default::default();
    for &(t, w, s, _) in &arrivals {
        let e = by_webinar.entry(w).or_insert((t, t));
        e.0 = e.0.min(t);
        e.1 = e.1.max(t);
        let last = by_fanout.entry((w, s)).or_insert(t);
        *last = (*last).max(t);
    }
    let mut v: Vec<i64> = arrivals.iter().map(|a| a.0 - due_us).collect();
    v.sort_unstable();
    Stats {
        count: v.len(),
        objects: arrivals.iter().map(|a| a.3 as usize).sum(),
        first_ms: ms(v[0]),
        last_ms: ms(v[v.len() - 1]),
        p50_ms: pct(&v, 0.50),
        p99_ms: pct(&v, 0.99),
        max_ms: ms(v[v.len() - 1]),
        webinars: by_webinar.len(),
        webinar_first: spread(by_webinar.values().map(|f| f.0 - due_us).collect()),
        webinar_last: spread(by_webinar.values().map(|f| f.1 - due_us).collect()),
        fanout_last: spread(by_fanout.values().map(|t| t - due_us).collect()),
        ..Stats::default()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_path_names_its_fanout() {
        assert_eq!(super::fanout_of("/hook/17/3"), Some((17, 3)));
        assert_eq!(super::fanout_of("/hook/2"), None);
        assert_eq!(
            super::fanout_of("/hook"),
            None,
            "wrk's ceiling is never a delivery"
        );
    }

    #[test]
    fn each_fan_out_s_last_arrival_counts_and_a_range_keeps_its_subscriptions() {
        // Webinar 0: subscription 0 ends at 3 ms, 1 at 10 ms, 2 (slow) at
        // 2 000 ms; webinar 1: subscription 0 ends at 5 ms, carrying a batch.
        let a = [
            (1_000, 0, 0, 1),
            (3_000, 0, 0, 1),
            (10_000, 0, 1, 1),
            (2_000_000, 0, 2, 1),
            (5_000, 1, 0, 4),
            // A request of wrk's that landed after the reset: not a delivery.
            (-2_000_000, super::CEILING.0, super::CEILING.1, 1),
        ];
        let all = super::summarize(&a, 0, 0..u32::MAX);
        assert_eq!((all.count, all.objects, all.webinars), (5, 8, 2));
        assert_eq!(all.fanout_last.max_ms, 2000.0);
        // The fan-outs' last arrivals: 3, 5, 10 and 2 000 ms.
        assert_eq!(all.fanout_last.p50_ms, 10.0);
        let healthy = super::summarize(&a, 0, 0..2);
        assert_eq!((healthy.count, healthy.objects), (4, 7));
        assert_eq!(healthy.last_ms, 10.0);
        assert_eq!(healthy.fanout_last.p50_ms, 5.0);
        assert_eq!(healthy.fanout_last.max_ms, 10.0);
        assert_eq!(healthy.webinar_last.max_ms, 10.0);
        let slow = super::summarize(&a, 0, 2..3);
        assert_eq!((slow.count, slow.first_ms), (1, 2000.0));
        assert_eq!(super::summarize(&a, 0, 5..9).count, 0);
    }
}
