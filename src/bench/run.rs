//! One fan-out run of the benchmark: starts `--instances` copies of
//! `tminus serve` on the run's store, sets up the webinars, participants
//! and subscriptions through the API of the first (`setup`), moves every
//! webinar so their reminders fall due at one instant, follows the arrivals
//! and returns the figures: over all subscriptions, and in a fleet run
//! those of the healthy endpoints and of the slow ones apart.

use super::fleet::{self, Endpoint, Fleet};
use super::observe;
use super::procs::{cpu_s, free_port, major_faults, peak_rss_mb, Child};
use super::receiver::Stats;
use super::setup::{self, Api, OFFSET_S};
use super::stores::RunStore;
use super::BenchArgs;
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where the run's subscriptions point: the receiver's plain port for the
/// driver's own calls, the base of the hook URLs (HTTPS with
/// `--receiver-tls`), that of the down endpoints, and the CA tminus is to
/// trust (`--target-ca`).
pub struct Target {
    pub control: String,
    pub hooks: String,
    pub down: String,
    pub ca: Option<PathBuf>,
}

/// How long the slow endpoints may keep receiving once every healthy one
/// has all its deliveries.
const SLOW_GRACE: Duration = Duration::from_secs(60);

/// Runs one fan-out of `fleet` with `instances` services on `store`; the
/// receiver has been reset and shaped. Returns the run's figures (without
/// the ceiling).
#[allow(clippy::too_many_arguments)]
pub async fn one(
    args: &BenchArgs,
    exe: &Path,
    target: &Target,
    rx_pid: u32,
    store: &RunStore,
    instances: usize,
    fleet: &Fleet,
) -> anyhow::Result<Value> {
    let http = reqwest::Client::new();
    let (services, bases) = start_services(args, exe, &http, store, instances, target).await?;
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
    let hook_bases: Vec<&str> = (0..fleet.subscriptions)
        .map(|i| match fleet.endpoint(i) {
            Endpoint::Down => target.down.as_str(),
            _ => target.hooks.as_str(),
        })
        .collect();
    setup::subscribe(&api, &platform, &hook_bases, args).await?;
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
    let expected = people * fleet.reachable();
    let healthy_expected = people * fleet.healthy();
    let healthy_range = (0, fleet.healthy() as u32);
    let stats = follow(
        &http,
        &target.control,
        due_us,
        expected,
        healthy_expected,
        healthy_range,
    )
    .await?;
    let healthy = stats_of(&http, &target.control, due_us, healthy_range).await?;
    let peak = services
        .iter()
        .filter_map(|s| peak_rss_mb(s.pid()))
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
    let lanes = observe::peak_lanes(&http, &bases, ADMIN).await;
    let subs = observe::subscriptions(&api, key).await;
    let healthy_subs: Vec<String> = subs
        .iter()
        .filter(|(_, i)| fleet.endpoint(*i) == Endpoint::Healthy)
        .map(|(id, _)| id.clone())
        .collect();
    observe::wait_recorded(&api, key, &healthy_subs).await;
    let failed = observe::failed_attempts(&http, &bases, ADMIN).await;
    let after = Usage::read(&pids, rx_pid);
    // Read after the CPU: paging through every delivery costs the service.
    let healthy_failed = match fleet.is_mixed() {
        true => Some(observe::failed_attempts_of(&api, key, &healthy_subs).await),
        false => failed,
    };
    let store_after = store.bytes().await;
    drop(services);

    if healthy.objects < healthy_expected {
        bail!(
            "only {} of {healthy_expected} deliveries arrived at the healthy endpoints",
            healthy.objects
        );
    }
    if !fleet.is_mixed() && stats.objects < expected {
        bail!("only {} of {expected} deliveries arrived", stats.objects);
    }
    let elapsed_s = stats.last_ms / 1000.0;
    let rate = stats.objects as f64 / elapsed_s.max(1e-9);
    let deliveries = stats.objects.max(1) as f64;
    let webinar_subs = fleet.subscriptions * args.webinars;
    let shape = args.shape(fleet);
    // Over a mix of endpoints one limit means nothing: the healthy
    // endpoints' is under `healthy`.
    let limit = match fleet.is_mixed() {
        true => None,
        false => shape.endpoint_limit_rps(webinar_subs, args.concurrency),
    };
    let mut r = json!({
        "database": if store.is_postgres() { "postgres" } else { "sqlite" },
        "instances": instances,
        "tls": target.ca.is_some(),
        "deliveries": stats.objects,
        "requests": stats.count,
        "batch": args.batch,
        "elapsed_s": round3(elapsed_s),
        "rate_rps": round(rate),
        "first_delivery_lateness_ms": round3(stats.first_ms),
        "lateness_p50_ms": round3(stats.p50_ms),
        "lateness_p99_ms": round3(stats.p99_ms),
        "lateness_max_ms": round3(stats.max_ms),
        "last_lateness_ms": fleet::last_lateness(&stats.fanout_last),
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
        "subscriptions": fleet.subscriptions,
        "slow_endpoints": fleet.slow,
        "down_endpoints": fleet.down,
    });
    if args.slow + args.down > 0 {
        let limit = shape.endpoint_limit_rps(fleet.healthy() * args.webinars, args.concurrency);
        r["healthy"] = fleet::figures(&healthy, healthy_expected, limit, healthy_failed);
    }
    if fleet.slow > 0 {
        let range = (healthy_range.1, fleet.reachable() as u32);
        let slow = stats_of(&http, &target.control, due_us, range).await?;
        r["slow"] = fleet::figures(&slow, people * fleet.slow, None, None);
    }
    Ok(r)
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
    target: &Target,
) -> anyhow::Result<(Vec<Child>, Vec<String>)> {
    let mut services = Vec::new();
    let mut bases = Vec::new();
    let ca = target.ca.as_ref().map(|p| p.display().to_string());
    for _ in 0..instances {
        let listen = format!("127.0.0.1:{}", free_port()?);
        let trust = ca.as_deref().map(|p| ["--target-ca", p]);
        let flags = [
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
        ];
        let flags: Vec<&str> = flags
            .into_iter()
            .chain(trust.into_iter().flatten())
            .collect();
        services.push(Child::spawn(exe, &flags)?);
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

/// What arrived at the receiver for the subscriptions in `range` (from,
/// before).
async fn stats_of(
    http: &reqwest::Client,
    rx: &str,
    due_us: i64,
    (from, to): (u32, u32),
) -> anyhow::Result<Stats> {
    let url = format!("{rx}/stats?due_us={due_us}&subs_from={from}&subs_to={to}");
    Ok(http.get(url).send().await?.json().await?)
}

/// Polls the receiver, printing progress, until everything arrived, the
/// flow stalls for 30 s, or the healthy endpoints (`healthy`, from and
/// before) have all theirs and the others have had [`SLOW_GRACE`] more.
async fn follow(
    http: &reqwest::Client,
    rx: &str,
    due_us: i64,
    expected: usize,
    healthy_expected: usize,
    healthy: (u32, u32),
) -> anyhow::Result<Stats> {
    let mut last = 0;
    let mut stalled = Instant::now();
    let mut healthy_done: Option<Instant> = None;
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
        if healthy_done.is_none()
            && healthy_expected < expected
            && stats_of(http, rx, due_us, healthy).await?.objects >= healthy_expected
        {
            println!("  the healthy endpoints have all theirs");
            healthy_done = Some(Instant::now());
        }
        if healthy_done.is_some_and(|t| t.elapsed() > SLOW_GRACE) {
            return Ok(s);
        }
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
