//! SQL for the roll of instances sharing the database: each says it is
//! alive once a tick, and learns how many are, so that a subscription's
//! concurrency and rate caps hold across all of them together.

use crate::store::StoreResult;
use chrono::{DateTime, Utc};
use tokio_postgres::GenericClient;

pub async fn heartbeat(
    c: &impl GenericClient,
    instance: &str,
    now: DateTime<Utc>,
    alive_since: DateTime<Utc>,
) -> StoreResult<u32> {
    let r = c
        .query_one(
            "WITH me AS (
               INSERT INTO instances (id, started_at, seen_at) VALUES ($1, $2, $2)
               ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at)
             SELECT count(*) FROM instances WHERE seen_at >= $3 AND id <> $1",
            &[&instance, &now, &alive_since],
        )
        .await?;
    // Long gone instances leave the roll now and then.
    if now.timestamp() % 60 == 0 {
        c.execute(
            "DELETE FROM instances WHERE seen_at < $1",
            &[&(now - chrono::Duration::hours(1))],
        )
        .await?;
    }
    Ok(r.get::<_, i64>(0) as u32 + 1)
}

pub async fn leave(c: &impl GenericClient, instance: &str) -> StoreResult<()> {
    c.execute("DELETE FROM instances WHERE id = $1", &[&instance])
        .await?;
    Ok(())
}
