//! What the crash tests ask a SQLite file while no process serves it: its
//! integrity, what it records as delivered and as missed.

use std::collections::BTreeSet;
use std::path::Path;

/// `PRAGMA integrity_check` says `ok`.
pub fn assert_intact(db: &Path) {
    let c = rusqlite::Connection::open(db).unwrap();
    let verdict: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(verdict, "ok", "integrity check of {}", db.display());
}

/// Deliveries recorded with `status`, by the count of rows (receipts hold
/// only acknowledged first attempts, never a missed one).
pub fn count_rows(db: &Path, status: &str) -> i64 {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(
        "SELECT count(*) FROM deliveries WHERE status = ?1",
        [status],
        |r| r.get(0),
    )
    .unwrap()
}

/// The webhook-ids the store records as delivered for `sub`, rows and
/// receipts alike, read through the store itself (which takes the file's
/// lock: call it only while no process serves the file).
pub async fn delivered(db: &Path, sub: &str) -> BTreeSet<String> {
    let store = tminus::store::open(db.to_str().unwrap()).await.unwrap();
    let ids = store
        .list_deliveries(tminus::store::Listing::of(
            &sub.parse().unwrap(),
            Some(tminus::domain::DeliveryStatus::Delivered),
            &tminus::store::PageRequest::all(),
        ))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|d| d.id.to_string())
        .collect();
    store.close().await;
    ids
}
