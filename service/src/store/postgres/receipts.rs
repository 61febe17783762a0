//! SQL for receipts in PostgreSQL (see [`crate::store::receipt`]): writing
//! one per slice and recorded batch, finding the one that holds a delivery,
//! listing them as deliveries (`held`), and turning a delivery back into a
//! row when it is replayed. The twin of `sqlite/receipts.rs`; here several
//! instances may record outcomes of one slice (a lease that lapsed), so a
//! receipt is written with its slice's row locked.

use crate::domain::ids::{join_webhook_id, split_webhook_id};
use crate::store::held::{self, SliceFacts};
use crate::store::receipt::{self, Entry, Receipt};
use crate::store::{
    Delivery, DeliveryId, HeldTally, Outcome, ParticipantId, ReminderId, SliceId, StoreError,
    StoreResult, SubscriptionId,
};
use deadpool_postgres::GenericClient;
use std::collections::{HashMap, HashSet};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

fn corrupt(e: &'static str) -> StoreError {
    StoreError::Other(anyhow::anyhow!(e))
}

fn entries(r: &Row, created: usize, blob: usize) -> StoreResult<Vec<Entry>> {
    receipt::unpack(r.get(blob), r.get(created)).map_err(corrupt)
}

/// Writes `r` as one receipt. A delivery that already has a row (sent
/// twice, after a lease ran out) keeps it: those outcomes are handed back,
/// to be recorded as attempts on their rows. One that another receipt
/// holds already is left out: it was acknowledged, and is listed once.
pub async fn insert<'a>(
    c: &impl GenericClient,
    r: Receipt<'a>,
    now_ms: i64,
) -> StoreResult<Vec<&'a Outcome>> {
    if insert_plain(c, &r, now_ms).await? {
        return Ok(Vec::new());
    }
    insert_checked(c, r, now_ms).await
}

/// The common case in one statement: a slice claimed once, none of whose
/// deliveries in the receipt's range has a row. Answers whether it was
/// that case (and the receipt written); otherwise nothing was written, and
/// the slice's row is locked.
async fn insert_plain(c: &impl GenericClient, r: &Receipt<'_>, now_ms: i64) -> StoreResult<bool> {
    let (lo, hi) = r.id_range();
    let st = c
        .prepare_cached(
            "WITH l AS (SELECT claims FROM slices WHERE id = $1 FOR NO KEY UPDATE)
             INSERT INTO receipts (slice_id, subscription_id, id_prefix, first_seq, last_seq,
                                   created_at, entries)
             SELECT $1, $2, $3, $4, $5, $6, $7
             WHERE COALESCE((SELECT claims FROM l), 0) <= 1
               AND NOT EXISTS (SELECT 1 FROM deliveries WHERE id >= $8 AND id <= $9)
             RETURNING id",
        )
        .await?;
    let written = Written::new(r, now_ms);
    let mut params = written.params();
    params.extend([&lo as &(dyn ToSql + Sync), &hi]);
    Ok(c.query_opt(&st, &params).await?.is_some())
}

/// A receipt's row as it is written: its columns `$1` to `$7`, in the
/// table's order (`params`).
struct Written<'r> {
    r: &'r Receipt<'r>,
    first: i64,
    last: i64,
    now_ms: i64,
    packed: Vec<u8>,
}

impl<'r> Written<'r> {
    fn new(r: &'r Receipt<'r>, now_ms: i64) -> Self {
        Written {
            r,
            first: r.first_seq(),
            last: r.last_seq(),
            now_ms,
            packed: r.pack(now_ms),
        }
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.r.slice,
            &self.r.subscription_id,
            &self.r.prefix,
            &self.first,
            &self.last,
            &self.now_ms,
            &self.packed,
        ]
    }
}

/// [`insert`] for a slice taken again after a lapsed lease, or with rows
/// in the receipt's range: leaves out what is held or has a row already.
async fn insert_checked<'a>(
    c: &impl GenericClient,
    mut r: Receipt<'a>,
    now_ms: i64,
) -> StoreResult<Vec<&'a Outcome>> {
    // The slice's row, locked: recorders of one slice take turns, so two
    // never both find a delivery unheld and both write it.
    let claims: i32 = c
        .query_opt(
            &c.prepare_cached("SELECT claims FROM slices WHERE id = $1 FOR NO KEY UPDATE")
                .await?,
            &[&r.slice],
        )
        .await?
        .map_or(0, |row| row.get(0));
    if claims > 1 {
        // Taken again after a lapsed lease: some may have been sent twice.
        let held = seqs(c, r.slice).await?;
        r.outcomes.retain(|(seq, _)| !held.contains(seq));
        if r.outcomes.is_empty() {
            return Ok(Vec::new());
        }
    }
    let (lo, hi) = r.id_range();
    let rows: HashSet<DeliveryId> = c
        .query(
            &c.prepare_cached("SELECT id FROM deliveries WHERE id >= $1 AND id <= $2")
                .await?,
            &[&lo, &hi],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let back = r.without_rows(&rows);
    if !r.outcomes.is_empty() {
        let st = c
            .prepare_cached(
                "INSERT INTO receipts (slice_id, subscription_id, id_prefix, first_seq, last_seq,
                                       created_at, entries)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .await?;
        c.execute(&st, &Written::new(&r, now_ms).params()).await?;
    }
    Ok(back)
}

/// The registration numbers a slice's receipts hold.
pub async fn seqs(c: &impl GenericClient, slice: SliceId) -> StoreResult<HashSet<i64>> {
    let st = c
        .prepare_cached("SELECT created_at, entries FROM receipts WHERE slice_id = $1")
        .await?;
    let mut out = HashSet::new();
    for r in c.query(&st, &[&slice]).await? {
        out.extend(entries(&r, 0, 1)?.iter().map(|e| e.seq));
    }
    Ok(out)
}

/// Where a delivery of `sub` is held in a receipt.
struct Found {
    receipt: i64,
    slice: SliceId,
    created_ms: i64,
    entry: Entry,
}

/// The receipt holding delivery `id` of `sub`, if any.
async fn find(
    c: &impl GenericClient,
    sub: &SubscriptionId,
    id: &DeliveryId,
) -> StoreResult<Option<Found>> {
    let Some((prefix, seq)) = split_webhook_id(id.as_str()) else {
        return Ok(None);
    };
    let st = c
        .prepare_cached(
            "SELECT id, slice_id, created_at, entries FROM receipts
             WHERE id_prefix = $1 AND first_seq <= $2 AND last_seq >= $2 AND subscription_id = $3",
        )
        .await?;
    for r in c.query(&st, &[&prefix, &seq, &sub]).await? {
        let created_ms: i64 = r.get(2);
        let found = receipt::find(r.get(3), created_ms, seq).map_err(corrupt)?;
        if let Some(entry) = found {
            return Ok(Some(Found {
                receipt: r.get(0),
                slice: r.get(1),
                created_ms,
                entry,
            }));
        }
    }
    Ok(None)
}

async fn slice_facts(c: &impl GenericClient, slice: SliceId) -> StoreResult<SliceFacts> {
    let st = c
        .prepare_cached(
            "SELECT webinar_id, reminder_id, label, due_at, expires_at, late FROM slices
             WHERE id = $1",
        )
        .await?;
    let r = c.query_one(&st, &[&slice]).await?;
    Ok(SliceFacts {
        webinar_id: r.get(0),
        reminder_id: r.get(1),
        label: r.get(2),
        due_at: r.get(3),
        expires_at: r.get(4),
        late: r.get(5),
    })
}

async fn participant(c: &impl GenericClient, seq: i64) -> StoreResult<Option<ParticipantId>> {
    let st = c
        .prepare_cached("SELECT id FROM participants WHERE seq = $1")
        .await?;
    Ok(c.query_opt(&st, &[&seq]).await?.map(|r| r.get(0)))
}

/// Delivery `id` of `sub` as held in a receipt.
pub async fn get(
    c: &impl GenericClient,
    sub: &SubscriptionId,
    id: &DeliveryId,
) -> StoreResult<Option<Delivery>> {
    let Some(h) = find(c, sub, id).await? else {
        return Ok(None);
    };
    let s = slice_facts(c, h.slice).await?;
    let who = participant(c, h.entry.seq).await?;
    Ok(Some(held::delivery(
        sub,
        id.clone(),
        &s,
        who,
        h.created_ms,
        &h.entry,
    )))
}

/// The latest deliveries of `sub` held in receipts, newest receipt first,
/// each with the instant (ms) it was recorded: at least `limit` of them
/// when there are so many, and all of the receipts recorded at the same
/// instant as the last one taken. With `after` (a page's cursor: an instant
/// and a delivery id), only those that come after it in the list's order
/// (newest first, then by id).
pub async fn recent(
    c: &impl GenericClient,
    sub: &SubscriptionId,
    after: Option<(i64, &str)>,
    limit: i64,
) -> StoreResult<Vec<(i64, Delivery)>> {
    let until_ms = after.map_or(i64::MAX, |a| a.0);
    let st = c
        .prepare_cached(
            "SELECT slice_id, id_prefix, created_at, entries FROM receipts
             WHERE subscription_id = $1 AND created_at <= $2 ORDER BY created_at DESC, id DESC",
        )
        .await?;
    let mut slices: HashMap<SliceId, SliceFacts> = HashMap::new();
    let mut out = Vec::new();
    // Each one's registration number, for one lookup of their participants.
    let mut seqs = Vec::new();
    let mut last = None;
    for r in c.query(&st, &[&sub, &until_ms]).await? {
        let (slice, prefix, created_ms): (SliceId, String, i64) = (r.get(0), r.get(1), r.get(2));
        // Enough, unless this receipt ties with the last one taken (ties
        // are listed by id, so it may hold some that come first).
        if out.len() as i64 >= limit && last != Some(created_ms) {
            break;
        }
        last = Some(created_ms);
        if let std::collections::hash_map::Entry::Vacant(v) = slices.entry(slice) {
            v.insert(slice_facts(c, slice).await?);
        }
        let s = &slices[&slice];
        for e in entries(&r, 2, 3)? {
            let id = join_webhook_id(&prefix, e.seq);
            if after.is_some_and(|(ms, last)| created_ms == ms && id.as_str() <= last) {
                continue;
            }
            seqs.push(e.seq);
            out.push((created_ms, held::delivery(sub, id, s, None, created_ms, &e)));
        }
    }
    let who: HashMap<i64, ParticipantId> = c
        .query(
            &c.prepare_cached("SELECT seq, id FROM participants WHERE seq = ANY($1)")
                .await?,
            &[&seqs],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for ((_, d), seq) in out.iter_mut().zip(&seqs) {
        d.participant_id = who.get(seq).cloned();
    }
    Ok(out)
}

/// Moves delivery `id` of `sub` out of its receipt into a row of its own,
/// as it was recorded, so that it can be replayed and attempted again.
/// Returns whether a receipt held it.
pub async fn take(
    c: &impl GenericClient,
    sub: &SubscriptionId,
    id: &DeliveryId,
) -> StoreResult<bool> {
    let Some(h) = find(c, sub, id).await? else {
        return Ok(false);
    };
    let s = slice_facts(c, h.slice).await?;
    let e = &h.entry;
    let d = held::delivery(
        sub,
        id.clone(),
        &s,
        participant(c, e.seq).await?,
        h.created_ms,
        e,
    );
    let recorded = d.delivered_at;
    c.execute(
        "INSERT INTO deliveries (id, subscription_id, webinar_id, participant_id, reminder_id,
            label, status, late, attempts, due_at, next_attempt_at, expires_at, last_status,
            delivered_at, first_started_at, first_status, first_latency_ms, first_response,
            created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'delivered', $7, 1, $8, $9, $10, $11, $9,
                 $12, $11, $13, $14, $9, $9)",
        &[
            &d.id,
            &d.subscription_id,
            &d.webinar_id,
            &d.participant_id,
            &s.reminder_id,
            &d.reminder,
            &d.late,
            &d.due_at,
            &recorded,
            &d.expires_at,
            &i32::from(e.status),
            &e.attempt().started_at,
            &(e.latency_ms as i64),
            &e.response,
        ],
    )
    .await?;
    let r = c
        .query_one(
            "SELECT created_at, entries FROM receipts WHERE id = $1 FOR UPDATE",
            &[&h.receipt],
        )
        .await?;
    let created: i64 = r.get(0);
    let rest: Vec<Entry> = entries(&r, 0, 1)?
        .into_iter()
        .filter(|x| x.seq != e.seq)
        .collect();
    match (rest.first(), rest.last()) {
        (Some(first), Some(last)) => {
            c.execute(
                "UPDATE receipts SET entries = $2, first_seq = $3, last_seq = $4 WHERE id = $1",
                &[
                    &h.receipt,
                    &receipt::pack(&rest, created),
                    &first.seq,
                    &last.seq,
                ],
            )
            .await?
        }
        _ => {
            c.execute("DELETE FROM receipts WHERE id = $1", &[&h.receipt])
                .await?
        }
    };
    Ok(true)
}

/// How many deliveries of reminder `reminder` receipts hold, and the first
/// and last acknowledgement among them (an attempt's start and latency).
pub async fn tally(c: &impl GenericClient, reminder: &ReminderId) -> StoreResult<HeldTally> {
    let st = c
        .prepare_cached(
            "SELECT r.created_at, r.entries FROM receipts r JOIN slices s ON s.id = r.slice_id
             WHERE s.reminder_id = $1",
        )
        .await?;
    let mut all = Vec::new();
    for r in c.query(&st, &[&reminder]).await? {
        all.extend(entries(&r, 0, 1)?);
    }
    Ok(held::tally(&all))
}
