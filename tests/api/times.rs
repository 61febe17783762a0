//! The times a webinar may have: from 1970-01-01 to ten years after now
//! (the service's clock), lasting at most 31 days, for create, PATCH and
//! reschedule, a `toTime` derived by keeping the duration included. Outside
//! them: 422 `invalid_time` naming the field, and nothing changes.

use crate::helpers::*;
use chrono::{DateTime, Duration, Utc};
use reqwest::Method;
use serde_json::{json, Value};

fn refused(got: (reqwest::StatusCode, Value), field: &str) {
    let (s, b) = got;
    assert_eq!(s.as_u16(), 422, "{b}");
    assert_eq!(b["error"]["code"], "invalid_time", "{b}");
    assert_eq!(b["error"]["field"], field, "{b}");
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

#[tokio::test]
async fn times_past_the_payload_s_reach_are_refused() {
    let app = spawn_app().await;
    let (cid, _) = app.creator().await;
    let now = app.clock.now();
    let create = |from: DateTime<Utc>, to: DateTime<Utc>| {
        app.admin(
            Method::POST,
            "/webinars",
            Some(
                json!({"creatorId": cid, "title": "T", "link": "https://meet.example.com/x",
                        "fromTime": iso(from), "toTime": iso(to)}),
            ),
        )
    };
    let end_of_time = at("9999-12-31T23:59:59Z");
    refused(create(now, end_of_time).await, "toTime");
    refused(
        create(end_of_time - Duration::hours(1), end_of_time).await,
        "fromTime",
    );
    let before_1970 = at("1969-12-31T23:00:00Z");
    refused(
        create(before_1970, before_1970 + Duration::hours(1)).await,
        "fromTime",
    );
    let ten_years = now.checked_add_months(chrono::Months::new(120)).unwrap();
    refused(
        create(ten_years + Duration::days(1), ten_years + Duration::days(2)).await,
        "fromTime",
    );
    refused(
        create(now + Duration::days(1), now + Duration::days(33)).await,
        "toTime",
    );
    let (s, b) = create(ten_years - Duration::days(2), ten_years - Duration::days(1)).await;
    assert_eq!(s.as_u16(), 201, "nine years and more ahead is fine: {b}");
    let (s, b) = create(
        at("1970-01-01T00:00:00Z"),
        at("1970-01-01T00:00:00Z") + Duration::days(31),
    )
    .await;
    assert_eq!(s.as_u16(), 201, "the epoch, and 31 days, are fine: {b}");
    assert_eq!(app.count("webinars"), 2);

    let wid = app.webinar(&cid, 7200).await;
    let path = format!("/webinars/{wid}");
    let (_, before) = app.admin(Method::GET, &path, None).await;
    let moved = format!("/webinars/{wid}/reschedule");
    let reschedule = |body: Value| app.admin(Method::POST, &moved, Some(body));
    // The case: the end would be written as +10000-01-01.
    refused(
        reschedule(json!({"fromTime": "9999-12-31T23:59:59Z"})).await,
        "fromTime",
    );
    // A start just inside the window whose kept duration ends outside it.
    refused(
        reschedule(json!({"fromTime": iso(ten_years - Duration::minutes(30))})).await,
        "toTime",
    );
    refused(
        reschedule(json!({"fromTime": iso(now), "toTime": "9999-12-31T23:59:59Z"})).await,
        "toTime",
    );
    refused(
        app.admin(
            Method::PATCH,
            &path,
            Some(json!({"toTime": iso(end_of_time)})),
        )
        .await,
        "toTime",
    );
    refused(
        app.admin(
            Method::PATCH,
            &path,
            Some(json!({"fromTime": "1969-07-20T20:17:40Z"})),
        )
        .await,
        "fromTime",
    );
    refused(
        app.admin(
            Method::PATCH,
            &path,
            Some(json!({"toTime": iso(now + Duration::days(40))})),
        )
        .await,
        "toTime",
    );
    let (_, after) = app.admin(Method::GET, &path, None).await;
    assert_eq!(after, before, "a refused change changes nothing");

    // The window is the service's clock's: moved a year ahead, it reaches
    // a year further.
    let later = ten_years + Duration::days(200);
    refused(
        reschedule(json!({"fromTime": iso(later)})).await,
        "fromTime",
    );
    app.clock.advance(Duration::days(366));
    let (s, b) = reschedule(json!({"fromTime": iso(later)})).await;
    assert_eq!(s.as_u16(), 200, "{b}");
    assert_eq!(b["toTime"], iso(later + Duration::hours(1)));
}
