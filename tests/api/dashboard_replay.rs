//! The dashboard's per-delivery Replay button, for the operator and for a
//! creator's portal (which may replay only its own creator's deliveries:
//! another's is a 404 and nothing is sent), and a portal link refused once
//! `--portal-link-ttl` has passed on the service's clock.

use crate::dashboard::{client, csrf, login, page, two_failing_creators};
use crate::helpers::*;
use crate::receiver::{Reply, TestReceiver};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn a_delivery_s_replay_button_sends_it_again_for_its_viewer_only() {
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(500));
    let (app, key, mine, theirs, creator) = two_failing_creators(&rx).await;
    rx.set_default(Reply::status(200));
    let sent = rx.received().len();
    let did = app.deliveries(&key, &mine).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, list) = app
        .admin(
            Method::GET,
            &format!("/subscriptions/{theirs}/deliveries"),
            None,
        )
        .await;
    let their_did = list["data"][0]["id"].as_str().unwrap().to_owned();
    let post = |cookie: String, path: String, token: String| {
        client()
            .post(format!("{}{path}", app.base))
            .header(COOKIE, cookie)
            .form(&[("csrf", token)])
            .send()
    };

    // A's portal, by link: B's delivery is not found, under B's
    // subscription or under A's own; nothing is sent.
    let (_, link) = app
        .admin(
            Method::POST,
            &format!("/creators/{creator}/portal-link"),
            None,
        )
        .await;
    let r = client()
        .get(link["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let portal = r.headers()[SET_COOKIE].to_str().unwrap();
    let portal = portal.split(';').next().unwrap().to_owned();
    let (_, html) = page(&app, &portal, &format!("/portal/subscriptions/{mine}")).await;
    let token = csrf(&html);
    for path in [
        format!("/portal/subscriptions/{theirs}/deliveries/{their_did}/retry"),
        format!("/portal/subscriptions/{mine}/deliveries/{their_did}/retry"),
    ] {
        let r = post(portal.clone(), path.clone(), token.clone())
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }

    // The operator's button: back to the page, which says so; it arrives.
    let (op, _) = login(&app, "/dashboard", ADMIN).await;
    let path = format!("/dashboard/subscriptions/{mine}");
    let (_, html) = page(&app, &op, &path).await;
    assert!(
        html.contains(&format!("{path}/deliveries/{did}/retry")),
        "the button"
    );
    let r = post(
        op.clone(),
        format!("{path}/deliveries/{did}/retry"),
        csrf(&html),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], format!("{path}?retried=1").as_str());
    rx.wait_for(sent + 1, 30).await;
    app.wait_deliveries(&key, &mine, 30, |d| {
        d.iter()
            .any(|x| x["id"] == did.as_str() && x["status"] == "delivered")
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let again: Vec<String> = rx.received()[sent..]
        .iter()
        .map(|r| r.header("webhook-id"))
        .collect();
    assert_eq!(
        again.len(),
        1,
        "only the operator's replay arrived: {again:?}"
    );
    let (_, theirs_now) = app
        .admin(
            Method::GET,
            &format!("/subscriptions/{theirs}/deliveries"),
            None,
        )
        .await;
    assert!(
        theirs_now["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["status"] == "expired"),
        "{theirs_now:#}"
    );
}

#[tokio::test]
async fn a_portal_link_opens_nothing_once_its_ttl_has_passed() {
    let app = spawn_with(|c| c.portal_link_ttl = std::time::Duration::from_secs(600)).await;
    let (creator, _) = app.creator().await;
    let path = format!("/creators/{creator}/portal-link");
    let (s, link) = app.admin(Method::POST, &path, None).await;
    assert_eq!(s, StatusCode::CREATED, "{link}");
    let url = link["url"].as_str().unwrap().to_owned();
    // Just before its end it opens a session.
    app.clock.advance(chrono::Duration::seconds(590));
    let r = client().get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get(SET_COOKIE).is_some());
    // Past `--portal-link-ttl`, the same link is refused and sets no cookie.
    app.clock.advance(chrono::Duration::seconds(20));
    let r = client().get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get(SET_COOKIE).is_none());
    assert!(r.text().await.unwrap().contains("has expired"));
}
