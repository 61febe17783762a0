//! `spawn_app` and the request helpers every test shares.

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tminus::clock::Clock;
use tminus::config::Config;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use crate::timing::Parked;

pub const ADMIN: &str = "test-admin-token";

/// A running service on a temporary SQLite file.
pub struct TestApp {
    pub base: String,
    pub clock: Clock,
    pub db: PathBuf,
    pub http: reqwest::Client,
    config: Config,
    shutdown: CancellationToken,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: Arc<tempfile::TempDir>,
}

/// Settings for tests: reminders seconds before the start, fast ticks and
/// retries, loopback receivers allowed.
pub fn test_config() -> Config {
    let mut c = Config::defaults();
    c.admin_token = Some(ADMIN.into());
    c.reminder_offsets = tminus::domain::offset::parse_list("3s,2s,1s").unwrap();
    c.allow_http = true;
    c.allow_private_targets = true;
    c.tick = Duration::from_millis(50);
    c.retry_base = Duration::from_millis(200);
    c.on_time_grace = Duration::from_secs(1);
    c.api_rate = 1000;
    // Tests refuse credentials on purpose, many times from one address.
    c.auth_failures = 1000;
    c
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let db = dir.path().join("tminus.db");
    let mut config = test_config();
    config.database = db.display().to_string();
    tweak(&mut config);
    start(config, Clock::system(), db, dir).await
}

async fn start(config: Config, clock: Clock, db: PathBuf, dir: Arc<tempfile::TempDir>) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(tminus::run(
        config.clone(),
        listener,
        clock.clone(),
        shutdown.clone(),
    ));
    TestApp {
        base,
        clock,
        db,
        http: reqwest::Client::new(),
        config,
        shutdown,
        handle: Some(handle),
        _dir: dir,
    }
}

impl TestApp {
    /// Stops the service, draining it, as SIGTERM would.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
    }

    /// Stops this service and starts a new one on the same database and clock.
    pub async fn restart(self) -> TestApp {
        self.restart_with(|_| {}).await
    }

    /// [`TestApp::restart`] with the configuration changed, as an operator
    /// restarting with other flags would.
    pub async fn restart_with(mut self, tweak: impl FnOnce(&mut Config)) -> TestApp {
        self.stop().await;
        let mut config = self.config.clone();
        tweak(&mut config);
        start(
            config,
            self.clock.clone(),
            self.db.clone(),
            self._dir.clone(),
        )
        .await
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        req = match auth {
            Auth::Admin => req.bearer_auth(ADMIN),
            Auth::Key(k) => req.header("x-api-key", k),
            Auth::None => req,
        };
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call(
            method,
            &format!("/api/v1/platform{path}"),
            Auth::Admin,
            body,
        )
        .await
    }

    pub async fn hooks(
        &self,
        method: Method,
        key: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call(
            method,
            &format!("/api/v1/integration/webhook/webhook{path}"),
            Auth::Key(key),
            body,
        )
        .await
    }

    /// A creator with an API key: (creator id, key).
    pub async fn creator(&self) -> (String, String) {
        let (s, c) = self
            .admin(
                Method::POST,
                "/creators",
                Some(json!({"name": "Creator", "timezone": "+05:30"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        let id = c["id"].as_str().unwrap().to_owned();
        let (s, k) = self
            .admin(
                Method::POST,
                &format!("/creators/{id}/api-keys"),
                Some(json!({"name": "t"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{k}");
        (id, k["key"].as_str().unwrap().to_owned())
    }

    /// A webinar starting `secs` seconds from the service's now.
    pub async fn webinar(&self, creator: &str, secs: i64) -> String {
        let from = self.clock.now() + chrono::Duration::milliseconds(secs * 1000);
        self.webinar_at(creator, from, json!({})).await
    }

    pub async fn webinar_at(&self, creator: &str, from: DateTime<Utc>, extra: Value) -> String {
        let mut body = json!({
            "creatorId": creator, "title": "Introduction to Digital Marketing",
            "link": "https://meet.google.com/abc-defg-hij", "fromTime": iso(from),
            "toTime": iso(from + chrono::Duration::hours(1)),
        });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (s, w) = self.admin(Method::POST, "/webinars", Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{w}");
        w["id"].as_str().unwrap().to_owned()
    }

    /// Registers `n` participants p0@example.com … and returns their ids.
    pub async fn participants(&self, webinar: &str, n: usize) -> Vec<String> {
        let people: Vec<Value> = (0..n)
            .map(|i| json!({"name": format!("P {i}"), "email": format!("p{i}@example.com")}))
            .collect();
        let (s, b) = self
            .admin(
                Method::POST,
                &format!("/webinars/{webinar}/participants/bulk"),
                Some(json!(people)),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let (_, list) = self
            .admin(
                Method::GET,
                &format!("/webinars/{webinar}/participants?limit=1000"),
                None,
            )
            .await;
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Subscribes with the seed's body; returns the subscription.
    pub async fn subscribe(&self, key: &str, url: &str, webinar: Option<&str>) -> Value {
        let (s, sub) = self
            .hooks(
                Method::POST,
                key,
                "",
                Some(json!({"hookUrl": url, "event": "webinar.reminder.all", "webinar": webinar})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{sub}");
        sub
    }

    /// Subscribes to every reminder with extra fields (caps, batch size).
    pub async fn subscribe_with(&self, key: &str, url: &str, extra: Value) -> Value {
        let mut body = json!({"hookUrl": url, "event": "webinar.reminder.all"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (s, sub) = self.hooks(Method::POST, key, "", Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{sub}");
        sub
    }

    pub async fn deliveries(&self, key: &str, sub: &str) -> Vec<Value> {
        let (s, d) = self
            .hooks(
                Method::GET,
                key,
                &format!("/{sub}/deliveries?limit=1000"),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{d}");
        d["data"].as_array().unwrap().clone()
    }

    /// Waits until `pred` holds for the subscription's deliveries.
    pub async fn wait_deliveries(
        &self,
        key: &str,
        sub: &str,
        secs: u64,
        pred: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let d = self.deliveries(key, sub).await;
            if pred(&d) {
                return d;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "deliveries never matched: {d:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether this service's store is PostgreSQL (else its SQLite file
    /// is [`TestApp::db`]).
    pub fn on_postgres(&self) -> bool {
        tminus::store::is_postgres(&self.config.database)
    }

    /// Counts rows straight from the database file.
    pub fn count(&self, table: &str) -> i64 {
        let c = rusqlite::Connection::open(&self.db).unwrap();
        c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }
}

pub enum Auth<'a> {
    Admin,
    Key(&'a str),
    None,
}

pub fn iso(t: DateTime<Utc>) -> String {
    tminus::domain::payload::iso_millis(t)
}

pub fn statuses(d: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = d
        .iter()
        .map(|x| x["status"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}
