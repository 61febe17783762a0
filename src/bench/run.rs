//! One fan-out run of the benchmark: starts `--instances` copies of
//! `tminus serve` on the run's store, sets up the webinars, participants
//! and subscriptions through the API of the first (`setup`), moves every
//! webinar so their reminders fall due at one instant, follows the arrivals
//! and returns the figures.

use super::procs::{cpu_s, free_port, major_faults, peak_rss_mb, Child};
use super::receiver::Stats;
use super::setup::{self, Api, OFFSET_S};
use super::stores::RunStore;
use super::BenchArgs;
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

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
    let (services, bases) = start_services(args, exe, &http, store, instances).await?;
    let api = Api {
        http: http.clone(),
        base: bases.first().context("no instance")?.clone(),
        admin: ADMIN.into(),
    };
    let platform = setup::set_up(&api, args).await?;
    let (key, wid) = (&platform.key, &platform.webinars[0]);
    let t0 = Instant::now();
    setup::register(&api, &platform, args.participants).await?;
    let register_s = t0.elapsed().as_secs_f64();
    let people = args.participants * args.webinars;
    println!("registered {people} participants in {register_s:.2} s");
    setup::subscribe(&api, &platform, rx_base, args).await?;
    let store_before = store.bytes().await;
    let reminders_rows = api
        .admin("GET", &format!("/webinars/{wid}/reminders"), Value::Null)
        .await?["data"]
        .as_array()
        .map_or(0, Vec::len);

    // CPU from here to the last outcome recorded is the fan-out's.
    let pids: Vec<u32> = services.iter().map(Child::pid).collect();
    let before = Usage::read(&pids, rx_pid);
    let due_us = setup::fire(&api, &platform).await?.timestamp_micros();
    let rows_before = store.stored_rows(wid).await;
    let expected = people * args.subscriptions;
    let stats = follow(&http, rx_base, due_us, expected).await?;
    let peak = services
        .iter()
        .filter_map(|s| peak_rss_mb(s.pid()))
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
    let lanes = peak_lanes(&http, &bases).await;
    wait_recorded(&api, key, args.subscriptions * args.webinars).await;
    let failed = failed_attempts(&http, &bases).await;
    let after = Usage::read(&pids, rx_pid);
    let store_after = store.bytes().await;
    drop(services);

    if stats.objects < expected {
        bail!("only {} of {expected} deliveries arrived", stats.objects);
    }
    let elapsed_s = stats.last_ms / 1000.0;
    let rate = stats.objects as f64 / elapsed_s.max(1e-9);
    let deliveries = expected as f64;
    let limit = args
        .shape()
        .endpoint_limit_rps(args.subscriptions * args.webinars, args.concurrency);
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
        "webinar_first_lateness_p50_ms": round3(stats.webinar_first.p50_ms),
        "webinar_first_lateness_p99_ms": round3(stats.webinar_first.p99_ms),
        "webinar_first_lateness_max_ms": round3(stats.webinar_first.max_ms),
        "webinar_last_lateness_p50_ms": round3(stats.webinar_last.p50_ms),
        "webinar_last_lateness_p99_ms": round3(stats.webinar_last.p99_ms),
        "webinar_last_lateness_max_ms": round3(stats.webinar_last.max_ms),
        "peak_connections": stats.peak_connections,
        "peak_lanes": lanes,
        "failed_attempts": failed,
        "receiver_refused_busy": stats.refused,
        "endpoint_limit_rps": limit.map(round),
        "efficiency": limit.map(|l| round3(rate / l)),
        "peak_rss_mb": peak.map(round3),
        "cpu_us_per_delivery": round((after.cpu - before.cpu) * 1e6 / deliveries),
        "receiver_cpu_us_per_request": round((after.rx_cpu - before.rx_cpu) * 1e6 / stats.count.max(1) as f64),
        "major_page_faults": after.faults.saturating_sub(before.faults),
        "store_bytes_per_delivery": match (store_before, store_after) {
            (Some(b), Some(a)) => json!(round((a.saturating_sub(b)) as f64 / deliveries)),
            _ => Value::Null,
        },
        "register_s": round3(register_s),
        "register_per_100k_s": round3(register_s / people as f64 * 100_000.0),
        "reminder_rows_before_firing": reminders_rows,
        "stored_rows_before_firing": rows_before,
        "webinars": args.webinars,
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
) -> anyhow::Result<(Vec<Child>, Vec<String>)> {
    let mut services = Vec::new();
    let mut bases = Vec::new();
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
        bases.push(base);
    }
    Ok((services, bases))
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

/// The most delivery lanes each service ran at once (`tminus_lanes_peak`
/// of its `/metrics`), summed over the services; null if unread.
async fn peak_lanes(http: &reqwest::Client, bases: &[String]) -> Option<u64> {
    let mut sum = 0;
    for base in bases {
        let req = http.get(format!("{base}/metrics")).bearer_auth(ADMIN);
        let text = req.send().await.ok()?.text().await.ok()?;
        let line = text.lines().find(|l| l.starts_with("tminus_lanes_peak "))?;
        sum += line.split_whitespace().nth(1)?.parse::<f64>().ok()? as u64;
    }
    Some(sum)
}

/// Attempts that failed (`tminus_deliveries_total{outcome="failed"}`),
/// summed over the services; null if unread.
async fn failed_attempts(http: &reqwest::Client, bases: &[String]) -> Option<u64> {
    let mut sum = 0;
    for base in bases {
        let req = http.get(format!("{base}/metrics")).bearer_auth(ADMIN);
        let text = req.send().await.ok()?.text().await.ok()?;
        let series = "tminus_deliveries_total{outcome=\"failed\"} ";
        let line = text.lines().find(|l| l.starts_with(series))?;
        sum += line[series.len()..].trim().parse::<f64>().ok()? as u64;
    }
    Some(sum)
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

fn round(x: f64) -> f64 {
    x.round()
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
