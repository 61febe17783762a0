//! Instances as real processes on one PostgreSQL schema, the calls that set
//! up a fan-out, and the questions the tests ask the database afterwards.

use crate::pg::TestDb;
use crate::receiver::Receiver;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN: &str = "cluster-admin";
/// The reminder offset the instances arm.
pub const OFFSET_S: i64 = 60;

/// One `tminus serve` process.
pub struct Instance {
    pub child: Child,
    pub base: String,
}

impl Instance {
    /// An instance of the cluster tests: short leases and ticks.
    pub fn start(db: &TestDb, logs: &std::path::Path, n: usize) -> Instance {
        let args = ["--lease", "5s", "--http-timeout", "2s", "--tick", "200ms"];
        Instance::spawn(&db.url, logs, &format!("instance-{n}"), &args)
    }

    /// `tminus serve` on `database` (a PostgreSQL URL or a SQLite path),
    /// logging to `logs/<name>.log`, with `args` beyond the common ones.
    pub fn spawn(database: &str, logs: &std::path::Path, name: &str, args: &[&str]) -> Instance {
        Instance::spawn_with_env(database, logs, name, args, &[])
    }

    /// [`Instance::spawn`] with environment variables (the log level by
    /// default comes from `TMINUS_TEST_LOG`, else `info`).
    pub fn spawn_with_env(
        database: &str,
        logs: &std::path::Path,
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Instance {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(logs.join(format!("{name}.log")))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tminus"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--database", database, "--admin-token", ADMIN])
            .args(["--reminder-offsets", &format!("{OFFSET_S}s")])
            .args([
                "--allow-http",
                "--allow-private-targets",
                "--api-rate",
                "100000",
            ])
            .args(["--retry-base", "200ms", "--default-max-concurrency", "16"])
            .args(args)
            .env(
                "TMINUS_LOG",
                std::env::var("TMINUS_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Instance {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill9(&mut self) {
        let _ = Command::new("kill")
            .args(["-9", &self.pid().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill").arg(self.pid().to_string()).status();
        let _ = self.child.wait();
    }
}

pub async fn wait_healthy(http: &reqwest::Client, i: &Instance) {
    for _ in 0..100 {
        if let Ok(r) = http.get(format!("{}/healthz", i.base)).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("instance at {} did not start", i.base);
}

async fn call(http: &reqwest::Client, req: reqwest::RequestBuilder, body: Value) -> Value {
    let _ = http;
    let r = req.json(&body).send().await.unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap_or_default();
    assert!(status.is_success(), "{status}: {v}");
    v
}

/// A fan-out set up by [`fan_out_soon`].
pub struct FanOut {
    pub sub: String,
    pub key: String,
    pub webinar: String,
    /// The reminder's due instant.
    pub due: chrono::DateTime<chrono::Utc>,
}

/// A creator with an API key and a subscription of the receiver, through
/// `via`: (creator, key, subscription).
pub async fn subscriber(
    http: &reqwest::Client,
    via: &Instance,
    rx: &Receiver,
) -> (String, String, String) {
    let admin = |path: &str| {
        http.post(format!("{}/api/v1/platform{path}", via.base))
            .bearer_auth(ADMIN)
    };
    let c = call(http, admin("/creators"), json!({"name": "C"})).await;
    let cid = c["id"].as_str().unwrap().to_owned();
    let k = call(http, admin(&format!("/creators/{cid}/api-keys")), json!({})).await;
    let key = k["key"].as_str().unwrap().to_owned();
    let sub = call(
        http,
        http.post(format!("{}/api/v1/integration/webhook/webhook", via.base))
            .header("x-api-key", &key),
        json!({"hookUrl": rx.url, "event": "webinar.reminder.all", "maxConcurrency": 16}),
    )
    .await;
    (cid, key, sub["id"].as_str().unwrap().to_owned())
}

/// Sets up, through `via`, a webinar whose reminder falls due `lead` from
/// now with `n` participants, and subscribes the receiver.
pub async fn fan_out_soon(
    http: &reqwest::Client,
    via: &Instance,
    rx: &Receiver,
    n: usize,
    lead: Duration,
) -> FanOut {
    let (cid, key, sub) = subscriber(http, via, rx).await;
    let mut f = webinar_soon(http, via, &cid, n, lead).await;
    f.sub = sub;
    f.key = key;
    f
}

/// A webinar of `cid` with `n` participants (p0@example.com, …) whose
/// reminder falls due `lead` from now; `sub` and `key` are left empty.
pub async fn webinar_soon(
    http: &reqwest::Client,
    via: &Instance,
    cid: &str,
    n: usize,
    lead: Duration,
) -> FanOut {
    let admin = |path: &str| {
        http.post(format!("{}/api/v1/platform{path}", via.base))
            .bearer_auth(ADMIN)
    };
    // Far first, so registering does not race the reminder; then moved.
    let far = chrono::Utc::now() + chrono::Duration::hours(3);
    let iso =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let w = call(http, admin("/webinars"), json!({"creatorId": cid, "title": "T",
        "link": "https://x.example/w", "fromTime": iso(far), "toTime": iso(far + chrono::Duration::hours(1))})).await;
    let wid = w["id"].as_str().unwrap().to_owned();
    let people: Vec<Value> = (0..n)
        .map(|i| json!({"name": format!("P {i}"), "email": format!("p{i}@example.com")}))
        .collect();
    for chunk in people.chunks(50_000) {
        call(
            http,
            admin(&format!("/webinars/{wid}/participants/bulk")),
            json!(chunk),
        )
        .await;
    }
    // A whole millisecond: the API's precision.
    let from = chrono::Utc::now()
        + chrono::Duration::seconds(OFFSET_S)
        + chrono::Duration::from_std(lead).unwrap();
    let from = chrono::DateTime::from_timestamp_millis(from.timestamp_millis()).unwrap();
    call(
        http,
        http.patch(format!("{}/api/v1/platform/webinars/{wid}", via.base))
            .bearer_auth(ADMIN),
        json!({"fromTime": iso(from), "toTime": iso(from + chrono::Duration::hours(1))}),
    )
    .await;
    FanOut {
        sub: String::new(),
        key: String::new(),
        webinar: wid,
        due: from - chrono::Duration::seconds(OFFSET_S),
    }
}

/// Waits for `what` to hold, polling; panics with `msg` after `secs`.
pub async fn until(secs: u64, msg: &str, mut what: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !what().await {
        assert!(Instant::now() < deadline, "timed out: {msg}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Rows still to send (pending deliveries and slices).
pub async fn pending(db: &tokio_postgres::Client) -> i64 {
    db.query_one(
        "SELECT (SELECT count(*) FROM deliveries WHERE status = 'pending')
              + (SELECT count(*) FROM slices WHERE status = 'pending')",
        &[],
    )
    .await
    .map(|r| r.get(0))
    .unwrap_or(i64::MAX)
}

/// Webhook-ids recorded as delivered: rows, and the acknowledged first
/// attempts receipts hold. Panics when one is recorded twice (in two
/// receipts, or in a receipt and a delivered row).
pub async fn delivered(db: &tokio_postgres::Client) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = db
        .query("SELECT id FROM deliveries WHERE status = 'delivered'", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for id in receipted(db).await {
        assert!(out.insert(id.clone()), "{id} recorded as delivered twice");
    }
    out
}

/// The webhook-ids every receipt holds, one per entry (so a delivery held
/// twice is listed twice).
pub async fn receipted(db: &tokio_postgres::Client) -> Vec<String> {
    let rows = db
        .query("SELECT id_prefix, created_at, entries FROM receipts", &[])
        .await
        .unwrap();
    let mut out = Vec::new();
    for r in rows {
        let prefix: String = r.get(0);
        let entries = tminus::store::receipt::unpack(r.get(2), r.get(1)).unwrap();
        out.extend(entries.iter().map(|e| {
            tminus::domain::ids::join_webhook_id(&prefix, e.seq)
                .as_str()
                .to_owned()
        }));
    }
    out
}

/// What an instance held and had not recorded: the webhook-ids of its
/// leased slices without a row or a receipt, and its leased pending rows.
pub async fn held_by(db: &tokio_postgres::Client, pid: u32) -> BTreeSet<String> {
    let owner = format!("{pid}-%");
    let mut held: BTreeSet<String> = db
        .query(
            "SELECT l.subscription_id, p.seq, l.label, l.from_time
             FROM slices l JOIN participants p ON p.webinar_id = l.webinar_id
               AND p.seq > l.after_seq AND p.seq <= l.last_seq AND p.unregistered_at IS NULL
             WHERE l.locked_by LIKE $1 AND l.status = 'pending'",
            &[&owner],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            tminus::domain::ids::webhook_id(r.get(0), r.get(1), r.get(2), r.get(3)).to_string()
        })
        .collect();
    let mut recorded: BTreeSet<String> = db
        .query("SELECT id FROM deliveries", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    recorded.extend(receipted(db).await);
    held.retain(|id| !recorded.contains(id));
    held.extend(
        db.query(
            "SELECT id FROM deliveries WHERE locked_by LIKE $1 AND status = 'pending'",
            &[&owner],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0)),
    );
    held
}

/// A port free on loopback now, for a process started next to listen on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Where the instances write their logs: a temporary directory, kept (and
/// named on stderr) when `TMINUS_KEEP_LOGS` is set.
pub fn logs_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("tminus-cluster-")
        .tempdir()
        .unwrap();
    if std::env::var_os("TMINUS_KEEP_LOGS").is_some() {
        eprintln!("instance logs in {}", dir.path().display());
        let mut dir = dir;
        dir.disable_cleanup(true);
        return dir;
    }
    dir
}

/// `n` instances on `db` (the first migrates, the others find it done),
/// a fan-out of `people` set up through the first, and a quarter of it
/// received: the moment to break something.
pub async fn busy_cluster(
    http: &reqwest::Client,
    db: &TestDb,
    logs: &std::path::Path,
    n: usize,
    rx: &Receiver,
    people: usize,
) -> Vec<Instance> {
    let args = ["--lease", "5s", "--http-timeout", "2s", "--tick", "200ms"];
    busy_cluster_with(http, db, logs, n, rx, people, &args).await
}

/// [`busy_cluster`] with the instances' own flags.
pub async fn busy_cluster_with(
    http: &reqwest::Client,
    db: &TestDb,
    logs: &std::path::Path,
    n: usize,
    rx: &Receiver,
    people: usize,
    args: &[&str],
) -> Vec<Instance> {
    let start = |k: usize| Instance::spawn(&db.url, logs, &format!("instance-{k}"), args);
    let mut instances = vec![start(0)];
    wait_healthy(http, &instances[0]).await;
    for k in 1..n {
        instances.push(start(k));
    }
    for i in &instances {
        wait_healthy(http, i).await;
    }
    fan_out_soon(http, &instances[0], rx, people, Duration::from_secs(2)).await;
    until(60, "the fan-out to get going", async || {
        rx.requests() >= people / 4
    })
    .await;
    instances
}

/// The local cluster this machine runs (`/etc/postgresql/<version>/main`),
/// as `pg_ctlcluster` names it: (version, port).
pub fn local_cluster() -> Option<(String, u16)> {
    let version = std::fs::read_dir("/etc/postgresql")
        .ok()?
        .flatten()
        .next()?
        .file_name()
        .to_string_lossy()
        .into_owned();
    let conf =
        std::fs::read_to_string(format!("/etc/postgresql/{version}/main/postgresql.conf")).ok()?;
    let port = conf
        .lines()
        .filter_map(|l| l.split('#').next()?.trim().strip_prefix("port"))
        .filter_map(|v| v.trim().strip_prefix('=')?.trim().parse().ok())
        .next()
        .unwrap_or(5432);
    Some((version, port))
}

/// Whether the tests' server (`TMINUS_TEST_POSTGRES_URL`) is the local
/// cluster: a loopback host on its port. Only then may a test restart it.
pub fn tests_use_local_cluster(url: &str) -> Result<String, String> {
    let (version, port) = local_cluster().ok_or("no local PostgreSQL cluster")?;
    let config: tokio_postgres::Config = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let local = |h: &tokio_postgres::config::Host| match h {
        tokio_postgres::config::Host::Tcp(h) => h == "127.0.0.1" || h == "localhost",
        _ => false,
    };
    let ports = config.get_ports();
    let on_port = ports.is_empty() && port == 5432 || ports.iter().all(|p| *p == port);
    if config.get_hosts().len() == 1 && config.get_hosts().iter().all(local) && on_port {
        Ok(version)
    } else {
        Err(format!(
            "the tests' PostgreSQL ({}) is not the local cluster (loopback, port {port})",
            tminus::config::redact_url(url)
        ))
    }
}
