//! `tminus soak`: the long run. One `tminus serve` on a SQLite file fans out
//! a webinar every few seconds, for as long as asked (an hour by default),
//! to four endpoints of an in-process receiver: one good, one slow, one
//! failing a quarter of its first attempts, one always failing (retried
//! until the webinar starts, then recorded as expired). Every round it
//! samples the service's resident memory, its open files and the store's
//! size, and at the end it prints and writes (JSON) the first and last
//! samples and the store's growth per delivery, so that anything growing
//! without bound shows.

use crate::bench::procs::{free_port, status_mb, Child};
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What `tminus soak` can be told.
#[derive(clap::Args, Clone, Debug)]
pub struct SoakArgs {
    /// How long to run.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Participants of each round's webinar.
    #[arg(long, default_value_t = 2000)]
    pub participants: usize,
    /// Time between two rounds.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub every: Duration,
    /// Where to write the results.
    #[arg(long, default_value = "soak-result.json")]
    pub json: PathBuf,
}

/// The receiver's endpoints and what each answers.
const ENDPOINTS: [&str; 4] = ["good", "slow", "flaky", "failing"];

/// Requests per endpoint, in `ENDPOINTS`' order.
#[derive(Clone, Default)]
struct Counts(Arc<[AtomicU64; 4]>);

async fn receive(
    axum::extract::State(c): axum::extract::State<Counts>,
    axum::extract::Path(which): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
) -> axum::http::StatusCode {
    use axum::http::StatusCode;
    let i = ENDPOINTS.iter().position(|e| *e == which).unwrap_or(0);
    c.0[i].fetch_add(1, Ordering::Relaxed);
    let first = headers.get("x-tminus-attempt").is_some_and(|v| v == "1");
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match which.as_str() {
        "slow" => {
            tokio::time::sleep(Duration::from_millis(50)).await;
            StatusCode::OK
        }
        "flaky" if first && id.ends_with(['0', '4', '8', 'c']) => StatusCode::SERVICE_UNAVAILABLE,
        "failing" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::OK,
    }
}

/// One look at the service.
fn sample(pid: u32, db: &Path, round: usize, elapsed: Duration, requests: u64) -> Value {
    let mb = |field: &str| status_mb(pid, field).map(|m| (m * 10.0).round() / 10.0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    let store: u64 = ["", "-wal", "-shm"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", db.display())).ok())
        .map(|m| m.len())
        .sum();
    json!({
        "round": round,
        "elapsed_s": elapsed.as_secs(),
        "rss_mb": mb("VmRSS:"),
        "peak_rss_mb": mb("VmHWM:"),
        "open_files": fds,
        "store_bytes": store,
        "requests": requests,
    })
}

/// Runs the soak.
pub async fn run(args: SoakArgs) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("tminus-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("soak.db");
    let counts = Counts::default();
    let app = axum::Router::new()
        .route("/{which}", axum::routing::post(receive))
        .with_state(counts.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let rx = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let admin = "soak-admin";
    let exe = std::env::current_exe()?;
    let service = Child::spawn(
        &exe,
        &[
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database",
            db.to_str().context("temp path")?,
            "--admin-token",
            admin,
            "--reminder-offsets",
            "10s",
            "--allow-http",
            "--allow-private-targets",
            "--http-timeout",
            "2s",
            "--retry-base",
            "1s",
        ],
    )?;
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: Value, key: Option<&str>| {
        let mut r = http.request(method, format!("{base}{path}")).json(&body);
        r = match key {
            Some(k) => r.header("x-api-key", k),
            None => r.bearer_auth(admin),
        };
        async move {
            let resp = r.send().await?;
            let status = resp.status();
            let v: Value = resp.json().await.unwrap_or_default();
            if !status.is_success() {
                bail!("{status}: {v}");
            }
            Ok::<Value, anyhow::Error>(v)
        }
    };
    let post = reqwest::Method::POST;
    let mut up = false;
    for _ in 0..100 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !up {
        bail!("tminus serve did not start");
    }
    let c = call(
        post.clone(),
        "/api/v1/platform/creators",
        json!({"name": "Soak"}),
        None,
    )
    .await?;
    let cid = c["id"].as_str().context("creator id")?.to_owned();
    let k = call(
        post.clone(),
        &format!("/api/v1/platform/creators/{cid}/api-keys"),
        json!({}),
        None,
    )
    .await?;
    let key = k["key"].as_str().context("key")?.to_owned();
    for e in ENDPOINTS {
        call(
            post.clone(),
            "/api/v1/integration/webhook/webhook",
            json!({"hookUrl": format!("{rx}/{e}"), "event": "webinar.reminder.all"}),
            Some(&key),
        )
        .await?;
    }
    let started = Instant::now();
    let total = || {
        counts
            .0
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum::<u64>()
    };
    let mut samples = vec![sample(service.pid(), &db, 0, Duration::ZERO, 0)];
    println!("{}", samples[0]);
    let mut round = 0;
    while started.elapsed() < args.duration {
        round += 1;
        let tick = Instant::now();
        // The reminder falls due 5 s from now; failures are retried until
        // the start, 10 s later, then expire.
        let from = chrono::Utc::now() + chrono::Duration::seconds(15);
        let iso = |t: chrono::DateTime<chrono::Utc>| crate::domain::payload::iso_millis(t);
        let w = call(post.clone(), "/api/v1/platform/webinars", json!({"creatorId": cid, "title": format!("Soak {round}"),
            "link": "https://meet.example/soak", "fromTime": iso(from), "toTime": iso(from + chrono::Duration::hours(1))}), None).await?;
        let wid = w["id"].as_str().context("webinar id")?.to_owned();
        let people: Vec<Value> = (0..args.participants)
            .map(|i| json!({"name": format!("P {i}"), "email": format!("p{i}.r{round}@example.com")}))
            .collect();
        call(
            post.clone(),
            &format!("/api/v1/platform/webinars/{wid}/participants/bulk"),
            Value::Array(people),
            None,
        )
        .await?;
        let wait = args.every.saturating_sub(tick.elapsed());
        tokio::time::sleep(wait).await;
        let s = sample(service.pid(), &db, round, started.elapsed(), total());
        println!("{s}");
        samples.push(s);
    }
    // Let the last round's retries and expiries finish before the last look.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let last = sample(service.pid(), &db, round, started.elapsed(), total());
    drop(service);
    let first = samples
        .get(1)
        .cloned()
        .unwrap_or_else(|| samples[0].clone());
    let deliveries = (round * args.participants * ENDPOINTS.len()) as f64;
    let grown = last["store_bytes"].as_u64().unwrap_or(0) as f64;
    let report = json!({
        "rounds": round,
        "participants_per_round": args.participants,
        "deliveries": deliveries,
        "requests": total(),
        "requests_per_endpoint": ENDPOINTS.iter().zip(counts.0.iter()).map(|(e, c)| (e.to_string(), json!(c.load(Ordering::Relaxed)))).collect::<serde_json::Map<_, _>>(),
        "first_round": first,
        "last": last,
        "store_bytes_per_delivery": (grown / deliveries.max(1.0)).round(),
        "samples": samples,
    });
    println!(
        "soak: {round} rounds, {} requests; RSS {} -> {} MB; open files {} -> {}; store {} bytes ({} per delivery)",
        report["requests"], first["rss_mb"], last["rss_mb"], first["open_files"], last["open_files"],
        last["store_bytes"], report["store_bytes_per_delivery"]
    );
    std::fs::write(&args.json, serde_json::to_string_pretty(&report)?)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
