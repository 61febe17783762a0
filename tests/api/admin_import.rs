//! `tminus admin participants import`, the real binary, against a real
//! service: a CSV of thousands of rows sent in chunks through the bulk API
//! (counted through a proxy), its bad rows reported, and the progress bar
//! it shows on a terminal.

use crate::admin::{admin, admin_at};
use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::io::Write;

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
