//! The dashboard's overview with something in every panel, and its rows
//! read over HTTP. [`busy`] sets the scene that this test and the browser
//! test (`browser.rs`, which screenshots it) both use: a subscription
//! failing with HTTP 500, an acknowledged fan-out, a reminder due in an
//! hour, and a fan-out running, held part-way by its receiver. The test
//! checks each panel's row: participants × subscriptions of the due
//! reminder, the first and last lateness of the acknowledged fan-out, the
//! sent count of the running one, the receiver's answer of the failing
//! subscription, and on that subscription's page, each delivery's attempts
//! with their status codes.

use crate::helpers::*;
use crate::receiver::{Reply, TestReceiver};
use crate::timing::Parked;
use reqwest::header::COOKIE;
use serde_json::json;
use std::time::{Duration, Instant};

/// What the failing receiver answers, besides its status.
pub const ANSWER: &str = "answer from the test receiver";
pub const FAILING_PEOPLE: usize = 3;
pub const DONE_PEOPLE: usize = 4;
pub const DUE_PEOPLE: usize = 3;
pub const RUNNING_PEOPLE: usize = 6;
/// How many of the running fan-out's deliveries its receiver answers.
pub const LET_THROUGH: usize = 2;

/// The scene [`busy`] sets.
pub struct Scene {
    /// Creator A's subscription, whose receiver answers 500 (their
    /// deliveries have expired): its receiver, A's key and its id.
    pub failing: TestReceiver,
    pub failing_key: String,
    pub failing_sub: String,
    /// Creator B's fan-out, acknowledged through B's two subscriptions.
    pub done: Parked,
    /// B's webinar an hour ahead: its one reminder is due.
    pub due: String,
    /// Creator C's fan-out, [`LET_THROUGH`] acknowledged and the rest held
    /// by `held` until it is released.
    pub running: Parked,
    pub held: TestReceiver,
    _ok: [TestReceiver; 2],
}

/// Sets the scene on `app` (a service with one reminder 2 s before each
/// webinar: `replay::one_reminder`).
pub async fn busy(app: &TestApp) -> Scene {
    let failing = TestReceiver::start().await;
    failing.set_default(Reply::status(500));
    let (failing_key, failing_sub, _) =
        crate::replay::subscribed_webinar(app, &failing, FAILING_PEOPLE).await;
    app.wait_deliveries(&failing_key, &failing_sub, 30, |d| {
        d.len() == FAILING_PEOPLE && d.iter().all(|x| x["status"] == "expired")
    })
    .await;

    let ok = [TestReceiver::start().await, TestReceiver::start().await];
    let (b, b_key) = app.creator().await;
    for rx in &ok {
        app.subscribe(&b_key, &rx.url, None).await;
    }
    let done = app.parked(&b, json!({"title": "Spring launch"})).await;
    app.participants(&done.id, DONE_PEOPLE).await;
    app.starts_in(&done, 3.0);
    for rx in &ok {
        rx.wait_for(DONE_PEOPLE, 30).await;
    }
    let due = app
        .webinar_at(
            &b,
            app.clock.now() + chrono::Duration::hours(1),
            json!({"title": "Quarterly review"}),
        )
        .await;
    app.participants(&due, DUE_PEOPLE).await;

    let held = TestReceiver::start().await;
    held.hold_after(0);
    let (c, c_key) = app.creator().await;
    app.subscribe(&c_key, &held.url, None).await;
    let running = app.parked(&c, json!({"title": "Onboarding live"})).await;
    app.participants(&running.id, RUNNING_PEOPLE).await;
    held.let_through(LET_THROUGH);
    app.starts_in(&running, 3.0);
    // Every request sent (the lane opens up as the first are answered),
    // the rest held.
    let deadline = Instant::now() + Duration::from_secs(30);
    while held.received().len() < RUNNING_PEOPLE || held.in_flight() < RUNNING_PEOPLE - LET_THROUGH
    {
        assert!(Instant::now() < deadline, "{} held", held.in_flight());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Scene {
        failing,
        failing_key,
        failing_sub,
        done,
        due,
        running,
        held,
        _ok: ok,
    }
}

/// The row of `section` whose `attr` is `value` (its HTML, to `</tr>`).
pub fn row<'a>(html: &'a str, section: &str, attr: &str, value: &str) -> Option<&'a str> {
    let at = html.find(&format!("<section id=\"{section}\""))?;
    let section = &html[at..];
    let section = &section[..section.find("</section>")?];
    let start = section.find(&format!("{attr}=\"{value}\""))?;
    let row = &section[start..];
    Some(&row[..row.find("</tr>")?])
}

/// The text of the cell of class `class` in `row` (its markup stripped).
pub fn cell(row: &str, class: &str) -> Option<String> {
    let mut rest = row;
    while let Some(at) = rest.find("<td class=\"") {
        let (classes, inner) = rest[at + 11..].split_once("\">")?;
        let end = inner.find("</td>")?;
        if classes.split(' ').any(|c| c == class) {
            return Some(text(&inner[..end]));
        }
        rest = &inner[end..];
    }
    None
}

/// HTML without its tags.
fn text(html: &str) -> String {
    let mut out = String::new();
    let mut tag = false;
    for c in html.chars() {
        match c {
            '<' => tag = true,
            '>' => tag = false,
            c if !tag => out.push(c),
            _ => {}
        }
    }
    out.trim().to_owned()
}

/// The overview, as the operator gets it.
async fn overview(app: &TestApp, cookie: &str) -> String {
    let r = app
        .http
        .get(format!("{}/dashboard", app.base))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    r.text().await.unwrap()
}

#[tokio::test]
async fn every_panel_of_the_overview_shows_its_figures() {
    let app = crate::replay::one_reminder(None).await;
    let scene = busy(&app).await;
    let cookie = crate::dashboard::login(&app, "/dashboard", ADMIN).await.0;

    // The acknowledged and running fan-outs are recorded as they go: the
    // page shows them once the store has them.
    let deadline = Instant::now() + Duration::from_secs(30);
    let html = loop {
        let html = overview(&app, &cookie).await;
        let done = row(&html, "last", "data-webinar", &scene.done.id);
        let running = row(&html, "running", "data-webinar", &scene.running.id);
        let late = done.and_then(|r| cell(r, "last-late")).unwrap_or_default();
        let sent = running.and_then(|r| cell(r, "sent")).unwrap_or_default();
        if !late.is_empty() && sent == LET_THROUGH.to_string() {
            break html;
        }
        assert!(Instant::now() < deadline, "late {late:?}, sent {sent:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let due = row(&html, "next", "data-webinar", &scene.due).expect("the due reminder");
    assert!(due.contains("Quarterly review"), "{due}");
    let figures = ["participants", "subscriptions", "deliveries"].map(|c| cell(due, c).unwrap());
    let [p, s, d] = [DUE_PEOPLE, 2, DUE_PEOPLE * 2].map(|n| n.to_string());
    assert_eq!(figures, [p, s, d], "{due}");

    let done = row(&html, "last", "data-webinar", &scene.done.id).unwrap();
    for c in ["first-late", "last-late"] {
        let late = cell(done, c).unwrap();
        let secs: f64 = late.trim_end_matches(" s").parse().expect(&late);
        assert!((0.0..5.0).contains(&secs), "{c}: {late}");
    }
    assert_eq!(
        cell(done, "delivered").unwrap(),
        (DONE_PEOPLE * 2).to_string()
    );
    assert_eq!(cell(done, "remaining").unwrap(), "0");

    let running = row(&html, "running", "data-webinar", &scene.running.id).unwrap();
    let held = (RUNNING_PEOPLE - LET_THROUGH).to_string();
    assert_eq!(cell(running, "remaining").unwrap(), held, "{running}");

    let trouble = row(&html, "troubled", "data-subscription", &scene.failing_sub).unwrap();
    assert!(
        cell(trouble, "last-error").unwrap().contains("HTTP 500"),
        "{trouble}"
    );
    assert_eq!(cell(trouble, "response").unwrap(), ANSWER, "{trouble}");

    // The failing subscription's page: each delivery with its attempts.
    let path = format!("/dashboard/subscriptions/{}", scene.failing_sub);
    let (_, page) = crate::dashboard::page(&app, &cookie, &path).await;
    let deliveries: Vec<&str> = page.split("<tr class=\"delivery\"").skip(1).collect();
    assert_eq!(deliveries.len(), FAILING_PEOPLE, "{page}");
    for d in deliveries {
        let d = &d[..d.find("</tr>").unwrap()];
        let attempts: usize = cell(d, "attempts").unwrap().parse().unwrap();
        let listed: Vec<&str> = d.split("<li class=\"attempt\">").skip(1).collect();
        assert!(attempts >= 1 && listed.len() == attempts, "{d}");
        for a in listed {
            assert!(a.contains("HTTP 500") && a.contains(ANSWER), "{a}");
        }
    }
    scene.held.release();
}
