//! What one fan-out of the benchmark measured (`Measured`): what arrived
//! at the receiver, what the services and the store said, and the
//! services' usage before and after (`Usage`); whether every delivery
//! arrived; and the run's figures made of it, as the benchmark prints and
//! writes them.

use super::fleet::{self, Fleet};
use super::procs::{cpu_s, major_faults, postgres_cpu_s};
use super::receiver::Stats;
use super::stores::RunStore;
use super::wire::WireCounts;
use super::BenchArgs;
use anyhow::bail;
use serde_json::{json, Value};
use std::collections::HashMap;

/// What one fan-out measured: what arrived at the receiver (at all, and
/// at the healthy endpoints), what the services and the store said, and
/// their usage and size before and after.
pub(super) struct Measured {
    pub(super) stats: Stats,
    pub(super) healthy: Stats,
    pub(super) register_s: f64,
    pub(super) reminders_rows: usize,
    pub(super) rows_before: Option<i64>,
    pub(super) peak_rss_mb: Option<f64>,
    pub(super) lanes: Option<u64>,
    pub(super) failed: Option<u64>,
    pub(super) healthy_failed: Option<u64>,
    pub(super) usage: (Usage, Usage),
    pub(super) store_bytes: (Option<u64>, Option<u64>),
    /// Round trips to PostgreSQL (and statements by text) before and
    /// after the fan-out.
    pub(super) round_trips: (Option<WireCounts>, Option<WireCounts>),
    /// The PostgreSQL server's WAL position before and after.
    pub(super) wal: (Option<u64>, Option<u64>),
    /// What the server's backends did through the fan-out (`server`).
    pub(super) waits: Option<Value>,
    /// How long the instances' CPU quotas held them back over the fan-out.
    pub(super) throttled_s: Option<f64>,
}

/// CPU seconds of the services and of the receiver, and the services'
/// major page faults, at one instant.
pub(super) struct Usage {
    cpu: f64,
    rx_cpu: f64,
    faults: u64,
    /// The local PostgreSQL server's, when there is one.
    pg_cpu: Option<f64>,
}

impl Usage {
    pub(super) fn read(pids: &[u32], rx_pid: u32) -> Usage {
        Usage {
            cpu: pids.iter().filter_map(|p| cpu_s(*p)).sum(),
            rx_cpu: cpu_s(rx_pid).unwrap_or(0.0),
            faults: pids.iter().filter_map(|p| major_faults(*p)).sum(),
            pg_cpu: postgres_cpu_s(),
        }
    }
}

/// Fails the run unless every delivery arrived: at the healthy endpoints
/// always, and at all of them when none is slow or down.
pub(super) fn all_arrived(m: &Measured, fleet: &Fleet, people: usize) -> anyhow::Result<()> {
    let (expected, healthy_expected) = (people * fleet.reachable(), people * fleet.healthy());
    if m.healthy.objects < healthy_expected {
        bail!(
            "only {} of {healthy_expected} deliveries arrived at the healthy endpoints",
            m.healthy.objects
        );
    }
    if !fleet.is_mixed() && m.stats.objects < expected {
        bail!("only {} of {expected} deliveries arrived", m.stats.objects);
    }
    Ok(())
}

/// The run's figures (without the ceiling and the slow endpoints'): over
/// all subscriptions, and in a fleet run the healthy endpoints' apart.
pub(super) fn figures(
    args: &BenchArgs,
    fleet: &Fleet,
    store: &RunStore,
    tls: bool,
    instances: usize,
    m: &Measured,
) -> Value {
    let (stats, (before, after)) = (&m.stats, &m.usage);
    let people = args.participants * args.webinars;
    let register_s = m.register_s;
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
        "tls": tls,
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
        "peak_lanes": m.lanes,
        "failed_attempts": m.failed,
        "receiver_refused_busy": stats.refused,
        "endpoint_limit_rps": limit.map(round),
        "efficiency": limit.map(|l| round3(rate / l)),
        "peak_rss_mb": m.peak_rss_mb.map(round3),
        "cpu_us_per_delivery": round((after.cpu - before.cpu) * 1e6 / deliveries),
        "receiver_cpu_us_per_request": round((after.rx_cpu - before.rx_cpu) * 1e6 / stats.count.max(1) as f64),
        "major_page_faults": after.faults.saturating_sub(before.faults),
        "store_bytes_per_delivery": match m.store_bytes {
            (Some(b), Some(a)) => json!(round((a.saturating_sub(b)) as f64 / deliveries)),
            _ => Value::Null,
        },
        "register_s": round3(register_s),
        "register_per_100k_s": round3(register_s / people as f64 * 100_000.0),
        "reminder_rows_before_firing": m.reminders_rows,
        "stored_rows_before_firing": m.rows_before,
        "webinars": args.webinars,
        "participants": args.participants,
        "lead_s": super::setup::lead_s(args),
        "subscriptions": fleet.subscriptions,
        "slow_endpoints": fleet.slow,
        "down_endpoints": fleet.down,
    });
    r["instance_cpu"] = json!(args.instance_cpu);
    r["instance_throttled_s"] = json!(m.throttled_s.map(round3));
    server_figures(&mut r, store, m, deliveries);
    if args.slow + args.down > 0 {
        let limit = shape.endpoint_limit_rps(fleet.healthy() * args.webinars, args.concurrency);
        let healthy_expected = people * fleet.healthy();
        r["healthy"] = fleet::figures(&m.healthy, healthy_expected, limit, m.healthy_failed);
    }
    r
}

/// What a PostgreSQL run adds: the local server's CPU and WAL bytes a
/// delivery, what its backends did, and with `--round-trips` the round
/// trips, statements and bytes on the wire per 1 000 deliveries.
fn server_figures(r: &mut Value, store: &RunStore, m: &Measured, deliveries: f64) {
    let (before, after) = &m.usage;
    if let (true, Some(b), Some(a)) = (store.is_postgres(), before.pg_cpu, after.pg_cpu) {
        r["postgres_cpu_us_per_delivery"] = json!(round((a - b) * 1e6 / deliveries));
    }
    if let (Some(b), Some(a)) = m.wal {
        r["postgres_wal_bytes_per_delivery"] =
            json!(round(a.saturating_sub(b) as f64 / deliveries));
    }
    if let Some(w) = &m.waits {
        r["postgres_backends"] = w.clone();
    }
    if let (Some(b), Some(a)) = &m.round_trips {
        let trips = a.trips.saturating_sub(b.trips) as f64 * 1000.0 / deliveries;
        r["round_trips_per_1000_deliveries"] = json!(round3(trips));
        r["wire_bytes_per_delivery"] =
            json!(round(a.bytes.saturating_sub(b.bytes) as f64 / deliveries));
        r["statements_per_1000_deliveries"] =
            by_statement(&b.statements, &a.statements, deliveries);
    }
}

/// The statements executed between two counts, most frequent first (the
/// first 15), each per 1 000 deliveries.
fn by_statement(
    before: &HashMap<String, u64>,
    after: &HashMap<String, u64>,
    deliveries: f64,
) -> Value {
    let mut ran: Vec<(&String, u64)> = after
        .iter()
        .map(|(sql, n)| (sql, n - before.get(sql).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    ran.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    ran.iter()
        .take(15)
        .map(|(sql, n)| json!({"sql": sql, "per_1000": round3(*n as f64 * 1000.0 / deliveries)}))
        .collect()
}

fn round(x: f64) -> f64 {
    x.round()
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
