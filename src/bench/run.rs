//! One fan-out run of the benchmark: starts `--instances` copies of
//! `tminus serve` on the run's store, sets up the webinars, participants
//! and subscriptions through the API of the first (`setup`), moves every
//! webinar so their reminders fall due at one instant, follows the arrivals
//! and returns the figures: over all subscriptions, and in a fleet run
//! those of the healthy endpoints and of the slow ones apart (`measured`).

use super::fleet::{self, Endpoint, Fleet};
use super::measured::{all_arrived, figures, Measured, Usage};
use super::observe;
use super::procs::{free_port, peak_rss_mb, Child};
use super::quota::Quota;
use super::receiver::Stats;
use super::server;
use super::setup::{self, lead_s, Api};
use super::stores::RunStore;
use super::wire::WireCounts;
use super::BenchArgs;
use anyhow::{bail, Context};
use serde_json::Value;
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
    let (services, bases, quotas) =
        start_services(args, exe, &http, store, instances, target).await?;
    let api = Api {
        http: http.clone(),
        base: bases.first().context("no instance")?.clone(),
        admin: ADMIN.into(),
    };
    let platform = setup::set_up(&api, args).await?;
    let (key, wid) = (&platform.key, &platform.webinars[0]);
    let register_s = register(&api, &platform, args).await?;
    let people = args.participants * args.webinars;
    setup::subscribe(&api, &platform, &hook_bases(fleet, target), args).await?;
    let store_before = store.bytes().await;
    let reminders_rows = reminder_rows(&api, wid).await?;

    let due_us = setup::fire(&api, &platform, lead_s(args))
        .await?
        .timestamp_micros();
    // CPU from here (the webinars moved, their reminders not yet staged)
    // to the last outcome recorded is the fan-out's.
    let pids: Vec<u32> = services.iter().map(Child::pid).collect();
    let before = Usage::read(&pids, rx_pid);
    let server_before = Readings::read(store, &quotas).await;
    let waits = store.server().await.map(server::Waits::sample);
    let rows_before = store.stored_rows(wid).await;
    let stats = follow(&http, &target.control, due_us, people, fleet).await?;
    let healthy = stats_of(&http, &target.control, due_us, (0, fleet.healthy() as u32)).await?;
    let peak_rss_mb = peak_rss(&services);
    let lanes = observe::peak_lanes(&http, &bases, ADMIN).await;
    let healthy_subs = healthy_subscriptions(&api, key, fleet).await;
    observe::wait_recorded(&api, key, &healthy_subs).await;
    let failed = observe::failed_attempts(&http, &bases, ADMIN).await;
    let after = Usage::read(&pids, rx_pid);
    let server_after = Readings::read(store, &quotas).await;
    let waits = server::Waits::stop_all(waits).await;
    // Read after the CPU: paging through every delivery costs the service.
    let healthy_failed = match fleet.is_mixed() {
        true => Some(observe::failed_attempts_of(&api, key, &healthy_subs).await),
        false => failed,
    };
    let store_after = store.bytes().await;
    drop(services);

    let m = Measured {
        stats,
        healthy,
        register_s,
        reminders_rows,
        rows_before,
        peak_rss_mb,
        lanes,
        failed,
        healthy_failed,
        usage: (before, after),
        store_bytes: (store_before, store_after),
        throttled_s: server_after.throttled_since(&server_before),
        round_trips: (server_before.trips, server_after.trips),
        wal: (server_before.wal, server_after.wal),
        waits,
    };
    all_arrived(&m, fleet, people)?;
    let mut r = figures(args, fleet, store, target.ca.is_some(), instances, &m);
    if fleet.slow > 0 {
        let range = (fleet.healthy() as u32, fleet.reachable() as u32);
        let slow = stats_of(&http, &target.control, due_us, range).await?;
        r["slow"] = fleet::figures(&slow, people * fleet.slow, None, None);
    }
    Ok(r)
}

/// Registers every webinar's participants; answers how long it took.
async fn register(api: &Api, platform: &setup::Platform, args: &BenchArgs) -> anyhow::Result<f64> {
    let t0 = Instant::now();
    setup::register(api, platform, args.participants).await?;
    let register_s = t0.elapsed().as_secs_f64();
    let people = args.participants * args.webinars;
    println!("registered {people} participants in {register_s:.2} s");
    Ok(register_s)
}

/// Each subscription's hook base: the down port for a down endpoint, the
/// receiver's hooks for the others.
fn hook_bases<'t>(fleet: &Fleet, target: &'t Target) -> Vec<&'t str> {
    (0..fleet.subscriptions)
        .map(|i| match fleet.endpoint(i) {
            Endpoint::Down => target.down.as_str(),
            _ => target.hooks.as_str(),
        })
        .collect()
}

/// How many reminders the first webinar has before it fires.
async fn reminder_rows(api: &Api, webinar: &str) -> anyhow::Result<usize> {
    Ok(api
        .admin(
            "GET",
            &format!("/webinars/{webinar}/reminders"),
            Value::Null,
        )
        .await?["data"]
        .as_array()
        .map_or(0, Vec::len))
}

/// The highest peak resident memory of the services, in MB.
fn peak_rss(services: &[Child]) -> Option<f64> {
    services
        .iter()
        .filter_map(|s| peak_rss_mb(s.pid()))
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
}

/// The ids of the subscriptions whose endpoints are healthy.
async fn healthy_subscriptions(api: &Api, key: &str, fleet: &Fleet) -> Vec<String> {
    observe::subscriptions(api, key)
        .await
        .iter()
        .filter(|(_, i)| fleet.endpoint(*i) == Endpoint::Healthy)
        .map(|(id, _)| id.clone())
        .collect()
}

/// What a run reads beside the services at one instant: the relay's
/// counts, the PostgreSQL server's WAL position, and how long the
/// instances' quotas have held them back so far (`None` where there is no
/// relay, no PostgreSQL, no quota).
struct Readings {
    trips: Option<WireCounts>,
    wal: Option<u64>,
    throttled: Option<f64>,
}

impl Readings {
    async fn read(store: &RunStore, quotas: &[Quota]) -> Readings {
        let wal = match store.server().await {
            Some(c) => server::wal_lsn(&c).await,
            None => None,
        };
        Readings {
            trips: store.wire_counts(),
            wal,
            throttled: (!quotas.is_empty())
                .then(|| quotas.iter().filter_map(Quota::throttled_s).sum()),
        }
    }

    /// How long the quotas held the instances back since `before`.
    fn throttled_since(&self, before: &Readings) -> Option<f64> {
        Some(self.throttled? - before.throttled?)
    }
}

/// The services' admin token.
const ADMIN: &str = "bench-admin";

/// Starts `instances` copies of `tminus serve` on `store`, one at a time
/// (the first migrates the schema), each held to `--instance-cpu` cores
/// when given; returns them, their base URLs and their quotas (to be
/// dropped after them).
async fn start_services(
    args: &BenchArgs,
    exe: &Path,
    http: &reqwest::Client,
    store: &RunStore,
    instances: usize,
    target: &Target,
) -> anyhow::Result<(Vec<Child>, Vec<String>, Vec<Quota>)> {
    let mut quotas = Vec::new();
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
            &format!("{}s", lead_s(args)),
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
        let child = Child::spawn(exe, &flags)?;
        if let Some(cores) = args.instance_cpu {
            quotas.push(Quota::hold(child.pid(), cores)?);
        }
        services.push(child);
        let base = format!("http://{listen}");
        wait_healthy(http, &base).await?;
        bases.push(base);
    }
    Ok((services, bases, quotas))
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

/// Polls the receiver, printing progress, until everything arrived (each
/// of `people` at each of the fleet's reachable endpoints), the flow
/// stalls for 30 s, or the healthy endpoints (the fleet's first) have all
/// theirs and the others have had [`SLOW_GRACE`] more.
async fn follow(
    http: &reqwest::Client,
    rx: &str,
    due_us: i64,
    people: usize,
    fleet: &Fleet,
) -> anyhow::Result<Stats> {
    let expected = people * fleet.reachable();
    let healthy_expected = people * fleet.healthy();
    let healthy = (0, fleet.healthy() as u32);
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
