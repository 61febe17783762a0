//! Byte-level golden tests of the payload against the seed's example.

use crate::helpers::*;
use crate::receiver::TestReceiver;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// The seed's example payload, compact, keys in the seed's order.
const SEED: &str = r#"{"name":"John Doe","email":"john@example.com","phone":"1234567890","timezone":"+05:30","webinar":"Introduction to Digital Marketing","webinarId":"634fc35ddaf58580e2418c40","webinarLink":"https://meet.google.com/abc-defg-hij","webinarFromTime":"2024-03-15T10:00:00.000Z","webinarToTime":"2024-03-15T11:00:00.000Z","webinarFromTimeInCreatorTimezone":"2024-03-15T15:30:00.000Z","creatorTimezone":"+05:30","mangoes":"Marketing Community, Digital Course Hub"}"#;

#[test]
fn renders_the_seed_example_byte_for_byte() {
    let (w, p) = tminus::domain::payload::seed_example();
    assert_eq!(
        String::from_utf8(tminus::domain::payload::render(&w, &p)).unwrap(),
        SEED
    );
}

#[test]
fn seed_document_example_has_the_same_keys_in_the_same_order() {
    // The seed's example as printed in the integration document.
    let text = include_str!("../../docs/seed/webinar-reminder-webhook.txt");
    let start = text.find("Example\n{").unwrap() + "Example\n".len();
    let doc = &text[start..start + text[start..].find("\n}").unwrap() + 2];
    let compact: String = doc.lines().map(|l| l.replacen("\": ", "\":", 1)).collect();
    assert_eq!(compact, SEED);
}

#[tokio::test]
async fn a_test_event_carries_the_seed_example() {
    let rx = TestReceiver::start().await;
    let app = spawn_app().await;
    let (_, key) = app.creator().await;
    let sub = app.subscribe(&key, &rx.url, None).await;
    let sid = sub["id"].as_str().unwrap();
    let (s, d) = app
        .hooks(Method::POST, &key, &format!("/{sid}/test"), None)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{d}");
    // One event, sent once.
    let got = rx.wait_exactly(&app, 1, 5).await;
    assert_eq!(std::str::from_utf8(&got[0].body).unwrap(), SEED);
    assert_eq!(got[0].header("x-tminus-reminder"), "test");
    assert_eq!(got[0].header("webhook-id"), d["id"].as_str().unwrap());
}

#[tokio::test]
async fn a_real_reminder_matches_the_seed_shape_byte_for_byte() {
    let (body, expected) = a_real_reminder(Some("1234567890")).await;
    assert_eq!(body, expected);
}

#[tokio::test]
async fn a_participant_without_a_phone_gets_an_empty_phone() {
    let (body, expected) = a_real_reminder(None).await;
    assert_eq!(
        body,
        expected.replace(r#""phone":"1234567890""#, r#""phone":"""#)
    );
}

/// The body of the one reminder John Doe (with `phone`, if given) receives,
/// and the seed's example with this webinar's id and times.
async fn a_real_reminder(phone: Option<&str>) -> (String, String) {
    let rx = TestReceiver::start().await;
    let app =
        spawn_with(|c| c.reminder_offsets = tminus::domain::offset::parse_list("1s").unwrap())
            .await;
    let (cid, key) = app.creator().await;
    let mut mangoes = vec![];
    for name in ["Marketing Community", "Digital Course Hub"] {
        let (_, m) = app
            .admin(
                Method::POST,
                &format!("/creators/{cid}/mangoes"),
                Some(json!({"name": name})),
            )
            .await;
        mangoes.push(m["id"].clone());
    }
    let w = app
        .parked(&cid, json!({"mangoes": mangoes, "timezone": "+05:30"}))
        .await;
    let (wid, from) = (w.id.clone(), w.from);
    let mut person = json!({"name": "John Doe", "email": "john@example.com", "timezone": "+05:30"});
    if let Some(phone) = phone {
        person["phone"] = json!(phone);
    }
    let (s, _) = app
        .admin(
            Method::POST,
            &format!("/webinars/{wid}/participants"),
            Some(person),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    app.subscribe(&key, &rx.url, Some(&wid)).await;
    app.starts_in(&w, 2.0);
    let got = rx.wait_for(1, 10).await;
    let expected = SEED
        .replace("634fc35ddaf58580e2418c40", &wid)
        .replace("2024-03-15T10:00:00.000Z", &iso(from))
        .replace(
            "2024-03-15T11:00:00.000Z",
            &iso(from + chrono::Duration::hours(1)),
        )
        .replace(
            "2024-03-15T15:30:00.000Z",
            &iso(from + chrono::Duration::minutes(330)),
        );
    (String::from_utf8(got[0].body.to_vec()).unwrap(), expected)
}
