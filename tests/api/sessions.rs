//! Dashboard and portal sessions kept in the store: logging out ends a
//! session for every copy of its cookie (on every instance sharing a
//! PostgreSQL store), revoking an API key ends the portal sessions it
//! opened, the operator's and a creator's sessions live side by side in
//! one browser (their own cookies, on their own paths), and a cookie the
//! client chose before logging in is never the session after it. The
//! guards around them (CSRF, the login form, cookie flags, failed logins):
//! `session_guards.rs`.

use crate::dashboard::{client, csrf, login, login_form, page, post_login};
use crate::helpers::*;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Whether `cookie` opens `base`'s overview.
pub(crate) async fn opens(app: &TestApp, cookie: &str, base: &str) -> bool {
    match page(app, cookie, base).await.0 {
        StatusCode::OK => true,
        StatusCode::SEE_OTHER => false,
        s => panic!("{base}: {s}"),
    }
}

/// Posts `base`'s logout form with `cookie` and the form token `token`
/// (none: the field is left out).
pub(crate) async fn logout(
    app: &TestApp,
    base: &str,
    cookie: &str,
    token: Option<&str>,
) -> reqwest::Response {
    let form: Vec<(&str, &str)> = token.map(|t| ("csrf", t)).into_iter().collect();
    client()
        .post(format!("{}{base}/logout", app.base))
        .header(COOKIE, cookie)
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// The form token of `cookie`'s session, from its overview.
pub(crate) async fn token_of(app: &TestApp, cookie: &str, base: &str) -> String {
    let (s, html) = page(app, cookie, base).await;
    assert_eq!(s, StatusCode::OK);
    csrf(&html)
}

/// A portal session opened with a link for `creator`: its cookie.
pub(crate) async fn by_link(app: &TestApp, creator: &str) -> (String, String) {
    let path = format!("/creators/{creator}/portal-link");
    let (s, link) = app.admin(Method::POST, &path, None).await;
    assert_eq!(s, StatusCode::CREATED, "{link}");
    let r = client()
        .get(link["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let set = r.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    (set.split(';').next().unwrap().to_owned(), set)
}

/// A new API key of `creator`: (its id, the key).
async fn new_key(app: &TestApp, creator: &str) -> (String, String) {
    let path = format!("/creators/{creator}/api-keys");
    let (s, k) = app.admin(Method::POST, &path, Some(json!({}))).await;
    assert_eq!(s, StatusCode::CREATED, "{k}");
    let text = |f: &str| k[f].as_str().unwrap().to_owned();
    (text("id"), text("key"))
}

#[tokio::test]
async fn logging_out_ends_the_session_for_every_copy_of_its_cookie() {
    let app = spawn_app().await;
    let (_, key) = app.creator().await;
    for (base, credential) in [("/dashboard", ADMIN), ("/portal", key.as_str())] {
        let (mine, _) = login(&app, base, credential).await;
        let (other, _) = login(&app, base, credential).await;
        // A copy: the same value, sent from elsewhere later.
        let copy = mine.clone();
        let token = token_of(&app, &mine, base).await;
        // The logout form with another session's token, or none, ends
        // nothing.
        let theirs = token_of(&app, &other, base).await;
        for wrong in [Some(theirs.as_str()), None] {
            let r = logout(&app, base, &mine, wrong).await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{base} {wrong:?}");
            assert!(opens(&app, &copy, base).await);
        }
        let r = logout(&app, base, &mine, Some(&token)).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers()[LOCATION], format!("{base}/login"));
        let set = r.headers()[SET_COOKIE].to_str().unwrap();
        assert!(set.contains("Max-Age=0"), "{set}");
        // The copy kept by another browser opens nothing any more, and is
        // told to go.
        let r = client()
            .get(format!("{}{base}", app.base))
            .header(COOKIE, &copy)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{base}");
        assert!(r.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0"));
        // Logging out again changes nothing; the other session lives on.
        assert_eq!(
            logout(&app, base, &copy, Some(&token)).await.status(),
            StatusCode::SEE_OTHER
        );
        assert!(!opens(&app, &copy, base).await);
        assert!(opens(&app, &other, base).await, "{base}: the other session");
        // A browser sending an ended one first (an older cookie of the same
        // name, set for another path) is still let in by its live one.
        assert!(opens(&app, &format!("{copy}; {other}"), base).await);
    }
}

#[tokio::test]
async fn revoking_an_api_key_ends_the_portal_sessions_it_opened() {
    let app = spawn_app().await;
    let (creator, _) = app.creator().await;
    let (first_id, first) = new_key(&app, &creator).await;
    let (_, second) = new_key(&app, &creator).await;
    let by_first = login(&app, "/portal", &first).await.0;
    let by_first_too = login(&app, "/portal", &first).await.0;
    let by_second = login(&app, "/portal", &second).await.0;
    let (linked, _) = by_link(&app, &creator).await;
    let operator = login(&app, "/dashboard", ADMIN).await.0;
    for c in [&by_first, &by_first_too, &by_second, &linked] {
        assert!(opens(&app, c, "/portal").await);
    }
    let path = format!("/creators/{creator}/api-keys/{first_id}");
    let (s, body) = app.admin(Method::DELETE, &path, None).await;
    assert!(s.is_success(), "{s} {body}");
    // Both sessions the revoked key opened are over; those of the other
    // key, of a link and of the operator are not.
    assert!(!opens(&app, &by_first, "/portal").await);
    assert!(!opens(&app, &by_first_too, "/portal").await);
    assert!(opens(&app, &by_second, "/portal").await);
    assert!(opens(&app, &linked, "/portal").await);
    assert!(opens(&app, &operator, "/dashboard").await);
    // Nor does the key open a new one.
    let form = login_form(&app, "/portal").await;
    let r = post_login(&app, "/portal", &form, &first).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_operator_s_and_a_creator_s_sessions_live_side_by_side() {
    let app = spawn_app().await;
    let (creator, key) = app.creator().await;
    let (operator, set) = login(&app, "/dashboard", ADMIN).await;
    assert!(operator.starts_with("tminus_session="), "{set}");
    assert!(set.contains("; Path=/dashboard;"), "{set}");
    for (portal, set) in [
        login(&app, "/portal", &key).await,
        by_link(&app, &creator).await,
    ] {
        assert!(portal.starts_with("tminus_portal="), "{set}");
        assert!(set.contains("; Path=/portal;"), "{set}");
        // One browser sends both: each site opens with its own.
        let both = format!("{operator}; {portal}");
        assert!(opens(&app, &both, "/dashboard").await);
        assert!(opens(&app, &both, "/portal").await);
        // A portal session under the dashboard's name is no operator's.
        let renamed = portal.replacen("tminus_portal", "tminus_session", 1);
        assert!(!opens(&app, &renamed, "/dashboard").await);
        // Logging out of the portal leaves the operator logged in.
        let token = token_of(&app, &both, "/portal").await;
        let r = logout(&app, "/portal", &both, Some(&token)).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let set = r.headers()[SET_COOKIE].to_str().unwrap();
        assert!(set.starts_with("tminus_portal=;"), "{set}");
        assert!(!opens(&app, &both, "/portal").await);
        assert!(opens(&app, &both, "/dashboard").await);
    }
}

#[tokio::test]
async fn a_session_cookie_chosen_before_login_is_not_adopted() {
    let app = spawn_app().await;
    let (_, a_key) = app.creator().await;
    let (_, b_key) = app.creator().await;
    let a_sub = app.subscribe(&a_key, "http://127.0.0.1:9/a", None).await;
    let a_sub = a_sub["id"].as_str().unwrap().to_owned();
    let b_sub = app.subscribe(&b_key, "http://127.0.0.1:9/b", None).await;
    let b_sub = b_sub["id"].as_str().unwrap().to_owned();
    // What another could plant in a browser: a value of their choosing, or
    // a session of their own (B's).
    let (planted_b, _) = login(&app, "/portal", &b_key).await;
    for planted in [
        "tminus_portal=chosen-by-the-client".to_owned(),
        planted_b.clone(),
    ] {
        // The browser comes to the form and logs in as A with it.
        let r = client()
            .get(format!("{}/portal/login", app.base))
            .header(COOKIE, &planted)
            .send()
            .await
            .unwrap();
        let form_cookie = r.headers()[SET_COOKIE].to_str().unwrap();
        let form_cookie = form_cookie.split(';').next().unwrap().to_owned();
        let token = csrf(&r.text().await.unwrap());
        let both = (format!("{planted}; {form_cookie}"), token);
        let r = post_login(&app, "/portal", &both, &a_key).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let set = r.headers()[SET_COOKIE].to_str().unwrap();
        let session = set.split(';').next().unwrap().to_owned();
        assert!(session.starts_with("tminus_portal="), "{set}");
        // A session the server made, A's, unknown to whoever planted one.
        assert_ne!(session, planted);
        let (_, html) = page(&app, &session, "/portal").await;
        assert!(html.contains(&a_sub) && !html.contains(&b_sub));
        // The planted value is what it was: nothing, or B's session.
        let (s, html) = page(&app, &planted, "/portal").await;
        if planted == planted_b {
            assert!(html.contains(&b_sub) && !html.contains(&a_sub));
        } else {
            assert_eq!(s, StatusCode::SEE_OTHER);
        }
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn a_logout_or_a_revocation_on_one_instance_ends_the_session_on_another() {
    let db = crate::pg::fresh().await;
    let (u1, u2) = (db.url.clone(), db.url.clone());
    let mut a = spawn_with(|c| c.database = u1).await;
    let mut b = spawn_with(|c| c.database = u2).await;
    let (creator, _) = a.creator().await;
    let (key_id, key) = new_key(&a, &creator).await;
    // Sessions opened on A open pages on B.
    let operator = login(&a, "/dashboard", ADMIN).await.0;
    let portal = login(&a, "/portal", &key).await.0;
    assert!(opens(&b, &operator, "/dashboard").await);
    assert!(opens(&b, &portal, "/portal").await);
    // Logged out on B: over on A.
    let token = token_of(&b, &operator, "/dashboard").await;
    let r = logout(&b, "/dashboard", &operator, Some(&token)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(!opens(&a, &operator, "/dashboard").await);
    // The key revoked through A: its session is over on B.
    let path = format!("/creators/{creator}/api-keys/{key_id}");
    let (s, _) = a.admin(Method::DELETE, &path, None).await;
    assert!(s.is_success());
    assert!(!opens(&b, &portal, "/portal").await);
    a.stop().await;
    b.stop().await;
    db.drop_now().await;
}
