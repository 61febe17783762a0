//! No secret in any log at any level, and none readable at rest: with
//! `TMINUS_LOG=trace` and JSON logs, on SQLite and on PostgreSQL (whose driver logs query
//! parameters at debug), a whole life cycle — a password in the database
//! URL, the admin token, an API key, signing secrets before and after a
//! rotation, a participant's data, a fan-out — leaves none of them in the
//! log; the signing secrets are stored sealed under `--secret-key`, the
//! SQLite file is its owner's only, and a key rotation re-seals them.

use crate::harness::*;
use crate::receiver::Receiver;
use serde_json::{json, Value};
use std::time::Duration;

const KEY1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY2: &str = "HxoZGBcWFRQTEhEQDw4NDAsKCQgHBgUEAwIBAB8eHRw=";
const EMAIL: &str = "private.person@example.com";
/// The most verbose log there is, in the format machines read.
const TRACE_JSON: [(&str, &str); 2] = [("TMINUS_LOG", "trace"), ("TMINUS_LOG_FORMAT", "json")];

async fn call(req: reqwest::RequestBuilder, body: Option<Value>) -> Value {
    let req = match body {
        Some(b) => req.json(&b),
        None => req,
    };
    let r = req.send().await.unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap_or_default();
    assert!(status.is_success(), "{status}: {v}");
    v
}

/// Runs a life cycle on `inst`; returns the secrets it saw.
async fn life_cycle(http: &reqwest::Client, inst: &Instance, rx: &Receiver) -> Vec<String> {
    let (_cid, key, sub) = subscriber(http, inst, rx).await;
    let hooks = format!("{}/api/v1/integration/webhook/webhook", inst.base);
    let first = call(
        http.post(&hooks).header("x-api-key", &key),
        Some(json!({"hookUrl": rx.url, "event": "webinar.reminder.all", "maxConcurrency": 16})),
    )
    .await;
    let rotated = call(
        http.post(format!("{hooks}/{sub}/rotate-secret"))
            .header("x-api-key", &key),
        None,
    )
    .await;
    let f = fan_out_soon(http, inst, rx, 3, Duration::from_secs(2)).await;
    call(
        http.post(format!(
            "{}/api/v1/platform/webinars/{}/participants",
            inst.base, f.webinar
        ))
        .bearer_auth(ADMIN),
        Some(json!({"name": "Private Person", "email": EMAIL, "phone": "5550100"})),
    )
    .await;
    until(30, "the fan-out delivered", async || rx.acked_people() >= 4).await;
    vec![
        key,
        first["secret"].as_str().unwrap().to_owned(),
        rotated["secret"].as_str().unwrap().to_owned(),
    ]
}

/// The log is JSON, one object a line, as verbose as it gets, with a request span
/// for each API call, and holds none of `secrets`.
fn assert_log_clean(log: &str, secrets: &[&str]) {
    let events: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    // tminus's own debug events are the most verbose that pass the filter.
    assert!(
        events.iter().any(|e| e["level"] == "DEBUG"),
        "debug output was written"
    );
    assert!(
        events.iter().all(|e| {
            let t = e["target"].as_str().unwrap_or_default();
            e["level"] != "DEBUG" && e["level"] != "TRACE" || t.starts_with("tminus")
        }),
        "no dependency's debug or trace output"
    );
    let answered: Vec<&Value> = events
        .iter()
        .filter(|e| e["span"]["name"] == "request" && e["fields"]["message"] == "answered")
        .collect();
    let rotation = "/api/v1/integration/webhook/webhook/{id}/rotate-secret";
    assert!(
        answered
            .iter()
            .any(|e| e["span"]["route"] == rotation && e["span"]["method"] == "POST"),
        "the rotation's request span, by its route template"
    );
    for e in &answered {
        assert!(
            e["fields"]["status"].is_u64() && e["fields"]["latency_ms"].is_number(),
            "{e}"
        );
    }
    for s in secrets {
        assert!(!log.contains(s), "the log holds a secret: {s}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn postgres_at_trace_logs_no_secret_and_stores_secrets_sealed() {
    let db = crate::pg::fresh().await;
    // The local server trusts any password: both forms reach the log's
    // view of the configuration.
    let url = db.url.replacen(
        "postgres://postgres@",
        "postgres://postgres:pw-in-userinfo@",
        1,
    ) + "&password=pw-in-query";
    let logs = logs_dir();
    let http = reqwest::Client::new();
    let rx = Receiver::start().await;
    let args = ["--secret-key", KEY1];
    let inst = Instance::spawn_with_env(&url, logs.path(), "pg", &args, &TRACE_JSON);
    wait_healthy(&http, &inst).await;
    let secrets = life_cycle(&http, &inst, &rx).await;
    drop(inst);
    let log = std::fs::read_to_string(logs.path().join("pg.log")).unwrap();
    let mut all: Vec<&str> = secrets.iter().map(String::as_str).collect();
    all.extend([
        "pw-in-userinfo",
        "pw-in-query",
        ADMIN,
        KEY1,
        EMAIL,
        "whsec_",
    ]);
    assert_log_clean(&log, &all);
    let sql = db.client().await;
    for r in sql
        .query("SELECT secret, previous_secret FROM subscriptions", &[])
        .await
        .unwrap()
    {
        let (s, p): (String, Option<String>) = (r.get(0), r.get(1));
        assert!(s.starts_with("sealed:v1:"), "{s}");
        assert!(p.is_none_or(|p| p.starts_with("sealed:v1:")));
    }
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_at_trace_logs_no_secret_and_keeps_its_file_private() {
    let logs = logs_dir();
    let db = logs.path().join("tminus.db");
    let http = reqwest::Client::new();
    let rx = Receiver::start().await;
    let args = ["--secret-key", KEY1];
    let inst = Instance::spawn_with_env(db.to_str().unwrap(), logs.path(), "a", &args, &TRACE_JSON);
    wait_healthy(&http, &inst).await;
    let secrets = life_cycle(&http, &inst, &rx).await;
    #[cfg(unix)]
    for f in ["tminus.db", "tminus.db-wal", "tminus.db-shm"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(logs.path().join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{f} is readable by others: {mode:o}");
    }
    drop(inst);
    let log = std::fs::read_to_string(logs.path().join("a.log")).unwrap();
    let mut all: Vec<&str> = secrets.iter().map(String::as_str).collect();
    all.extend([ADMIN, KEY1, EMAIL, "whsec_"]);
    assert_log_clean(&log, &all);
    // Not in the file either, in any form SQLite wrote.
    for f in std::fs::read_dir(logs.path()).unwrap() {
        let path = f.unwrap().path();
        if path.to_string_lossy().contains("tminus.db") {
            let bytes = std::fs::read(&path).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains("whsec_"),
                "{} holds a plain secret",
                path.display()
            );
        }
    }
}

/// Requests as they arrived: headers and body, to check signatures.
#[derive(Clone, Default)]
struct Capture {
    got: std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, axum::body::Bytes)>>>,
    url: String,
}

impl Capture {
    async fn start() -> Capture {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = Capture {
            url: format!("http://{}/hook", listener.local_addr().unwrap()),
            ..Default::default()
        };
        let keep = c.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |h: axum::http::HeaderMap, b: axum::body::Bytes| {
                let keep = keep.clone();
                async move { keep.got.lock().unwrap().push((h, b)) }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        c
    }

    /// Waits for `n` requests and checks each against `secret`.
    async fn verify(&self, n: usize, secret: &str) {
        until(30, "the reminders to arrive", async || {
            self.got.lock().unwrap().len() >= n
        })
        .await;
        let wh = standardwebhooks::Webhook::new(secret).unwrap();
        for (h, b) in self.got.lock().unwrap().iter() {
            wh.verify(b, h)
                .expect("signed with the subscription's secret");
        }
    }
}

/// The sealed secret of the only subscription in a SQLite file.
fn stored(db: &std::path::Path) -> String {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row("SELECT secret FROM subscriptions", [], |r| r.get(0))
        .unwrap()
}

/// Stops an instance the way an operator would (SIGTERM).
fn stop(mut inst: Instance) {
    let _ = std::process::Command::new("kill")
        .arg(inst.pid().to_string())
        .status();
    assert!(inst.child.wait().unwrap().success());
}

/// Starts an instance that must refuse to start; returns its log.
fn refused(db: &str, logs: &std::path::Path, name: &str, args: &[&str]) -> String {
    let mut inst = Instance::spawn(db, logs, name, args);
    assert!(
        !inst.child.wait().unwrap().success(),
        "{name} must refuse to start"
    );
    std::fs::read_to_string(logs.join(format!("{name}.log"))).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_reseals_every_secret_and_a_missing_key_refuses_to_start() {
    let logs = logs_dir();
    let path = logs.path().join("tminus.db");
    let db = path.to_str().unwrap();
    let http = reqwest::Client::new();
    let rx = Receiver::start().await;
    let capture = Capture::start().await;

    // Sealed under the first key.
    let a = Instance::spawn(db, logs.path(), "a", &["--secret-key", KEY1]);
    wait_healthy(&http, &a).await;
    let (cid, key, _) = subscriber(&http, &a, &rx).await;
    let sub = call(
        http.post(format!("{}/api/v1/integration/webhook/webhook", a.base))
            .header("x-api-key", &key),
        Some(json!({"hookUrl": capture.url, "event": "webinar.reminder.all"})),
    )
    .await;
    let secret = sub["secret"].as_str().unwrap().to_owned();
    stop(a);
    let under_first = stored(&path);

    // The new key seals, the old one still opens: re-sealed at start, and
    // the webhooks are signed with the same secret as before.
    let args = ["--secret-key", KEY2, "--secret-key-previous", KEY1];
    let b = Instance::spawn(db, logs.path(), "b", &args);
    wait_healthy(&http, &b).await;
    let under_second = stored(&path);
    assert!(under_second.starts_with("sealed:v1:") && under_first.starts_with("sealed:v1:"));
    assert_ne!(under_first[..19], under_second[..19], "another key's id");
    webinar_soon(&http, &b, &cid, 2, Duration::from_secs(2)).await;
    capture.verify(2, &secret).await;
    stop(b);

    // The old key is no longer needed.
    let c = Instance::spawn(db, logs.path(), "c", &["--secret-key", KEY2]);
    wait_healthy(&http, &c).await;
    stop(c);

    // Without the key the secrets are sealed with, it refuses to start.
    let log = refused(db, logs.path(), "d", &[]);
    assert!(log.contains("was not given"), "says why: {log}");
    let log = refused(db, logs.path(), "e", &["--secret-key", KEY1]);
    assert!(log.contains("was not given"), "says why: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_admin_token_is_kept_in_a_private_file_not_logged() {
    let dir = logs_dir();
    let db = dir.path().join("tminus.db");
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tminus"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--database", db.to_str().unwrap()])
        .env("TMINUS_LOG", "trace")
        .env_remove("TMINUS_ADMIN_TOKEN")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let file = dir.path().join("tminus-admin-token");
    until(20, "the token file", async || file.exists()).await;
    let token = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the token file is its owner's only: {mode:o}"
        );
    }
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut status = None;
    for _ in 0..100 {
        if let Ok(r) = http
            .get(format!("{base}/api/v1/platform/creators"))
            .bearer_auth(&token)
            .send()
            .await
        {
            status = Some(r.status());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        status,
        Some(reqwest::StatusCode::OK),
        "the kept token works"
    );
    let _ = std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status();
    assert!(child.wait().unwrap().success());
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(!log.contains(&token), "the token is not in the log");
    assert!(
        log.contains("tminus-admin-token"),
        "the log says where it is"
    );
}
