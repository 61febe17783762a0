//! tminus sends webinar-reminder webhooks. How one reminder travels:
//!
//! 1. The platform creates a webinar (`api::webinars`); the pure planner
//!    (`schedule::plan`) arms one reminder row per interval still ahead, in
//!    the store (`store`), whatever the number of participants.
//! 2. An integrator subscribes a URL with the seed's call (`api::integration`).
//! 3. The timer loop (`schedule`) sleeps until the earliest reminder is due,
//!    claims it with a lease, decides on time / late / missed
//!    (`schedule::plan::decide`) and fans it out into one delivery per
//!    (participant × matching subscription), in resumable slices.
//! 4. The dispatcher (`delivery`) runs one lane per subscription: it leases
//!    due deliveries within the subscription's concurrency and rate caps,
//!    renders the seed's payload (`domain::payload`), signs it the Standard
//!    Webhooks way (`signing`), sends it through the target guard
//!    (`delivery::guard`, `delivery::send`), and the recorder writes each
//!    attempt and its verdict (`delivery::retry`) in batches.
//!
//! 5. Beside them, `metrics` counts what happens (a recorder per service,
//!    read at `GET /metrics`) and `retention` prunes old history; `ops`
//!    tells the platform, with webhooks of its own, about subscriptions
//!    disabled, failing or recovered and fan-outs finished or predicted
//!    late.
//!
//! [`run`] wires these together around one listener (served by `server`:
//! header and body deadlines, a connection cap) and one shutdown token, so
//! `tminus serve`, the demo and the tests start the same service.
//!
//! This crate is the service alone. The workspace's other package, at its
//! top (`src/`, `tminus-cli`), is the command line: the `tminus` binary and
//! its tools, clients of this crate: `receive`, a reference receiver
//! (verify, drop repeats, acknowledge, hand on), `admin`, the platform API
//! from the command line, and `bench`, `soak` and `demo`. This crate exposes
//! only what they and the tests use; the rest is private to it.
//!
//! Around that path: `server` (the accept loop, deadlines, the connection
//! cap), `config` (flags, their `TMINUS_*` twins and the settings file,
//! redacted), `telemetry` (the log), `api::error` (the API's one error type),
//! `api::load` (each route's path as typed ids, and the loaders that fetch
//! and authorize what it names),
//! `clock` (injectable: tests jump hours ahead), `domain` (ids, offsets,
//! time zones, hook URLs, events, the payload: parsed once at the edge),
//! `follow` (acting on other instances' changes), `secrets` and `startup`
//! (signing secrets sealed at rest, the admin token).
//!
//! Beside `src/`: `migrations/` holds the SQLite and PostgreSQL schemas.
//! The integration tests, at the workspace's top, belong to the command
//! line's package (they run the binary, and use both crates):
//! `tests/api/` starts the real service on `127.0.0.1:0` with a real
//! loopback receiver whose answers each test controls, and checks
//! signatures with the public `standardwebhooks` crate; its `store/` is the
//! conformance suite, run on both backends. `tests/cluster/` runs several
//! `tminus serve` processes on one PostgreSQL (SIGKILL, database restart,
//! migrations, NOTIFY, deadlocks), `tests/crash/` kills one on SQLite,
//! `tests/process/` runs the binary as a process (the documentation's shell
//! blocks included), `tests/seed/` holds the document's curl, Node and
//! Python snippets, run unchanged, and `tests/common/` a fresh PostgreSQL
//! schema per test.
//!
//! The modules stand in layers, each naming only those below it, with no
//! import circle at any level of the tree (`scripts/acyclic`, run by CI):
//!
//! - leaves: `clock`; `domain` (values and pure rules); `config` (the
//!   settings, naming only `domain`); `certs`, `signing`, `telemetry`;
//! - `secrets` and `store` (handed out as two narrow views: the engine,
//!   `store::DynEngine`, to `schedule`, `delivery` and `follow`; the
//!   catalog, `store::DynCatalog`, to `api`, `ops`, `retention`, `watch`
//!   and `metrics`); then `metrics`;
//! - `delivery`, which hears nothing above it: subscriptions' health
//!   changes leave through its `HealthWatch`, which `ops` fills; then
//!   `schedule`, `follow`, `retention`;
//! - `ops`, `startup` (the start's checks and files) and `watch`;
//! - `server`, then `api`; and [`run`] at the top.

#![forbid(unsafe_code)]

pub mod api;
pub mod certs;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod domain;
mod follow;
pub mod metrics;
mod ops;
mod retention;
mod schedule;
mod secrets;
pub mod server;
pub mod signing;
pub mod startup;
pub mod store;
pub mod telemetry;
mod watch;

use clock::Clock;
use config::Config;
use delivery::retry::RetryPolicy;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// What every component of one running service shares.
pub struct AppContext {
    pub config: Config,
    /// The store as the API, the dashboard and the operator's tasks see it.
    pub catalog: store::DynCatalog,
    /// The store as the scheduler and the delivery lanes see it (the same
    /// store: one connection pool, two narrow views).
    pub engine: store::DynEngine,
    pub clock: Clock,
    /// This process's name in leases (`locked_by`), unique per start.
    pub instance: domain::instance::InstanceId,
    /// The platform API's bearer token (given, or generated at start).
    pub admin_token: String,
    /// Seals signing secrets before the store keeps them, opens them after.
    pub secrets: secrets::SecretKeys,
    /// This service's Prometheus metrics (a recorder of its own).
    pub metrics: crate::metrics::Metrics,
    /// The operational subscription, when `--operational-webhook-url` is
    /// given (`ops`).
    pub operational: Option<store::SubscriptionId>,
}

impl AppContext {
    /// How long an instance may go unheard before the others count it gone
    /// (and take over its work): three ticks, and at least 3 s.
    pub fn alive_window(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.config.tick * 3)
            .unwrap_or_default()
            .max(chrono::Duration::seconds(3))
    }

    /// The retry policy the configuration describes.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::configured(&self.config)
    }
}

/// Runs the API, the scheduler and the delivery workers until `shutdown` is
/// cancelled, then drains in-flight work, for at most `--shutdown-timeout`,
/// and returns.
pub async fn run(
    config: Config,
    listener: TcpListener,
    clock: Clock,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (ctx, files, max_connections) = prepare(config, clock).await?;
    tracing::info!(addr = %listener.local_addr()?, instance = %ctx.instance, open_files = ?files, max_connections, config = ?ctx.config, "tminus serving");
    // On the roll of instances before claiming anything, so that if this
    // process dies, the others know whose leases to take over.
    let now = ctx.clock.now();
    if let Err(e) = ctx
        .engine
        .heartbeat(&ctx.instance, now, now - ctx.alive_window())
        .await
    {
        tracing::warn!(error = %format!("{e:#}"), "first heartbeat failed");
    }

    let abort = CancellationToken::new();
    let deadline = tokio::spawn(shutdown_deadline(
        shutdown.clone(),
        abort.clone(),
        ctx.config.shutdown_timeout,
    ));
    let (dispatcher, delivery_done) = delivery::Dispatcher::start(
        ctx.clone(),
        shutdown.clone(),
        abort.clone(),
        Arc::new(ops::Announcer(ctx.clone())),
    )?;
    let wake = Arc::new(Notify::new());
    let scheduler = tokio::spawn(schedule::run(
        ctx.clone(),
        wake.clone(),
        dispatcher.clone(),
        shutdown.clone(),
    ));
    let follower = tokio::spawn(follow::run(
        ctx.clone(),
        dispatcher.clone(),
        wake.clone(),
        shutdown.clone(),
    ));
    let watcher = tokio::spawn(watch::watch(
        ctx.clone(),
        dispatcher.clone(),
        shutdown.clone(),
    ));
    let pruner = tokio::spawn(retention::run(ctx.clone(), shutdown.clone()));
    let app = api::router(api::AppState::new(ctx.clone(), dispatcher, wake));
    let settings = server::Settings {
        header_timeout: ctx.config.header_timeout,
        max_connections,
    };
    server::serve(listener, app, settings, shutdown.clone(), abort).await;
    shutdown.cancel();
    tracing::info!("HTTP API stopped; draining");
    let _ = follower.await;
    let _ = watcher.await;
    let _ = pruner.await;
    if let Err(e) = scheduler.await {
        tracing::error!(error = ?e, "scheduler task failed");
    }
    if let Err(e) = delivery_done.await {
        tracing::error!(error = ?e, "delivery task failed");
    }
    deadline.abort();
    hand_back(&ctx).await;
    // The last handle to the store: dropping it ends its background tasks
    // (PostgreSQL's notification listener) before the runtime does.
    drop(ctx);
    tokio::task::yield_now().await;
    tracing::info!("tminus stopped");
    Ok(())
}

/// The shutdown deadline: once `after` has passed since `shutdown`,
/// connections and attempts still in flight are dropped (`abort`).
async fn shutdown_deadline(
    shutdown: CancellationToken,
    abort: CancellationToken,
    after: std::time::Duration,
) {
    shutdown.cancelled().await;
    tracing::info!(deadline = ?after, "stopping: finishing requests and deliveries in flight");
    tokio::time::sleep(after).await;
    tracing::warn!("shutdown deadline passed: dropping what is still in flight");
    abort.cancel();
}

/// Checks the configuration, raises the open-file limit, opens the store
/// and reseals its secrets: the context every component shares, the
/// open-file limit, and the connection cap.
async fn prepare(
    config: Config,
    clock: Clock,
) -> anyhow::Result<(Arc<AppContext>, Option<u64>, usize)> {
    let (errors, warnings) = startup::check(&config);
    for w in &warnings {
        tracing::warn!("{w}");
    }
    if !errors.is_empty() {
        anyhow::bail!("invalid configuration: {}", errors.join("; "));
    }
    let files = server::files::raise();
    let max_connections = config
        .max_connections
        .unwrap_or_else(|| server::files::default_cap(files));
    let store = store::open_clocked(
        &config.database,
        config.database_ca.as_deref(),
        clock.clone(),
    )
    .await?;
    let secrets = secrets::SecretKeys::configured(&config).map_err(anyhow::Error::msg)?;
    startup::reseal(&*store, &secrets).await?;
    let admin_token = startup::admin_token(&config)?;
    let operational = ops::setup::install(&config, &*store, &secrets, clock.now()).await?;
    let ctx = Arc::new(AppContext {
        config,
        catalog: store.clone(),
        engine: store,
        clock,
        instance: domain::instance::InstanceId::new(),
        admin_token,
        secrets,
        metrics: crate::metrics::Metrics::new(),
        operational,
    });
    Ok((ctx, files, max_connections))
}

/// After every component has stopped: hands back what this instance still
/// holds and lets go of the store.
async fn hand_back(ctx: &Arc<AppContext>) {
    // Every attempt that finished is recorded by now: what this instance
    // still holds was never sent, or was dropped at the shutdown deadline
    // without an answer, so hand it back rather than make the next start
    // wait for the leases to lapse.
    match ctx.engine.release_leases(&ctx.instance).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(leases = n, "handed back unsent work"),
        Err(e) => {
            tracing::warn!(error = %crate::telemetry::causes(&e), "could not hand back leases; they lapse on their own")
        }
    }
    // Let go of the database now (SQLite's file lock), not when the last
    // handle happens to be dropped: a restart in this process, or the next
    // start, takes it at once.
    ctx.engine.close().await;
}
