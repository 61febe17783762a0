//! Prometheus metrics, served at `GET /metrics` behind the admin token
//! (`api::metrics`). Each service owns its recorder ([`Metrics`], in the
//! [`crate::AppContext`]) instead of installing a global one, so tests that
//! run many services in one process keep their figures apart.
//!
//! The hot path only bumps counters and records into histograms, through
//! handles registered once at start: an atomic operation each, no lookup,
//! no allocation, no lock (the recorder batches one per recorder flush, see
//! [`fanout`]). Gauges are read from the store at scrape time (`gauges`),
//! never kept up to date per delivery. Every label set is fixed and small:
//! no participant, subscription or webinar is ever a label.

pub mod cost;
pub mod fanout;
pub mod gauges;

use crate::store::{Outcome, Verdict};
use ::metrics::{Counter, Histogram, Key, Label, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

/// What became of a delivery (or of one attempt at it): the values of the
/// `outcome` label of `tminus_deliveries_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// The receiver acknowledged it (2xx).
    Delivered,
    /// An attempt failed (an error status, a timeout, a refused connection):
    /// it is retried, or given up as expired.
    Failed,
    /// An attempt the target guard refused (a private or metadata address).
    Refused,
    /// The receiver answered 410: its subscription is disabled.
    Gone,
    /// Given up: not delivered before it expired.
    Expired,
    /// Recorded as missed: too late to be sent (the service was down).
    Missed,
}

impl Fate {
    const ALL: [Fate; 6] = [
        Fate::Delivered,
        Fate::Failed,
        Fate::Refused,
        Fate::Gone,
        Fate::Expired,
        Fate::Missed,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Fate::Delivered => "delivered",
            Fate::Failed => "failed",
            Fate::Refused => "refused",
            Fate::Gone => "gone",
            Fate::Expired => "expired",
            Fate::Missed => "missed",
        }
    }
}

/// The fates one recorded outcome counts as: its attempt's result (a
/// refusal by the target guard before any failure), and `Expired` too when
/// it was then given up. An outcome that was never attempted (its
/// participant or webinar vanished) counts as expired only.
pub fn fates(o: &Outcome) -> (Option<Fate>, Option<Fate>) {
    let expired = matches!(o.verdict, Verdict::Expired).then_some(Fate::Expired);
    let attempt = match o.verdict {
        Verdict::Delivered => Some(Fate::Delivered),
        Verdict::Gone => Some(Fate::Gone),
        _ if !attempted(o) => None,
        _ if refused(o) => Some(Fate::Refused),
        _ => Some(Fate::Failed),
    };
    (attempt, expired)
}

/// Whether an outcome is a real attempt (not one given up unsent).
pub fn attempted(o: &Outcome) -> bool {
    !(matches!(o.verdict, Verdict::Expired)
        && o.attempt.status_code.is_none()
        && o.attempt.latency_ms == 0
        && o.attempt
            .error
            .as_deref()
            .is_some_and(|e| e.ends_with("not sent")))
}

/// Whether the target guard refused the attempt (`delivery::guard` words
/// every refusal this way, for the literal URL and for resolved names).
fn refused(o: &Outcome) -> bool {
    o.attempt.status_code.is_none()
        && o.attempt
            .error
            .as_deref()
            .is_some_and(|e| e.contains("refused by the target guard"))
}

/// The store calls whose latency is measured, by their `call` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreCall {
    ClaimDueReminders,
    FanoutBatch,
    ClaimDeliveries,
    RecordOutcomes,
    ExpireOverdue,
    Prune,
    Gauges,
}

impl StoreCall {
    const ALL: [StoreCall; 7] = [
        StoreCall::ClaimDueReminders,
        StoreCall::FanoutBatch,
        StoreCall::ClaimDeliveries,
        StoreCall::RecordOutcomes,
        StoreCall::ExpireOverdue,
        StoreCall::Prune,
        StoreCall::Gauges,
    ];

    fn label(self) -> &'static str {
        match self {
            StoreCall::ClaimDueReminders => "claim_due_reminders",
            StoreCall::FanoutBatch => "fanout_batch",
            StoreCall::ClaimDeliveries => "claim_deliveries",
            StoreCall::RecordOutcomes => "record_outcomes",
            StoreCall::ExpireOverdue => "expire_overdue",
            StoreCall::Prune => "prune",
            StoreCall::Gauges => "gauges",
        }
    }
}

/// Buckets (seconds) of an HTTP attempt.
const ATTEMPT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Buckets (seconds) of lateness: from staged-on-time to an hour late.
const LATE_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0,
    3600.0,
];
/// Buckets (seconds) of a store call.
const STORE_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// One service's metrics: the recorder's handle for rendering, and a
/// handle per counter and histogram for the hot path.
pub struct Metrics {
    handle: PrometheusHandle,
    recorder: PrometheusRecorder,
    fates: [Counter; 6],
    pruned: [Counter; 5],
    /// Retention rounds run, including those that keep everything.
    pub prune_rounds: Counter,
    /// A fan-out's deliveries that would first have left after their
    /// webinar started: expired unsent, or sent marked late.
    after_start: [Counter; 2],
    pub attempt_seconds: Histogram,
    pub fanout_first_seconds: Histogram,
    pub fanout_last_seconds: Histogram,
    pub scheduler_lag_seconds: Histogram,
    store: [Histogram; 7],
    /// Fan-outs whose deliveries are going out, for their lateness.
    pub fanouts: fanout::Fanouts,
    /// Delivery lanes running now, and the most at once since start
    /// (changed when a lane starts or retires, never per delivery).
    lanes: std::sync::atomic::AtomicUsize,
    lanes_peak: std::sync::atomic::AtomicUsize,
    /// Connections to receivers beyond each lane's first, and the budget
    /// they come from (`--delivery-connections`).
    borrowed: std::sync::atomic::AtomicUsize,
    budget: std::sync::atomic::AtomicUsize,
    /// Fan-outs due within a day predicted to miss their lateness budget,
    /// as last counted by the watcher (`schedule::ahead::late_fanouts`).
    pub predicted_late: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn key(name: &'static str, labels: &[(&'static str, &'static str)]) -> Key {
    let labels: Vec<Label> = labels.iter().map(|(k, v)| Label::new(*k, *v)).collect();
    Key::from_parts(name, labels)
}

const META: Metadata<'static> = Metadata::new(module_path!(), ::metrics::Level::INFO, None);

/// What `tminus_pruned_total` counts, by its `table` label.
pub const PRUNED_TABLES: [&str; 5] = ["deliveries", "attempts", "receipts", "slices", "reminders"];

impl Metrics {
    /// A recorder of its own, with every metric registered and described.
    pub fn new() -> Self {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("tminus_attempt_duration_seconds".into()),
                ATTEMPT_BUCKETS,
            )
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Suffix("lateness_seconds".into()), LATE_BUCKETS)
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("tminus_scheduler_lag_seconds".into()),
                    LATE_BUCKETS,
                )
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("tminus_store_call_duration_seconds".into()),
                    STORE_BUCKETS,
                )
            })
            .expect("the bucket lists are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        for (name, unit, help) in gauges::DESCRIBED.iter().chain(DESCRIBED) {
            recorder.describe_gauge((*name).into(), *unit, (*help).into());
        }
        let counter = |name, labels: &[(&'static str, &'static str)]| {
            recorder.register_counter(&key(name, labels), &META)
        };
        let histogram = |name, labels: &[(&'static str, &'static str)]| {
            recorder.register_histogram(&key(name, labels), &META)
        };
        let fates =
            Fate::ALL.map(|f| counter("tminus_deliveries_total", &[("outcome", f.label())]));
        let pruned = PRUNED_TABLES.map(|t| counter("tminus_pruned_total", &[("table", t)]));
        let store = StoreCall::ALL
            .map(|c| histogram("tminus_store_call_duration_seconds", &[("call", c.label())]));
        Self {
            fates,
            pruned,
            prune_rounds: counter("tminus_prune_rounds_total", &[]),
            after_start: ["expired", "sent_late"]
                .map(|a| counter("tminus_after_start_total", &[("action", a)])),
            attempt_seconds: histogram("tminus_attempt_duration_seconds", &[]),
            fanout_first_seconds: histogram("tminus_fanout_first_delivery_lateness_seconds", &[]),
            fanout_last_seconds: histogram("tminus_fanout_last_delivery_lateness_seconds", &[]),
            scheduler_lag_seconds: histogram("tminus_scheduler_lag_seconds", &[]),
            store,
            fanouts: fanout::Fanouts::default(),
            lanes: Default::default(),
            lanes_peak: Default::default(),
            borrowed: Default::default(),
            budget: Default::default(),
            predicted_late: Default::default(),
            handle,
            recorder,
        }
    }

    /// Counts a delivery that would first have left after its webinar
    /// started, by what `--after-start` made of it.
    pub fn after_start(&self, policy: crate::config::AfterStart) {
        let i = match policy {
            crate::config::AfterStart::Expire => 0,
            crate::config::AfterStart::SendLate => 1,
        };
        self.after_start[i].increment(1);
    }

    /// Counts `n` deliveries (or attempts) of this fate.
    pub fn count(&self, fate: Fate, n: u64) {
        let i = Fate::ALL.iter().position(|f| *f == fate).unwrap_or(0);
        self.fates[i].increment(n);
    }

    /// Counts what one recorder flush wrote: each outcome's fates and its
    /// attempt's latency. (The recorder notes the batch's fan-outs in
    /// [`Metrics::fanouts`] before it writes, so a fan-out is never seen
    /// finished before its last acknowledgements are noted.)
    pub fn recorded(&self, outcomes: &[Outcome]) {
        for o in outcomes {
            let (attempt, expired) = fates(o);
            if let Some(f) = attempt {
                self.count(f, 1);
                self.attempt_seconds
                    .record(o.attempt.latency_ms as f64 / 1000.0);
            }
            if let Some(f) = expired {
                self.count(f, 1);
            }
        }
    }

    /// Records how long a store call took, from `started`.
    pub fn store_call(&self, call: StoreCall, started: std::time::Instant) {
        let i = StoreCall::ALL.iter().position(|c| *c == call).unwrap_or(0);
        self.store[i].record(started.elapsed().as_secs_f64());
    }

    /// Counts rows retention removed from `table` (one of [`PRUNED_TABLES`]).
    pub fn pruned(&self, table: &str, n: u64) {
        if let Some(i) = PRUNED_TABLES.iter().position(|t| *t == table) {
            self.pruned[i].increment(n);
        }
    }

    /// The connection budget the delivery lanes share.
    pub fn connection_budget(&self, n: usize) {
        self.budget.store(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// A connection of the budget taken (`true`) or given back.
    pub fn borrowed(&self, taken: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        if taken {
            self.borrowed.fetch_add(1, Relaxed);
        } else {
            self.borrowed.fetch_sub(1, Relaxed);
        }
    }

    /// A delivery lane started (`true`) or retired.
    pub fn lane(&self, started: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        if started {
            let now = self.lanes.fetch_add(1, Relaxed) + 1;
            self.lanes_peak.fetch_max(now, Relaxed);
        } else {
            self.lanes.fetch_sub(1, Relaxed);
        }
    }

    /// Sets a scrape-time gauge.
    fn gauge(&self, name: &'static str, labels: &[(&'static str, &'static str)], value: f64) {
        self.recorder
            .register_gauge(&key(name, labels), &META)
            .set(value);
    }

    /// The exposition text: the gauges just read from the store, then
    /// everything else.
    pub fn render(&self, g: &gauges::Gauges) -> String {
        use std::sync::atomic::Ordering::Relaxed;
        g.set(|name, labels, v| self.gauge(name, labels, v));
        self.gauge("tminus_lanes", &[], self.lanes.load(Relaxed) as f64);
        let peak = self.lanes_peak.load(Relaxed) as f64;
        self.gauge("tminus_lanes_peak", &[], peak);
        let borrowed = self.borrowed.load(Relaxed) as f64;
        self.gauge("tminus_delivery_connections_borrowed", &[], borrowed);
        let budget = self.budget.load(Relaxed) as f64;
        self.gauge("tminus_delivery_connections_budget", &[], budget);
        let late = self.predicted_late.load(Relaxed) as f64;
        self.gauge("tminus_fanouts_predicted_late", &[], late);
        self.handle.render()
    }

    /// Folds histogram samples into their buckets, so they do not pile up
    /// between scrapes (run every few seconds).
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}

/// HELP text of the counters and histograms (`describe_gauge` writes the
/// same `# HELP` line whatever the type).
const DESCRIBED: &[(&str, Option<Unit>, &str)] = &[
    ("tminus_deliveries_total", None, "Deliveries and attempts by outcome: delivered, failed (an attempt failed), refused (by the target guard), gone (410), expired (given up), missed (too late to send)"),
    ("tminus_attempt_duration_seconds", Some(Unit::Seconds), "How long one HTTP attempt took, answer read"),
    ("tminus_fanout_first_delivery_lateness_seconds", Some(Unit::Seconds), "How long after its due instant a fan-out's first delivery was acknowledged"),
    ("tminus_fanout_last_delivery_lateness_seconds", Some(Unit::Seconds), "How long after its due instant a fan-out's last first-attempt delivery was acknowledged"),
    ("tminus_scheduler_lag_seconds", Some(Unit::Seconds), "How late the scheduler took up a due reminder"),
    ("tminus_store_call_duration_seconds", Some(Unit::Seconds), "How long a store call took, by call"),
    ("tminus_pruned_total", None, "Rows removed by retention, by table"),
    ("tminus_after_start_total", None, "Deliveries of a fan-out that would first have left after their webinar started, by action: expired (not sent) or sent_late (--after-start)"),
    ("tminus_prune_rounds_total", None, "Retention rounds run (once a minute), including those that keep everything"),
    ("tminus_lanes", None, "Delivery lanes running: one per subscription with work"),
    ("tminus_lanes_peak", None, "The most delivery lanes running at once since the service started"),
    ("tminus_delivery_connections_borrowed", None, "Connections to receivers open beyond each lane's first, taken from --delivery-connections"),
    ("tminus_delivery_connections_budget", None, "Connections to receivers the lanes may open beyond each one's first (--delivery-connections)"),
    ("tminus_fanouts_predicted_late", None, "Fan-outs (reminder x subscription) due within 24 h whose capacity plan says their last participant will be reminded later than the subscription's lateness budget (counted every 15 ticks: 15 s by default)"),
];

#[cfg(test)]
mod tests;
