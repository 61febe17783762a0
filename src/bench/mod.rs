//! `tminus bench`: the fan-out benchmark of `shared/bench/METHOD.md`. It
//! starts a fast receiver (a separate process), measures the HTTP ceiling
//! against it with `wrk`, then starts `tminus serve` (another process, with
//! its durable store in its normal settings), registers N participants
//! through the bulk API, subscribes S endpoints and lets one reminder fan
//! out (`run`). Given several stores (`--database`, repeated) or instance
//! counts (`--instances 1,2`), it makes one such run for each against the
//! same receiver and compares their rates. The receiver can be shaped as
//! real endpoints are: an answer time, a capacity (`shape`), HTTPS with a
//! certificate made for the run (`tls`), and a fleet of subscriptions some
//! of whose endpoints are slow or down (`fleet`), whose healthy endpoints'
//! figures are reported apart and, with `--baseline`, compared with a run
//! of the healthy ones alone. It prints the figures and writes them as
//! JSON. It is a program that reports, never a test that asserts time.

pub mod bulk;
mod ceiling;
mod counted;
pub mod fleet;
mod measured;
mod observe;
pub mod procs;
mod quota;
pub mod receiver;
mod run;
mod server;
mod setup;
pub mod shape;
mod stores;
pub mod tls;
pub mod wire;

use anyhow::bail;
use procs::Child;
use serde_json::{json, Value};
use std::path::PathBuf;

/// Options of `tminus bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Webinars, all due at the same instant, each with its own
    /// participants and subscriptions (to distinct receiver paths).
    #[arg(long, default_value_t = 1)]
    pub webinars: usize,
    /// Participants of each webinar.
    #[arg(long, default_value_t = 100_000)]
    pub participants: usize,
    /// Subscriptions receiving each webinar's reminder.
    #[arg(long, default_value_t = 1)]
    pub subscriptions: usize,
    /// Store: a SQLite path, `sqlite` for a temporary file (the default), or
    /// a postgres:// URL (each run gets a schema of its own there). Repeat
    /// it to compare stores in one run.
    #[arg(long)]
    pub database: Vec<String>,
    /// Instances of `tminus serve` sharing the store, e.g. `1,2` to compare
    /// one with two (PostgreSQL only beyond one).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub instances: Vec<usize>,
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
    /// The receiver answers each request after this long, on a timer: a
    /// duration (`50ms`) or a range spread uniformly (`50ms..250ms`). Set
    /// after the ceiling is measured.
    #[arg(long, value_name = "DUR[..DUR]", value_parser = shape::Shape::latency)]
    pub receiver_latency: Option<(u64, u64)>,
    /// The receiver answers `503` with `Retry-After: 1` whenever more than
    /// this many requests are in flight (a real capacity limit).
    #[arg(long, value_name = "N")]
    pub receiver_busy: Option<usize>,
    /// The receiver serves HTTPS with a certificate made for the run, which
    /// tminus trusts through `--target-ca`; the ceiling is measured over
    /// HTTPS too.
    #[arg(long)]
    pub receiver_tls: bool,
    /// Of each webinar's `--subscriptions` endpoints, this many answer
    /// after 2 s (a fleet run: the healthy endpoints are reported apart).
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub slow: usize,
    /// Of each webinar's `--subscriptions` endpoints, this many refuse
    /// connections (a port nobody listens on).
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub down: usize,
    /// With `--slow` or `--down`: after each fleet run, run the same shape
    /// with only its healthy endpoints and compare the two.
    #[arg(long)]
    pub baseline: bool,
    /// Seconds from the reminder's instant to the webinars' start: what is
    /// still unsent then expires. Default: 60, plus one per 10 000
    /// deliveries the run makes.
    #[arg(long, value_name = "SECONDS")]
    pub lead: Option<i64>,
    /// On PostgreSQL, pass the instances' connections through a relay that
    /// counts their round trips (`round_trips_per_1000_deliveries`). It adds
    /// a hop to each: compare rates only between runs that both use it.
    #[arg(long)]
    pub round_trips: bool,
    /// Hold each instance to this many cores (`0.5`: half a core), in a
    /// cgroup of its own under the v1 `cpu` controller (needs root), so
    /// that the instances, not the receiver, are the bound; the run reports
    /// how long the quotas held them back (`instance_throttled_s`).
    #[arg(long, value_name = "CORES")]
    pub instance_cpu: Option<f64>,
}

impl BenchArgs {
    /// How the receiver answers during the fan-outs of `fleet`.
    pub fn shape(&self, fleet: &fleet::Fleet) -> shape::Shape {
        shape::Shape {
            latency_ms: self.receiver_latency.unwrap_or((0, 0)),
            busy: self.receiver_busy,
            slow: fleet.slow_range(),
        }
    }

    /// The fleet `--subscriptions`, `--slow` and `--down` describe.
    pub fn fleet(&self) -> anyhow::Result<fleet::Fleet> {
        let f = fleet::Fleet::new(self.subscriptions, self.slow, self.down)
            .map_err(anyhow::Error::msg)?;
        if self.baseline && !f.is_mixed() {
            bail!("--baseline compares a fleet run with its healthy endpoints alone: give --slow or --down");
        }
        Ok(f)
    }
}

/// Runs the benchmark: the ceiling once, then one fan-out per store and
/// instance count, each against the same receiver.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let script = ceiling::script(&args)?;
    let exe = std::env::current_exe()?;
    let dir = tempfile_dir()?;
    let databases = databases(&args.database, &dir.join("bench.db"));
    check(&args)?;

    let fleet = args.fleet()?;
    let certs = match args.receiver_tls {
        true => Some(tls::make(&dir)?),
        false => None,
    };
    let (rx_child, target, nobody) = start_receiver(&exe, certs.as_ref())?;
    let rx_base = target.control.clone();
    let scheme = if certs.is_some() { "https" } else { "http" };
    println!("receiver on {}", target.hooks);
    let ceiling = ceiling::wrk(
        &script,
        &format!("{}/hook", target.hooks),
        &args.ceiling_duration,
    )?;
    println!(
        "ceiling (wrk -t1 -c64 -d{}, {scheme}): {ceiling:.0} requests/s",
        args.ceiling_duration
    );
    let http = reqwest::Client::new();
    let mut fleets = vec![fleet];
    if args.baseline {
        fleets.push(fleet.healthy_only());
    }

    let mut runs = Vec::new();
    for db in &databases {
        for &n in &args.instances {
            if n > 1 && !tminus::store::is_postgres(db) {
                println!("\n== sqlite, {n} instances: skipped (instances share PostgreSQL, not a SQLite file)");
                continue;
            }
            let mut mixed = None;
            for (k, f) in fleets.iter().enumerate() {
                reshape(&http, &rx_base, &args.shape(f)).await?;
                // A PostgreSQL run gets a fresh schema; SQLite runs once per
                // file, the healthy-only run on a file of its own.
                let db = match k {
                    0 => db.clone(),
                    _ if tminus::store::is_postgres(db) => db.clone(),
                    _ => format!("{db}.healthy-only"),
                };
                let store = stores::RunStore::prepare(&db, args.round_trips).await?;
                println!("\n== {}", heading(&store, n, f, &args));
                let result = run::one(&args, &exe, &target, rx_child.pid(), &store, n, f).await;
                store.finish().await;
                let mut r = result?;
                against_ceiling(&mut r, ceiling);
                if let Some(m) = &mixed {
                    r["fleet_vs_healthy_only"] = fleet::compare(m, &r);
                }
                println!("{}", serde_json::to_string_pretty(&r)?);
                for line in fleet::describe(&r) {
                    println!("{line}");
                }
                if f.is_mixed() {
                    mixed = Some(r.clone());
                }
                runs.push(r);
            }
        }
    }
    drop(nobody);
    drop(rx_child);
    let _ = std::fs::remove_dir_all(&dir);
    write_result(&args.json, &runs, ceiling)
}

/// Refuses what no run could make: no instance, or a quota too small.
fn check(args: &BenchArgs) -> anyhow::Result<()> {
    if args.instances.contains(&0) {
        bail!("--instances counts from 1");
    }
    if let Some(cores) = args.instance_cpu.filter(|c| quota::quota_us(*c).is_none()) {
        bail!("--instance-cpu {cores}: give a number of cores of at least 0.01");
    }
    Ok(())
}

/// Starts the receiver (serving HTTPS with `certs`) and binds a port that
/// is never listened on; returns the receiver, where the run's
/// subscriptions point, and that port, to keep until the runs are done.
fn start_receiver(
    exe: &std::path::Path,
    certs: Option<&tls::RunCerts>,
) -> anyhow::Result<(Child, run::Target, tokio::net::TcpSocket)> {
    let mut rx_args = vec!["bench-receiver".to_owned()];
    if let Some(c) = certs {
        for (flag, path) in [("--tls-cert", &c.cert_der), ("--tls-key", &c.key_der)] {
            rx_args.extend([flag.to_owned(), path.display().to_string()]);
        }
    }
    let rx_args: Vec<&str> = rx_args.iter().map(String::as_str).collect();
    let (rx_child, ports) =
        Child::spawn_printing_ports(exe, &rx_args, 1 + certs.is_some() as usize)?;
    let rx_base = format!("http://127.0.0.1:{}", ports[0]);
    let scheme = if certs.is_some() { "https" } else { "http" };
    // A port bound and never listened on: connections to it are refused.
    let nobody = tokio::net::TcpSocket::new_v4()?;
    nobody.bind("127.0.0.1:0".parse()?)?;
    let target = run::Target {
        control: rx_base,
        hooks: format!("{scheme}://127.0.0.1:{}", ports[ports.len() - 1]),
        down: format!("{scheme}://127.0.0.1:{}", nobody.local_addr()?.port()),
        ca: certs.map(|c| c.ca_pem.clone()),
    };
    Ok((rx_child, target, nobody))
}

/// Clears the receiver's counts and sets how it answers the next fan-out.
async fn reshape(
    http: &reqwest::Client,
    rx_base: &str,
    shape: &shape::Shape,
) -> anyhow::Result<()> {
    http.post(format!("{rx_base}/reset"))
        .send()
        .await?
        .error_for_status()?;
    http.post(format!("{rx_base}/shape"))
        .json(shape)
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

/// A fan-out's title: its store, its instances and, in a fleet run or its
/// baseline, which endpoints.
fn heading(store: &stores::RunStore, n: usize, f: &fleet::Fleet, args: &BenchArgs) -> String {
    let kind = if store.is_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    let which = match (f.is_mixed(), args.baseline) {
        (true, _) => format!(
            ", {} healthy, {} slow, {} down endpoints",
            f.healthy(),
            f.slow,
            f.down
        ),
        (false, true) => format!(", the {} healthy endpoints alone", f.healthy()),
        _ => String::new(),
    };
    let held = args
        .instance_cpu
        .map_or(String::new(), |c| format!(", each held to {c} cores"));
    format!("{kind}, {n} instance(s){which}{held}")
}

/// Adds to a run's figures the ceiling, its rate's ratio to it, and the
/// machine's cores.
fn against_ceiling(r: &mut Value, ceiling: f64) {
    let rate = r["rate_rps"].as_f64().unwrap_or(0.0);
    r["ceiling_rps"] = json!(ceiling.round());
    r["ratio"] = json!(round3(rate / ceiling));
    r["cores"] = json!(std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1));
}

/// Prints and writes the result: the runs' figures (compared, when
/// several) and what the metrics cost.
fn write_result(path: &std::path::Path, runs: &[Value], ceiling: f64) -> anyhow::Result<()> {
    let mut result = summary(runs, ceiling);
    // What the metrics cost per recorded outcome, in this build.
    let metrics_ns = tminus::metrics::cost::ns_per_outcome(50);
    println!("metrics: {metrics_ns:.0} ns per recorded outcome");
    result["metrics_ns_per_outcome"] = json!(metrics_ns.round());
    if runs.len() > 1 {
        println!("\n{}", serde_json::to_string_pretty(&result["compared"])?);
    }
    std::fs::write(path, serde_json::to_vec_pretty(&result)?)?;
    println!("written to {}", path.display());
    Ok(())
}

/// The stores to run on: `sqlite` (and no --database at all) is a
/// temporary file.
fn databases(given: &[String], temp: &std::path::Path) -> Vec<String> {
    let temp = temp.display().to_string();
    if given.is_empty() {
        return vec![temp];
    }
    given
        .iter()
        .map(|d| {
            if d == "sqlite" {
                temp.clone()
            } else {
                d.clone()
            }
        })
        .collect()
}

/// One run: its figures. Several: each, and each rate against the first.
fn summary(runs: &[Value], ceiling: f64) -> Value {
    if let [one] = runs {
        return one.clone();
    }
    let first = runs[0]["rate_rps"].as_f64().unwrap_or(1.0).max(1.0);
    let vs: Vec<Value> = runs
        .iter()
        .map(|r| {
            json!({"database": r["database"], "instances": r["instances"],
            "rate_rps": r["rate_rps"], "cpu_us_per_delivery": r["cpu_us_per_delivery"],
            "postgres_cpu_us_per_delivery": r["postgres_cpu_us_per_delivery"],
            "instance_throttled_s": r["instance_throttled_s"],
            "rate_vs_first_run": round3(r["rate_rps"].as_f64().unwrap_or(0.0) / first)})
        })
        .collect();
    json!({"ceiling_rps": ceiling.round(), "runs": runs, "compared": vs})
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("tminus-bench-{}", tminus::domain::ids::new_id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
