//! SQL for a lane's claim: its due pending rows, then whole slices
//! (`FOR UPDATE SKIP LOCKED`, so instances split a fan-out between them
//! slice by slice), with everything needed to render them. Outside any
//! transaction, on a connection whose commits do not wait for the disk:
//! the rows, a slice, its registered participants and its webinar's facts
//! come back from one statement, the lists as arrays.

use super::work::{among, slice_row, webinar_facts};
use crate::domain::ids::{split_webhook_id, webhook_id};
use crate::domain::payload::{ParticipantFacts, WebinarFacts};
use crate::store::jobs::{webinars_of, SliceRow, SLICE_COLS};
use crate::store::{Claimed, DeliveryClaim, DeliveryId, Job, SliceId, StoreResult, WebinarId};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;
use tokio_postgres::Row;

/// The lease of the oldest free slice of `$1` (at `$2`, until `$3`, by
/// `$4`) while `room` holds, as the CTEs `s` and `l`; then `x`, the slice
/// with its registered participants as arrays and its webinar's facts.
fn slice_ctes(room: &str) -> String {
    let cols = SLICE_COLS
        .split(',')
        .map(|c| format!("l.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "s AS (
           SELECT id FROM slices
           WHERE subscription_id = $1 AND status = 'pending' AND expires_at > $2
             AND (locked_until IS NULL OR locked_until <= $2) AND {room}
           ORDER BY id LIMIT 1
           FOR UPDATE SKIP LOCKED),
         l AS (
           UPDATE slices l SET locked_until = $3, locked_by = $4, claims = l.claims + 1
           FROM s WHERE l.id = s.id
           RETURNING {cols}),
         x AS (
           SELECT {cols}, p.seqs, p.ids, p.names, p.emails, p.phones, p.zones,
                  w.title, w.link, w.from_time AS w_from, w.to_time AS w_to,
                  w.timezone AS w_zone,
                  ARRAY(SELECT m.name FROM webinar_mangoes wm JOIN mangoes m ON m.id = wm.mango_id
                        WHERE wm.webinar_id = w.id ORDER BY wm.position) AS mangoes
           FROM l JOIN webinars w ON w.id = l.webinar_id
           CROSS JOIN LATERAL (
             SELECT array_agg(seq) AS seqs, array_agg(id) AS ids, array_agg(name) AS names,
                    array_agg(email) AS emails, array_agg(phone) AS phones,
                    array_agg(timezone) AS zones
             FROM (SELECT seq, id, name, email, phone, timezone FROM participants
                   WHERE webinar_id = l.webinar_id AND seq > l.after_seq
                     AND seq <= l.last_seq AND unregistered_at IS NULL
                   ORDER BY seq) q) p)"
    )
}

/// A claim's first statement: up to `$5` due pending rows of `$1`
/// (retries, deliveries replayed), leased, as arrays after the columns of
/// `x`, and a slice when the rows leave room.
static FIRST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH c AS (
           SELECT id FROM deliveries
           WHERE subscription_id = $1 AND status = 'pending' AND next_attempt_at <= $2
             AND expires_at > $2 AND (locked_until IS NULL OR locked_until <= $2)
           ORDER BY next_attempt_at LIMIT $5
           FOR UPDATE SKIP LOCKED),
         u AS (
           UPDATE deliveries d SET locked_until = $3, locked_by = $4
           FROM c WHERE d.id = c.id
           RETURNING d.id, d.label, d.attempts, d.expires_at, d.payload, d.webinar_id,
                     d.participant_id, d.next_attempt_at),
         {}
         SELECT x.*, r.* FROM (
           SELECT array_agg(id) AS r_ids, array_agg(label) AS r_labels,
                  array_agg(attempts) AS r_attempts, array_agg(expires_at) AS r_expires,
                  array_agg(payload) AS r_payloads, array_agg(webinar_id) AS r_webinars,
                  array_agg(name) AS r_names, array_agg(email) AS r_emails,
                  array_agg(phone) AS r_phones, array_agg(timezone) AS r_zones
           FROM (SELECT u.id, u.label, u.attempts, u.expires_at, u.payload, u.webinar_id,
                        p.name, p.email, p.phone, p.timezone
                 FROM u LEFT JOIN participants p ON p.id = u.participant_id
                 ORDER BY u.next_attempt_at) q) r
         LEFT JOIN x ON true",
        slice_ctes("(SELECT COUNT(*) FROM u) < $5")
    )
});

/// Another slice, once the first left room.
static NEXT: LazyLock<String> =
    LazyLock::new(|| format!("WITH {} SELECT * FROM x", slice_ctes("true")));

/// Columns of `x` after the slice's: its people as arrays, then its
/// webinar; then, in the first statement, the rows as arrays.
const PEOPLE: usize = 13;
const WEBINAR: usize = PEOPLE + 6;
const ROWS: usize = WEBINAR + 6;

/// Leases up to `claim.limit` jobs: due pending rows first, then slices
/// one at a time until the limit is reached or none is free. Most claims
/// are one statement; a slice is one more only when the first left room.
pub async fn claim_deliveries(
    c: &impl GenericClient,
    claim: &DeliveryClaim,
) -> StoreResult<Claimed> {
    let sub = &claim.subscription_id;
    let first = c
        .query_one(
            &c.prepare_cached(&FIRST).await?,
            &[
                sub,
                &claim.now,
                &claim.lease_until,
                &claim.owner,
                &i64::from(claim.limit),
            ],
        )
        .await?;
    let mut jobs = rows(&first, claim);
    let (mut slices, mut webinars) = (Vec::new(), HashMap::new());
    let mut next = has_slice(first);
    while let Some(row) = next {
        if let Some((id, n, facts)) = take_slice(c, claim, &row, &mut jobs).await? {
            slices.push((id, n));
            webinars.insert(facts.id.clone(), facts);
        }
        next = None;
        if (jobs.len() as u32) < claim.limit {
            let st = c.prepare_cached(&NEXT).await?;
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
                [sub, &claim.now, &claim.lease_until, &claim.owner];
            next = c.query_opt(&st, &params).await?;
        }
    }
    for id in webinars_of(&jobs) {
        if let std::collections::hash_map::Entry::Vacant(v) = webinars.entry(id) {
            let facts = webinar_facts(c, v.key()).await?;
            v.insert(facts);
        }
    }
    Ok(Claimed {
        jobs,
        webinars,
        slices,
    })
}

/// The first statement's row, if it leased a slice.
fn has_slice(r: Row) -> Option<Row> {
    r.get::<_, Option<i64>>(0).is_some().then_some(r)
}

/// The rows the first statement leased, as jobs.
fn rows(r: &Row, claim: &DeliveryClaim) -> Vec<Job> {
    fn list<'a, T: tokio_postgres::types::FromSql<'a>>(r: &'a Row, i: usize) -> Vec<T> {
        r.get::<_, Option<Vec<T>>>(ROWS + i).unwrap_or_default()
    }
    let ids: Vec<DeliveryId> = list(r, 0);
    let labels: Vec<String> = list(r, 1);
    let attempts: Vec<i32> = list(r, 2);
    let expires: Vec<DateTime<Utc>> = list(r, 3);
    let payloads: Vec<Option<Vec<u8>>> = list(r, 4);
    let webinars: Vec<Option<WebinarId>> = list(r, 5);
    let names: Vec<Option<String>> = list(r, 6);
    let emails: Vec<Option<String>> = list(r, 7);
    let phones: Vec<Option<String>> = list(r, 8);
    let zones: Vec<Option<String>> = list(r, 9);
    let mut jobs = Vec::with_capacity(ids.len());
    for (i, id) in ids.into_iter().enumerate() {
        jobs.push(Job {
            id,
            subscription_id: claim.subscription_id.clone(),
            label: labels[i].clone(),
            attempt: attempts[i] as u32 + 1,
            expires_at: expires[i],
            payload: payloads[i].clone(),
            webinar_id: webinars[i].clone(),
            participant: names[i].clone().map(|name| ParticipantFacts {
                name,
                email: emails[i].clone().unwrap_or_default(),
                phone: phones[i].clone().unwrap_or_default(),
                zone: zones[i].as_deref().and_then(|z| z.parse().ok()),
            }),
            fresh: None,
        });
    }
    jobs
}

/// Appends the jobs of the slice `row` leased: every participant of its
/// range still registered and, if the slice was claimed before (an
/// instance died with it), not recorded yet. A slice with no job left is
/// closed (and `None` answered).
async fn take_slice(
    c: &impl GenericClient,
    claim: &DeliveryClaim,
    row: &Row,
    jobs: &mut Vec<Job>,
) -> StoreResult<Option<(SliceId, usize, WebinarFacts)>> {
    // `claims` as it was before this claim.
    let mut s = slice_row(row);
    s.claims -= 1;
    let people = people(row, &s);
    let facts = facts(row, &s);
    let (recorded, acknowledged) = match s.claims {
        0 => (HashSet::new(), HashSet::new()),
        _ => recorded(c, &s, &people).await?,
    };
    let before = jobs.len();
    for (wid, pid, facts) in people {
        let seq = split_webhook_id(wid.as_str()).map(|(_, q)| q);
        if recorded.contains(&wid) || seq.is_some_and(|q| acknowledged.contains(&q)) {
            continue;
        }
        jobs.push(s.proto.job(&claim.subscription_id, wid, pid, facts));
    }
    let n = jobs.len() - before;
    if n > 0 {
        return Ok(Some((s.id, n, facts)));
    }
    close(c, s.id).await?;
    Ok(None)
}

type Person = (DeliveryId, crate::store::ParticipantId, ParticipantFacts);

/// The slice's people, from the arrays of its claim's row, with their
/// webhook-ids.
fn people(r: &Row, s: &SliceRow) -> Vec<Person> {
    let seqs: Vec<i64> = r.get::<_, Option<Vec<i64>>>(PEOPLE).unwrap_or_default();
    let column = |i: usize| -> Vec<Option<String>> {
        r.get::<_, Option<Vec<Option<String>>>>(PEOPLE + i)
            .unwrap_or_default()
    };
    let (ids, names, emails) = (column(1), column(2), column(3));
    let (phones, zones) = (column(4), column(5));
    let sub = s.subscription_id.as_str();
    seqs.iter()
        .enumerate()
        .map(|(i, &seq)| {
            let wid = webhook_id(sub, seq, &s.proto.label, s.from);
            let facts = ParticipantFacts {
                name: names[i].clone().unwrap_or_default(),
                email: emails[i].clone().unwrap_or_default(),
                phone: phones[i].clone().unwrap_or_default(),
                zone: zones[i].as_deref().and_then(|z| z.parse().ok()),
            };
            let pid = crate::domain::ids::Id::trusted(ids[i].clone().unwrap_or_default());
            (wid, pid, facts)
        })
        .collect()
}

/// The slice's webinar, from the columns of its claim's row.
fn facts(r: &Row, s: &SliceRow) -> WebinarFacts {
    WebinarFacts {
        id: s.proto.webinar_id.clone(),
        title: r.get(WEBINAR),
        link: r.get(WEBINAR + 1),
        from_time: r.get(WEBINAR + 2),
        to_time: r.get(WEBINAR + 3),
        creator_zone: r
            .get::<_, Option<String>>(WEBINAR + 4)
            .and_then(|z| z.parse().ok()),
        mangoes: r.get(WEBINAR + 5),
    }
}

/// Closes a slice with nothing left to send.
async fn close(c: &impl GenericClient, id: SliceId) -> StoreResult<()> {
    let st = c
        .prepare_cached("UPDATE slices SET status = 'done', locked_until = NULL WHERE id = $1")
        .await?;
    c.execute(&st, &[&id]).await?;
    Ok(())
}

/// Of a slice claimed before, what was recorded already: the webhook-ids
/// of `people` that have rows, and the registration numbers its receipts
/// hold.
async fn recorded(
    c: &impl GenericClient,
    s: &SliceRow,
    people: &[Person],
) -> StoreResult<(HashSet<DeliveryId>, HashSet<i64>)> {
    let ids: Vec<&str> = people.iter().map(|p| p.0.as_str()).collect();
    let rows = among(c, "SELECT id FROM deliveries WHERE id = ANY($1)", &ids).await?;
    Ok((rows, super::receipts::seqs(c, s.id).await?))
}
