//! Timing that does not depend on how fast the machine is. A webinar is
//! parked two minutes ahead while a test sets it up (participants,
//! subscriptions), then the service's clock is moved so that it starts a
//! known time after the setup is complete; and "nothing more arrives" is
//! checked once the store says nothing is in progress and no lane runs
//! ([`TestApp::quiet`]), not after a sleep.

use crate::helpers::TestApp;
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::Value;
use std::time::{Duration, Instant};

/// How long a condition may take to hold on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(30);

/// How far ahead a webinar is parked: far beyond any setup, and near enough
/// that the clock moved to it stays within the five minutes a Standard
/// Webhooks verifier allows a `webhook-timestamp` (the service signs with
/// its own clock).
const PARK: chrono::Duration = chrono::Duration::minutes(2);

/// A webinar created far ahead ([`TestApp::parked`]).
pub struct Parked {
    pub id: String,
    pub from: DateTime<Utc>,
}

impl TestApp {
    /// A webinar parked [`PARK`] ahead of the service's now (whole
    /// milliseconds, as the API keeps them): nothing of it falls due however
    /// long the setup takes. [`TestApp::starts_in`] then brings its start near.
    pub async fn parked(&self, creator: &str, extra: Value) -> Parked {
        let from = self.clock.now() + PARK;
        let from = DateTime::from_timestamp_millis(from.timestamp_millis()).unwrap();
        let id = self.webinar_at(creator, from, extra).await;
        Parked { id, from }
    }

    /// Moves the service's clock so that `w` starts `secs` from now: its
    /// reminders fall due a known time after the setup is complete.
    pub fn starts_in(&self, w: &Parked, secs: f64) {
        self.bring(w.from, secs);
    }

    /// Moves the service's clock forward so that `t` is `secs` ahead.
    pub fn bring(&self, t: DateTime<Utc>, secs: f64) {
        let lead = chrono::Duration::milliseconds((secs * 1000.0) as i64);
        let by = t - lead - self.clock.now();
        assert!(by >= chrono::Duration::zero(), "{t} is already closer");
        self.clock.advance(by);
    }

    /// The service's instant for a wall-clock one (a receiver's `wall`).
    pub fn on_clock(&self, wall: DateTime<Utc>) -> DateTime<Utc> {
        wall + self.clock.skew()
    }

    /// Waits until the store has nothing in progress: no reminder due and
    /// not yet fanned out, no slice or delivery pending. Every delivery then
    /// has its final state, so what a receiver has got by then is all that
    /// the work in the store sends it (SQLite).
    pub async fn settled(&self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let now = self.clock.now().timestamp_millis();
            let busy: i64 = rusqlite::Connection::open(&self.db)
                .unwrap()
                .query_row(
                    "SELECT (SELECT COUNT(*) FROM reminders WHERE status = 'firing'
                                OR (status = 'pending' AND due_at <= ?1))
                          + (SELECT COUNT(*) FROM slices WHERE status = 'pending')
                          + (SELECT COUNT(*) FROM deliveries WHERE status = 'pending')",
                    [now],
                    |r| r.get(0),
                )
                .unwrap();
            if busy == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "still {busy} reminders, slices or deliveries in progress"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the service can send nothing more on its own: the store
    /// has nothing in progress ([`TestApp::settled`]) and no delivery lane
    /// runs (`tminus_lanes 0`: a lane holds leased work in memory until it
    /// retires). What a receiver has got by then is all it will get until
    /// another reminder falls due.
    pub async fn quiet(&self) {
        // `settled` reads the SQLite file; on PostgreSQL, a lane retires
        // only once its subscription has nothing pending, which the lanes'
        // gauge shows below.
        if !self.on_postgres() {
            self.settled().await;
        }
        let deadline = Instant::now() + PATIENCE;
        while !crate::metrics::scrape(self)
            .await
            .lines()
            .any(|l| l == "tminus_lanes 0")
        {
            assert!(Instant::now() < deadline, "a lane never retired");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `pred` holds for the webinar's reminders; returns them.
    pub async fn wait_reminders(
        &self,
        webinar: &str,
        pred: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (_, r) = self
                .admin(Method::GET, &format!("/webinars/{webinar}/reminders"), None)
                .await;
            let r = r["data"].as_array().cloned().unwrap_or_default();
            if pred(&r) {
                return r;
            }
            assert!(Instant::now() < deadline, "reminders never matched: {r:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
