//! The whole story: the platform creates a webinar and participants, an
//! integrator subscribes with the seed's own snippets, every reminder
//! arrives once per participant, signed so that the public
//! `standardwebhooks` library verifies it. The webinar is set up minutes
//! ahead and the service's clock then moved to a few seconds before it, so
//! a slow setup cannot make a reminder fall due before the subscription.

use crate::helpers::*;
use crate::receiver::TestReceiver;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::collections::HashSet;

const SEED_ORIGIN: &str = "https://api-prod-new.tagmango.com";
const WEBINAR_PLACEHOLDER: &str =
    "<webinar to be associated> (optional sends all webinar related events if not specified)";

/// The seed's snippet with its placeholders filled in, nothing else changed.
fn fill(snippet: &str, base: &str, key: &str, hook: &str, webinar: &str) -> String {
    snippet
        .replace(SEED_ORIGIN, base)
        .replace("<Your API Key>", key)
        .replace("<your webhook url>", hook)
        .replace(WEBINAR_PLACEHOLDER, webinar)
}

/// Runs a snippet without blocking the runtime the service shares with it.
async fn run(cmd: &str, args: &[&str]) -> String {
    let out = tokio::process::Command::new(cmd)
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{cmd} must be installed: {e}"));
    assert!(
        out.status.success(),
        "{cmd} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn seed_snippets_subscribe_unchanged() {
    let app = spawn_app().await;
    let (cid, key) = app.creator().await;
    let wid = app.webinar(&cid, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let snippets = [
        ("curl", include_str!("../seed/subscribe.sh"), "sh"),
        ("js", include_str!("../seed/subscribe.js"), "js"),
        ("py", include_str!("../seed/subscribe.py"), "py"),
    ];
    for (name, snippet, ext) in snippets {
        let hook = format!("http://127.0.0.1:9/{name}");
        let path = dir.path().join(format!("subscribe.{ext}"));
        std::fs::write(&path, fill(snippet, &app.base, &key, &hook, &wid)).unwrap();
        let p = path.to_str().unwrap();
        let out = match ext {
            "sh" => run("sh", &[p]).await,
            "js" => run("node", &[p]).await,
            _ => run("python3", &[p]).await,
        };
        assert!(
            out.contains("whsec_") && out.contains(&wid),
            "{name} printed: {out}"
        );
    }
    let (s, list) = app.hooks(Method::GET, &key, "", None).await;
    assert_eq!(s, StatusCode::OK);
    let hooks: HashSet<_> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["hookUrl"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(hooks.len(), 3, "{list}");
    assert!(
        list["data"][0].get("secret").is_none(),
        "the secret is only shown on create"
    );
}

#[tokio::test]
async fn every_reminder_reaches_every_participant_signed() {
    story(&spawn_app().await).await;
}

/// The same story with the service on PostgreSQL; then the database goes
/// away and the service says it is not ready.
#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn every_reminder_reaches_every_participant_signed_on_postgres() {
    let db = crate::pg::fresh().await;
    let url = db.url.clone();
    let mut app = spawn_with(|c| c.database = url).await;
    let ready = || async {
        let r = app
            .http
            .get(format!("{}/readyz", app.base))
            .send()
            .await
            .unwrap();
        (r.status(), r.json::<serde_json::Value>().await.unwrap())
    };
    assert_eq!(ready().await.0, StatusCode::OK);
    story(&app).await;
    // The running service holds locks on these tables now and then: the
    // drop may be chosen as a deadlock's victim, and is tried again.
    let admin = db.client().await;
    let drop = format!("DROP SCHEMA {} CASCADE", db.schema);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut dropped = admin.batch_execute(&drop).await;
    while dropped.is_err() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        dropped = admin.batch_execute(&drop).await;
    }
    dropped.expect("the schema is dropped");
    let (status, body) = ready().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "unavailable");
    app.stop().await;
    db.drop_now().await;
}

async fn story(app: &TestApp) {
    let rx = TestReceiver::start().await;
    let (cid, key) = app.creator().await;
    let (_, mango) = app
        .admin(
            Method::POST,
            &format!("/creators/{cid}/mangoes"),
            Some(json!({"name": "Marketing Community"})),
        )
        .await;
    let w = app.parked(&cid, json!({"mangoes": [mango["id"]]})).await;
    let (wid, from) = (w.id.clone(), w.from);
    let people = app.participants(&wid, 3).await;
    // The seed's body, verbatim but for the placeholders.
    let body = format!(
        r#"{{"hookUrl": "{}", "event": "webinar.reminder.all", "webinar": "{wid}"}}"#,
        rx.url
    );
    let resp = app
        .http
        .post(format!("{}/api/v1/integration/webhook/webhook", app.base))
        .header("accept", "application/json")
        .header("x-api-key", &key)
        .header("Content-Type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let sub: serde_json::Value = resp.json().await.unwrap();
    for field in ["id", "hookUrl", "event", "webinar", "createdAt", "secret"] {
        assert!(!sub[field].is_null(), "missing {field}: {sub}");
    }
    let secret = sub["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));

    app.starts_in(&w, 4.0);
    // Each participant once per reminder: nine, and no more once the
    // service is quiet.
    let got = rx.wait_exactly(app, 9, 15).await;
    let sid = sub["id"].as_str().unwrap();
    let d = app
        .wait_deliveries(&key, sid, 10, |d| {
            d.len() == 9 && d.iter().all(|x| x["status"] == "delivered")
        })
        .await;
    let verifier = standardwebhooks::Webhook::new(secret).unwrap();
    let mut ids = HashSet::new();
    let mut per_reminder = std::collections::HashMap::<String, usize>::new();
    for r in &got {
        verifier
            .verify(&r.body, &r.headers)
            .expect("standardwebhooks verifies the signature");
        assert_eq!(r.header("x-tminus-event"), "webinar.reminder.all");
        assert_eq!(r.header("x-tminus-attempt"), "1");
        assert_eq!(r.header("content-type"), "application/json");
        assert!(!r.header("webhook-id").contains('.'));
        assert!(
            ids.insert(r.header("webhook-id")),
            "webhook-id is per participant × reminder"
        );
        *per_reminder
            .entry(r.header("x-tminus-reminder"))
            .or_default() += 1;
        let p = r.json();
        assert_eq!(p["webinarId"], wid.as_str());
        assert_eq!(p["mangoes"], "Marketing Community");
        assert_eq!(p["creatorTimezone"], "+05:30");
        assert_eq!(p["webinarFromTime"], iso(from));
    }
    assert_eq!(per_reminder.len(), 3);
    assert!(per_reminder.values().all(|n| *n == 3), "{per_reminder:?}");
    assert_eq!(people.len(), 3);

    // The same subscribe call again is the same subscription.
    let resp = app
        .http
        .post(format!("{}/api/v1/integration/webhook/webhook", app.base))
        .header("x-api-key", &key)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let again: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(again["id"], sub["id"]);

    // Deliveries are listed with their attempts.
    for x in &d {
        assert_eq!(x["attempts"], 1);
        assert_eq!(x["late"], false);
        let log = x["attemptLog"].as_array().unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0]["statusCode"], 200);
        assert_eq!(log[0]["response"], "answer from the test receiver");
    }
    let (_, rem) = app
        .admin(Method::GET, &format!("/webinars/{wid}/reminders"), None)
        .await;
    assert!(
        rem["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "sent"),
        "{rem}"
    );
    // The API writes every instant as the payload does: milliseconds and Z.
    let due = rem["data"][0]["dueAt"].as_str().unwrap();
    assert!(due.len() == 24 && due.ends_with('Z'), "{due}");
}
