//! What a batch of outcomes writes as rows (those receipts do not hold),
//! gathered as columns (pure, no I/O): the rows first attempts make, the members batches carry, and the
//! verdicts and attempt logs of every later attempt. `record` sends each
//! set as arrays through one `unnest` statement.

use crate::store::{Outcome, Verdict};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashSet};

/// One column per field of the rows to write, filled outcome by outcome.
#[derive(Default)]
pub(super) struct Rows<'a> {
    pub(super) id: Vec<&'a str>,
    pub(super) sub: Vec<&'a str>,
    pub(super) webinar: Vec<&'a str>,
    pub(super) participant: Vec<Option<&'a str>>,
    pub(super) reminder: Vec<&'a str>,
    pub(super) label: Vec<&'a str>,
    pub(super) status: Vec<&'static str>,
    pub(super) late: Vec<bool>,
    pub(super) attempt: Vec<i32>,
    pub(super) due: Vec<DateTime<Utc>>,
    pub(super) next: Vec<DateTime<Utc>>,
    pub(super) expires: Vec<DateTime<Utc>>,
    pub(super) code: Vec<Option<i32>>,
    pub(super) error: Vec<Option<&'a str>>,
    pub(super) body: Vec<Option<&'a [u8]>>,
    pub(super) started: Vec<DateTime<Utc>>,
    pub(super) latency: Vec<i64>,
    pub(super) response: Vec<Option<&'a str>>,
    pub(super) batch: Vec<Option<&'a str>>,
    pub(super) slice: Vec<i64>,
}

/// A verdict as the row's status and next attempt.
fn verdict(v: &Verdict, now: DateTime<Utc>) -> (&'static str, DateTime<Utc>) {
    (v.status().as_str(), v.next_attempt(now))
}

/// The rows first attempts make: slice deliveries' and batches' own rows
/// (`fresh`), the members batches carry, and which outcomes made a row.
pub(super) fn gather_fresh<'a>(
    outcomes: &[&'a Outcome],
    now: DateTime<Utc>,
) -> (Rows<'a>, Rows<'a>, HashSet<usize>) {
    // First attempts of slice deliveries and batches: new rows.
    let mut fresh = Rows::default();
    // Members carried by a batch.
    let mut members = Rows::default();
    // A batch may carry two outcomes of one delivery (a replay of one in
    // flight, a lease that lapsed). The first fresh one makes the row; the
    // others are later attempts (below).
    let mut made: HashSet<&str> = HashSet::new();
    let mut makers: HashSet<usize> = HashSet::new();
    for (k, &o) in outcomes.iter().enumerate() {
        let Some(f) = &o.fresh else { continue };
        if !made.insert(o.delivery_id.as_str()) {
            continue;
        }
        makers.insert(k);
        let a = &o.attempt;
        let (status, next) = verdict(&o.verdict, now);
        let (participant, body) = match &o.batch {
            Some((body, _)) => (None, Some(body.as_slice())),
            None => (Some(f.participant_id.as_str()), None),
        };
        fresh.id.push(o.delivery_id.as_str());
        fresh.sub.push(o.subscription_id.as_str());
        fresh.webinar.push(f.webinar_id.as_str());
        fresh.participant.push(participant);
        fresh.reminder.push(f.reminder_id.as_str());
        fresh.label.push(&f.label);
        fresh.status.push(status);
        fresh.late.push(f.late);
        fresh.attempt.push(a.attempt as i32);
        fresh.due.push(f.due_at);
        fresh.next.push(next);
        fresh.expires.push(f.expires_at);
        fresh.code.push(a.status_code.map(i32::from));
        fresh.error.push(a.error.as_deref());
        fresh.body.push(body);
        fresh.started.push(a.started_at);
        fresh.latency.push(a.latency_ms as i64);
        fresh.response.push(a.response.as_deref());
        fresh.slice.push(f.slice.0);
        for (id, m) in o.batch.iter().flat_map(|(_, ms)| ms) {
            members.id.push(id.as_str());
            members.sub.push(o.subscription_id.as_str());
            members.webinar.push(m.webinar_id.as_str());
            members.participant.push(Some(m.participant_id.as_str()));
            members.reminder.push(m.reminder_id.as_str());
            members.label.push(&m.label);
            members.late.push(m.late);
            members.due.push(m.due_at);
            members.expires.push(m.expires_at);
            members.batch.push(Some(o.delivery_id.as_str()));
        }
    }
    (fresh, members, makers)
}

/// Every attempt that made no row: the verdict of each delivery, and a
/// log row per attempt.
pub(super) fn gather_later<'a>(
    outcomes: &[&'a Outcome],
    makers: &HashSet<usize>,
    inserted: &HashSet<String>,
    now: DateTime<Utc>,
) -> (Rows<'a>, Rows<'a>) {
    // Every other attempt: the row's verdict, and a row in `attempts`. One
    // verdict per delivery (an acknowledgement wins, else the latest
    // attempt) and one log row per attempt, so that no statement touches a
    // row twice; in id order, so concurrent recorders lock alike.
    let mut verdicts: BTreeMap<&str, &Outcome> = BTreeMap::new();
    let mut logged: BTreeMap<(&str, u32), &Outcome> = BTreeMap::new();
    for (k, &o) in outcomes.iter().enumerate() {
        if makers.contains(&k) && inserted.contains(o.delivery_id.as_str()) {
            continue;
        }
        let key = o.delivery_id.as_str();
        let wins = |cur: &&Outcome| {
            let (new, old) = (
                o.verdict == Verdict::Delivered,
                cur.verdict == Verdict::Delivered,
            );
            new && !old || new == old && o.attempt.attempt >= cur.attempt.attempt
        };
        match verdicts.get(key) {
            Some(cur) if !wins(cur) => {}
            _ => {
                verdicts.insert(key, o);
            }
        }
        logged.insert((key, o.attempt.attempt), o);
    }
    let mut later = Rows::default();
    for o in verdicts.values() {
        let a = &o.attempt;
        let (status, next) = verdict(&o.verdict, now);
        later.id.push(o.delivery_id.as_str());
        later.status.push(status);
        later.attempt.push(a.attempt as i32);
        later.next.push(next);
        later.code.push(a.status_code.map(i32::from));
        later.error.push(a.error.as_deref());
    }
    let mut log = Rows::default();
    for o in logged.values() {
        let a = &o.attempt;
        log.id.push(o.delivery_id.as_str());
        log.attempt.push(a.attempt as i32);
        log.code.push(a.status_code.map(i32::from));
        log.error.push(a.error.as_deref());
        log.started.push(a.started_at);
        log.latency.push(a.latency_ms as i64);
        log.response.push(a.response.as_deref());
    }
    (later, log)
}
