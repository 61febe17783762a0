//! `tminus bench-bulk`: the peak memory of one bulk registration. It starts
//! `tminus serve` (this same binary) as a child process on a temporary
//! SQLite file (or the PostgreSQL URL given), creates a webinar, POSTs one
//! generated body of N participants (a JSON array, or NDJSON) and reads the
//! child's peak resident memory (`VmHWM` in `/proc/<pid>/status`) before
//! and after, and its resident memory (`VmRSS`) a moment later. A program
//! that reports, never a test that asserts a figure.

use super::procs::{free_port, peak_rss_mb, status_mb, Child};
use super::run::wait_healthy;
use super::stores::RunStore;
use anyhow::Context;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Options of `tminus bench-bulk`.
#[derive(clap::Args, Debug)]
pub struct BulkArgs {
    /// Participants in the one request (200 000 is the most a request may
    /// hold; more is refused, and shows what a refusal costs).
    #[arg(long, default_value_t = 200_000)]
    pub participants: usize,
    /// Send NDJSON (one object per line) instead of a JSON array.
    #[arg(long)]
    pub ndjson: bool,
    /// Entries of a name and an email only (about 45 bytes): 1 000 000 of
    /// them fit under the body limit, so the refusal is the count's.
    #[arg(long)]
    pub short: bool,
    /// Store: `sqlite` for a temporary file (the default), or a postgres://
    /// URL (the run gets a schema of its own there, dropped after).
    #[arg(long, default_value = "sqlite")]
    pub database: String,
}

/// One participant as the platform would send it (about 110 bytes), or
/// only its name and email.
fn entry(i: usize, short: bool) -> Value {
    if short {
        return json!({"name": format!("P{i}"), "email": format!("p{i}@example.com")});
    }
    json!({"name": format!("Participant {i}"), "email": format!("participant{i}@example.com"),
           "phone": "+91 98765 43210", "timezone": "Asia/Kolkata"})
}

/// The request body: a JSON array, or NDJSON.
fn body(n: usize, ndjson: bool, short: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 120);
    if !ndjson {
        out.push(b'[');
    }
    for i in 0..n {
        if i > 0 && !ndjson {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, &entry(i, short)).expect("a Value serialises");
        if ndjson {
            out.push(b'\n');
        }
    }
    if !ndjson {
        out.push(b']');
    }
    out
}

/// Runs the measurement and prints its figures as JSON.
pub async fn run(args: BulkArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let dir = super::tempfile_dir()?;
    let url = if args.database == "sqlite" {
        dir.join("bulk.db").display().to_string()
    } else {
        args.database.clone()
    };
    let store = RunStore::prepare(&url, false).await?;
    let result = measure(&args, &exe, &store.url).await;
    store.finish().await;
    let _ = std::fs::remove_dir_all(&dir);
    let figures = result?;
    println!("{}", serde_json::to_string_pretty(&figures)?);
    Ok(())
}

/// A creator and a webinar two days ahead, to register into: its id.
async fn webinar(http: &reqwest::Client, base: &str, admin: &str) -> anyhow::Result<String> {
    let post = |path: &str, b: Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth(admin)
            .json(&b)
            .send()
    };
    let creator: Value = post("/creators", json!({"name": "Bulk"}))
        .await?
        .json()
        .await?;
    let cid = creator["id"].as_str().context("creator id")?;
    let from = chrono::Utc::now() + chrono::Duration::days(2);
    let webinar: Value = post(
        "/webinars",
        json!({"creatorId": cid, "title": "Bulk", "link": "https://meet.example.com/x",
               "fromTime": tminus::domain::payload::iso_millis(from),
               "toTime": tminus::domain::payload::iso_millis(from + chrono::Duration::hours(1))}),
    )
    .await?
    .json()
    .await?;
    Ok(webinar["id"].as_str().context("webinar id")?.to_owned())
}

async fn measure(args: &BulkArgs, exe: &std::path::Path, db: &str) -> anyhow::Result<Value> {
    let admin = "bench-admin";
    let listen = format!("127.0.0.1:{}", free_port()?);
    let serve = Child::spawn(
        exe,
        &[
            "serve",
            "--listen",
            &listen,
            "--database",
            db,
            "--admin-token",
            admin,
        ],
    )?;
    let base = format!("http://{listen}/api/v1/platform");
    let http = reqwest::Client::new();
    wait_healthy(&http, &format!("http://{listen}")).await?;
    let wid = webinar(&http, &base, admin).await?;

    let bytes = body(args.participants, args.ndjson, args.short);
    let size = bytes.len();
    let content_type = if args.ndjson {
        "application/x-ndjson"
    } else {
        "application/json"
    };
    let before = peak_rss_mb(serve.pid()).context("reading VmHWM")?;
    let t0 = Instant::now();
    let sent = http
        .post(format!("{base}/webinars/{wid}/participants/bulk"))
        .bearer_auth(admin)
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await;
    // A body refused before it is read (a Content-Length over the limit)
    // may end in a connection closed under the sender, not an answer.
    let (status, answer) = match sent {
        Ok(resp) => (
            json!(resp.status().as_u16()),
            resp.json().await.unwrap_or(Value::Null),
        ),
        Err(e) => (Value::Null, json!({"send_error": format!("{e:#}")})),
    };
    let took = t0.elapsed().as_secs_f64();
    let peak = peak_rss_mb(serve.pid()).context("reading VmHWM")?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = status_mb(serve.pid(), "VmRSS:").context("reading VmRSS")?;
    drop(serve);
    let r1 = |x: f64| (x * 10.0).round() / 10.0;
    Ok(json!({
        "participants": args.participants,
        "format": if args.ndjson { "ndjson" } else { "json" },
        "database": if tminus::store::is_postgres(db) { "postgres" } else { "sqlite" },
        "body_mb": r1(size as f64 / 1_048_576.0),
        "status": status,
        "answer": answer,
        "seconds": (took * 100.0).round() / 100.0,
        "peak_rss_mb_before": r1(before),
        "peak_rss_mb": r1(peak),
        "rss_mb_2s_after": r1(after),
    }))
}
