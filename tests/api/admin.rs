//! `tminus admin`, the real binary, against a real service: every command,
//! as a table and as `--json` (which must parse); a CSV of thousands of
//! rows imported in chunks, with its bad rows reported; subscriptions
//! listed failing first; a subscription's deliveries listed and one replayed.

use crate::helpers::*;
use crate::receiver::{Reply, TestReceiver};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::io::Write;

/// What one run of `tminus admin` printed.
pub(crate) struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `tminus admin ARGS` with the URL and the token from the environment.
pub(crate) async fn admin(app: &TestApp, args: &[&str]) -> Run {
    admin_at(&app.base, args).await
}

/// Runs `tminus admin ARGS` against the service at `url`.
async fn admin_at(url: &str, args: &[&str]) -> Run {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tminus"))
        .arg("admin")
        .args(args)
        .env("TMINUS_URL", url)
        .env("TMINUS_ADMIN_TOKEN", ADMIN)
        .output()
        .await
        .unwrap();
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `tminus admin ARGS --json`: it succeeds, and prints JSON.
pub(crate) async fn json(app: &TestApp, args: &[&str]) -> Value {
    let run = admin(app, &[args, &["--json"]].concat()).await;
    assert!(run.ok, "{args:?} failed: {}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", run.stdout))
}

/// The ids in a JSON array.
fn ids(list: &Value) -> Vec<&str> {
    let items = list.as_array().unwrap();
    items.iter().map(|x| x["id"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn creators_keys_and_webinars_are_created_and_listed() {
    let app = spawn_app().await;
    let creator = json(
        &app,
        &[
            "creators",
            "create",
            "--name",
            "Digital Co",
            "--timezone",
            "Asia/Kolkata",
        ],
    )
    .await;
    assert_eq!(creator["timezone"], "Asia/Kolkata");
    let cid = creator["id"].as_str().unwrap();
    assert_eq!(ids(&json(&app, &["creators", "list"]).await), [cid]);
    let table = admin(&app, &["creators", "list"]).await;
    assert!(
        table.ok && table.stdout.starts_with("ID"),
        "{}",
        table.stdout
    );
    assert!(table.stdout.contains(cid) && table.stdout.contains("Digital Co"));

    let key = json(&app, &["keys", "create", "--creator", cid, "--name", "ci"]).await;
    let secret = key["key"].as_str().unwrap();
    assert!(secret.starts_with("tmk_"), "{key}");
    let keys = json(&app, &["keys", "list", "--creator", cid]).await;
    assert_eq!(ids(&keys), [key["id"].as_str().unwrap()]);
    let table = admin(&app, &["keys", "list", "--creator", cid])
        .await
        .stdout;
    assert!(
        table.contains("ci") && !table.contains(secret),
        "the key is shown once: {table}"
    );

    let args = [
        "webinars",
        "create",
        "--creator",
        cid,
        "--title",
        "Intro",
        "--link",
    ];
    let times = [
        "--from",
        "2030-03-15T10:00:00Z",
        "--to",
        "2030-03-15T11:00:00Z",
    ];
    let link = "https://meet.google.com/abc-defg-hij";
    let webinar = json(&app, &[&args[..], &[link], &times].concat()).await;
    assert_eq!(webinar["fromTime"], "2030-03-15T10:00:00.000Z");
    let listed = json(&app, &["webinars", "list", "--creator", cid]).await;
    assert_eq!(ids(&listed), [webinar["id"].as_str().unwrap()]);
    assert!(admin(&app, &["webinars", "list", "--creator", cid])
        .await
        .stdout
        .contains("Intro"));

    // Flags instead of the environment; a refusal is one line and a failure.
    let flags = ["--url", &app.base, "--token", "wrong", "creators", "list"];
    let refused = admin(&app, &flags).await;
    assert!(!refused.ok);
    assert!(
        refused.stderr.contains("invalid_token"),
        "{}",
        refused.stderr
    );
    let bad = admin(
        &app,
        &[
            "webinars",
            "create",
            "--creator",
            cid,
            "--title",
            "T",
            "--link",
            link,
            "--from",
            "soon",
            "--to",
            "later",
        ],
    )
    .await;
    assert!(
        !bad.ok && bad.stderr.contains("invalid_time"),
        "{}",
        bad.stderr
    );
}

/// Every participant of a webinar, page by page.
async fn registered(app: &TestApp, wid: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after = String::new();
    loop {
        let path = format!("/webinars/{wid}/participants?limit=1000{after}");
        let (s, page) = app.admin(Method::GET, &path, None).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        all.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => return all,
        }
    }
}

#[tokio::test]
async fn a_csv_of_thousands_is_imported_in_chunks_and_bad_rows_reported() {
    let app = spawn_app().await;
    let (cid, _) = app.creator().await;
    let wid = app.webinar(&cid, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("people.csv");
    let mut csv = std::fs::File::create(&path).unwrap();
    writeln!(csv, "name,email,phone,timezone").unwrap();
    for i in 0..3000 {
        match i % 3 {
            0 => writeln!(csv, "\"Doe, P{i}\",p{i}@example.com,98765{i},+05:30").unwrap(),
            1 => writeln!(csv, "P{i},p{i}@example.com,,Europe/Berlin").unwrap(),
            _ => writeln!(csv, "P{i},p{i}@example.com").unwrap(),
        }
        if i == 1700 {
            writeln!(csv, "Bad,not-an-email,,").unwrap(); // line 1703
        }
        if i == 2500 {
            csv.write_all(b"Bytes,\xff@example.com,,\n").unwrap(); // line 2504
        }
    }
    drop(csv);
    let file = path.to_str().unwrap();

    // Through a proxy that counts the bulk calls: the 3 001 rows the CSV
    // reader can read, 500 a call, are 7 calls, and the chunk with the bad
    // email is sent again without it: 8 (sent whole, it would be 2).
    let proxy = crate::proxy::Proxy::start(&app.base).await;
    let args = ["participants", "import", "--webinar", &wid, file];
    let run = admin_at(
        &proxy.url,
        &[&args[..], &["--chunk", "500", "--json"]].concat(),
    )
    .await;
    assert!(run.ok, "{}", run.stderr);
    let done: Value = serde_json::from_str(&run.stdout).unwrap();
    let bulk = format!("/api/v1/platform/webinars/{wid}/participants/bulk");
    let chunks = proxy.count("POST", &bulk);
    assert_eq!(chunks, 8, "bulk calls");
    assert_eq!(done["created"], 3000, "{done}");
    assert_eq!(done["existing"], 0);
    let refused = done["refused"].as_array().unwrap();
    let lines: Vec<(u64, &str)> = refused
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        lines,
        [(1703, "invalid_email"), (2504, "bad_csv")],
        "{done}"
    );
    assert_eq!(refused[0]["field"], "email");

    let people = registered(&app, &wid).await;
    assert_eq!(people.len(), 3000);
    assert_eq!(people[0]["name"], "Doe, P0");
    assert_eq!(people[0]["phone"], "987650");
    assert_eq!(people[1]["timezone"], "Europe/Berlin");
    assert_eq!(
        people[2999]["email"], "p2999@example.com",
        "in the file's order"
    );

    // Again, as a table: nothing new, the same two rows refused.
    let again = admin(&app, &["participants", "import", "--webinar", &wid, file]).await;
    assert!(again.ok, "{}", again.stderr);
    assert!(
        again
            .stdout
            .starts_with("3000 registered (0 new, 3000 already), 2 refused"),
        "{}",
        again.stdout
    );
    assert!(
        again.stdout.contains("1703  email  invalid_email"),
        "{}",
        again.stdout
    );
    assert!(
        again.stderr.is_empty(),
        "no progress bar without a terminal: {}",
        again.stderr
    );
}

#[tokio::test]
async fn subscriptions_come_failing_first_and_a_delivery_is_replayed() {
    let app = spawn_app().await;
    let (cid, key) = app.creator().await;
    let (ok, failing, gone) = (
        TestReceiver::start().await,
        TestReceiver::start().await,
        TestReceiver::start().await,
    );
    failing.set_default(Reply::status(500));
    gone.set_default(Reply::status(410));
    let mut subs = Vec::new();
    for r in [&ok, &failing, &gone] {
        let sub = app.subscribe(&key, &r.url, None).await;
        let sid = sub["id"].as_str().unwrap().to_owned();
        let (s, _) = app
            .hooks(Method::POST, &key, &format!("/{sid}/test"), None)
            .await;
        assert_eq!(s, StatusCode::ACCEPTED);
        subs.push(sid);
    }
    let [ok_sub, failing_sub, gone_sub] = [&subs[0], &subs[1], &subs[2]];
    app.wait_deliveries(&key, ok_sub, 10, |d| {
        d.iter().all(|x| x["status"] == "delivered")
    })
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let listed = loop {
        let listed = json(&app, &["subscriptions", "list", "--creator", &cid]).await;
        if ids(&listed) == [gone_sub, failing_sub, ok_sub] || std::time::Instant::now() > deadline {
            break listed;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(ids(&listed), [gone_sub, failing_sub, ok_sub], "{listed:#}");
    assert_eq!(listed[0]["status"], "disabled");
    assert!(listed[1]["failingSince"].is_string(), "{listed:#}");
    let table = admin(&app, &["subscriptions", "list"]).await.stdout;
    let rows: Vec<&str> = table.lines().collect();
    assert!(
        rows[1].contains(gone_sub.as_str()) && rows[1].contains("disabled"),
        "{table}"
    );

    let list = ["deliveries", "list", "--subscription", ok_sub];
    let delivered = json(&app, &[&list[..], &["--status", "delivered"]].concat()).await;
    assert_eq!(delivered.as_array().unwrap().len(), 1, "{delivered:#}");
    assert!(json(&app, &[&list[..], &["--status", "failed"]].concat())
        .await
        .as_array()
        .unwrap()
        .is_empty());
    let did = delivered[0]["id"].as_str().unwrap();
    assert!(admin(&app, &list).await.stdout.contains(did));

    let replayed = json(
        &app,
        &[
            "deliveries",
            "replay",
            "--subscription",
            ok_sub,
            "--delivery",
            did,
        ],
    )
    .await;
    assert_eq!(replayed["id"], did);
    app.wait_deliveries(&key, ok_sub, 10, |d| {
        d[0]["attempts"] == 2 && d[0]["status"] == "delivered"
    })
    .await;
    assert_eq!(ok.received().len(), 2, "the replay arrived");
    let disabled = admin(
        &app,
        &[
            "deliveries",
            "replay",
            "--subscription",
            gone_sub,
            "--delivery",
            did,
        ],
    )
    .await;
    assert!(
        !disabled.ok && disabled.stderr.contains("subscription_disabled"),
        "{}",
        disabled.stderr
    );
}

#[tokio::test]
async fn the_import_shows_a_progress_bar_on_a_terminal() {
    let app = spawn_app().await;
    let (cid, _) = app.creator().await;
    let wid = app.webinar(&cid, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("people.csv");
    let rows: String = (0..2000)
        .map(|i| format!("P{i},p{i}@example.com\n"))
        .collect();
    std::fs::write(&path, format!("name,email\n{rows}")).unwrap();
    // `script` (util-linux) runs the command on a pseudo-terminal.
    let cmd = format!(
        "{} admin participants import --webinar {wid} --chunk 100 {}",
        env!("CARGO_BIN_EXE_tminus"),
        path.display()
    );
    let out = tokio::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("TMINUS_URL", &app.base)
        .env("TMINUS_ADMIN_TOKEN", ADMIN)
        .output()
        .await
        .expect("script (util-linux) must be installed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("registered, 0 refused"),
        "the bar's message: {text}"
    );
    assert!(
        text.contains("2000 registered (2000 new, 0 already)"),
        "{text}"
    );
}

#[tokio::test]
async fn the_url_and_token_come_from_a_settings_file_under_flags() {
    let app = spawn_app().await;
    let (cid, _) = app.creator().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tminus.toml");
    let listen = app.base.trim_start_matches("http://");
    std::fs::write(
        &file,
        format!("listen = \"{listen}\"\nadmin_token = \"{ADMIN}\"\n"),
    )
    .unwrap();
    let run = |args: Vec<&str>| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_tminus"))
            .arg("admin")
            .args(args)
            .env_remove("TMINUS_URL")
            .env_remove("TMINUS_ADMIN_TOKEN")
            .env("TMINUS_CONFIG", &file)
            .output()
    };
    let out = run(vec!["creators", "list", "--json"]).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ids(&list), [cid.as_str()]);
    let out = run(vec!["--token", "wrong", "creators", "list"])
        .await
        .unwrap();
    assert!(!out.status.success(), "a flag is over the file");
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid_token"));
}
