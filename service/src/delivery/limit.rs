//! A lane's in-flight limit, adapted to its endpoint: additive increase,
//! multiplicative decrease, as TCP's congestion window and Netflix's
//! concurrency-limits do. A lane opens at [`SLOW_START`] requests and
//! doubles with each acknowledged answer (slow start) until the endpoint
//! first shows strain: a `429`, `502`, `503` or `504`, a timeout, a refused
//! or reset connection, or an answer much slower than its moving average.
//! Strain halves the limit (once per window: the answers to requests sent
//! before the cut say nothing new) and ends slow start; from then on the
//! limit climbs back by one per window of acknowledged answers. It always
//! stays within `[1, maxConcurrency]`. An endpoint still failing at a limit
//! of one (refusing connections, timing out) gets probes, not traffic: from
//! the second failure in a row the lane pauses before its next request,
//! 100 ms doubling to 5 s, until an answer is acknowledged ([`Limit::pause`]).
//! `Retry-After` is not this module's business: it decides when the
//! strained delivery is tried again (`retry`), whatever the limit. Pure:
//! the lane feeds it each result.

use super::retry::Response;
use std::time::Duration;

/// Requests a lane starts with before any has been answered: it opens up
/// as answers come, so an endpoint is not hit by its whole concurrency of
/// new connections at once, and the first requests of a fan-out do not
/// queue behind the others' connection set-up.
pub(super) const SLOW_START: usize = 4;

/// Answers averaged before a slow one counts as strain.
const SETTLED: u32 = 8;

/// How much of each new answer time the moving average takes.
const ALPHA: f64 = 0.1;

/// The first pause between probes of an endpoint failing at a limit of
/// one, and the longest: it doubles with each further failure.
const PAUSE_FIRST: Duration = Duration::from_millis(100);
const PAUSE_MOST: Duration = Duration::from_secs(5);

/// What one finished attempt says about the endpoint's load.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Signal {
    /// Acknowledged (`2xx`), after this many milliseconds.
    Fine(u64),
    /// Busy or failing under load: `429`, `502`, `503`, `504`, or no
    /// answer at all (timeout, refused, reset).
    Strain,
    /// An answer that says nothing about load (another `4xx` or `5xx`, a
    /// job never sent).
    Neutral,
}

impl Signal {
    /// Reads an attempt's result.
    pub fn of(resp: &Response, latency_ms: u64) -> Signal {
        match resp {
            Response::Status { code, .. } if (200..300).contains(code) => Signal::Fine(latency_ms),
            Response::Status {
                code: 429 | 502 | 503 | 504,
                ..
            } => Signal::Strain,
            Response::Status { .. } => Signal::Neutral,
            Response::Failed => Signal::Strain,
        }
    }
}

/// One lane's limit and what it learned of its endpoint.
#[derive(Clone, Debug)]
pub struct Limit {
    /// The limit now, before the cap.
    now: usize,
    /// Below it the limit doubles per answer; at or above it, grows by one
    /// per window. Unbounded until the first strain.
    threshold: usize,
    /// Acknowledged answers towards the next step up.
    acked: usize,
    /// Results still to come of requests sent before the last cut.
    hold: usize,
    /// Moving average of acknowledged answer times, in milliseconds, and
    /// how many answers it has seen.
    avg_ms: f64,
    seen: u32,
    /// Failures in a row at a limit of one.
    streak: u32,
}

impl Default for Limit {
    fn default() -> Self {
        Limit {
            now: SLOW_START,
            threshold: usize::MAX,
            acked: 0,
            hold: 0,
            avg_ms: 0.0,
            seen: 0,
            streak: 0,
        }
    }
}

impl Limit {
    /// Requests that may be in flight, within the subscription's cap.
    pub fn get(&self, cap: usize) -> usize {
        self.now.clamp(1, cap.max(1))
    }

    /// The lane went idle: the next burst starts slowly again, though
    /// never above what the endpoint last took.
    pub fn idle(&mut self) {
        self.now = SLOW_START.min(self.threshold).max(1);
        self.acked = 0;
        self.hold = 0;
    }

    /// How long to wait before the next request: `None` unless the
    /// endpoint has failed twice or more in a row at a limit of one. The
    /// queued deliveries wait (their leases kept); what is still unsent
    /// when its webinar starts follows `--after-start`.
    pub fn pause(&self) -> Option<Duration> {
        let n = self.streak.checked_sub(2)?;
        Some(PAUSE_FIRST.saturating_mul(1 << n.min(16)).min(PAUSE_MOST))
    }

    /// Takes one result in; `inflight` is how many requests are still out
    /// after it, `cap` the subscription's cap.
    pub fn note(&mut self, signal: Signal, inflight: usize, cap: usize) {
        self.now = self.get(cap);
        match signal {
            Signal::Fine(_) => self.streak = 0,
            Signal::Strain if self.now == 1 => self.streak = self.streak.saturating_add(1),
            _ => {}
        }
        let strained = match signal {
            Signal::Fine(ms) => {
                let slow = self.slow(ms);
                self.average(ms);
                slow
            }
            Signal::Strain => true,
            Signal::Neutral => false,
        };
        if self.hold > 0 {
            // Asked for under the limit before the cut: neither another
            // cut nor a step up.
            self.hold -= 1;
            return;
        }
        if strained {
            self.now = (self.now / 2).max(1);
            self.threshold = self.now;
            self.acked = 0;
            self.hold = inflight;
            return;
        }
        if !matches!(signal, Signal::Fine(_)) {
            return;
        }
        if self.now < self.threshold {
            self.now = self.now.saturating_mul(2).min(self.threshold).min(cap);
        } else {
            self.acked += 1;
            if self.acked >= self.now {
                self.acked = 0;
                self.now = (self.now + 1).min(cap.max(1));
            }
        }
    }

    /// Whether an answer took much longer than the endpoint's average: more
    /// than twice as long, and by at least 50 ms (a loopback receiver's
    /// jitter is not strain).
    fn slow(&self, ms: u64) -> bool {
        self.seen >= SETTLED && ms as f64 > 2.0 * self.avg_ms && ms as f64 - self.avg_ms >= 50.0
    }

    fn average(&mut self, ms: u64) {
        self.avg_ms = if self.seen == 0 {
            ms as f64
        } else {
            self.avg_ms + ALPHA * (ms as f64 - self.avg_ms)
        };
        self.seen = self.seen.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fine(l: &mut Limit, n: usize, ms: u64, cap: usize) {
        for _ in 0..n {
            l.note(Signal::Fine(ms), 0, cap);
        }
    }

    #[test]
    fn it_opens_from_four_doubling_per_answer_up_to_the_cap() {
        let mut l = Limit::default();
        assert_eq!(l.get(64), SLOW_START);
        assert_eq!(l.get(2), 2, "never above the cap");
        let mut seen = vec![];
        for _ in 0..5 {
            l.note(Signal::Fine(20), 0, 64);
            seen.push(l.get(64));
        }
        assert_eq!(seen, [8, 16, 32, 64, 64]);
    }

    #[test]
    fn strain_halves_it_once_per_window_then_it_climbs_by_one_per_window() {
        let mut l = Limit::default();
        fine(&mut l, 4, 20, 64);
        assert_eq!(l.get(64), 64);
        // 60 in flight when the first 503 comes: the other 59 answers were
        // asked for under the old limit.
        l.note(Signal::Strain, 59, 64);
        assert_eq!(l.get(64), 32);
        for _ in 0..59 {
            l.note(Signal::Strain, 0, 64);
        }
        assert_eq!(l.get(64), 32, "one cut per window");
        l.note(Signal::Strain, 31, 64);
        assert_eq!(l.get(64), 16);
        // Past slow start: one more per window of acknowledged answers.
        fine(&mut l, 31, 20, 64);
        fine(&mut l, 15, 20, 64);
        assert_eq!(l.get(64), 16);
        fine(&mut l, 1, 20, 64);
        assert_eq!(l.get(64), 17);
        fine(&mut l, 17, 20, 64);
        assert_eq!(l.get(64), 18);
    }

    #[test]
    fn it_never_falls_below_one_and_neutral_answers_move_nothing() {
        let mut l = Limit::default();
        for _ in 0..10 {
            l.note(Signal::Strain, 0, 64);
        }
        assert_eq!(l.get(64), 1);
        l.note(Signal::Neutral, 0, 64);
        assert_eq!(l.get(64), 1);
        fine(&mut l, 1, 20, 64);
        assert_eq!(l.get(64), 2, "a window of one");
    }

    #[test]
    fn an_answer_much_slower_than_the_average_is_strain() {
        let mut l = Limit::default();
        fine(&mut l, 10, 100, 64);
        assert_eq!(l.get(64), 64);
        l.note(Signal::Fine(180), 0, 64);
        assert_eq!(l.get(64), 64, "slower, not twice as slow");
        l.note(Signal::Fine(400), 0, 64);
        assert_eq!(l.get(64), 32);
        let mut quick = Limit::default();
        fine(&mut quick, 10, 1, 64);
        quick.note(Signal::Fine(30), 0, 64);
        assert_eq!(quick.get(64), 64, "loopback jitter is not strain");
    }

    #[test]
    fn idle_restarts_slowly_but_not_above_what_the_endpoint_took() {
        let mut l = Limit::default();
        fine(&mut l, 4, 20, 64);
        l.note(Signal::Strain, 0, 64);
        assert_eq!(l.get(64), 32);
        l.idle();
        assert_eq!(l.get(64), SLOW_START);
        fine(&mut l, 3, 20, 64);
        assert_eq!(l.get(64), 32, "slow start up to what it took");
        fine(&mut l, 1, 20, 64);
        assert_eq!(l.get(64), 32, "then one per window");
        for _ in 0..4 {
            l.note(Signal::Strain, 0, 64);
        }
        assert_eq!(l.get(64), 2);
        l.idle();
        assert_eq!(l.get(64), 2, "never above what the endpoint took");
    }

    #[test]
    fn an_endpoint_failing_at_one_gets_probes_further_and_further_apart() {
        let mut l = Limit::default();
        for _ in 0..3 {
            l.note(Signal::Strain, 0, 64);
        }
        // 4, 2, then 1, where the third failure is the first at one.
        assert_eq!((l.get(64), l.pause()), (1, None));
        let mut pauses = vec![];
        for _ in 0..8 {
            l.note(Signal::Strain, 0, 64);
            pauses.push(l.pause().unwrap().as_millis());
        }
        assert_eq!(pauses, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        l.note(Signal::Neutral, 0, 64);
        assert!(l.pause().is_some(), "a 404 says nothing of load");
        l.note(Signal::Fine(20), 0, 64);
        assert_eq!(l.pause(), None, "acknowledged: traffic again");
    }

    #[test]
    fn what_attempts_say() {
        let status = |code| Response::Status {
            code,
            retry_after: None,
        };
        assert_eq!(Signal::of(&status(204), 12), Signal::Fine(12));
        for code in [429, 502, 503, 504] {
            assert_eq!(Signal::of(&status(code), 1), Signal::Strain, "{code}");
        }
        assert_eq!(Signal::of(&Response::Failed, 1), Signal::Strain);
        for code in [400, 404, 500, 301] {
            assert_eq!(Signal::of(&status(code), 1), Signal::Neutral, "{code}");
        }
    }
}
