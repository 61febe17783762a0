//! `tminus admin`, the real binary, against a real service: every command,
//! as a table and as `--json` (which must parse); subscriptions listed
//! failing first; a subscription's deliveries listed and one replayed; the
//! URL and token from a settings file. The CSV import: `admin_import.rs`.

use crate::helpers::*;
use crate::receiver::{Reply, TestReceiver};
use reqwest::{Method, StatusCode};
use serde_json::Value;

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
pub(crate) async fn admin_at(url: &str, args: &[&str]) -> Run {
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
