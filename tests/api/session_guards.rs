//! What guards the dashboard's and the portal's sessions: the cookies'
//! flags (`HttpOnly`, `SameSite=Strict`, `Secure` directly and behind an
//! HTTPS proxy) and their 12 hours, failed dashboard logins counted
//! against `--auth-failures`, the pages' forms refused with another
//! session's token or none (nothing changes), and the login form refused
//! without the token its own cookie goes with. Sessions themselves:
//! `sessions.rs`.

use crate::dashboard::{client, csrf, login, login_form, page, post_login};
use crate::helpers::*;
use crate::sessions::{by_link, opens, token_of};
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::{Method, StatusCode};

/// The attributes of a `Set-Cookie` after its `name=value`.
fn flags(set: &str) -> Vec<String> {
    set.split(';')
        .skip(1)
        .map(|f| f.trim().to_owned())
        .collect()
}

#[tokio::test]
async fn the_portal_cookie_is_http_only_strict_and_secure_behind_https_too() {
    let app = spawn_with(|c| c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    let (creator, key) = app.creator().await;
    for https in [false, true] {
        let get = |path: String| {
            let r = client().get(format!("{}{path}", app.base));
            if https {
                r.header("x-forwarded-proto", "https")
            } else {
                r
            }
        };
        // The login form's own cookie.
        let r = get("/portal/login".into()).send().await.unwrap();
        let set = r.headers()[SET_COOKIE].to_str().unwrap().to_owned();
        assert!(set.starts_with("tminus_login="), "{set}");
        let want = ["Path=/portal", "Secure", "HttpOnly", "SameSite=Strict"];
        assert_eq!(flags(&set), want, "{set}");
        // The session, by key and by link: 12 hours.
        let form = (
            set.split(';').next().unwrap().to_owned(),
            csrf(&r.text().await.unwrap()),
        );
        let mut r = client()
            .post(format!("{}/portal/login", app.base))
            .header(COOKIE, &form.0)
            .form(&[("credential", key.as_str()), ("csrf", &form.1)]);
        if https {
            r = r.header("x-forwarded-proto", "https");
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let by_key = r.headers()[SET_COOKIE].to_str().unwrap().to_owned();
        let path = format!("/api/v1/platform/creators/{creator}/portal-link");
        let mut r = app
            .http
            .post(format!("{}{path}", app.base))
            .bearer_auth(ADMIN);
        if https {
            r = r.header("x-forwarded-proto", "https");
        }
        let link: serde_json::Value = r.send().await.unwrap().json().await.unwrap();
        let url = link["url"].as_str().unwrap();
        let scheme = if https { "https://" } else { "http://" };
        assert!(url.starts_with(scheme), "{url}");
        let query = url.split_once('?').unwrap().1;
        let r = get(format!("/portal/enter?{query}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let by_link = r.headers()[SET_COOKIE].to_str().unwrap().to_owned();
        for set in [by_key, by_link] {
            assert!(set.starts_with("tminus_portal="), "{set}");
            let want = [
                "Path=/portal",
                "Max-Age=43200",
                "Secure",
                "HttpOnly",
                "SameSite=Strict",
            ];
            assert_eq!(flags(&set), want, "{set}");
            assert!(!set.contains(&key), "{set}");
        }
    }
    // Twelve hours on the service's clock, and a session is over.
    let (session, _) = by_link(&app, &creator).await;
    app.clock
        .advance(chrono::Duration::hours(12) - chrono::Duration::seconds(5));
    assert!(opens(&app, &session, "/portal").await);
    app.clock.advance(chrono::Duration::seconds(10));
    assert!(!opens(&app, &session, "/portal").await);
}

#[tokio::test]
async fn failed_dashboard_logins_count_against_auth_failures() {
    let app = spawn_with(|c| c.auth_failures = 3).await;
    let form = login_form(&app, "/dashboard").await;
    // A post without the form's token is no guess: it is not counted.
    let stray = (form.0.clone(), "not-the-form-s".to_owned());
    for _ in 0..5 {
        let r = post_login(&app, "/dashboard", &stray, ADMIN).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    for _ in 0..3 {
        let r = post_login(&app, "/dashboard", &form, "not-the-token").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // Over budget: the admin token itself is refused, on the form and on
    // the API.
    let r = post_login(&app, "/dashboard", &form, ADMIN).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().get(SET_COOKIE).is_none());
    assert!(r.text().await.unwrap().contains("Too many failed attempts"));
    let r = app
        .http
        .get(format!("{}/api/v1/platform/creators", app.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_form_with_another_session_s_token_or_none_changes_nothing() {
    let app = spawn_app().await;
    let (creator, key) = app.creator().await;
    let sub = app.subscribe(&key, "http://127.0.0.1:9/x", None).await;
    let sid = sub["id"].as_str().unwrap().to_owned();
    rusqlite::Connection::open(&app.db)
        .unwrap()
        .execute(
            "UPDATE subscriptions SET status = 'disabled', disabled_reason = 'test' WHERE id = ?1",
            [&sid],
        )
        .unwrap();
    let status = || async {
        let (_, s) = app.hooks(Method::GET, &key, &format!("/{sid}"), None).await;
        s["status"].as_str().unwrap().to_owned()
    };
    assert_eq!(status().await, "disabled");
    let mine = login(&app, "/dashboard", ADMIN).await.0;
    let other = login(&app, "/dashboard", ADMIN).await.0;
    let portal = by_link(&app, &creator).await.0;
    let theirs = token_of(&app, &other, "/dashboard").await;
    let portal_s = token_of(&app, &portal, "/portal").await;
    let path = format!("/dashboard/subscriptions/{sid}");
    let post = |action: &str, form: Vec<(&'static str, String)>| {
        client()
            .post(format!("{}{path}/{action}", app.base))
            .header(COOKIE, &mine)
            .form(&form)
            .send()
    };
    let window = |token: Option<String>| {
        let mut form = vec![
            ("since", "2000-01-01T00:00:00Z".to_owned()),
            ("until", "2000-01-02T00:00:00Z".to_owned()),
            ("status", "expired".to_owned()),
        ];
        form.extend(token.map(|t| ("csrf", t)));
        form
    };
    for token in [Some(theirs), Some(portal_s), None] {
        let just = |t: &Option<String>| -> Vec<(&'static str, String)> {
            t.iter().map(|t| ("csrf", t.clone())).collect()
        };
        for (action, form) in [
            ("enable", just(&token)),
            ("deliveries/dlv_none/retry", just(&token)),
            ("replay", window(token.clone())),
        ] {
            let r = post(action, form).await.unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{action} {token:?}");
            assert!(r.text().await.unwrap().contains("another session"));
        }
        assert_eq!(status().await, "disabled", "{token:?}");
    }
    // With its own session's token, the form does its work.
    let (_, html) = page(&app, &mine, &path).await;
    let r = post("enable", vec![("csrf", csrf(&html))]).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(status().await, "active");
}

#[tokio::test]
async fn a_login_needs_the_token_of_its_own_form_s_cookie() {
    let app = spawn_app().await;
    let (_, key) = app.creator().await;
    for (base, credential) in [("/dashboard", ADMIN), ("/portal", key.as_str())] {
        let (a_cookie, a_token) = login_form(&app, base).await;
        let (b_cookie, b_token) = login_form(&app, base).await;
        assert_ne!(a_token, b_token);
        // Another site's post: no cookie (SameSite=Strict keeps it home),
        // no token, or another form's.
        for (cookie, token) in [
            ("", a_token.as_str()),
            (a_cookie.as_str(), ""),
            (a_cookie.as_str(), b_token.as_str()),
            (b_cookie.as_str(), a_token.as_str()),
            ("", ""),
        ] {
            let mut r = client()
                .post(format!("{}{base}/login", app.base))
                .form(&[("credential", credential), ("csrf", token)]);
            if !cookie.is_empty() {
                r = r.header(COOKIE, cookie);
            }
            let r = r.send().await.unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{base} {cookie} {token}");
            let session = r
                .headers()
                .get_all(SET_COOKIE)
                .iter()
                .any(|v| !v.to_str().unwrap().starts_with("tminus_login="));
            assert!(!session, "{base}: no session");
            // The page refused is a form that works.
            let given = r
                .headers()
                .get(SET_COOKIE)
                .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
            let again = (
                given.unwrap_or(cookie.to_owned()),
                csrf(&r.text().await.unwrap()),
            );
            let r = post_login(&app, base, &again, credential).await;
            assert_eq!(r.status(), StatusCode::SEE_OTHER, "{base}: again");
        }
        // Without a field at all, the same.
        let r = client()
            .post(format!("{}{base}/login", app.base))
            .header(COOKIE, &a_cookie)
            .form(&[("credential", credential)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = post_login(&app, base, &(a_cookie, a_token), credential).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
    }
}
