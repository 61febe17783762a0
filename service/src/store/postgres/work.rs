//! SQL for the delivery workers' leases: finding subscriptions with work,
//! and leasing pending rows and whole slices (`FOR UPDATE SKIP LOCKED`, so
//! instances split a fan-out between them slice by slice) with everything
//! needed to render them.

use crate::domain::ids::{split_webhook_id, webhook_id, Id};
use crate::domain::payload::{ParticipantFacts, WebinarFacts};
use crate::store::jobs::{webinars_of, SliceRow, SLICE_COLS};
use crate::store::SliceId;
use crate::store::{
    Claimed, DeliveryId, Fresh, Job, ParticipantId, StoreResult, SubscriptionId, WebinarId,
    Withdrawn,
};
use crate::store::{DeliveryClaim, Held, InstanceId};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use deadpool_postgres::Transaction;
use std::collections::{HashMap, HashSet};
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

pub async fn claim_deliveries(tx: &Transaction<'_>, claim: &DeliveryClaim) -> StoreResult<Claimed> {
    let DeliveryClaim {
        subscription_id: ref sub,
        now,
        limit,
        ref owner,
        lease_until,
    } = *claim;
    let st = tx
        .prepare_cached(
            "WITH c AS (
               SELECT id FROM deliveries
               WHERE subscription_id = $1 AND status = 'pending' AND next_attempt_at <= $2
                 AND expires_at > $2 AND (locked_until IS NULL OR locked_until <= $2)
               ORDER BY next_attempt_at LIMIT $3
               FOR UPDATE SKIP LOCKED),
             u AS (
               UPDATE deliveries d SET locked_until = $4, locked_by = $5
               FROM c WHERE d.id = c.id
               RETURNING d.id, d.label, d.attempts, d.expires_at, d.payload, d.webinar_id,
                         d.participant_id, d.next_attempt_at)
             SELECT u.id, u.label, u.attempts, u.expires_at, u.payload, u.webinar_id,
                    p.name, p.email, p.phone, p.timezone
             FROM u LEFT JOIN participants p ON p.id = u.participant_id
             ORDER BY u.next_attempt_at",
        )
        .await?;
    let rows = tx
        .query(&st, &[&sub, &now, &i64::from(limit), &lease_until, &owner])
        .await?;
    let mut jobs: Vec<Job> = rows
        .iter()
        .map(|r| Job {
            id: r.get(0),
            subscription_id: sub.clone(),
            label: r.get(1),
            attempt: r.get::<_, i32>(2) as u32 + 1,
            expires_at: r.get(3),
            payload: r.get(4),
            webinar_id: r.get(5),
            participant: r
                .get::<_, Option<String>>(6)
                .map(|_| participant_facts(r, 6)),
            fresh: None,
        })
        .collect();
    let mut slices = Vec::new();
    while (jobs.len() as u32) < limit {
        let Some((id, n)) = claim_slice(tx, sub, now, owner, lease_until, &mut jobs).await? else {
            break;
        };
        slices.push((id, n));
    }
    let mut webinars = HashMap::new();
    for id in webinars_of(&jobs) {
        let facts = webinar_facts(tx, &id).await?;
        webinars.insert(id, facts);
    }
    Ok(Claimed {
        jobs,
        webinars,
        slices,
    })
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

/// Leases the oldest free slice of `sub` and appends its jobs: every
/// participant of its range still registered and, if the slice was claimed
/// before (an instance died with it), not recorded yet. A slice with no job
/// left is closed and the next one tried.
async fn claim_slice(
    tx: &Transaction<'_>,
    sub: &SubscriptionId,
    now: DateTime<Utc>,
    owner: &InstanceId,
    lease_until: DateTime<Utc>,
    jobs: &mut Vec<Job>,
) -> StoreResult<Option<(SliceId, usize)>> {
    let claim = tx
        .prepare_cached(&format!(
            "WITH s AS (
               SELECT id FROM slices
               WHERE subscription_id = $1 AND status = 'pending' AND expires_at > $2
                 AND (locked_until IS NULL OR locked_until <= $2)
               ORDER BY id LIMIT 1
               FOR UPDATE SKIP LOCKED)
             UPDATE slices l SET locked_until = $3, locked_by = $4, claims = l.claims + 1
             FROM s WHERE l.id = s.id
             RETURNING {}",
            SLICE_COLS
                .split(',')
                .map(|c| format!("l.{}", c.trim()))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .await?;
    loop {
        let Some(row) = tx
            .query_opt(&claim, &[&sub, &now, &lease_until, &owner])
            .await?
        else {
            return Ok(None);
        };
        // `claims` as it was before this claim.
        let mut s = slice_row(&row);
        s.claims -= 1;
        let people = slice_people(tx, &s).await?;
        let (recorded, acknowledged) = match s.claims {
            0 => (HashSet::new(), HashSet::new()),
            _ => recorded(tx, &s, &people).await?,
        };
        let before = jobs.len();
        for (wid, pid, facts) in people {
            let seq = split_webhook_id(wid.as_str()).map(|(_, q)| q);
            if recorded.contains(&wid) || seq.is_some_and(|q| acknowledged.contains(&q)) {
                continue;
            }
            jobs.push(s.proto.job(sub, wid, pid, facts));
        }
        let n = jobs.len() - before;
        if n > 0 {
            return Ok(Some((s.id, n)));
        }
        tx.execute(
            &tx.prepare_cached(
                "UPDATE slices SET status = 'done', locked_until = NULL WHERE id = $1",
            )
            .await?,
            &[&s.id],
        )
        .await?;
    }
}

/// Of a slice claimed before, what was recorded already: the webhook-ids
/// of `people` that have rows, and the registration numbers its receipts
/// hold.
async fn recorded(
    tx: &Transaction<'_>,
    s: &SliceRow,
    people: &[(DeliveryId, ParticipantId, ParticipantFacts)],
) -> StoreResult<(HashSet<DeliveryId>, HashSet<i64>)> {
    let ids: Vec<&str> = people.iter().map(|p| p.0.as_str()).collect();
    let rows = among(tx, "SELECT id FROM deliveries WHERE id = ANY($1)", &ids).await?;
    Ok((rows, super::receipts::seqs(tx, s.id).await?))
}

async fn webinar_facts(tx: &Transaction<'_>, id: &WebinarId) -> StoreResult<WebinarFacts> {
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
async fn among<P, T>(c: &impl GenericClient, sql: &str, ids: &[P]) -> StoreResult<HashSet<T>>
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
