//! What the benchmark reads of the PostgreSQL server during a run, over a
//! connection of its own (around the counting relay): the position of its
//! write-ahead log, so a run can say how many WAL bytes a delivery wrote,
//! and what its backends are doing, sampled through the fan-out, so a run
//! can say whether they were on the CPU or waiting (on a lock, on the WAL,
//! on the client), and for what. Both are server-wide: they are the run's
//! only on a server nothing else uses meanwhile, as the bench's is.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_postgres::Client;

/// How often the backends are sampled.
const EVERY: Duration = Duration::from_millis(50);

/// The server's WAL position, in bytes from its start.
pub async fn wal_lsn(c: &Client) -> Option<u64> {
    let r = c
        .query_one("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::int8", &[])
        .await
        .ok()?;
    Some(r.get::<_, i64>(0) as u64)
}

/// The server's client backends, sampled every [`EVERY`] until stopped:
/// how many samples were taken, and in how many of them each backend was
/// active in each state ("CPU" for running, otherwise its wait event, as
/// `type:event`).
pub struct Waits {
    stop: Arc<Notify>,
    task: tokio::task::JoinHandle<(u64, BTreeMap<String, u64>)>,
}

const ACTIVE: &str = "SELECT COALESCE(wait_event_type || ':' || wait_event, 'CPU')
     FROM pg_stat_activity
     WHERE backend_type = 'client backend' AND state = 'active' AND pid <> pg_backend_pid()";

impl Waits {
    /// Starts sampling over `c`.
    pub fn sample(c: Client) -> Waits {
        let stop = Arc::new(Notify::new());
        let told = stop.clone();
        let task = tokio::spawn(async move {
            let (mut samples, mut seen) = (0u64, BTreeMap::new());
            loop {
                tokio::select! {
                    _ = told.notified() => return (samples, seen),
                    _ = tokio::time::sleep(EVERY) => {}
                }
                let Ok(rows) = c.query(ACTIVE, &[]).await else {
                    continue;
                };
                samples += 1;
                for r in rows {
                    *seen.entry(r.get::<_, String>(0)).or_insert(0) += 1;
                }
            }
        });
        Waits { stop, task }
    }

    /// Stops `w`'s sampling, if it was sampling; see [`Waits::stop`].
    pub async fn stop_all(w: Option<Waits>) -> Option<Value> {
        match w {
            Some(w) => Some(w.stop().await),
            None => None,
        }
    }

    /// Stops sampling; answers the average number of active backends in
    /// each state over the samples, busiest first, with their sum.
    pub async fn stop(self) -> Value {
        self.stop.notify_one();
        let (samples, seen) = self.task.await.unwrap_or_default();
        averages(samples, &seen)
    }
}

/// The average number of backends in each state over `samples` samples,
/// busiest first (the first 8), and their sum (`active`).
pub fn averages(samples: u64, seen: &BTreeMap<String, u64>) -> Value {
    let n = samples.max(1) as f64;
    let mut by: Vec<(&String, &u64)> = seen.iter().collect();
    by.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let total: u64 = seen.values().sum();
    let states: Vec<Value> = by
        .into_iter()
        .take(8)
        .map(|(k, v)| json!({"state": k, "backends": round3(*v as f64 / n)}))
        .collect();
    json!({"samples": samples, "active": round3(total as f64 / n), "by_state": states})
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_are_per_sample_busiest_first() {
        let seen: BTreeMap<String, u64> = [
            ("CPU".to_string(), 30),
            ("Lock:tuple".to_string(), 5),
            ("IO:WALSync".to_string(), 15),
        ]
        .into();
        let v = averages(10, &seen);
        assert_eq!(v["samples"], 10);
        assert_eq!(v["active"], 5.0);
        assert_eq!(
            v["by_state"],
            json!([
                {"state": "CPU", "backends": 3.0},
                {"state": "IO:WALSync", "backends": 1.5},
                {"state": "Lock:tuple", "backends": 0.5},
            ])
        );
        assert_eq!(averages(0, &BTreeMap::new())["active"], 0.0);
    }
}
