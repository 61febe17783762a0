//! SQL for the delivery workers' leases: finding subscriptions with work,
//! and leasing pending rows and whole slices with everything needed to
//! render them.

use super::{at, ms, receipts};
use crate::domain::ids::{join_webhook_id, webhook_id, Id, WEBHOOK_PREFIX_LEN};
use crate::domain::payload::{ParticipantFacts, WebinarFacts};
use crate::store::jobs::{webinars_of, SliceRow, SLICE_COLS};
use crate::store::SliceId;
use crate::store::{
    Claimed, DeliveryId, Fresh, Job, ParticipantId, StoreResult, SubscriptionId, WebinarId,
    Withdrawn,
};
use crate::store::{DeliveryClaim, Held, InstanceId};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use std::collections::HashSet;

pub fn subscriptions_with_work(c: &Connection) -> StoreResult<Vec<SubscriptionId>> {
    let mut st = c.prepare(
        "SELECT s.id FROM subscriptions s WHERE s.status = 'active' AND (
           EXISTS (SELECT 1 FROM deliveries d WHERE d.subscription_id = s.id AND d.status = 'pending')
           OR EXISTS (SELECT 1 FROM slices l WHERE l.subscription_id = s.id AND l.status = 'pending'))",
    )?;
    let rows = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    Ok(rows)
}

pub fn next_delivery_due(
    c: &Connection,
    sub: &SubscriptionId,
) -> StoreResult<Option<DateTime<Utc>>> {
    let v: Option<i64> = c
        .prepare_cached(
            "SELECT MIN(t) FROM (
           SELECT MIN(MAX(next_attempt_at, COALESCE(locked_until, 0))) AS t FROM deliveries
             WHERE subscription_id = ?1 AND status = 'pending'
           UNION ALL
           SELECT MIN(MAX(created_at, COALESCE(locked_until, 0))) FROM slices
             WHERE subscription_id = ?1 AND status = 'pending')",
        )?
        .query_row([sub], |r| r.get(0))?;
    Ok(v.map(at))
}

fn participant_facts(r: &Row, first: usize) -> rusqlite::Result<ParticipantFacts> {
    Ok(ParticipantFacts {
        name: r.get(first)?,
        email: r.get(first + 1)?,
        phone: r.get(first + 2)?,
        zone: r
            .get::<_, Option<String>>(first + 3)?
            .and_then(|z| z.parse().ok()),
    })
}

pub fn claim_deliveries(c: &mut Connection, claim: &DeliveryClaim) -> StoreResult<Claimed> {
    let (sub, owner, limit, lease_until) = (
        &claim.subscription_id,
        &claim.owner,
        claim.limit,
        claim.lease_until,
    );
    let tx = c.transaction()?;
    let now_ms = ms(claim.now);
    let mut jobs: Vec<Job> = {
        let mut st = tx.prepare_cached(
            "SELECT d.id, d.label, d.attempts, d.expires_at, d.payload, d.webinar_id,
                    p.name, p.email, p.phone, p.timezone
             FROM deliveries d LEFT JOIN participants p ON p.id = d.participant_id
             WHERE d.subscription_id = ?1 AND d.status = 'pending' AND d.next_attempt_at <= ?2
               AND d.expires_at > ?2 AND (d.locked_until IS NULL OR d.locked_until <= ?2)
             ORDER BY d.next_attempt_at LIMIT ?3",
        )?;
        let rows = st.query_map(params![sub, now_ms, limit], |r| {
            let participant = match r.get::<_, Option<String>>(6)? {
                Some(_) => Some(participant_facts(r, 6)?),
                None => None,
            };
            Ok(Job {
                id: r.get(0)?,
                subscription_id: sub.clone(),
                label: r.get(1)?,
                attempt: r.get::<_, u32>(2)? + 1,
                expires_at: at(r.get(3)?),
                payload: r.get(4)?,
                webinar_id: r.get(5)?,
                participant,
                fresh: None,
            })
        })?;
        rows.collect::<Result<_, _>>()?
    };
    {
        let mut st = tx.prepare_cached(
            "UPDATE deliveries SET locked_until = ?2, locked_by = ?3 WHERE id = ?1",
        )?;
        for j in &jobs {
            st.execute(params![j.id, ms(lease_until), owner])?;
        }
    }
    let mut slices = Vec::new();
    while (jobs.len() as u32) < limit {
        let Some((id, n)) = claim_slice(&tx, sub, now_ms, owner, ms(lease_until), &mut jobs)?
        else {
            break;
        };
        slices.push((id, n));
    }
    let webinars = webinars_of(&jobs)
        .into_iter()
        .map(|id| webinar_facts(&tx, &id).map(|facts| (id, facts)))
        .collect::<StoreResult<_>>()?;
    tx.commit()?;
    Ok(Claimed {
        jobs,
        webinars,
        slices,
    })
}

pub(super) fn slice_row(r: &Row) -> rusqlite::Result<SliceRow> {
    Ok(SliceRow {
        id: r.get(0)?,
        subscription_id: r.get(1)?,
        proto: Fresh {
            slice: r.get(0)?,
            reminder_id: r.get(2)?,
            webinar_id: r.get(3)?,
            label: r.get(4)?,
            participant_id: Id::trusted(String::new()),
            due_at: at(r.get(6)?),
            expires_at: at(r.get(7)?),
            late: r.get(8)?,
            send_at: r.get::<_, Option<i64>>(12)?.map(at),
        },
        from: at(r.get(5)?),
        after: r.get(9)?,
        last: r.get(10)?,
        claims: r.get(11)?,
    })
}

/// The registered participants of a slice's range, with their registration
/// numbers and webhook-ids.
pub(super) fn slice_people(
    tx: &Transaction,
    s: &SliceRow,
) -> StoreResult<Vec<(i64, DeliveryId, ParticipantId, ParticipantFacts)>> {
    let mut st = tx.prepare_cached(
        "SELECT id, name, email, phone, timezone, seq FROM participants
         WHERE webinar_id = ?1 AND seq > ?2 AND seq <= ?3 AND unregistered_at IS NULL
         ORDER BY seq",
    )?;
    // Every key of a slice shares its prefix: hash it once.
    let first = webhook_id(s.subscription_id.as_str(), 0, &s.proto.label, s.from);
    let prefix = &first.as_str()[..WEBHOOK_PREFIX_LEN];
    let rows = st.query_map(params![s.proto.webinar_id, s.after, s.last], |r| {
        let (pid, seq): (ParticipantId, i64) = (r.get(0)?, r.get(5)?);
        let wid = join_webhook_id(prefix, seq);
        Ok((seq, wid, pid, participant_facts(r, 1)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Leases the oldest free slice of `sub` and appends its jobs: every
/// participant of its range still registered and, if the slice was claimed
/// before (an instance died with it), not recorded yet, in a row or in a
/// receipt. A slice with no job
/// left is closed and the next one tried.
fn claim_slice(
    tx: &Transaction,
    sub: &SubscriptionId,
    now_ms: i64,
    owner: &InstanceId,
    lease_ms: i64,
    jobs: &mut Vec<Job>,
) -> StoreResult<Option<(SliceId, usize)>> {
    loop {
        let slice = tx
            .prepare_cached(&format!(
                "SELECT {SLICE_COLS} FROM slices
                 WHERE subscription_id = ?1 AND status = 'pending' AND expires_at > ?2
                   AND (locked_until IS NULL OR locked_until <= ?2)
                 ORDER BY id LIMIT 1"
            ))?
            .query_row(params![sub, now_ms], slice_row)
            .optional()?;
        let Some(s) = slice else {
            return Ok(None);
        };
        tx.prepare_cached(
            "UPDATE slices SET locked_until = ?2, locked_by = ?3, claims = claims + 1 WHERE id = ?1",
        )?
        .execute(params![s.id, lease_ms, owner])?;
        let mut exists = tx.prepare_cached("SELECT 1 FROM deliveries WHERE id = ?1")?;
        let acknowledged = match s.claims {
            0 => HashSet::new(),
            _ => receipts::seqs(tx, s.id)?,
        };
        let before = jobs.len();
        for (seq, wid, pid, facts) in slice_people(tx, &s)? {
            if s.claims > 0 && (acknowledged.contains(&seq) || exists.exists([&wid])?) {
                continue;
            }
            jobs.push(s.proto.job(sub, wid, pid, facts));
        }
        let n = jobs.len() - before;
        if n > 0 {
            return Ok(Some((s.id, n)));
        }
        tx.prepare_cached("UPDATE slices SET status = 'done', locked_until = NULL WHERE id = ?1")?
            .execute([s.id])?;
    }
}

fn webinar_facts(c: &Connection, id: &WebinarId) -> StoreResult<WebinarFacts> {
    let mut st = c.prepare_cached(
        "SELECT m.name FROM webinar_mangoes wm JOIN mangoes m ON m.id = wm.mango_id
         WHERE wm.webinar_id = ?1 ORDER BY wm.position",
    )?;
    let mangoes = st
        .query_map([id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut st = c.prepare_cached(
        "SELECT title, link, from_time, to_time, timezone FROM webinars WHERE id = ?1",
    )?;
    Ok(st.query_row([id], |r| {
        Ok(WebinarFacts {
            id: id.clone(),
            title: r.get(0)?,
            link: r.get(1)?,
            from_time: at(r.get(2)?),
            to_time: at(r.get(3)?),
            creator_zone: r.get::<_, Option<String>>(4)?.and_then(|z| z.parse().ok()),
            mangoes,
        })
    })?)
}

/// Of what a lane holds, what was withdrawn since it was leased: a lookup
/// by primary key each.
pub fn withdrawn(c: &Connection, held: &Held) -> StoreResult<Withdrawn> {
    let mut out = Withdrawn::default();
    let mut st = c.prepare_cached("SELECT 1 FROM slices WHERE id = ?1 AND status = 'pending'")?;
    for id in &held.slices {
        if !st.exists([id])? {
            out.slices.insert(*id);
        }
    }
    let mut st =
        c.prepare_cached("SELECT 1 FROM deliveries WHERE id = ?1 AND status = 'pending'")?;
    for id in &held.rows {
        if !st.exists([id])? {
            out.rows.insert(id.clone());
        }
    }
    let mut st = c.prepare_cached(
        "SELECT 1 FROM participants WHERE id = ?1 AND unregistered_at IS NOT NULL",
    )?;
    for id in &held.participants {
        if st.exists([id])? {
            out.participants.insert(id.clone());
        }
    }
    Ok(out)
}
