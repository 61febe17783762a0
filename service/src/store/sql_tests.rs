//! Tests of the SQL exchange: row readers refuse what the enums lack and read
//! instants in either backend's encoding, and placeholders become SQLite's.

use super::*;

#[test]
fn a_status_the_enum_lacks_is_a_store_error() {
    let row = Row(vec![
        Value::Text("active".into()),
        Value::Text("weird".into()),
    ]);
    assert_eq!(
        row.status::<SubscriptionStatus>(0).unwrap(),
        SubscriptionStatus::Active
    );
    let err = row.status::<SubscriptionStatus>(1).unwrap_err().to_string();
    assert!(
        err.contains("unknown subscription status \"weird\""),
        "{err}"
    );
}

#[test]
fn placeholders_become_sqlites() {
    assert_eq!(
        sqlite_placeholders("SELECT $1, $12 FROM t WHERE a = $2"),
        "SELECT ?1, ?12 FROM t WHERE a = ?2"
    );
    assert_eq!(sqlite_placeholders("'$' || x"), "'$' || x");
}

#[test]
fn instants_read_back_from_either_encoding() {
    let t = DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
    let row = Row(vec![
        Value::Int(t.timestamp_millis()),
        Value::Time(t),
        Value::Null,
    ]);
    assert_eq!(row.time(0).unwrap(), t);
    assert_eq!(row.time(1).unwrap(), t);
    assert_eq!(row.opt_time(2).unwrap(), None);
    assert!(row.time(2).is_err());
}
