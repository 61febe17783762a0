//! The dashboard in a real browser: Debian's chromium, headless, driven
//! through chromedriver (started here on a free port) with fantoccini. An
//! operator logs in to an overview with a row in every panel (the scene of
//! `overview.rs`), finds the failing subscription with its receiver's
//! answer, opens its deliveries and one delivery's attempts, and replays
//! them with the bulk form once the receiver is fixed; the receiver gets
//! them. A portal link, opened in the same browser, shows that creator's
//! subscription only, and leaves the operator logged in: both sessions
//! live side by side, and logging out of the portal ends the portal's
//! only. The running panel follows a fan-out's sent count
//! live, then lets it go when it ends.
//!
//! With `TMINUS_SCREENSHOTS=docs/screenshots` the browser also saves the
//! screenshots docs/OPERATIONS.md shows (overview, subscription, portal).

use crate::helpers::*;
use crate::overview;
use crate::receiver::{Reply, TestReceiver};
use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;

/// Chromium under chromedriver, each with a fresh profile; both end with
/// the test (the driver is killed on drop, and takes chromium with it).
struct Browser {
    client: Client,
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = tokio::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver (Debian's chromium-driver; scripts/test installs it)");
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1100,1000",
            &format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": "/usr/bin/chromium", "args": args}),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if std::time::Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("chromium through chromedriver: {e}"),
            }
        };
        Browser {
            client,
            _driver: driver,
            _profile: profile,
        }
    }

    /// Saves a screenshot as `name`.png where `TMINUS_SCREENSHOTS` says,
    /// the page zoomed by `zoom` for it (so a busy page fits the window).
    async fn screenshot(&self, name: &str, zoom: f64) {
        let Ok(dir) = std::env::var("TMINUS_SCREENSHOTS") else {
            return;
        };
        let set = "document.body.style.zoom = arguments[0]";
        let c = &self.client;
        c.execute(set, vec![json!(zoom.to_string())]).await.unwrap();
        let png = c.screenshot().await.unwrap();
        c.execute(set, vec![json!("")]).await.unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/{name}.png"), png).unwrap();
    }

    /// Logs in as the operator: the dashboard sends the browser to its
    /// form.
    async fn log_in(&self, app: &TestApp) {
        let c = &self.client;
        c.goto(&format!("{}/dashboard", app.base)).await.unwrap();
        let field = c.find(Locator::Css("#credential")).await.unwrap();
        field.send_keys(ADMIN).await.unwrap();
        let button = c.find(Locator::Css("#login button")).await.unwrap();
        button.click().await.unwrap();
        self.text("#next").await;
    }

    /// Goes to `path` and waits for `css` there (still at `path`: not
    /// sent to a login form, unless `css` is that form).
    async fn opens(&self, app: &TestApp, path: &str, css: &str) {
        let c = &self.client;
        c.goto(&format!("{}{path}", app.base)).await.unwrap();
        self.text(css).await;
        let at = c.current_url().await.unwrap();
        let want = if css == "#login" {
            format!("{path}/login")
        } else {
            path.to_owned()
        };
        assert_eq!(at.path(), want, "{css}");
    }

    /// Waits until the text of `css` passes `ok` (a live panel refreshes
    /// by itself); returns it.
    async fn until(&self, css: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            // Found afresh each time: the panel's elements are replaced.
            let found = self.client.find(Locator::Css(css)).await;
            let text = match found {
                Ok(el) => el.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if ok(&text) {
                return text;
            }
            assert!(std::time::Instant::now() < deadline, "{css}: {text:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The page's text.
    async fn text(&self, css: &str) -> String {
        let el = self
            .client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        el.text().await.unwrap()
    }
}

#[tokio::test]
#[ignore = "needs chromium and chromedriver: scripts/test runs it"]
async fn an_operator_replays_a_failing_subscription_in_a_browser() {
    let app = crate::replay::one_reminder(None).await;
    let scene = overview::busy(&app).await;
    let (rx, key, sid) = (&scene.failing, &scene.failing_key, &scene.failing_sub);
    let b = Browser::start().await;
    let c = &b.client;

    b.log_in(&app).await;
    // The failing subscription is on the overview, with the receiver's
    // answer; every other panel has its row (the screenshot shows them).
    let row = format!("#troubled tr[data-subscription='{sid}']");
    let trouble = b.text(&row).await;
    assert!(
        trouble.contains("HTTP 500") && trouble.contains(overview::ANSWER),
        "{trouble}"
    );
    let due = b
        .text(&format!("#next tr[data-webinar='{}']", scene.due))
        .await;
    assert!(due.contains("Quarterly review"), "{due}");
    let done = format!("#last tr[data-webinar='{}'] .last-late", scene.done.id);
    b.until(&done, |t| t.ends_with(" s")).await;
    let sent = format!("#running tr[data-webinar='{}'] .sent", scene.running.id);
    b.until(&sent, |t| t == overview::LET_THROUGH.to_string())
        .await;
    b.screenshot("dashboard", 0.78).await;
    scene.held.release();

    // Open its deliveries.
    let link = format!("{row} a");
    c.find(Locator::Css(&link))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.text("#deliveries").await;
    let expired = c
        .find_all(Locator::Css("tr.delivery[data-status='expired']"))
        .await
        .unwrap();
    assert_eq!(expired.len(), overview::FAILING_PEOPLE);
    // One delivery's attempts, opened: each with the status it got.
    c.find(Locator::Css("tr.delivery details summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let attempts = b.text("tr.delivery details[open] li.attempt").await;
    assert!(attempts.contains("HTTP 500"), "{attempts}");
    b.screenshot("subscription", 0.85).await;

    // The receiver is fixed; the bulk form replays the window's expired.
    rx.set_default(Reply::status(200));
    let sent = rx.received().len();
    c.find(Locator::Css("#replay-window"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(b
        .text(".notice")
        .await
        .contains("3 deliveries are due again"));
    rx.wait_for(sent + 3, 30).await;
    app.wait_deliveries(key, sid, 30, |d| {
        d.iter().all(|x| x["status"] == "delivered")
    })
    .await;

    // A portal link for a second creator shows that creator's
    // subscription only.
    let (other, other_key) = app.creator().await;
    let theirs = app
        .subscribe(&other_key, "http://127.0.0.1:9/other", None)
        .await;
    let theirs = theirs["id"].as_str().unwrap();
    let (s, link) = app
        .admin(
            Method::POST,
            &format!("/creators/{other}/portal-link"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{link}");
    c.goto(link["url"].as_str().unwrap()).await.unwrap();
    let listed = b.text("#subscriptions").await;
    assert!(listed.contains(theirs), "{listed}");
    assert!(!listed.contains(sid.as_str()), "{listed}");
    let html = c.source().await.unwrap();
    assert!(
        !html.contains(sid.as_str()),
        "nothing of the first creator's"
    );
    // The creator's own subscriptions, at the foot of the page, in view.
    let scroll = "document.getElementById('subscriptions').scrollIntoView({block: 'end'})";
    c.execute(scroll, vec![]).await.unwrap();
    b.screenshot("portal", 1.0).await;

    // The portal did not log the operator out: both sessions live side by
    // side, each site on its own cookie.
    b.opens(&app, "/dashboard", "#next").await;
    b.opens(&app, "/portal", "#subscriptions").await;
    // Logging out of the portal (its button) ends the portal only.
    c.find(Locator::Css("form.logout button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.text("#login").await;
    b.opens(&app, "/portal", "#login").await;
    b.opens(&app, "/dashboard", "#next").await;
    c.clone().close().await.unwrap();
}

#[tokio::test]
#[ignore = "needs chromium and chromedriver: scripts/test runs it"]
async fn the_running_panel_follows_a_fan_out_without_a_reload() {
    let rx = TestReceiver::start().await;
    rx.hold_after(0);
    let app = crate::replay::one_reminder(None).await;
    let (cid, key) = app.creator().await;
    let w = app.parked(&cid, json!({})).await;
    app.participants(&w.id, 4).await;
    app.subscribe(&key, &rx.url, None).await;
    app.starts_in(&w, 3.0);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while rx.in_flight() < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} sent",
            rx.in_flight()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let b = Browser::start().await;
    b.log_in(&app).await;
    // Held by the receiver: running, nothing acknowledged yet.
    let row = b.text("#running tr.fanout").await;
    assert!(row.contains(&w.id), "{row}");
    assert_eq!(b.text("#running .sent").await, "0");
    // The receiver answers half: the panel follows by itself, no reload,
    // while the other half keeps the fan-out running.
    rx.let_through(2);
    b.until("#running .sent", |t| t == "2").await;
    b.until("#running .remaining", |t| t == "2").await;
    // Then the rest: the fan-out leaves the panel.
    rx.release();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let panel = b.text("#running").await;
        if panel.contains("None running.") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{panel}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(b.text("#last").await.contains(&w.id));
    b.client.clone().close().await.unwrap();
}
