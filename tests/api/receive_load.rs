//! `tminus receive` with its defaults (a queue of 1 024, a JSONL file)
//! under a real fan-out at tminus's default caps: no request is answered
//! `503`, so every reminder is acknowledged at its first attempt and lands
//! in the file once. `TMINUS_KIT_PARTICIPANTS` sets the size (5 000 here;
//! docs/RECEIVING.md gives the command for 100 000 in a release build).

use crate::receive::{bind, kit_lines, receive_to};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use tminus_cli::receive::OutputArgs;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_receiver_takes_a_whole_fan_out_at_default_caps_without_a_503() {
    let n: usize = std::env::var("TMINUS_KIT_PARTICIPANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let (app, key, w) = crate::delivery::webinar_with("29s", n, |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let (listener, url) = bind().await;
    // The seed's subscribe call: tminus's default caps.
    let sub = app.subscribe(&key, &url, None).await;
    let sid = sub["id"].as_str().unwrap();
    let jsonl = dir.path().join("reminders.jsonl");
    let output = OutputArgs {
        jsonl: Some(jsonl.clone()),
        exec: None,
        forward: None,
    };
    let queue = tminus_cli::receive::DEFAULT_QUEUE;
    let kit = receive_to(
        listener,
        sub["secret"].as_str().unwrap(),
        output,
        queue,
        jsonl,
    );
    app.starts_in(&w, 30.0);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(300);
    while kit.lines().len() < n {
        assert!(
            Instant::now() < deadline,
            "{} of {n} lines",
            kit.lines().len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = started.elapsed();
    app.settled().await;
    kit.stop().await;
    let lines = kit_lines(&dir.path().join("reminders.jsonl"));
    let ids: BTreeSet<&str> = lines
        .iter()
        .map(|l| l["webhookId"].as_str().unwrap())
        .collect();
    assert_eq!((lines.len(), ids.len()), (n, n), "each reminder once");
    // Every delivery acknowledged at its first attempt: no 503 was ever
    // answered (a 503 is a failed attempt, and a second one).
    let metrics = crate::metrics::scrape(&app).await;
    let count = |outcome: &str| -> u64 {
        let series = format!("tminus_deliveries_total{{outcome=\"{outcome}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&series))
            .map_or(0, |v| v.trim().parse().unwrap())
    };
    eprintln!("{n} reminders through tminus receive in {took:?}");
    assert_eq!(count("delivered"), n as u64, "{metrics}");
    assert_eq!(count("failed"), 0, "attempts answered other than 2xx");
    let _ = sid;
}
