//! The statements PostgreSQL runs for the hot path, counted on the wire by
//! the bench's relay: claiming a due reminder is one statement, a fan-out
//! step that sends is one, a claim that one slice fills is one, and recording a slice's acknowledged first
//! attempts is four (`BEGIN`, the receipt, the subscriptions' health,
//! `COMMIT`). Each count is exact: one statement more on any of these
//! paths fails it.

use super::*;
use tminus_cli::bench::wire::{through, Wire};

/// Statements executed so far through `wire` (each `Bind` of a prepared
/// statement, each simple query).
fn executed(wire: &Wire) -> u64 {
    wire.counts().statements.values().sum()
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn the_hot_path_is_one_statement_a_claim_and_a_step_and_four_a_recording() {
    let db = pg::fresh().await;
    let (_, upstream) = through(&db.url, ([127, 0, 0, 1], 0).into())
        .expect("the test server's URL names its host and port");
    let wire = Wire::start(upstream).await.unwrap();
    let (url, _) = through(&db.url, wire.addr).unwrap();
    let s = open(&url).await.unwrap();
    let t0 = now_ms();
    let n = 2500;
    let (_, sub) = world(&s, t0 + Duration::minutes(15), t0 + Duration::seconds(1), n).await;
    let now = t0 + Duration::seconds(2);
    let before = executed(&wire);
    let due = claim_due(&s, "A", now).await;
    assert_eq!(
        (due.len(), executed(&wire) - before),
        (1, 1),
        "claiming the due reminder: (reminders, statements)"
    );
    // Steps of 64, 1 000, 1 000 and 436 participants: the last finishes.
    let mut steps = Vec::new();
    loop {
        let before = executed(&wire);
        let p = s
            .fanout_batch(&FanoutStep {
                reminder_id: due[0].id.clone(),
                owner: "A".into(),
                mode: FanoutMode::Send { late: false },
                batch: 1000,
                now,
                lease_until: now + Duration::seconds(60),
                expires_at: t0 + Duration::minutes(15),
            })
            .await
            .unwrap();
        steps.push((p.created, executed(&wire) - before));
        if p.done {
            break;
        }
    }
    assert_eq!(
        steps,
        [(64, 1), (1000, 1), (1000, 1), (436, 1)],
        "(created, statements) per step"
    );
    // The first slice holds 64 participants: a claim of 64 is one
    // statement; of 1 000, the next slice fills it, also one.
    for (limit, want) in [(64, 64), (1000, 1000)] {
        let before = executed(&wire);
        let c = s
            .claim_deliveries(claim(&sub, now, limit, "A"))
            .await
            .unwrap();
        assert_eq!(
            (c.jobs.len(), executed(&wire) - before),
            (want, 1),
            "a claim of {limit}: (jobs, statements)"
        );
        let before = executed(&wire);
        let done: Vec<SliceId> = c.slices.iter().map(|x| x.0).collect();
        let out: Vec<Outcome> = c.jobs.iter().map(|j| delivered(j, now)).collect();
        record(&s, out, &done, now).await;
        assert_eq!(
            executed(&wire) - before,
            4,
            "recording a slice's acknowledged first attempts"
        );
    }
    drop(s);
    db.drop_now().await;
}
