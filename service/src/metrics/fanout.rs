//! Fan-out lateness: how long after a reminder's due instant its first and
//! its last delivery were acknowledged. The recorder notes each flush's
//! acknowledged first attempts here (one lock per flush, not per
//! delivery); the watcher (`watch`) asks the store, once a second,
//! which fan-outs it holds are finished (fanned out, no slice left to
//! send) and observes both histograms for each of those, once. Retries are
//! not waited for: "last" is the last acknowledged first attempt, which is
//! when the fan-out proper was over. A fan-out none of whose first
//! attempts was acknowledged is followed too (its end is announced by the
//! operational webhooks, `fanout.finished`), with no lateness to observe.

use crate::store::{Fresh, Outcome, ReminderId, Verdict, WebinarId};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Mutex;

/// Most fan-outs followed at once; beyond it new ones are not followed (a
/// bound on memory should the store stop answering).
const MAX_OPEN: usize = 10_000;

/// One fan-out being delivered.
#[derive(Clone, Debug, PartialEq)]
pub struct Track {
    pub webinar_id: WebinarId,
    pub due_at: DateTime<Utc>,
    /// The earliest and the latest acknowledgement so far (none yet: every
    /// first attempt noted failed).
    pub acked: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

impl Track {
    /// First and last lateness, in seconds (never negative); `None` with
    /// no acknowledgement.
    pub fn lateness(&self) -> Option<(f64, f64)> {
        let secs = |t: DateTime<Utc>| {
            ((t - self.due_at).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6).max(0.0)
        };
        self.acked.map(|(first, last)| (secs(first), secs(last)))
    }
}

/// Widens `acked` to take in `more`.
fn widen(
    acked: Option<(DateTime<Utc>, DateTime<Utc>)>,
    more: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    match (acked, more) {
        (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
        (a, b) => a.or(b),
    }
}

/// The fan-outs with acknowledged deliveries whose end is not yet known.
#[derive(Debug, Default)]
pub struct Fanouts {
    open: Mutex<HashMap<ReminderId, Track>>,
}

impl Fanouts {
    /// Notes the first attempts of one recorder flush, and when the
    /// acknowledged ones were acknowledged: folded per reminder first (a
    /// flush is mostly one fan-out's, so that is a comparison per outcome,
    /// no hashing), then merged under the lock.
    pub fn note(&self, outcomes: &[Outcome]) {
        type Acked = Option<(DateTime<Utc>, DateTime<Utc>)>;
        let mut seen: Vec<(&Fresh, Acked)> = Vec::new();
        for o in outcomes {
            let fresh = o
                .fresh
                .as_ref()
                .or_else(|| o.batch.as_ref().and_then(|(_, m)| m.first().map(|m| &m.1)));
            let Some(f) = fresh else { continue };
            let acked = (o.verdict == Verdict::Delivered).then(|| {
                let at = o.attempt.started_at
                    + chrono::Duration::milliseconds(o.attempt.latency_ms as i64);
                (at, at)
            });
            match seen.iter_mut().find(|s| s.0.reminder_id == f.reminder_id) {
                Some(s) => s.1 = widen(s.1, acked),
                None => seen.push((f, acked)),
            }
        }
        if seen.is_empty() {
            return;
        }
        let mut open = self.open.lock().expect("fan-out lock");
        for (f, acked) in seen {
            if let Some(t) = open.get_mut(&f.reminder_id) {
                t.acked = widen(t.acked, acked);
            } else if open.len() < MAX_OPEN {
                let track = Track {
                    webinar_id: f.webinar_id.clone(),
                    due_at: f.due_at,
                    acked,
                };
                open.insert(f.reminder_id.clone(), track);
            }
        }
    }

    /// The fan-outs followed now.
    pub fn open(&self) -> Vec<(ReminderId, WebinarId)> {
        let open = self.open.lock().expect("fan-out lock");
        open.iter()
            .map(|(r, t)| (r.clone(), t.webinar_id.clone()))
            .collect()
    }

    /// Stops following a finished fan-out: its track, once.
    pub fn close(&self, reminder: &ReminderId) -> Option<Track> {
        self.open.lock().expect("fan-out lock").remove(reminder)
    }
}
