//! Remembered answers for `Idempotency-Key` (`store::idempotency`), shared
//! by every instance on the database.

use crate::store::{Remembered, StoreResult};
use chrono::{DateTime, Utc};
use tokio_postgres::GenericClient;

/// The answer kept for (caller, key) since `since`, if any.
pub async fn remembered(
    c: &impl GenericClient,
    caller: &str,
    key: &str,
    since: DateTime<Utc>,
) -> StoreResult<Option<Remembered>> {
    let row = c
        .query_opt(
            "SELECT caller, key, request_hash, status, body, created_at FROM idempotency
             WHERE caller = $1 AND key = $2 AND created_at >= $3",
            &[&caller, &key, &since],
        )
        .await?;
    Ok(row.map(|r| Remembered {
        caller: r.get(0),
        key: r.get(1),
        request_hash: r.get(2),
        status: r.get::<_, i32>(3) as u16,
        body: r.get(4),
        created_at: r.get(5),
    }))
}

/// Keeps `r` unless (caller, key) already has an answer since `since`
/// (another instance's included); answers older than `since` are
/// forgotten first. Returns the one kept.
pub async fn remember(
    c: &impl GenericClient,
    r: &Remembered,
    since: DateTime<Utc>,
) -> StoreResult<Remembered> {
    c.execute("DELETE FROM idempotency WHERE created_at < $1", &[&since])
        .await?;
    c.execute(
        "INSERT INTO idempotency (caller, key, request_hash, status, body, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (caller, key) DO NOTHING",
        &[
            &r.caller,
            &r.key,
            &r.request_hash,
            &i32::from(r.status),
            &r.body,
            &r.created_at,
        ],
    )
    .await?;
    Ok(remembered(c, &r.caller, &r.key, since)
        .await?
        .unwrap_or_else(|| r.clone()))
}
