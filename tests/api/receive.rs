//! `tminus receive` against tminus itself: reminders land in its JSONL file
//! once each (batch members too), a replay of a delivered reminder is
//! dropped as a repeat, and forged or stale requests are refused. And
//! tminus's real deliveries verified by the public `standardwebhooks`
//! package from PyPI, in a Python receiver.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tminus::clock::Clock;
use tminus_cli::receive::{OutputArgs, ReceiveArgs};
use tokio_util::sync::CancellationToken;

/// A `tminus receive` running in this process.
pub struct Kit {
    jsonl: PathBuf,
    stop: CancellationToken,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// A listener for the receiver, and its hook URL: the URL is needed to
/// subscribe, and the subscription's secret to start the receiver.
pub async fn bind() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhook", listener.local_addr().unwrap());
    (listener, url)
}

fn receive(listener: tokio::net::TcpListener, secret: &str, dir: &Path) -> Kit {
    let jsonl = dir.join("reminders.jsonl");
    let output = OutputArgs {
        jsonl: Some(jsonl.clone()),
        exec: None,
        forward: None,
    };
    receive_to(listener, secret, output, 64, jsonl)
}

/// A receiver with any output and queue; `jsonl` is where the test reads
/// what was handed on.
pub fn receive_to(
    listener: tokio::net::TcpListener,
    secret: &str,
    output: OutputArgs,
    queue: usize,
    jsonl: PathBuf,
) -> Kit {
    let args = ReceiveArgs {
        listen: String::new(),
        secrets: vec![secret.to_owned()],
        output,
        queue,
    };
    let stop = CancellationToken::new();
    let done = tokio::spawn(tminus_cli::receive::run(
        args,
        listener,
        Clock::system(),
        stop.clone(),
    ));
    Kit { jsonl, stop, done }
}

/// The JSON lines of a file (none when it is absent).
pub fn kit_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

impl Kit {
    pub fn lines(&self) -> Vec<Value> {
        kit_lines(&self.jsonl)
    }

    /// Waits until the file holds `n` lines (and a little more, to catch extras).
    async fn wait_lines(&self, n: usize) -> Vec<Value> {
        for _ in 0..200 {
            if self.lines().len() >= n {
                tokio::time::sleep(Duration::from_millis(300)).await;
                return self.lines();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} lines, have {:#?}", self.lines());
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.done.await.unwrap().unwrap();
    }
}

/// A fan-out of three participants to `sub`, all delivered.
async fn fan_out(app: &TestApp, cid: &str, key: &str, sub: &str, n: usize) -> Vec<Value> {
    let wid = app.webinar(cid, 4).await;
    app.participants(&wid, 3).await;
    app.wait_deliveries(key, sub, 20, |d| {
        d.len() == n && d.iter().all(|x| x["status"] == "delivered")
    })
    .await
}

#[tokio::test]
async fn reminders_land_once_each_and_a_replay_is_dropped() {
    let app = spawn_app().await;
    let (cid, key) = app.creator().await;
    let dir = tempfile::tempdir().unwrap();
    let (listener, url) = bind().await;
    let sub = app.subscribe(&key, &url, None).await;
    let sid = sub["id"].as_str().unwrap();
    let kit = receive(listener, sub["secret"].as_str().unwrap(), dir.path());

    // Three participants, three reminders each: nine lines, nine ids.
    let sent = fan_out(&app, &cid, &key, sid, 9).await;
    let lines = kit.wait_lines(9).await;
    assert_eq!(lines.len(), 9, "{lines:#?}");
    let mut ids: Vec<&str> = lines
        .iter()
        .map(|l| l["webhookId"].as_str().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 9, "each reminder once");
    for l in &lines {
        assert_eq!(l["event"], "webinar.reminder.all");
        assert!(
            ["3s", "2s", "1s"].contains(&l["reminder"].as_str().unwrap()),
            "{l}"
        );
        assert!(l["payload"]["email"]
            .as_str()
            .unwrap()
            .ends_with("@example.com"));
    }

    // A replay carries the same webhook-id: acknowledged, and dropped.
    let did = sent[0]["id"].as_str().unwrap();
    let path = format!("/{sid}/deliveries/{did}/retry");
    let (s, _) = app.hooks(Method::POST, &key, &path, None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    app.wait_deliveries(&key, sid, 10, |d| {
        d.iter()
            .any(|x| x["id"] == did && x["attempts"] == 2 && x["status"] == "delivered")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(kit.lines().len(), 9, "the repeat was not written");
    kit.stop().await;
}

#[tokio::test]
async fn each_member_of_a_batch_lands_once() {
    let app = spawn_app().await;
    let (cid, key) = app.creator().await;
    let dir = tempfile::tempdir().unwrap();
    let (listener, url) = bind().await;
    let sub = app
        .subscribe_with(&key, &url, serde_json::json!({"batchSize": 2}))
        .await;
    let kit = receive(listener, sub["secret"].as_str().unwrap(), dir.path());
    let wid = app.webinar(&cid, 4).await;
    app.participants(&wid, 3).await;
    let lines = kit.wait_lines(9).await;
    assert_eq!(lines.len(), 9, "{lines:#?}");
    let mut each: Vec<(String, String)> = lines
        .iter()
        .map(|l| (l["reminder"].to_string(), l["payload"]["email"].to_string()))
        .collect();
    each.sort();
    each.dedup();
    assert_eq!(
        each.len(),
        9,
        "every (reminder, participant) once: {lines:#?}"
    );
    assert!(lines
        .iter()
        .all(|l| l["webhookId"].as_str().unwrap().starts_with("msg_b")));
    kit.stop().await;
}

/// A request signed by hand, as tminus would sign it at `timestamp`.
fn signed(
    http: &reqwest::Client,
    url: &str,
    secret: &str,
    id: &str,
    timestamp: i64,
) -> reqwest::RequestBuilder {
    let body = br#"{"name":"Forged"}"#;
    let signer = tminus::signing::Signer::new(secret).unwrap();
    http.post(url)
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp)
        .header("webhook-signature", signer.sign(id, timestamp, body))
        .body(&body[..])
}

#[tokio::test]
async fn forged_stale_and_unsigned_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let secret = tminus::signing::new_secret();
    let (listener, url) = bind().await;
    let kit = receive(listener, &secret, dir.path());
    let http = reqwest::Client::new();
    let now = tminus::clock::wall().timestamp();
    let status = |r: reqwest::RequestBuilder| async move { r.send().await.unwrap().status() };

    let other = tminus::signing::new_secret();
    let forged = signed(&http, &url, &other, "msg_forged", now);
    assert_eq!(status(forged).await, StatusCode::UNAUTHORIZED);
    let stale = signed(&http, &url, &secret, "msg_stale", now - 301);
    assert_eq!(status(stale).await, StatusCode::BAD_REQUEST);
    let ahead = signed(&http, &url, &secret, "msg_ahead", now + 301);
    assert_eq!(status(ahead).await, StatusCode::BAD_REQUEST);
    let unsigned = http.post(&url).body("{}");
    assert_eq!(status(unsigned).await, StatusCode::BAD_REQUEST);

    // The same request, fresh and signed, passes once; its repeat is dropped.
    for _ in 0..2 {
        let good = signed(&http, &url, &secret, "msg_good", now);
        assert_eq!(status(good).await, StatusCode::OK);
    }
    let lines = kit.wait_lines(1).await;
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(lines[0]["webhookId"], "msg_good");
    kit.stop().await;
}

#[tokio::test]
async fn a_command_gets_each_reminder_on_stdin_and_a_full_queue_is_503() {
    let dir = tempfile::tempdir().unwrap();
    let secret = tminus::signing::new_secret();
    let (listener, url) = bind().await;
    let out = dir.path().join("from-exec.jsonl");
    // A slow command, and room for one request in the queue.
    let cmd = format!(
        "sleep 0.5; cat >> '{}'; echo >> '{}'",
        out.display(),
        out.display()
    );
    let output = OutputArgs {
        jsonl: None,
        exec: Some(cmd),
        forward: None,
    };
    let kit = receive_to(listener, &secret, output, 1, out);
    let http = reqwest::Client::new();
    let now = tminus::clock::wall().timestamp();
    let mut busy = Vec::new();
    for i in 0..4 {
        let id = format!("msg_{i}");
        let r = signed(&http, &url, &secret, &id, now).send().await.unwrap();
        if r.status() == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(r.headers()["retry-after"], "5");
            busy.push(id);
        } else {
            assert_eq!(r.status(), StatusCode::OK);
        }
    }
    assert!(
        !busy.is_empty(),
        "a queue of one, a slow output: some were 503"
    );
    // What was refused as busy was not remembered: sent again, it is taken.
    for id in &busy {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let r = signed(&http, &url, &secret, id, now).send().await.unwrap();
            if r.status() == StatusCode::OK {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{id} never taken");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    kit.stop().await;
    let mut ids: Vec<String> = kit_lines(&dir.path().join("from-exec.jsonl"))
        .iter()
        .map(|l| l["webhookId"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        ["msg_0", "msg_1", "msg_2", "msg_3"],
        "each once, all handed on before the stop"
    );
}

#[tokio::test]
async fn reminders_are_forwarded_to_a_url_and_a_failure_retried() {
    let dir = tempfile::tempdir().unwrap();
    let secret = tminus::signing::new_secret();
    let (listener, url) = bind().await;
    let next = crate::receiver::TestReceiver::start().await;
    next.script([crate::receiver::Reply::status(500)]);
    let output = OutputArgs {
        jsonl: None,
        exec: None,
        forward: Some(next.url.clone()),
    };
    let kit = receive_to(listener, &secret, output, 8, dir.path().join("unused"));
    let http = reqwest::Client::new();
    let now = tminus::clock::wall().timestamp();
    let r = signed(&http, &url, &secret, "msg_fwd", now)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    kit.stop().await;
    let got = next.received();
    assert_eq!(got.len(), 2, "a failed hand-on is retried");
    for g in &got {
        assert_eq!(g.json()["webhookId"], "msg_fwd");
        assert_eq!(g.json()["payload"]["name"], "Forged");
    }
}

/// Starts the Python receiver: its hook URL, the process and its output file.
async fn python_receiver(out: &Path) -> (String, tokio::process::Child) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/kit/standardwebhooks_receiver.py"
    );
    let mut child = tokio::process::Command::new("python3")
        .arg(script)
        .arg(out)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 must be installed (scripts/test installs it)");
    let stdout = child.stdout.take().unwrap();
    let mut port = String::new();
    BufReader::new(stdout).read_line(&mut port).await.unwrap();
    let port: u16 = port.trim().parse().unwrap_or_else(|_| {
        panic!(
            "the receiver did not start: pip install standardwebhooks==1.1.0 (scripts/test does)"
        )
    });
    (format!("http://127.0.0.1:{port}/webhook"), child)
}

#[tokio::test]
#[ignore = "needs the standardwebhooks package from PyPI: scripts/test installs it and runs it"]
async fn the_standardwebhooks_package_from_pypi_verifies_real_deliveries() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app().await;
    let (cid, key) = app.creator().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("verified.jsonl");
    let (url, mut python) = python_receiver(&out).await;
    let sub = app.subscribe(&key, &url, None).await;
    let secret = sub["secret"].as_str().unwrap();
    let mut stdin = python.stdin.take().unwrap();
    stdin
        .write_all(format!("{secret}\n").as_bytes())
        .await
        .unwrap();
    stdin.flush().await.unwrap();

    let sent = fan_out(&app, &cid, &key, sub["id"].as_str().unwrap(), 9).await;
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 9, "{text}");
    for d in &sent {
        assert!(
            lines.iter().any(|l| l["id"] == d["id"]),
            "{d} verified: {text}"
        );
    }
    // It does check: a request signed with another secret is refused.
    let now = tminus::clock::wall().timestamp();
    let other = tminus::signing::new_secret();
    let forged = signed(&app.http, &url, &other, "msg_forged", now)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    python.kill().await.unwrap();
}

#[tokio::test]
async fn the_binary_takes_its_secret_from_the_environment_and_drains_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let secret = tminus::signing::new_secret();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let jsonl = dir.path().join("out.jsonl");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tminus"))
        .args(["receive", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--jsonl")
        .arg(&jsonl)
        .env(
            "TMINUS_RECEIVE_SECRET",
            format!("{},{secret}", tminus::signing::new_secret()),
        )
        .env("TMINUS_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/webhook");
    let http = reqwest::Client::new();
    let now = tminus::clock::wall().timestamp();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let answer = loop {
        match signed(&http, &url, &secret, "msg_env", now).send().await {
            Ok(r) => break r.status(),
            Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("tminus receive never listened: {e}"),
        }
    };
    assert_eq!(
        answer,
        StatusCode::OK,
        "the second secret of the list matches"
    );
    let pid = child.id().unwrap().to_string();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    assert!(term.unwrap().success());
    assert!(child.wait().await.unwrap().success());
    let lines = kit_lines(&jsonl);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(lines[0]["webhookId"], "msg_env");
}
