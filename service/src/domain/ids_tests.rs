//! The id types' unit tests: shapes, parsing, webhook-ids.
use super::*;

#[test]
fn new_ids_have_the_seed_shape() {
    let id = new_id();
    assert!(is_id(&id), "{id}");
    assert!(!is_id("634FC35DDAF58580E2418C40"));
    assert!(!is_id("634fc35d"));
}

#[test]
fn ids_parse_only_their_shape() {
    let id = WebinarId::new();
    assert_eq!(id.as_str().parse::<WebinarId>(), Ok(id.clone()));
    assert_eq!(id.to_string(), id.as_str());
    assert_eq!(
        "634FC35DDAF58580E2418C40".parse::<WebinarId>(),
        Err(NotAnId("webinar"))
    );
    assert!(CreatorId::parse("x").is_err());
    let t = DateTime::parse_from_rfc3339("2024-03-15T10:00:00Z")
        .unwrap()
        .to_utc();
    for d in [webhook_id("s", 7, "1day", t), one_off_webhook_id()] {
        assert_eq!(DeliveryId::parse(d.as_str()), Ok(d));
    }
    let batch = format!("msg_b{}", "0".repeat(32));
    assert!(DeliveryId::parse(&batch).is_ok());
    for bad in [
        "msg_",
        "msg_abc",
        "msg_x0123456789abcdef01234567",
        id.as_str(),
    ] {
        assert!(DeliveryId::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{id}\""));
}

#[test]
fn webhook_id_is_stable_and_depends_on_every_part() {
    let t = DateTime::parse_from_rfc3339("2024-03-15T10:00:00Z")
        .unwrap()
        .to_utc();
    let a = webhook_id("s", 7, "1day", t);
    assert_eq!(a, webhook_id("s", 7, "1day", t));
    assert!(!a.as_str().contains('.'));
    assert_eq!(a.as_str().len(), 36);
    assert_ne!(a, webhook_id("s", 7, "30min", t));
    assert_ne!(a, webhook_id("s", 8, "1day", t));
    assert_ne!(a, webhook_id("t", 7, "1day", t));
    // One fan-out's keys sort by registration.
    assert!(webhook_id("s", 9, "1day", t) < webhook_id("s", 10, "1day", t));
    assert_ne!(
        a,
        webhook_id("s", 7, "1day", t + chrono::Duration::hours(1))
    );
    // Parts cannot bleed into each other.
    assert_ne!(webhook_id("ab", 1, "x", t), webhook_id("a", 1, "bx", t));
}

#[test]
fn a_slice_webhook_id_splits_into_prefix_and_seq_and_back() {
    let t = DateTime::parse_from_rfc3339("2024-03-15T10:00:00Z")
        .unwrap()
        .to_utc();
    let a = webhook_id("s", 300_007, "1day", t);
    let (prefix, seq) = split_webhook_id(a.as_str()).unwrap();
    assert_eq!(seq, 300_007);
    assert_eq!(prefix.len(), WEBHOOK_PREFIX_LEN);
    assert_eq!(join_webhook_id(prefix, seq), a);
    assert_eq!(split_webhook_id(one_off_webhook_id().as_str()), None);
    assert_eq!(
        split_webhook_id("msg_b0123456789abcdef0123456789abcdef"),
        None
    );
    assert_eq!(split_webhook_id(&a.as_str().replace("msg_", "msx_")), None);
}

#[test]
fn ids_deserialize_from_their_shape_and_a_malformed_one_is_recognized() {
    let w: WebinarId = serde_json::from_str("\"634fc35ddaf58580e2418c40\"").unwrap();
    assert_eq!(w.as_str(), "634fc35ddaf58580e2418c40");
    let message = |e: NotAnId| e.to_string();
    for (err, what) in [
        (CreatorId::parse("x").unwrap_err(), "creator"),
        (ApiKeyId::parse("x").unwrap_err(), "api key"),
        (MangoId::parse("x").unwrap_err(), "mango"),
        (WebinarId::parse("x").unwrap_err(), "webinar"),
        (ParticipantId::parse("x").unwrap_err(), "participant"),
        (SubscriptionId::parse("x").unwrap_err(), "subscription"),
        (ReminderId::parse("x").unwrap_err(), "reminder"),
        (DeliveryId::parse("x").unwrap_err(), "delivery"),
        (SessionId::parse("x").unwrap_err(), "session"),
    ] {
        assert_eq!(NotAnId::recognize(&message(err)), Some(what));
        let e = serde_json::from_str::<SubscriptionId>("\"x\"").unwrap_err();
        assert!(e.to_string().starts_with("not a subscription id"), "{e}");
    }
    assert_eq!(NotAnId::recognize("not a parrot id"), None);
    assert_eq!(NotAnId::recognize("invalid type: integer"), None);
}
