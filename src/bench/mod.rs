//! `tminus bench`: the fan-out benchmark of `shared/bench/METHOD.md`. It
//! starts a fast receiver (a separate process), measures the HTTP ceiling
//! against it with `wrk`, then starts `tminus serve` (another process, with
//! its durable store in its normal settings), registers N participants
//! through the bulk API, subscribes S endpoints and lets one reminder fan
//! out. It prints the figures and writes them as JSON. It is a program that
//! reports, never a test that asserts time.

mod procs;
pub mod receiver;

use anyhow::{bail, Context};
use procs::{free_port, peak_rss_mb, Child};
use receiver::Stats;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The reminder offset the benchmark arms; the webinar is moved so that it
/// falls due right after set-up.
const OFFSET_S: i64 = 60;

/// Options of `tminus bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Participants of the webinar.
    #[arg(long, default_value_t = 100_000)]
    pub participants: usize,
    /// Subscriptions receiving the reminder.
    #[arg(long, default_value_t = 1)]
    pub subscriptions: usize,
    /// Store: a SQLite path (default: a temporary file) or postgres:// URL.
    #[arg(long)]
    pub database: Option<String>,
    /// Where to write the results.
    #[arg(long, default_value = "bench-result.json")]
    pub json: PathBuf,
    /// maxConcurrency of each subscription.
    #[arg(long, default_value_t = 128)]
    pub concurrency: u32,
    /// Payload objects per POST (1: the seed's one per POST).
    #[arg(long, default_value_t = 1)]
    pub batch: u32,
    /// The wrk script; default ../shared/bench/ceiling.lua, else bench/ceiling.lua.
    #[arg(long)]
    pub ceiling_script: Option<PathBuf>,
    /// How long wrk measures the ceiling.
    #[arg(long, default_value = "5s")]
    pub ceiling_duration: String,
}

/// Runs the benchmark.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let script = ceiling_script(&args)?;
    let exe = std::env::current_exe()?;
    let dir = tempfile_dir()?;

    let (rx_child, rx_port) = Child::spawn_printing_port(&exe, &["bench-receiver"])?;
    let rx_base = format!("http://127.0.0.1:{rx_port}");
    println!("receiver on {rx_base}");
    let ceiling = wrk(&script, &format!("{rx_base}/hook"), &args.ceiling_duration)?;
    println!(
        "ceiling (wrk -t1 -c64 -d{}): {ceiling:.0} requests/s",
        args.ceiling_duration
    );
    let http = reqwest::Client::new();
    http.post(format!("{rx_base}/reset"))
        .send()
        .await?
        .error_for_status()?;

    let db = args
        .database
        .clone()
        .unwrap_or_else(|| dir.join("bench.db").display().to_string());
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let admin = "bench-admin";
    let tminus = Child::spawn(
        &exe,
        &[
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database",
            &db,
            "--admin-token",
            admin,
            "--reminder-offsets",
            &format!("{OFFSET_S}s"),
            "--allow-http",
            "--allow-private-targets",
            "--api-rate",
            "100000",
            "--default-max-concurrency",
            &args.concurrency.to_string(),
        ],
    )?;
    wait_healthy(&http, &base).await?;

    let api = Api {
        http: http.clone(),
        base: base.clone(),
        admin: admin.into(),
    };
    let creator = api
        .admin(
            "POST",
            "/creators",
            json!({"name": "Bench", "timezone": "Asia/Kolkata"}),
        )
        .await?;
    let cid = creator["id"].as_str().context("creator")?.to_owned();
    let key = api
        .admin("POST", &format!("/creators/{cid}/api-keys"), json!({}))
        .await?["key"]
        .as_str()
        .context("key")?
        .to_owned();
    let far = chrono::Utc::now() + chrono::Duration::hours(2);
    let webinar = api
        .admin("POST", "/webinars", json!({"creatorId": cid, "title": "Introduction to Digital Marketing",
            "link": "https://meet.google.com/abc-defg-hij", "fromTime": iso(far), "toTime": iso(far + chrono::Duration::hours(1))}))
        .await?;
    let wid = webinar["id"].as_str().context("webinar")?.to_owned();

    let t0 = Instant::now();
    let mut done = 0;
    while done < args.participants {
        let n = (args.participants - done).min(100_000);
        let body: Vec<Value> = (done..done + n)
            .map(|i| json!({"name": format!("Participant {i}"), "email": format!("p{i}@example.com"), "phone": "1234567890", "timezone": "+05:30"}))
            .collect();
        api.admin(
            "POST",
            &format!("/webinars/{wid}/participants/bulk"),
            Value::Array(body),
        )
        .await?;
        done += n;
    }
    let register_s = t0.elapsed().as_secs_f64();
    println!(
        "registered {} participants in {register_s:.2} s",
        args.participants
    );

    for i in 0..args.subscriptions {
        let mut body = json!({"hookUrl": format!("{rx_base}/hook/{i}"), "event": "webinar.reminder.all", "webinar": wid, "maxConcurrency": args.concurrency});
        if args.batch > 1 {
            body["batchSize"] = json!(args.batch);
        }
        let r = http
            .post(format!("{base}/api/v1/integration/webhook/webhook"))
            .header("x-api-key", &key)
            .json(&body)
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("subscribe failed: {}", r.text().await?);
        }
    }
    let store_before = store_bytes(&db);
    let reminders_rows = api
        .admin("GET", &format!("/webinars/{wid}/reminders"), Value::Null)
        .await?["data"]
        .as_array()
        .map(|a| a.len())
        .unwrap_or(0);

    // Move the webinar so its one reminder falls due 1.5 s from now.
    let due = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let from = due + chrono::Duration::seconds(OFFSET_S);
    api.admin(
        "POST",
        &format!("/webinars/{wid}/reschedule"),
        json!({"fromTime": iso(from)}),
    )
    .await?;
    let rows_before = stored_rows(&db, &wid);
    let expected = args.participants * args.subscriptions;
    let due_us = due.timestamp_micros();
    let stats = follow(&http, &rx_base, due_us, expected).await?;
    let peak = peak_rss_mb(tminus.pid());
    wait_recorded(&api, &key, args.subscriptions).await;
    let store_after = store_bytes(&db);
    drop(tminus);
    drop(rx_child);

    let deliveries = args.participants * args.subscriptions;
    let elapsed_s = stats.last_ms / 1000.0;
    let rate = stats.objects as f64 / elapsed_s.max(1e-9);
    let result = json!({
        "ceiling_rps": round(ceiling),
        "deliveries": stats.objects,
        "requests": stats.count,
        "batch": args.batch,
        "elapsed_s": round3(elapsed_s),
        "rate_rps": round(rate),
        "ratio": round3(rate / ceiling),
        "first_delivery_lateness_ms": round3(stats.first_ms),
        "lateness_p50_ms": round3(stats.p50_ms),
        "lateness_p99_ms": round3(stats.p99_ms),
        "lateness_max_ms": round3(stats.max_ms),
        "peak_rss_mb": peak.map(round3),
        "store_bytes_per_delivery": match (store_before, store_after) {
            (Some(b), Some(a)) => json!(round((a.saturating_sub(b)) as f64 / deliveries as f64)),
            _ => Value::Null,
        },
        "register_s": round3(register_s),
        "register_per_100k_s": round3(register_s / args.participants as f64 * 100_000.0),
        "reminder_rows_before_firing": reminders_rows,
        "stored_rows_before_firing": rows_before,
        "participants": args.participants,
        "subscriptions": args.subscriptions,
        "database": if db.starts_with("postgres") { "postgres" } else { "sqlite" },
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    });
    println!("\n{}", serde_json::to_string_pretty(&result)?);
    std::fs::write(&args.json, serde_json::to_vec_pretty(&result)?)?;
    println!("written to {}", args.json.display());
    let _ = std::fs::remove_dir_all(&dir);
    if stats.objects < expected {
        bail!("only {} of {expected} deliveries arrived", stats.objects);
    }
    Ok(())
}

struct Api {
    http: reqwest::Client,
    base: String,
    admin: String,
}

impl Api {
    async fn admin(&self, method: &str, path: &str, body: Value) -> anyhow::Result<Value> {
        let url = format!("{}/api/v1/platform{path}", self.base);
        let req = self
            .http
            .request(method.parse()?, url)
            .bearer_auth(&self.admin);
        let req = if body.is_null() { req } else { req.json(&body) };
        let r = req.send().await?;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{method} {path}: {status} {v}");
        }
        Ok(v)
    }
}

/// Polls the receiver, printing progress, until everything arrived or the
/// flow stalls for 30 s.
async fn follow(
    http: &reqwest::Client,
    rx: &str,
    due_us: i64,
    expected: usize,
) -> anyhow::Result<Stats> {
    let mut last = 0;
    let mut stalled = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let s: Stats = http
            .get(format!("{rx}/stats?due_us={due_us}"))
            .send()
            .await?
            .json()
            .await?;
        if s.objects != last {
            println!("  {:>9} / {expected} arrived", s.objects);
            last = s.objects;
            stalled = Instant::now();
        }
        if s.objects >= expected || stalled.elapsed() > Duration::from_secs(30) {
            return Ok(s);
        }
    }
}

/// Waits until tminus has recorded every outcome (nothing pending).
async fn wait_recorded(api: &Api, key: &str, subs: usize) {
    for _ in 0..100 {
        let r = api
            .http
            .get(format!("{}/api/v1/integration/webhook/webhook", api.base))
            .header("x-api-key", key)
            .send()
            .await;
        let Ok(Ok(list)) = (match r {
            Ok(r) => Ok(r.json::<Value>().await),
            Err(e) => Err(e),
        }) else {
            return;
        };
        let mut pending = 0;
        for s in list["data"].as_array().into_iter().flatten().take(subs) {
            let id = s["id"].as_str().unwrap_or_default();
            let url = format!(
                "{}/api/v1/integration/webhook/webhook/{id}/deliveries?status=pending&limit=1",
                api.base
            );
            if let Ok(r) = api.http.get(url).header("x-api-key", key).send().await {
                pending += r
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|v| v["data"].as_array().map(|a| a.len()))
                    .unwrap_or(0);
            }
        }
        if pending == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_healthy(http: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    for _ in 0..100 {
        if http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("tminus did not start")
}

fn ceiling_script(args: &BenchArgs) -> anyhow::Result<PathBuf> {
    let candidates = [
        args.ceiling_script.clone(),
        Some("../shared/bench/ceiling.lua".into()),
        Some("bench/ceiling.lua".into()),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.exists())
        .context("ceiling.lua not found: pass --ceiling-script")
}

/// Runs wrk as METHOD.md says and returns its Requests/sec.
fn wrk(script: &std::path::Path, url: &str, duration: &str) -> anyhow::Result<f64> {
    let out = std::process::Command::new("wrk")
        .args(["-t1", "-c64", &format!("-d{duration}"), "-s"])
        .arg(script)
        .arg(url)
        .output()
        .map_err(|_| anyhow::anyhow!("wrk is not installed: install it with `apt-get install wrk` (Debian/Ubuntu) or `brew install wrk` (macOS)"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            l.strip_prefix("Requests/sec:")
                .map(|v| v.trim().parse::<f64>())
        })
        .context("wrk printed no Requests/sec")?
        .context("wrk's Requests/sec is not a number")
}

/// Rows the schedule holds for the webinar before its reminder fires
/// (pending reminders, slices, deliveries); `None` for other stores.
fn stored_rows(db: &str, webinar: &str) -> Option<i64> {
    if db.starts_with("postgres") {
        return None;
    }
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .ok()?;
    c.query_row(
        "SELECT (SELECT COUNT(*) FROM reminders WHERE webinar_id = ?1 AND status = 'pending')
              + (SELECT COUNT(*) FROM slices WHERE webinar_id = ?1)
              + (SELECT COUNT(*) FROM deliveries WHERE webinar_id = ?1)",
        [webinar],
        |r| r.get(0),
    )
    .ok()
}

/// Bytes of the SQLite database and its WAL; `None` for other stores.
fn store_bytes(db: &str) -> Option<u64> {
    if db.starts_with("postgres") {
        return None;
    }
    let size = |p: String| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    Some(size(db.to_owned()) + size(format!("{db}-wal")))
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("tminus-bench-{}", crate::domain::ids::new_id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

fn iso(t: chrono::DateTime<chrono::Utc>) -> String {
    crate::domain::payload::iso_millis(t)
}

fn round(x: f64) -> f64 {
    x.round()
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
