//! The crash campaign: fan-outs on one SQLite file, each interrupted by
//! SIGKILL at a random moment (the first inside the staging window just
//! before the due instant, the second twice in one fan-out) and started
//! again at once. After every kill the file passes its integrity check;
//! at the end every participant was reached, each with one webhook-id,
//! the repeats are only deliveries that had reached the receiver but were
//! not recorded when the process died, and the store records as delivered
//! exactly what the receiver acknowledged.
//!
//! CI runs a small campaign; `TMINUS_CRASH_TRIALS` and `TMINUS_CRASH_PEOPLE`
//! make it bigger (docs/RELIABILITY.md gives the command), and
//! `TMINUS_CRASH_SEED` repeats one.

use crate::file;
use crate::harness::*;
use crate::receiver::Receiver;
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;
use std::time::Duration;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// When, in one trial, the process is killed.
enum Kill {
    /// This long from the due instant (negative: before it).
    AtMs(i64),
    /// Once this many of the trial's participants have been requested.
    AfterRequests(usize),
}

/// The kills of trial `t`: the first in the staging window, the second
/// twice, the others once at a random point of the fan-out.
fn plan(t: u64, people: usize, rng: &mut impl Rng) -> Vec<Kill> {
    let somewhere =
        |rng: &mut dyn rand::RngCore| Kill::AfterRequests(rng.random_range(1..people * 9 / 10));
    match t {
        0 => vec![Kill::AtMs(-50)],
        1 => {
            let a = rng.random_range(1..people / 3);
            let b = rng.random_range(people / 2..people * 9 / 10);
            vec![Kill::AfterRequests(a), Kill::AfterRequests(b)]
        }
        _ if rng.random_bool(0.2) => vec![Kill::AtMs(rng.random_range(-100..50))],
        _ => vec![somewhere(rng)],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_kills_lose_nothing_and_repeat_only_what_was_in_flight() {
    let _one = crate::ONE_AT_A_TIME.lock().await;
    let trials = setting("TMINUS_CRASH_TRIALS", 3);
    let people = setting("TMINUS_CRASH_PEOPLE", 3_000) as usize;
    let seed = setting("TMINUS_CRASH_SEED", rand::rng().random());
    eprintln!("crash campaign: {trials} trials of {people}, TMINUS_CRASH_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let logs = logs_dir();
    let db = logs.path().join("tminus.db");
    let database = db.to_str().unwrap().to_owned();
    let http = reqwest::Client::new();
    let rx = Receiver::start().await;
    let mut runs = 0;
    let mut inst = Instance::spawn(&database, logs.path(), "run-0", &[]);
    wait_healthy(&http, &inst).await;
    let (cid, _key, sub) = subscriber(&http, &inst, &rx).await;
    // Webhook-ids that had reached the receiver and were not recorded when
    // a process died: the only ones that may arrive twice.
    let mut in_flight: BTreeSet<String> = BTreeSet::new();
    let mut recorded_at_a_kill: BTreeSet<String> = BTreeSet::new();
    let mut kills = 0;
    for t in 0..trials {
        let before = rx.requests();
        let f = webinar_soon(&http, &inst, &cid, people, Duration::from_secs(2)).await;
        for kill in plan(t, people, &mut rng) {
            match kill {
                Kill::AtMs(ms) => {
                    let at = f.due + chrono::Duration::milliseconds(ms);
                    if let Ok(wait) = (at - chrono::Utc::now()).to_std() {
                        tokio::time::sleep(wait).await;
                    }
                }
                Kill::AfterRequests(n) => {
                    until(120, "the fan-out to reach the kill point", async || {
                        rx.requests() >= before + n
                    })
                    .await;
                }
            }
            inst.kill9();
            kills += 1;
            // Requests the dead process made are still being answered, and
            // some still sit unread in the receiver's socket buffers: they
            // were in flight too. Wait until the receiver has been idle for
            // a while, so none reaches it after the snapshot.
            quiet(&rx).await;
            let seen = rx.seen_ids();
            file::assert_intact(&db);
            let recorded = file::delivered(&db, &sub).await;
            let lost: Vec<&String> = seen.difference(&recorded).collect();
            eprintln!(
                "trial {t}: killed after {} of its requests; {} reached the receiver unrecorded",
                rx.requests() - before,
                lost.len()
            );
            in_flight.extend(lost.into_iter().cloned());
            recorded_at_a_kill.extend(recorded);
            runs += 1;
            inst = Instance::spawn(&database, logs.path(), &format!("run-{runs}"), &[]);
            wait_healthy(&http, &inst).await;
        }
        let want = people * (t as usize + 1);
        until(
            120,
            "every participant of the trial acknowledged",
            async || rx.acked_people() == want,
        )
        .await;
    }
    // A clean stop records everything in flight and lets go of the file.
    let _ = std::process::Command::new("kill")
        .arg(inst.pid().to_string())
        .status();
    let _ = inst.child.wait();
    file::assert_intact(&db);
    assert_eq!(file::count_rows(&db, "missed"), 0, "nothing missed");
    assert_eq!(file::count_rows(&db, "expired"), 0, "nothing expired");
    let delivered = file::delivered(&db, &sub).await;
    let log = rx.log.lock().unwrap();
    let total = people * trials as usize;
    assert_eq!(log.ids_by_email.len(), total, "every participant reached");
    for (who, ids) in &log.ids_by_email {
        assert_eq!(ids.len(), 1, "{who} got several webhook-ids: {ids:?}");
    }
    let repeats: Vec<&String> = log
        .acked
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id)
        .collect();
    eprintln!(
        "{kills} kills; {} repeats, of {} in flight at a kill",
        repeats.len(),
        in_flight.len()
    );
    for id in &repeats {
        assert!(
            in_flight.contains(*id),
            "{id} repeated, never in flight at a kill ({})",
            if recorded_at_a_kill.contains(*id) {
                "it was recorded as delivered when a process died"
            } else {
                "it had not reached the receiver when a process died"
            }
        );
    }
    let acked: BTreeSet<String> = log.acked.keys().cloned().collect();
    assert_eq!(delivered.len(), total, "the store records every delivery");
    assert_eq!(delivered, acked, "the store agrees with the receiver");
}

/// Returns once the receiver has answered everything and taken no request
/// for half a second: by then it has read whatever a dead sender left in
/// its sockets.
async fn quiet(rx: &Receiver) {
    let mut last = rx.requests();
    let mut still = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while still < 10 {
        assert!(
            std::time::Instant::now() < deadline,
            "the receiver never went quiet after a kill"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = rx.requests();
        if now == last && rx.in_flight() == 0 {
            still += 1;
        } else {
            (last, still) = (now, 0);
        }
    }
}
