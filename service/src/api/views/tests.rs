//! Views keep the wire format: keys sorted (as the `json!` answers were)
//! except a single webinar, nulls written, extras absent unless set.

use super::*;
use crate::api::error::{ErrorBody, ErrorDetail, FieldError};
use chrono::TimeZone;
use serde::Serialize;

fn t() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 15, 10, 0, 0).unwrap()
}

/// `v` written as itself and as a sorted map are the same bytes.
fn sorted<T: Serialize>(v: &T) -> String {
    let direct = serde_json::to_string(v).unwrap();
    let via_map = serde_json::to_string(&serde_json::to_value(v).unwrap()).unwrap();
    assert_eq!(direct, via_map, "keys out of order");
    direct
}

fn sub() -> store::Subscription {
    store::Subscription {
        id: "s".into(),
        creator_id: "c".into(),
        hook_url: "https://example.com/h".into(),
        event: "webinar.reminder.all".into(),
        webinar_id: None,
        mango_id: None,
        secret: "sealed".into(),
        previous_secret: None,
        previous_until: None,
        status: crate::domain::SubscriptionStatus::Active,
        disabled_reason: None,
        tuning: crate::store::Tuning {
            max_concurrency: 8,
            rate_per_second: None,
            batch_size: 1,
            late_budget_ms: 60_000,
            send_early_ms: 0,
        },
        failing_since: None,
        created_at: t(),
        answer_us: None,
    }
}

#[test]
fn views_write_sorted_keys() {
    let s = sorted(&Subscription::new(&sub(), None).unwrap());
    assert!(!s.contains("secret") && !s.contains("creatorId"), "{s}");
    let s = sorted(&Subscription::for_operator(&sub()).unwrap());
    assert!(s.contains(r#""failingSince":null"#), "{s}");
    let s = sorted(&Subscription {
        previous_secret_valid_until: Some("x".into()),
        ..Subscription::new(&sub(), Some("whsec_x".into())).unwrap()
    });
    assert!(s.contains(r#""secret":"whsec_x""#), "{s}");
    let key = store::ApiKey {
        id: "k".into(),
        creator_id: "c".into(),
        name: "n".into(),
        prefix: "tmk_".into(),
        created_at: t(),
        revoked_at: None,
    };
    assert!(sorted(&ApiKey::new(key.clone(), Some("tmk_x".into()))).contains("\"key\""));
    assert!(!sorted(&ApiKey::new(key, None)).contains("\"key\""));
    sorted(&Creator::from(store::Creator {
        id: "c".into(),
        name: "n".into(),
        timezone: None,
        created_at: t(),
    }));
    sorted(&ErrorBody {
        error: ErrorDetail {
            code: "c".into(),
            errors: vec![FieldError {
                code: "c".into(),
                field: "f".into(),
                message: "m".into(),
            }],
            field: None,
            message: "m".into(),
        },
    });
    sorted(&crate::api::answer::Readiness {
        reason: Some("r".into()),
        status: "unavailable".into(),
    });
}

#[test]
fn a_single_webinar_keeps_the_record_order_and_lists_sort_it() {
    let w = store::Webinar {
        id: "w".into(),
        creator_id: "c".into(),
        title: "T".into(),
        link: "https://x".into(),
        from_time: t(),
        to_time: t(),
        timezone: None,
        mangoes: vec![],
        status: crate::domain::WebinarStatus::Scheduled,
        created_at: t(),
        updated_at: t(),
    };
    let view = Webinar::try_from(w).unwrap();
    let at = "2024-03-15T10:00:00.000Z";
    let record = format!(
        r#"{{"id":"w","creatorId":"c","title":"T","link":"https://x","fromTime":"{at}","toTime":"{at}","timezone":null,"mangoes":[],"status":"scheduled","createdAt":"{at}","updatedAt":"{at}"}}"#
    );
    assert_eq!(serde_json::to_string(&view).unwrap(), record);
    sorted(&Sorted(view));
}
