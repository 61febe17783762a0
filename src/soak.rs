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

impl Counts {
    fn total(&self) -> u64 {
        self.0.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

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

/// The soak's calls to its service: the admin token, or an API key.
struct Api {
    http: reqwest::Client,
    base: String,
}

/// The service's admin token.
const ADMIN: &str = "soak-admin";

impl Api {
    async fn post(&self, path: &str, body: Value, key: Option<&str>) -> anyhow::Result<Value> {
        let r = self.http.post(format!("{}{path}", self.base)).json(&body);
        let r = match key {
            Some(k) => r.header("x-api-key", k),
            None => r.bearer_auth(ADMIN),
        };
        let resp = r.send().await?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{status}: {v}");
        }
        Ok(v)
    }

    async fn wait_up(&self) -> anyhow::Result<()> {
        for _ in 0..100 {
            if self
                .http
                .get(format!("{}/healthz", self.base))
                .send()
                .await
                .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("tminus serve did not start")
    }

    /// A creator, an API key, and a subscription per receiver endpoint:
    /// the creator's id.
    async fn set_up(&self, rx: &str) -> anyhow::Result<String> {
        let c = self
            .post("/api/v1/platform/creators", json!({"name": "Soak"}), None)
            .await?;
        let cid = c["id"].as_str().context("creator id")?.to_owned();
        let k = self
            .post(
                &format!("/api/v1/platform/creators/{cid}/api-keys"),
                json!({}),
                None,
            )
            .await?;
        let key = k["key"].as_str().context("key")?;
        for e in ENDPOINTS {
            let sub = json!({"hookUrl": format!("{rx}/{e}"), "event": "webinar.reminder.all"});
            self.post("/api/v1/integration/webhook/webhook", sub, Some(key))
                .await?;
        }
        Ok(cid)
    }

    /// One round's webinar: its reminder falls due 5 s from now, and
    /// failures are retried until the start, 10 s later, then expire.
    async fn round(&self, cid: &str, round: usize, people: usize) -> anyhow::Result<()> {
        let from = chrono::Utc::now() + chrono::Duration::seconds(15);
        let iso = tminus::domain::payload::iso_millis;
        let w = self.post("/api/v1/platform/webinars", json!({"creatorId": cid, "title": format!("Soak {round}"),
            "link": "https://meet.example/soak", "fromTime": iso(from), "toTime": iso(from + chrono::Duration::hours(1))}), None).await?;
        let wid = w["id"].as_str().context("webinar id")?;
        let people: Vec<Value> = (0..people)
            .map(|i| json!({"name": format!("P {i}"), "email": format!("p{i}.r{round}@example.com")}))
            .collect();
        let path = format!("/api/v1/platform/webinars/{wid}/participants/bulk");
        self.post(&path, Value::Array(people), None).await?;
        Ok(())
    }
}

/// Starts the in-process receiver; its base URL.
async fn receiver(counts: Counts) -> anyhow::Result<String> {
    let app = axum::Router::new()
        .route("/{which}", axum::routing::post(receive))
        .with_state(counts);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let rx = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(rx)
}

/// Starts `tminus serve` on `db` at `port`.
fn service(db: &Path, port: u16) -> anyhow::Result<Child> {
    let exe = std::env::current_exe()?;
    Child::spawn(
        &exe,
        &[
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database",
            db.to_str().context("temp path")?,
            "--admin-token",
            ADMIN,
            "--reminder-offsets",
            "10s",
            "--allow-http",
            "--allow-private-targets",
            "--http-timeout",
            "2s",
            "--retry-base",
            "1s",
        ],
    )
}

/// Runs the soak.
pub async fn run(args: SoakArgs) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("tminus-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("soak.db");
    let counts = Counts::default();
    let rx = receiver(counts.clone()).await?;
    let port = free_port()?;
    let service = service(&db, port)?;
    let api = Api {
        http: reqwest::Client::new(),
        base: format!("http://127.0.0.1:{port}"),
    };
    api.wait_up().await?;
    let cid = api.set_up(&rx).await?;
    let started = Instant::now();
    let total = || counts.total();
    let mut samples = vec![sample(service.pid(), &db, 0, Duration::ZERO, 0)];
    println!("{}", samples[0]);
    let mut round = 0;
    while started.elapsed() < args.duration {
        round += 1;
        let tick = Instant::now();
        api.round(&cid, round, args.participants).await?;
        tokio::time::sleep(args.every.saturating_sub(tick.elapsed())).await;
        let s = sample(service.pid(), &db, round, started.elapsed(), total());
        println!("{s}");
        samples.push(s);
    }
    // Let the last round's retries and expiries finish before the last look.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let last = sample(service.pid(), &db, round, started.elapsed(), total());
    drop(service);
    let report = report(&args, round, &counts, samples, last);
    std::fs::write(&args.json, serde_json::to_string_pretty(&report)?)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The soak's figures: printed in one line, and returned to be written.
fn report(
    args: &SoakArgs,
    round: usize,
    counts: &Counts,
    samples: Vec<Value>,
    last: Value,
) -> Value {
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
        "requests": counts.total(),
        "requests_per_endpoint": ENDPOINTS.iter().zip(counts.0.iter()).map(|(e, c)| (e.to_string(), json!(c.load(Ordering::Relaxed)))).collect::<serde_json::Map<_, _>>(),
        "first_round": first,
        "last": last,
        "store_bytes_per_delivery": (grown / deliveries.max(1.0)).round(),
        "samples": samples,
    });
    println!(
        "soak: {round} rounds, {} requests; RSS {} -> {} MB; open files {} -> {}; store {} bytes ({} per delivery)",
        report["requests"], first["rss_mb"], report["last"]["rss_mb"], first["open_files"], report["last"]["open_files"],
        report["last"]["store_bytes"], report["store_bytes_per_delivery"]
    );
    report
}
