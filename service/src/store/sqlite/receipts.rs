//! SQL for receipts in SQLite (see [`crate::store::receipt`]): writing one per slice
//! and recorded batch, finding the one that holds a delivery, listing them
//! as deliveries, and turning a delivery back into a row when it is replayed.

use super::at;
use crate::domain::ids::{join_webhook_id, split_webhook_id};
use crate::store::held::{self, SliceFacts};

use crate::store::receipt::{self, Entry, Receipt};
use crate::store::{
    Delivery, DeliveryId, Outcome, ParticipantId, ReminderId, SliceId, StoreError, StoreResult,
    SubscriptionId,
};
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::collections::{HashMap, HashSet};

fn corrupt(e: &'static str) -> StoreError {
    StoreError::Other(anyhow::anyhow!(e))
}

fn blob<'r>(r: &'r Row, i: usize) -> StoreResult<&'r [u8]> {
    r.get_ref(i)?
        .as_blob()
        .map_err(|e| StoreError::Other(e.into()))
}

/// Writes `r` as one receipt. A delivery that already has a row (sent twice,
/// after a lease ran out) keeps it: those outcomes are handed back, to be
/// recorded as attempts on their rows. One that another receipt holds
/// already is left out: it was acknowledged, and is listed once.
pub fn insert<'a>(
    c: &Connection,
    mut r: Receipt<'a>,
    now_ms: i64,
) -> StoreResult<Vec<&'a Outcome>> {
    let claims: i64 = c
        .prepare_cached("SELECT claims FROM slices WHERE id = ?1")?
        .query_row([r.slice], |row| row.get(0))
        .optional()?
        .unwrap_or(0);
    if claims > 1 {
        // Taken again after a lapsed lease: some may have been sent twice.
        let held = seqs(c, r.slice)?;
        r.outcomes.retain(|(seq, _)| !held.contains(seq));
        if r.outcomes.is_empty() {
            return Ok(Vec::new());
        }
    }
    let mut st = c.prepare_cached("SELECT id FROM deliveries WHERE id >= ?1 AND id <= ?2")?;
    let (lo, hi) = r.id_range();
    let rows: HashSet<DeliveryId> = st
        .query_map([lo, hi], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let back = r.without_rows(&rows);
    if !r.outcomes.is_empty() {
        c.prepare_cached(
            "INSERT INTO receipts (slice_id, subscription_id, id_prefix, first_seq, last_seq,
                                   created_at, entries)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            r.slice,
            r.subscription_id,
            r.prefix,
            r.first_seq(),
            r.last_seq(),
            now_ms,
            r.pack(now_ms)
        ])?;
    }
    Ok(back)
}

/// The registration numbers a slice's receipts hold.
pub fn seqs(c: &Connection, slice: SliceId) -> StoreResult<HashSet<i64>> {
    let mut st =
        c.prepare_cached("SELECT created_at, entries FROM receipts WHERE slice_id = ?1")?;
    let mut out = HashSet::new();
    let mut rows = st.query([slice])?;
    while let Some(r) = rows.next()? {
        let entries = receipt::unpack(blob(r, 1)?, r.get(0)?).map_err(corrupt)?;
        out.extend(entries.iter().map(|e| e.seq));
    }
    Ok(out)
}

/// Where a delivery of `sub` is held in a receipt.
pub struct Held {
    pub receipt: i64,
    pub slice: SliceId,
    pub created_ms: i64,
    pub entry: Entry,
}

/// The receipt holding delivery `id` of `sub`, if any.
pub fn find(c: &Connection, sub: &SubscriptionId, id: &DeliveryId) -> StoreResult<Option<Held>> {
    let Some((prefix, seq)) = split_webhook_id(id.as_str()) else {
        return Ok(None);
    };
    let mut st = c.prepare_cached(
        "SELECT id, slice_id, created_at, entries FROM receipts
         WHERE id_prefix = ?1 AND first_seq <= ?2 AND last_seq >= ?2 AND subscription_id = ?3",
    )?;
    let mut rows = st.query(params![prefix, seq, sub])?;
    while let Some(r) = rows.next()? {
        let created_ms: i64 = r.get(2)?;
        let found = receipt::find(blob(r, 3)?, created_ms, seq).map_err(corrupt)?;
        if let Some(entry) = found {
            return Ok(Some(Held {
                receipt: r.get(0)?,
                slice: r.get(1)?,
                created_ms,
                entry,
            }));
        }
    }
    Ok(None)
}

fn slice_facts(c: &Connection, slice: SliceId) -> StoreResult<SliceFacts> {
    Ok(c.prepare_cached(
        "SELECT webinar_id, reminder_id, label, due_at, expires_at, late FROM slices WHERE id = ?1",
    )?
    .query_row([slice], |r| {
        Ok(SliceFacts {
            webinar_id: r.get(0)?,
            reminder_id: r.get(1)?,
            label: r.get(2)?,
            due_at: at(r.get(3)?),
            expires_at: at(r.get(4)?),
            late: r.get(5)?,
        })
    })?)
}

fn participant(c: &Connection, seq: i64) -> StoreResult<Option<ParticipantId>> {
    Ok(
        c.prepare_cached("SELECT id FROM participants WHERE seq = ?1")?
            .query_row([seq], |r| r.get(0))
            .optional()?,
    )
}

fn delivery(
    c: &Connection,
    sub: &SubscriptionId,
    id: DeliveryId,
    s: &SliceFacts,
    created_ms: i64,
    e: &Entry,
) -> StoreResult<Delivery> {
    let who = participant(c, e.seq)?;
    Ok(held::delivery(sub, id, s, who, created_ms, e))
}

/// Delivery `id` of `sub` as held in a receipt.
pub fn get(c: &Connection, sub: &SubscriptionId, id: &DeliveryId) -> StoreResult<Option<Delivery>> {
    let Some(h) = find(c, sub, id)? else {
        return Ok(None);
    };
    let s = slice_facts(c, h.slice)?;
    delivery(c, sub, id.clone(), &s, h.created_ms, &h.entry).map(Some)
}

/// The latest deliveries of `sub` held in receipts, newest receipt first,
/// each with the instant it was recorded: at least `limit` of them when
/// there are so many, and all of the receipts recorded at the same instant
/// as the last one taken. With `after` (a page's cursor: an instant and a
/// delivery id), only those that come after it in the list's order
/// (newest first, then by id).
pub fn recent(
    c: &Connection,
    sub: &SubscriptionId,
    after: Option<(i64, &str)>,
    limit: i64,
) -> StoreResult<Vec<(i64, Delivery)>> {
    let until_ms = after.map_or(i64::MAX, |a| a.0);
    let mut st = c.prepare_cached(
        "SELECT slice_id, id_prefix, created_at, entries FROM receipts
         WHERE subscription_id = ?1 AND created_at <= ?2 ORDER BY created_at DESC, id DESC",
    )?;
    let mut rows = st.query(rusqlite::params![sub, until_ms])?;
    let mut slices: HashMap<SliceId, SliceFacts> = HashMap::new();
    let mut out = Vec::new();
    let mut last = None;
    loop {
        let Some(r) = rows.next()? else { break };
        let (slice, prefix, created_ms): (SliceId, String, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
        // Enough, unless this receipt ties with the last one taken (ties
        // are listed by id, so it may hold some that come first).
        if out.len() as i64 >= limit && last != Some(created_ms) {
            break;
        }
        last = Some(created_ms);
        let entries = receipt::unpack(blob(r, 3)?, created_ms).map_err(corrupt)?;
        let s = match slices.entry(slice) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(slice_facts(c, slice)?),
        };
        for e in &entries {
            let id = join_webhook_id(&prefix, e.seq);
            if after.is_some_and(|(ms, last)| created_ms == ms && id.as_str() <= last) {
                continue;
            }
            out.push((created_ms, delivery(c, sub, id, s, created_ms, e)?));
        }
    }
    Ok(out)
}

/// Moves delivery `id` of `sub` out of its receipt into a row of its own,
/// as it was recorded, so that it can be replayed and attempted again.
/// Returns whether a receipt held it.
pub fn take(c: &Connection, sub: &SubscriptionId, id: &DeliveryId) -> StoreResult<bool> {
    let Some(h) = find(c, sub, id)? else {
        return Ok(false);
    };
    let s = slice_facts(c, h.slice)?;
    let e = &h.entry;
    c.execute(
        "INSERT INTO deliveries (id, subscription_id, webinar_id, participant_id, reminder_id,
            label, status, late, attempts, due_at, next_attempt_at, expires_at, last_status,
            delivered_at, first_started_at, first_status, first_latency_ms, first_response,
            created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'delivered', ?7, 1, ?8, ?9, ?10, ?11, ?9, ?12, ?11,
                 ?13, ?14, ?9, ?9)",
        params![
            id,
            sub,
            s.webinar_id,
            participant(c, e.seq)?,
            s.reminder_id,
            s.label,
            s.late,
            s.due_at.timestamp_millis(),
            h.created_ms,
            s.expires_at.timestamp_millis(),
            e.status,
            e.started_ms,
            e.latency_ms as i64,
            e.response
        ],
    )?;
    let (blob, created): (Vec<u8>, i64) = c.query_row(
        "SELECT entries, created_at FROM receipts WHERE id = ?1",
        [h.receipt],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let rest: Vec<Entry> = receipt::unpack(&blob, created)
        .map_err(corrupt)?
        .into_iter()
        .filter(|x| x.seq != e.seq)
        .collect();
    match (rest.first(), rest.last()) {
        (Some(first), Some(last)) => c.execute(
            "UPDATE receipts SET entries = ?2, first_seq = ?3, last_seq = ?4 WHERE id = ?1",
            params![
                h.receipt,
                receipt::pack(&rest, created),
                first.seq,
                last.seq
            ],
        )?,
        _ => c.execute("DELETE FROM receipts WHERE id = ?1", [h.receipt])?,
    };
    Ok(true)
}

/// Whether a receipt of slice `slice` holds registration number `seq`:
/// that delivery was acknowledged.
pub fn holds(c: &Connection, slice: SliceId, seq: i64) -> StoreResult<bool> {
    let mut st = c.prepare_cached(
        "SELECT created_at, entries FROM receipts
         WHERE slice_id = ?1 AND first_seq <= ?2 AND last_seq >= ?2",
    )?;
    let mut rows = st.query(params![slice, seq])?;
    while let Some(r) = rows.next()? {
        let found = receipt::find(blob(r, 1)?, r.get(0)?, seq).map_err(corrupt)?;
        if found.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// How many deliveries of reminder `reminder` receipts hold, and the first
/// and last acknowledgement among them (an attempt's start and latency).
pub fn tally(c: &Connection, reminder: &ReminderId) -> StoreResult<crate::store::HeldTally> {
    let mut st = c.prepare_cached(
        "SELECT r.created_at, r.entries FROM receipts r JOIN slices s ON s.id = r.slice_id
         WHERE s.reminder_id = ?1",
    )?;
    let mut rows = st.query([reminder])?;
    let mut all = Vec::new();
    while let Some(r) = rows.next()? {
        all.extend(receipt::unpack(blob(r, 1)?, r.get(0)?).map_err(corrupt)?);
    }
    Ok(held::tally(&all))
}
