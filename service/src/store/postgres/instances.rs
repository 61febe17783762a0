//! SQL for the roll of instances sharing the database: each says it is
//! alive once a tick, and learns how many are, so that a subscription's
//! concurrency and rate caps hold across all of them together, and which
//! ones have stopped answering, so that their work is taken over within
//! seconds instead of when their leases lapse.

use crate::store::InstanceId;
use crate::store::StoreResult;
use chrono::{DateTime, Utc};
use tokio_postgres::GenericClient;

/// What one heartbeat learnt.
pub struct Beat {
    /// Instances alive, this one included.
    pub live: u32,
    /// Whether this instance's previous heartbeat was itself recent: only
    /// then may it judge that others have gone quiet.
    pub was_alive: bool,
    /// Instances on the roll not heard from since `alive_since`.
    pub lapsed: Vec<InstanceId>,
}

pub async fn heartbeat(
    c: &impl GenericClient,
    instance: &InstanceId,
    now: DateTime<Utc>,
    alive_since: DateTime<Utc>,
) -> StoreResult<Beat> {
    // The CTEs read the roll as it was before this statement's write.
    let r = c
        .query_one(
            "WITH prev AS (SELECT seen_at FROM instances WHERE id = $1),
             me AS (
               INSERT INTO instances (id, started_at, seen_at) VALUES ($1, $2, $2)
               ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at)
             SELECT (SELECT count(*) FROM instances WHERE seen_at >= $3 AND id <> $1),
                    (SELECT seen_at >= $3 FROM prev),
                    (SELECT COALESCE(array_agg(id), '{}') FROM instances
                      WHERE seen_at < $3 AND id <> $1)",
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
    Ok(Beat {
        live: r.get::<_, i64>(0) as u32 + 1,
        was_alive: r.get::<_, Option<bool>>(1).unwrap_or(false),
        lapsed: r.get(2),
    })
}

/// Takes instances whose work was taken over off the roll, unless one
/// spoke up meanwhile.
pub async fn forget(
    c: &impl GenericClient,
    ids: &[InstanceId],
    alive_since: DateTime<Utc>,
) -> StoreResult<()> {
    c.execute(
        "DELETE FROM instances WHERE id = ANY($1) AND seen_at < $2",
        &[&ids, &alive_since],
    )
    .await?;
    Ok(())
}

pub async fn leave(c: &impl GenericClient, instance: &InstanceId) -> StoreResult<()> {
    c.execute("DELETE FROM instances WHERE id = $1", &[&instance])
        .await?;
    Ok(())
}
