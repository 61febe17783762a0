//! One fan-out run of the benchmark: starts `--instances` copies of
//! `tminus serve` on the run's store, registers the participants through the
//! bulk API of the first, subscribes the receiver, moves the webinar so its
//! reminder falls due in 1.5 s, follows the arrivals and returns the figures.

use super::procs::{cpu_s, free_port, major_faults, peak_rss_mb, Child};
use super::receiver::Stats;
use super::stores::RunStore;
use super::BenchArgs;
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// The reminder offset the benchmark arms; the webinar is moved so that it
/// falls due right after set-up.
const OFFSET_S: i64 = 60;

/// Runs one fan-out with `instances` services on `store`; the receiver at
/// `rx_base` has been reset. Returns the run's figures (without the ceiling).
pub async fn one(
    args: &BenchArgs,
    exe: &Path,
    rx_base: &str,
    rx_pid: u32,
    store: &RunStore,
    instances: usize,
) -> anyhow::Result<Value> {
    let http = reqwest::Client::new();
    let (services, base) = start_services(args, exe, &http, store, instances).await?;
    let api = Api {
        http: http.clone(),
        base,
        admin: ADMIN.into(),
    };
    let (key, wid) = set_up(&api).await?;
    let t0 = Instant::now();
    register(&api, &wid, args.participants).await?;
    let register_s = t0.elapsed().as_secs_f64();
    println!(
        "registered {} participants in {register_s:.2} s",
        args.participants
    );
    subscribe(&api, &key, &wid, rx_base, args).await?;
    let store_before = store.bytes().await;
    let reminders_rows = api
        .admin("GET", &format!("/webinars/{wid}/reminders"), Value::Null)
        .await?["data"]
        .as_array()
        .map_or(0, Vec::len);

    // CPU from here to the last outcome recorded is the fan-out's.
    let pids: Vec<u32> = services.iter().map(Child::pid).collect();
    let before = Usage::read(&pids, rx_pid);
    let (due_us, rows_before) = fire(&api, &wid, store).await?;
    let expected = args.participants * args.subscriptions;
    let stats = follow(&http, rx_base, due_us, expected).await?;
    let peak = services
        .iter()
        .filter_map(|s| peak_rss_mb(s.pid()))
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
    wait_recorded(&api, &key, args.subscriptions).await;
    let after = Usage::read(&pids, rx_pid);
    let store_after = store.bytes().await;
    drop(services);

    if stats.objects < expected {
        bail!("only {} of {expected} deliveries arrived", stats.objects);
    }
    let elapsed_s = stats.last_ms / 1000.0;
    let rate = stats.objects as f64 / elapsed_s.max(1e-9);
    let deliveries = expected as f64;
    Ok(json!({
        "database": if store.is_postgres() { "postgres" } else { "sqlite" },
        "instances": instances,
        "deliveries": stats.objects,
        "requests": stats.count,
        "batch": args.batch,
        "elapsed_s": round3(elapsed_s),
        "rate_rps": round(rate),
        "first_delivery_lateness_ms": round3(stats.first_ms),
        "lateness_p50_ms": round3(stats.p50_ms),
        "lateness_p99_ms": round3(stats.p99_ms),
        "lateness_max_ms": round3(stats.max_ms),
        "peak_rss_mb": peak.map(round3),
        "cpu_us_per_delivery": round((after.cpu - before.cpu) * 1e6 / deliveries),
        "receiver_cpu_us_per_request": round((after.rx_cpu - before.rx_cpu) * 1e6 / stats.count.max(1) as f64),
        "major_page_faults": after.faults.saturating_sub(before.faults),
        "store_bytes_per_delivery": match (store_before, store_after) {
            (Some(b), Some(a)) => json!(round((a.saturating_sub(b)) as f64 / deliveries)),
            _ => Value::Null,
        },
        "register_s": round3(register_s),
        "register_per_100k_s": round3(register_s / args.participants as f64 * 100_000.0),
        "reminder_rows_before_firing": reminders_rows,
        "stored_rows_before_firing": rows_before,
        "participants": args.participants,
        "subscriptions": args.subscriptions,
    }))
}

/// The services' admin token.
const ADMIN: &str = "bench-admin";

/// Starts `instances` copies of `tminus serve` on `store`, one at a time
/// (the first migrates the schema); returns them and the first one's base
/// URL.
async fn start_services(
    args: &BenchArgs,
    exe: &Path,
    http: &reqwest::Client,
    store: &RunStore,
    instances: usize,
) -> anyhow::Result<(Vec<Child>, String)> {
    let mut services = Vec::new();
    let mut first = None;
    for _ in 0..instances {
        let listen = format!("127.0.0.1:{}", free_port()?);
        services.push(Child::spawn(
            exe,
            &[
                "serve",
                "--listen",
                &listen,
                "--database",
                &store.url,
                "--admin-token",
                ADMIN,
                "--reminder-offsets",
                &format!("{OFFSET_S}s"),
                "--allow-http",
                "--allow-private-targets",
                "--api-rate",
                "100000",
                "--default-max-concurrency",
                &args.concurrency.to_string(),
            ],
        )?);
        let base = format!("http://{listen}");
        wait_healthy(http, &base).await?;
        first.get_or_insert(base);
    }
    Ok((services, first.context("no instance")?))
}

/// A creator, an API key for them, and a webinar two hours ahead: the key
/// and the webinar's id.
async fn set_up(api: &Api) -> anyhow::Result<(String, String)> {
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
    Ok((key, wid))
}

/// Registers `people` participants through the bulk API, 100 000 a call.
async fn register(api: &Api, wid: &str, people: usize) -> anyhow::Result<()> {
    let mut done = 0;
    while done < people {
        let n = (people - done).min(100_000);
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
    Ok(())
}

/// Subscribes `--subscriptions` receiver paths to the webinar.
async fn subscribe(
    api: &Api,
    key: &str,
    wid: &str,
    rx_base: &str,
    args: &BenchArgs,
) -> anyhow::Result<()> {
    for i in 0..args.subscriptions {
        let mut body = json!({"hookUrl": format!("{rx_base}/hook/{i}"), "event": "webinar.reminder.all", "webinar": wid, "maxConcurrency": args.concurrency});
        if args.batch > 1 {
            body["batchSize"] = json!(args.batch);
        }
        let r = api
            .http
            .post(format!("{}/api/v1/integration/webhook/webhook", api.base))
            .header("x-api-key", key)
            .json(&body)
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("subscribe failed: {}", r.text().await?);
        }
    }
    Ok(())
}

/// Moves the webinar so its one reminder falls due 1.5 s from now, on a
/// whole millisecond (the API's precision): lateness counts from the
/// instant the service was given. Returns that instant (µs) and the rows
/// stored before it fires.
async fn fire(api: &Api, wid: &str, store: &RunStore) -> anyhow::Result<(i64, Option<i64>)> {
    let due = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let due = chrono::DateTime::from_timestamp_millis(due.timestamp_millis()).unwrap_or(due);
    let from = due + chrono::Duration::seconds(OFFSET_S);
    api.admin(
        "POST",
        &format!("/webinars/{wid}/reschedule"),
        json!({"fromTime": iso(from)}),
    )
    .await?;
    let rows_before = store.stored_rows(wid).await;
    Ok((due.timestamp_micros(), rows_before))
}

/// CPU seconds of the services and of the receiver, and the services'
/// major page faults, at one instant.
struct Usage {
    cpu: f64,
    rx_cpu: f64,
    faults: u64,
}

impl Usage {
    fn read(pids: &[u32], rx_pid: u32) -> Usage {
        Usage {
            cpu: pids.iter().filter_map(|p| cpu_s(*p)).sum(),
            rx_cpu: cpu_s(rx_pid).unwrap_or(0.0),
            faults: pids.iter().filter_map(|p| major_faults(*p)).sum(),
        }
    }
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
            // One page holds the bench's few subscriptions (at most 1000).
            .get(format!(
                "{}/api/v1/integration/webhook/webhook?limit=1000",
                api.base
            ))
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

pub(super) async fn wait_healthy(http: &reqwest::Client, base: &str) -> anyhow::Result<()> {
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

fn iso(t: chrono::DateTime<chrono::Utc>) -> String {
    crate::domain::payload::iso_millis(t)
}

fn round(x: f64) -> f64 {
    x.round()
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
