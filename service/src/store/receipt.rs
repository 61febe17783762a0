//! Receipts: the compact record of a fan-out's happy path. Almost every
//! delivery of a fan-out is acknowledged on its first attempt, and a row
//! each for those was a fifth of a fan-out's CPU. So the recorder writes one
//! receipt per slice and recorded batch instead: the registration numbers
//! of the acknowledged participants, and for each its attempt's start,
//! latency, status and the start of the answer, packed as varints (about
//! eight bytes a delivery). Everything else (a failure, a retry, a batch, an
//! expiry, a replay) keeps a row of its own, and a row always wins over a
//! receipt. Both backends keep receipts (`sqlite::receipts`,
//! `postgres::receipts`). This module is pure: choosing what goes in a
//! receipt, packing and unpacking. The backends store receipts and read
//! them back as deliveries.

use crate::domain::ids::{join_webhook_id, split_webhook_id};
use crate::store::{Attempt, DeliveryId, Outcome, SliceId, Verdict};
use chrono::DateTime;
use std::collections::{BTreeMap, HashSet};

/// One acknowledged delivery in a receipt.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub seq: i64,
    pub started_ms: i64,
    pub latency_ms: u64,
    pub status: u16,
    pub response: Option<String>,
}

impl Entry {
    /// The attempt this entry stands for: always the first.
    pub fn attempt(&self) -> Attempt {
        Attempt {
            attempt: 1,
            started_at: DateTime::from_timestamp_millis(self.started_ms).unwrap_or_default(),
            status_code: Some(self.status),
            latency_ms: self.latency_ms,
            error: None,
            response: self.response.clone(),
        }
    }
}

/// The acknowledged first attempts of one slice in one recorded batch.
#[derive(Debug)]
pub struct Receipt<'a> {
    pub slice: SliceId,
    pub subscription_id: &'a str,
    /// The webhook-ids' shared part (see `ids::split_webhook_id`).
    pub prefix: &'a str,
    /// By registration number, one outcome per delivery.
    pub outcomes: Vec<(i64, &'a Outcome)>,
}

impl<'a> Receipt<'a> {
    pub fn first_seq(&self) -> i64 {
        self.outcomes.first().map_or(0, |o| o.0)
    }
    pub fn last_seq(&self) -> i64 {
        self.outcomes.last().map_or(0, |o| o.0)
    }
    /// The webhook-ids of its first and last delivery: every delivery it
    /// holds lies between them.
    pub fn id_range(&self) -> (DeliveryId, DeliveryId) {
        (
            join_webhook_id(self.prefix, self.first_seq()),
            join_webhook_id(self.prefix, self.last_seq()),
        )
    }
    /// Leaves out the deliveries that have rows (`rows`: the ids found in
    /// [`Receipt::id_range`]); answers their outcomes, to be recorded on
    /// their rows.
    pub fn without_rows(&mut self, rows: &HashSet<DeliveryId>) -> Vec<&'a Outcome> {
        if rows.is_empty() {
            return Vec::new();
        }
        let (keep, taken): (Vec<_>, Vec<_>) = std::mem::take(&mut self.outcomes)
            .into_iter()
            .partition(|(_, o)| !rows.contains(&o.delivery_id));
        self.outcomes = keep;
        taken.into_iter().map(|(_, o)| o).collect()
    }
    /// The packed entries, times relative to `base_ms`.
    pub fn pack(&self, base_ms: i64) -> Vec<u8> {
        let entries = self.outcomes.iter().map(|(seq, o)| Packed {
            seq: *seq,
            started_ms: o.attempt.started_at.timestamp_millis(),
            latency_ms: o.attempt.latency_ms,
            status: o.attempt.status_code.unwrap_or(200),
            response: o.attempt.response.as_deref().unwrap_or(""),
        });
        pack_all(entries, self.outcomes.len(), base_ms)
    }
}

/// The outcomes a receipt can hold: a slice delivery's first attempt,
/// acknowledged, not in a batch, and not sent late (a receipt reads
/// `late` from its slice; one sent after its webinar's start under
/// `--after-start send-late` is late alone, so it gets a row).
fn receiptable(o: &Outcome) -> Option<(&str, i64)> {
    let ok = o.fresh.as_ref().is_some_and(|f| !f.late)
        && o.batch.is_none()
        && o.verdict == Verdict::Delivered
        && o.attempt.attempt == 1
        && o.attempt.error.is_none()
        && o.attempt.status_code.is_some();
    ok.then(|| split_webhook_id(o.delivery_id.as_str()))
        .flatten()
}

/// Splits a recorded batch into receipts (by slice) and the outcomes that
/// need rows. A second acknowledged outcome of one delivery goes with the
/// rows, where it is an attempt like any other.
pub fn gather(outcomes: &[Outcome]) -> (Vec<Receipt<'_>>, Vec<&Outcome>) {
    let mut by_slice: BTreeMap<SliceId, Receipt<'_>> = BTreeMap::new();
    let mut rows = Vec::new();
    for o in outcomes {
        let (Some((prefix, seq)), Some(f)) = (receiptable(o), &o.fresh) else {
            rows.push(o);
            continue;
        };
        let r = by_slice.entry(f.slice).or_insert_with(|| Receipt {
            slice: f.slice,
            subscription_id: o.subscription_id.as_str(),
            prefix,
            outcomes: Vec::new(),
        });
        if r.prefix == prefix && o.subscription_id == r.subscription_id {
            r.outcomes.push((seq, o));
        } else {
            rows.push(o);
        }
    }
    let mut receipts: Vec<Receipt<'_>> = by_slice.into_values().collect();
    for r in &mut receipts {
        r.outcomes.sort_by_key(|o| o.0);
        let mut k = 1;
        while k < r.outcomes.len() {
            if r.outcomes[k].0 == r.outcomes[k - 1].0 {
                rows.push(r.outcomes.remove(k).1);
            } else {
                k += 1;
            }
        }
    }
    (receipts, rows)
}

fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get(b: &[u8], at: &mut usize) -> Result<u64, &'static str> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at).ok_or("receipt ends inside a number")?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Ok(v);
        }
    }
    Err("receipt number too long")
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Layout version, first byte of every packed receipt.
const VERSION: u8 = 1;

/// An entry as it is packed, borrowing its answer: packing copies nothing
/// it does not write.
struct Packed<'a> {
    seq: i64,
    started_ms: i64,
    latency_ms: u64,
    status: u16,
    response: &'a str,
}

/// Packs entries sorted by `seq`: per entry the gap from the previous seq,
/// the start relative to `base_ms`, the latency, the status and the answer.
pub fn pack(entries: &[Entry], base_ms: i64) -> Vec<u8> {
    let packed = entries.iter().map(|e| Packed {
        seq: e.seq,
        started_ms: e.started_ms,
        latency_ms: e.latency_ms,
        status: e.status,
        response: e.response.as_deref().unwrap_or(""),
    });
    pack_all(packed, entries.len(), base_ms)
}

fn pack_all<'a>(entries: impl Iterator<Item = Packed<'a>>, n: usize, base_ms: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + n * 8);
    out.push(VERSION);
    let mut prev = 0i64;
    for e in entries {
        put(&mut out, (e.seq - prev) as u64);
        prev = e.seq;
        put(&mut out, zigzag(e.started_ms - base_ms));
        put(&mut out, e.latency_ms);
        put(&mut out, u64::from(e.status));
        put(&mut out, e.response.len() as u64);
        out.extend_from_slice(e.response.as_bytes());
    }
    out
}

/// The entries of a packed receipt.
pub fn unpack(b: &[u8], base_ms: i64) -> Result<Vec<Entry>, &'static str> {
    if b.first() != Some(&VERSION) {
        return Err("unknown receipt layout");
    }
    let mut at = 1;
    let mut prev = 0i64;
    let mut out = Vec::new();
    while at < b.len() {
        const BAD: &str = "receipt number out of range";
        let seq = prev.checked_add_unsigned(get(b, &mut at)?).ok_or(BAD)?;
        prev = seq;
        let started_ms = base_ms.checked_add(unzigzag(get(b, &mut at)?)).ok_or(BAD)?;
        let latency_ms = get(b, &mut at)?;
        let status = u16::try_from(get(b, &mut at)?).map_err(|_| BAD)?;
        let n = usize::try_from(get(b, &mut at)?).map_err(|_| BAD)?;
        let end = at.checked_add(n).ok_or(BAD)?;
        let text = b.get(at..end).ok_or("receipt ends inside an answer")?;
        at = end;
        let response = (n > 0).then(|| String::from_utf8_lossy(text).into_owned());
        out.push(Entry {
            seq,
            started_ms,
            latency_ms,
            status,
            response,
        });
    }
    Ok(out)
}

/// The entry for `seq` in a packed receipt, if it holds one.
pub fn find(b: &[u8], base_ms: i64, seq: i64) -> Result<Option<Entry>, &'static str> {
    Ok(unpack(b, base_ms)?.into_iter().find(|e| e.seq == seq))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::{webhook_id, Id};
    use crate::store::Fresh;

    fn outcome(sub: &str, slice: i64, seq: i64, verdict: Verdict, attempt: u32) -> Outcome {
        let t = DateTime::from_timestamp_millis(1_700_000_000_000).unwrap();
        Outcome {
            delivery_id: webhook_id(sub, seq, "1day", t),
            subscription_id: Id::trusted(sub.into()),
            attempt: Attempt {
                attempt,
                started_at: t + chrono::Duration::milliseconds(seq),
                status_code: Some(if verdict == Verdict::Delivered {
                    200
                } else {
                    500
                }),
                latency_ms: 3,
                error: None,
                response: None,
            },
            verdict,
            fresh: Some(Fresh {
                slice: crate::store::SliceId(slice),
                webinar_id: Id::trusted("w".into()),
                participant_id: Id::trusted(format!("p{seq}")),
                reminder_id: Id::trusted("r".into()),
                label: "1day".into(),
                due_at: t,
                expires_at: t,
                late: false,
                send_at: None,
            }),
            batch: None,
        }
    }

    #[test]
    fn entries_survive_packing() {
        let entries = vec![
            Entry {
                seq: 5,
                started_ms: 1_000,
                latency_ms: 0,
                status: 200,
                response: None,
            },
            Entry {
                seq: 900_000_000,
                started_ms: 990,
                latency_ms: 29_999,
                status: 204,
                response: Some("ok ✓".into()),
            },
        ];
        let b = pack(&entries, 995);
        assert_eq!(unpack(&b, 995).unwrap(), entries);
        assert_eq!(find(&b, 995, 5).unwrap(), Some(entries[0].clone()));
        assert_eq!(find(&b, 995, 6).unwrap(), None);
        assert!(unpack(&b[..b.len() - 2], 995).is_err());
        assert!(unpack(&[9], 0).is_err());
        // A corrupt length or offset is an error, not a panic.
        let mut huge = vec![VERSION];
        for v in [1, 0, 0, 200, u64::MAX] {
            put(&mut huge, v);
        }
        assert!(unpack(&huge, 0).is_err());
        let mut far = vec![VERSION];
        put(&mut far, u64::MAX);
        for v in [0, 0, 200, 0] {
            put(&mut far, v);
        }
        assert!(unpack(&far, i64::MAX).is_err());
    }

    #[test]
    fn only_acknowledged_first_attempts_of_slices_go_in_receipts() {
        let outcomes = vec![
            outcome("s", 1, 3, Verdict::Delivered, 1),
            outcome("s", 1, 2, Verdict::Delivered, 1),
            outcome("s", 2, 9, Verdict::Delivered, 1),
            outcome("s", 1, 4, Verdict::Retry(DateTime::UNIX_EPOCH), 1),
            outcome("s", 1, 5, Verdict::Delivered, 2),
            outcome("s", 1, 2, Verdict::Delivered, 1),
        ];
        let (receipts, rows) = gather(&outcomes);
        assert_eq!(receipts.len(), 2);
        let seqs: Vec<i64> = receipts[0].outcomes.iter().map(|o| o.0).collect();
        assert_eq!(seqs, [2, 3]);
        assert_eq!((receipts[0].first_seq(), receipts[0].last_seq()), (2, 3));
        assert_eq!(receipts[1].slice, SliceId(2));
        // The retry, the second attempt and the repeat of seq 2 need rows.
        assert_eq!(rows.len(), 3);
        let packed = unpack(&receipts[0].pack(1_700_000_000_000), 1_700_000_000_000).unwrap();
        assert_eq!(packed[1].seq, 3);
        assert_eq!(packed[1].started_ms, 1_700_000_000_003);
        assert_eq!(packed[1].status, 200);
    }
}
