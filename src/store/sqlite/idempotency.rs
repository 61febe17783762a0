//! Remembered answers for `Idempotency-Key` (`store::idempotency`).

use super::{at, ms};
use crate::store::{Remembered, StoreResult};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

/// The answer kept for (caller, key) since `since`, if any.
pub fn remembered(
    c: &Connection,
    caller: &str,
    key: &str,
    since: DateTime<Utc>,
) -> StoreResult<Option<Remembered>> {
    Ok(c.query_row(
        "SELECT caller, key, request_hash, status, body, created_at FROM idempotency
         WHERE caller = ?1 AND key = ?2 AND created_at >= ?3",
        params![caller, key, ms(since)],
        |r| {
            Ok(Remembered {
                caller: r.get(0)?,
                key: r.get(1)?,
                request_hash: r.get(2)?,
                status: r.get(3)?,
                body: r.get(4)?,
                created_at: at(r.get(5)?),
            })
        },
    )
    .optional()?)
}

/// Keeps `r` unless (caller, key) already has an answer since `since`;
/// answers older than `since` are forgotten first. Returns the one kept.
pub fn remember(c: &Connection, r: &Remembered, since: DateTime<Utc>) -> StoreResult<Remembered> {
    c.execute(
        "DELETE FROM idempotency WHERE created_at < ?1",
        params![ms(since)],
    )?;
    c.execute(
        "INSERT INTO idempotency (caller, key, request_hash, status, body, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (caller, key) DO NOTHING",
        params![
            r.caller,
            r.key,
            r.request_hash,
            r.status,
            r.body,
            ms(r.created_at)
        ],
    )?;
    Ok(remembered(c, &r.caller, &r.key, since)?.unwrap_or_else(|| r.clone()))
}
