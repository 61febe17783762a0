//! The default log format, text, as `tminus serve` writes it to a file:
//! each API call ends with one line in its `request` span, naming the
//! method and the route template (never the path with its ids), with the
//! status answered and the latency; no JSON and no colour codes.

use crate::harness::*;
use std::process::{Command, Stdio};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_log_line_names_each_call_s_method_route_and_status() {
    let dir = logs_dir();
    let db = dir.path().join("tminus.db");
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
    // No format given anywhere: the default.
    let child = Command::new(env!("CARGO_BIN_EXE_tminus"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--database", db.to_str().unwrap(), "--admin-token", ADMIN])
        .env("TMINUS_LOG", "info")
        .env_remove("TMINUS_LOG_FORMAT")
        .env_remove("TMINUS_CONFIG")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let inst = Instance {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    wait_healthy(&http, &inst).await;
    let creators = format!("{}/api/v1/platform/creators", inst.base);
    let missing = http
        .get(format!("{creators}/0123456789abcdef01234567"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let made = http
        .post(&creators)
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"name": "Log", "timezone": "+05:30"}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
    drop(inst); // SIGTERM, and waits: the log is complete.

    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    for (method, route, status) in [
        ("GET", "/api/v1/platform/creators/{id}", 404),
        ("POST", "/api/v1/platform/creators", 201),
    ] {
        let span = format!(" INFO request{{method={method} route={route}}}: ");
        let answered = format!("answered status={status} latency_ms=");
        let line = log
            .lines()
            .find(|l| l.contains(&span) && l.contains(&answered))
            .unwrap_or_else(|| panic!("no line with {span:?} and {answered:?}:\n{log}"));
        let latency = line.split("latency_ms=").nth(1).unwrap();
        assert!(latency.trim().parse::<f64>().is_ok(), "{line}");
    }
    assert!(
        !log.contains("0123456789abcdef01234567"),
        "the route template, not the path:\n{log}"
    );
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        assert!(!line.starts_with('{'), "text, not JSON: {line}");
        assert!(
            !line.contains('\u{1b}'),
            "no colour codes in a file: {line}"
        );
    }
}
