//! `tminus demo`: the whole product in under a minute. Starts the service on
//! a temporary SQLite file with reminder offsets of seconds, starts a local
//! receiver, creates a creator, a webinar and three participants through the
//! platform API, subscribes with the seed's own call, and prints each
//! reminder as it arrives with its signature checked.

use anyhow::{bail, Context};
use axum::body::Bytes;
use axum::http::HeaderMap;
use serde_json::{json, Value};
use std::time::Duration;
use tminus::clock::Clock;
use tminus::config::Config;
use tminus::domain::payload::iso_millis;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Reminders per participant in the demo: offsets of seconds.
const OFFSETS: &str = "9s,6s,3s";

/// Runs the demo; an error means some reminder did not arrive verified.
pub async fn run() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("tminus-demo-{}", tminus::domain::ids::new_id()));
    std::fs::create_dir_all(&dir)?;
    let result = demo(&dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn demo(dir: &std::path::Path) -> anyhow::Result<()> {
    let (hook_url, mut rx) = receiver().await?;
    let admin = format!("demo-{}", tminus::domain::ids::new_id());
    let mut config = Config::defaults();
    config.database = dir.join("tminus.db").display().to_string();
    config.admin_token = Some(admin.clone());
    config.reminder_offsets = tminus::domain::offset::parse_list(OFFSETS)?;
    config.allow_http = true;
    config.allow_private_targets = true;
    config.tick = Duration::from_millis(200);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let service = tokio::spawn(tminus::run(
        config,
        listener,
        Clock::system(),
        shutdown.clone(),
    ));
    println!("tminus is running at {base} (SQLite at {})", dir.display());
    let http = reqwest::Client::new();
    let (api_key, wid) = set_up(&http, &base, &admin).await?;

    // The seed's subscribe call, unchanged but for the base URL.
    let sub: Value = http
        .post(format!("{base}/api/v1/integration/webhook/webhook"))
        .header("accept", "application/json")
        .header("x-api-key", &api_key)
        .header("Content-Type", "application/json")
        .json(&json!({"hookUrl": hook_url, "event": "webinar.reminder.all", "webinar": wid}))
        .send()
        .await?
        .json()
        .await?;
    let secret = sub["secret"]
        .as_str()
        .context("subscription secret")?
        .to_owned();
    println!("subscribed {hook_url} as {}\n", sub["id"]);

    let expected = 9;
    let verified = follow(&mut rx, &secret, expected).await;
    shutdown.cancel();
    service.await??;
    let verified = verified?;
    if verified < expected {
        bail!("only {verified} of {expected} reminders arrived");
    }
    println!("\nall {expected} reminders arrived, each signature verified");
    Ok(())
}

/// What the receiver was sent: headers and body.
type Received = mpsc::UnboundedReceiver<(HeaderMap, Bytes)>;

/// The receiver: answers 200 and hands each request to the demo. Returns
/// its URL.
async fn receiver() -> anyhow::Result<(String, Received)> {
    let (tx, rx) = mpsc::unbounded_channel::<(HeaderMap, Bytes)>();
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook_url = format!("http://{}/webhook", receiver.local_addr()?);
    let app = axum::Router::new().route(
        "/webhook",
        axum::routing::post(move |h: HeaderMap, b: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((h, b));
                "OK"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(receiver, app).await });
    Ok((hook_url, rx))
}

/// Through the platform API: a creator, an API key, a mango, a webinar 12 s
/// ahead and three participants. Returns the key and the webinar's id.
async fn set_up(
    http: &reqwest::Client,
    base: &str,
    admin: &str,
) -> anyhow::Result<(String, String)> {
    let post = |path: &str, body: Value| {
        http.post(format!("{base}/api/v1/platform{path}"))
            .bearer_auth(admin)
            .json(&body)
            .send()
    };
    let creator: Value = post(
        "/creators",
        json!({"name": "Demo Creator", "timezone": "Asia/Kolkata"}),
    )
    .await?
    .json()
    .await?;
    let cid = creator["id"].as_str().context("creator id")?.to_owned();
    let key: Value = post(
        &format!("/creators/{cid}/api-keys"),
        json!({"name": "demo"}),
    )
    .await?
    .json()
    .await?;
    let api_key = key["key"].as_str().context("api key")?.to_owned();
    let mango: Value = post(
        &format!("/creators/{cid}/mangoes"),
        json!({"name": "Marketing Community"}),
    )
    .await?
    .json()
    .await?;
    let start = chrono::Utc::now() + chrono::Duration::seconds(12);
    let webinar: Value = post(
        "/webinars",
        json!({"creatorId": cid, "title": "Introduction to Digital Marketing", "link": "https://meet.example.com/abc-defg-hij",
               "fromTime": iso_millis(start), "toTime": iso_millis(start + chrono::Duration::hours(1)), "mangoes": [mango["id"]]}),
    )
    .await?
    .json()
    .await?;
    let wid = webinar["id"].as_str().context("webinar id")?.to_owned();
    let people = json!([
        {"name": "John Doe", "email": "john@example.com", "phone": "1234567890", "timezone": "+05:30"},
        {"name": "Erika Mustermann", "email": "erika@example.com", "timezone": "Europe/Berlin"},
        {"name": "Ana Silva", "email": "ana@example.com"}
    ]);
    post(&format!("/webinars/{wid}/participants/bulk"), people)
        .await?
        .error_for_status()?;
    println!(
        "webinar {wid} starts at {}; reminders at {OFFSETS} before, for 3 participants",
        iso_millis(start)
    );
    Ok((api_key, wid))
}

/// Prints each reminder as it arrives, its signature checked, until
/// `expected` arrived or 40 s passed: how many arrived verified. A bad
/// signature is an error.
async fn follow(rx: &mut Received, secret: &str, expected: usize) -> anyhow::Result<usize> {
    let mut verified = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while verified < expected {
        let Ok(Some((h, body))) = tokio::time::timeout_at(deadline, rx.recv()).await else {
            break;
        };
        let get = |n: &str| {
            h.get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let ts: i64 = get("webhook-timestamp").parse().unwrap_or(0);
        let ok = tminus::signing::verify(
            secret,
            &get("webhook-id"),
            ts,
            &body,
            &get("webhook-signature"),
        );
        let p: Value = serde_json::from_slice(&body).unwrap_or_default();
        println!(
            "{} {:>5} reminder for {:<18} timezone {:<7} id {}  signature {}",
            if ok { "✓" } else { "✗" },
            get("x-tminus-reminder"),
            p["email"].as_str().unwrap_or("?"),
            p["timezone"].as_str().unwrap_or("null"),
            get("webhook-id"),
            if ok { "verified" } else { "INVALID" },
        );
        if !ok {
            bail!("a reminder arrived with a signature that does not verify");
        }
        verified += 1;
    }
    Ok(verified)
}
