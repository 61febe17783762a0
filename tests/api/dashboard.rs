//! The operator dashboard and the creator portal over plain HTTP: the
//! login and its cookie, the pages' panels, the CSRF token, and tenant
//! isolation (a creator's portal never shows nor replays another creator's
//! subscriptions). A delivery's Replay button and a portal link's expiry:
//! `dashboard_replay.rs`. The same pages in a real browser: `browser.rs`.

use crate::helpers::*;
use crate::receiver::{Reply, TestReceiver};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// A client that shows redirects instead of following them.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The login form of `base` as a new browser gets it: its cookie
/// (`tminus_login=value`) and the token the form carries.
pub async fn login_form(app: &TestApp, base: &str) -> (String, String) {
    let r = client()
        .get(format!("{}{base}/login", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let set = r.headers()[SET_COOKIE].to_str().unwrap();
    let cookie = set.split(';').next().unwrap().to_owned();
    (cookie, csrf(&r.text().await.unwrap()))
}

/// Posts the login form of `base` with a form's (cookie, token).
pub async fn post_login(
    app: &TestApp,
    base: &str,
    (cookie, token): &(String, String),
    credential: &str,
) -> reqwest::Response {
    client()
        .post(format!("{}{base}/login", app.base))
        .header(COOKIE, cookie)
        .form(&[("credential", credential), ("csrf", token)])
        .send()
        .await
        .unwrap()
}

/// Logs in on `base` (`/dashboard` or `/portal`) through its form: the
/// session cookie (`name=value`) and the whole `Set-Cookie`.
pub async fn login(app: &TestApp, base: &str, credential: &str) -> (String, String) {
    let form = login_form(app, base).await;
    let r = post_login(app, base, &form, credential).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{base} login");
    let set = r.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    (set.split(';').next().unwrap().to_owned(), set)
}

/// GET `path` with the cookie: (status, body).
pub async fn page(app: &TestApp, cookie: &str, path: &str) -> (StatusCode, String) {
    let r = client()
        .get(format!("{}{path}", app.base))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

/// The CSRF token a page's forms carry.
pub(crate) fn csrf(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a form") + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_dashboard_opens_with_the_admin_token_in_a_strict_signed_cookie() {
    let app = spawn_app().await;
    let r = client()
        .get(format!("{}/dashboard", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/dashboard/login");
    let form = login_form(&app, "/dashboard").await;
    let wrong = post_login(&app, "/dashboard", &form, "not-the-token").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get(SET_COOKIE).is_none());

    // Whatever a record holds is shown as text, never as markup.
    let (cid, _) = app.creator().await;
    let title = json!({"title": "<script>alert(1)</script>"});
    app.parked(&cid, title).await;
    let (cookie, set) = login(&app, "/dashboard", ADMIN).await;
    for flag in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/dashboard"] {
        assert!(set.contains(flag), "{set}");
    }
    assert!(
        !set.contains(ADMIN),
        "the cookie never holds the token: {set}"
    );
    let (s, html) = page(&app, &cookie, "/dashboard").await;
    assert_eq!(s, StatusCode::OK);
    for panel in [
        "Next fan-outs due",
        "Running fan-outs",
        "Last fan-outs",
        "Failing and disabled",
    ] {
        assert!(html.contains(panel), "{panel}");
    }
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("<script>alert"));
    // A forged or altered cookie is no session; neither is it the portal's.
    let forged = format!("{cookie}x");
    assert_eq!(
        page(&app, &forged, "/dashboard").await.0,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        page(&app, &cookie, "/portal").await.0,
        StatusCode::SEE_OTHER
    );
    // Logging out ends the cookie (and the session: `sessions.rs`).
    let out = client()
        .post(format!("{}/dashboard/logout", app.base))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf(&html))])
        .send()
        .await
        .unwrap();
    assert!(out.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
}

/// Two creators whose subscriptions both fail: (app, A's key, A's
/// subscription, B's subscription, A's id).
pub(crate) async fn two_failing_creators(
    rx: &TestReceiver,
) -> (TestApp, String, String, String, String) {
    let app = crate::replay::one_reminder(None).await;
    let mut subs = Vec::new();
    let mut keys = Vec::new();
    let mut webinars = Vec::new();
    for _ in 0..2 {
        let (cid, key) = app.creator().await;
        let w = app.parked(&cid, json!({})).await;
        app.participants(&w.id, 2).await;
        let sub = app.subscribe(&key, &rx.url, None).await;
        subs.push(sub["id"].as_str().unwrap().to_owned());
        keys.push((cid, key));
        webinars.push(w);
    }
    app.starts_in(&webinars[1], 3.0);
    for ((_, key), sid) in keys.iter().zip(&subs) {
        app.wait_deliveries(key, sid, 30, |d| {
            d.len() == 2 && d.iter().all(|x| x["status"] == "expired")
        })
        .await;
    }
    let (a, key) = keys.swap_remove(0);
    (app, key, subs[0].clone(), subs[1].clone(), a)
}

#[tokio::test]
async fn a_creator_s_portal_shows_and_replays_only_that_creator_s_subscriptions() {
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(500));
    let (app, key, mine, theirs, creator) = two_failing_creators(&rx).await;

    // The operator sees both failing subscriptions.
    let (op, _) = login(&app, "/dashboard", ADMIN).await;
    let (_, html) = page(&app, &op, "/dashboard").await;
    assert!(html.contains(&mine) && html.contains(&theirs));

    // A portal link opens creator A's portal only.
    let (s, link) = app
        .admin(
            Method::POST,
            &format!("/creators/{creator}/portal-link"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{link}");
    let url = link["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/portal/enter?token=", app.base)),
        "{url}"
    );
    assert!(link["expiresAt"].is_string());
    let r = client().get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let by_link = r.headers()[SET_COOKIE].to_str().unwrap();
    let by_link = by_link.split(';').next().unwrap().to_owned();
    let (by_key, _) = login(&app, "/portal", &key).await;
    for cookie in [&by_link, &by_key] {
        let (s, html) = page(&app, cookie, "/portal").await;
        assert_eq!(s, StatusCode::OK);
        assert!(html.contains(&mine), "A's own subscription is listed");
        assert!(!html.contains(&theirs), "B's subscription is not");
        let (s, _) = page(&app, cookie, &format!("/portal/subscriptions/{theirs}")).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, html) = page(&app, cookie, &format!("/portal/subscriptions/{mine}")).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(html.matches("data-status=\"expired\"").count(), 2);
        // Nor can it replay B's deliveries, with a good token or without.
        let token = csrf(&html);
        let form = [
            ("csrf", token.as_str()),
            ("since", "2000-01-01T00:00:00Z"),
            ("until", "2000-01-20T00:00:00Z"),
            ("status", "expired"),
        ];
        let r = client()
            .post(format!("{}/portal/subscriptions/{theirs}/replay", app.base))
            .header(COOKIE, cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        // The portal is not the dashboard.
        assert_eq!(
            page(&app, cookie, "/dashboard").await.0,
            StatusCode::SEE_OTHER
        );
    }
    // An expired or altered link opens nothing.
    let r = client().get(format!("{url}x")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get(SET_COOKIE).is_none());
    let (s, _) = app
        .admin(
            Method::POST,
            "/creators/0123456789abcdef01234567/portal-link",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_form_without_the_session_s_token_is_refused() {
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(500));
    let (app, _, mine, _, _) = two_failing_creators(&rx).await;
    let (op, _) = login(&app, "/dashboard", ADMIN).await;
    let path = format!("/dashboard/subscriptions/{mine}");
    let (_, html) = page(&app, &op, &path).await;
    let (since, until) = ("2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z");
    let post = |csrf: String| {
        let form = [
            ("csrf", csrf),
            ("since", since.into()),
            ("until", until.into()),
            ("status", "expired".into()),
        ];
        client()
            .post(format!("{}{path}/replay", app.base))
            .header(COOKIE, &op)
            .form(&form)
            .send()
    };
    assert_eq!(
        post("forged".into()).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    // With the token, a window too wide is refused on the page, naming it.
    let r = post(csrf(&html)).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("at most 31 days"));
}

#[tokio::test]
async fn a_disabled_subscription_is_enabled_again_from_its_page() {
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(410));
    let app = crate::replay::one_reminder(None).await;
    let (key, sid, _) = crate::replay::subscribed_webinar(&app, &rx, 1).await;
    app.wait_deliveries(&key, &sid, 30, |d| {
        d.iter().any(|x| x["status"] == "failed")
    })
    .await;
    let (op, _) = login(&app, "/dashboard", ADMIN).await;
    let (_, html) = page(&app, &op, "/dashboard").await;
    assert!(
        html.contains("receiver answered 410"),
        "the reason is shown"
    );
    let path = format!("/dashboard/subscriptions/{sid}");
    let (_, html) = page(&app, &op, &path).await;
    assert!(html.contains("Enable it again"));
    let r = client()
        .post(format!("{}{path}/enable", app.base))
        .header(COOKIE, &op)
        .form(&[("csrf", csrf(&html))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, sub) = app.hooks(Method::GET, &key, &format!("/{sid}"), None).await;
    assert_eq!(sub["status"], "active");
}
