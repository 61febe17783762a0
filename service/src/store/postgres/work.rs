//! SQL for what the delivery workers read around their claims (`claim`):
//! finding subscriptions with work and when it is due, a slice's people
//! and its webinar's facts, and what was withdrawn from a lane's hold.

use crate::domain::ids::{webhook_id, Id};
use crate::domain::payload::{ParticipantFacts, WebinarFacts};
use crate::store::jobs::SliceRow;
use crate::store::Held;
use crate::store::Withdrawn;
use crate::store::{DeliveryId, Fresh, ParticipantId, StoreResult, SubscriptionId, WebinarId};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use deadpool_postgres::Transaction;
use std::collections::HashSet;
use tokio_postgres::Row;

pub async fn subscriptions_with_work(c: &impl GenericClient) -> StoreResult<Vec<SubscriptionId>> {
    let rows = c
        .query(
            &c.prepare_cached("SELECT s.id FROM subscriptions s WHERE s.status = 'active' AND (
               EXISTS (SELECT 1 FROM deliveries d WHERE d.subscription_id = s.id AND d.status = 'pending')
               OR EXISTS (SELECT 1 FROM slices l WHERE l.subscription_id = s.id AND l.status = 'pending'))").await?,
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

pub async fn next_delivery_due(
    c: &impl GenericClient,
    sub: &SubscriptionId,
) -> StoreResult<Option<DateTime<Utc>>> {
    let r = c
        .query_one(
            &c.prepare_cached(
                "SELECT LEAST(
               (SELECT MIN(GREATEST(next_attempt_at, COALESCE(locked_until, '-infinity')))
                FROM deliveries WHERE subscription_id = $1 AND status = 'pending'),
               (SELECT MIN(GREATEST(created_at, COALESCE(locked_until, '-infinity')))
                FROM slices WHERE subscription_id = $1 AND status = 'pending'))",
            )
            .await?,
            &[&sub],
        )
        .await?;
    Ok(r.get(0))
}

fn participant_facts(r: &Row, first: usize) -> ParticipantFacts {
    ParticipantFacts {
        name: r.get(first),
        email: r.get(first + 1),
        phone: r.get(first + 2),
        zone: r
            .get::<_, Option<String>>(first + 3)
            .and_then(|z| z.parse().ok()),
    }
}

pub(super) fn slice_row(r: &Row) -> SliceRow {
    SliceRow {
        id: r.get(0),
        subscription_id: r.get(1),
        proto: Fresh {
            slice: r.get(0),
            reminder_id: r.get(2),
            webinar_id: r.get(3),
            label: r.get(4),
            participant_id: Id::trusted(String::new()),
            due_at: r.get(6),
            expires_at: r.get(7),
            late: r.get(8),
            send_at: r.get(12),
        },
        from: r.get(5),
        after: r.get(9),
        last: r.get(10),
        claims: r.get::<_, i32>(11).into(),
    }
}

/// The registered participants of a slice's range, with their webhook-ids.
pub(super) async fn slice_people(
    tx: &Transaction<'_>,
    s: &SliceRow,
) -> StoreResult<Vec<(DeliveryId, ParticipantId, ParticipantFacts)>> {
    let st = tx
        .prepare_cached(
            "SELECT id, name, email, phone, timezone, seq FROM participants
             WHERE webinar_id = $1 AND seq > $2 AND seq <= $3 AND unregistered_at IS NULL
             ORDER BY seq",
        )
        .await?;
    let rows = tx
        .query(&st, &[&s.proto.webinar_id, &s.after, &s.last])
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let wid = webhook_id(s.subscription_id.as_str(), r.get(5), &s.proto.label, s.from);
            (wid, r.get(0), participant_facts(r, 1))
        })
        .collect())
}

/// A webinar's facts, as its payloads need them.
pub(super) async fn webinar_facts(
    tx: &impl GenericClient,
    id: &WebinarId,
) -> StoreResult<WebinarFacts> {
    let st = tx
        .prepare_cached(
            "SELECT title, link, from_time, to_time, timezone,
                    ARRAY(SELECT m.name FROM webinar_mangoes wm JOIN mangoes m ON m.id = wm.mango_id
                          WHERE wm.webinar_id = w.id ORDER BY wm.position)
             FROM webinars w WHERE id = $1",
        )
        .await?;
    let r = tx.query_one(&st, &[&id]).await?;
    Ok(WebinarFacts {
        id: id.clone(),
        title: r.get(0),
        link: r.get(1),
        from_time: r.get(2),
        to_time: r.get(3),
        creator_zone: r.get::<_, Option<String>>(4).and_then(|z| z.parse().ok()),
        mangoes: r.get(5),
    })
}

/// Of what a lane holds, what was withdrawn since it was leased.
pub async fn withdrawn(c: &impl GenericClient, held: &Held) -> StoreResult<Withdrawn> {
    Ok(Withdrawn {
        slices: among(
            c,
            "SELECT u.id FROM unnest($1::int8[]) AS u(id) WHERE NOT EXISTS
               (SELECT 1 FROM slices l WHERE l.id = u.id AND l.status = 'pending')",
            &held.slices,
        )
        .await?,
        rows: among(
            c,
            "SELECT u.id FROM unnest($1::text[]) AS u(id) WHERE NOT EXISTS
               (SELECT 1 FROM deliveries d WHERE d.id = u.id AND d.status = 'pending')",
            &held.rows,
        )
        .await?,
        participants: among(
            c,
            "SELECT id FROM participants WHERE id = ANY($1) AND unregistered_at IS NOT NULL",
            &held.participants,
        )
        .await?,
    })
}

/// The first column of the rows `sql` picks out of `ids` (its `$1`);
/// nothing, without asking, when there are no ids.
pub(super) async fn among<P, T>(
    c: &impl GenericClient,
    sql: &str,
    ids: &[P],
) -> StoreResult<HashSet<T>>
where
    P: tokio_postgres::types::ToSql + Sync,
    T: for<'a> tokio_postgres::types::FromSql<'a> + Eq + std::hash::Hash,
{
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    Ok(c.query(&c.prepare_cached(sql).await?, &[&ids])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}
