//! Instances racing on PostgreSQL: eight store handles (each its own
//! connection pool, as eight instances have), released together by a
//! barrier, claim the same due reminder, then the same fan-out's slices.
//! One claims the reminder; every delivery is claimed by exactly one.

use super::*;
use std::collections::BTreeSet;
use std::sync::Arc;
use tminus::domain::instance::InstanceId;
use tokio::sync::Barrier;

const INSTANCES: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn racing_instances_claim_a_reminder_once_and_each_delivery_once_on_postgres() {
    let db = crate::pg::fresh().await;
    let mut stores = Vec::new();
    for _ in 0..INSTANCES {
        stores.push(open(&db.url).await.unwrap());
    }
    let t0 = now_ms();
    let n = 3000;
    let expires = t0 + Duration::minutes(15);
    let (_, sub) = world(&stores[0], expires, t0 + Duration::seconds(1), n).await;
    let now = t0 + Duration::seconds(2);
    let lease = now + Duration::seconds(60);

    // The due reminder: one claim wins.
    let start = Arc::new(Barrier::new(INSTANCES));
    let claims: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (s, start) = (s.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let owner = format!("I{i}");
                let got = s
                    .claim_due_reminders(reminders(
                        now,
                        now,
                        &InstanceId::named(owner.clone()),
                        lease,
                        10,
                    ))
                    .await
                    .unwrap();
                (owner, got)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for c in claims {
        let (owner, got) = c.await.unwrap();
        winners.extend(got.into_iter().map(|r| (owner.clone(), r.id)));
    }
    assert_eq!(winners.len(), 1, "the reminder was claimed {winners:?}");
    let (owner, reminder) = winners.remove(0);
    let s = &stores[0];
    while !s
        .fanout_batch(&FanoutStep {
            reminder_id: reminder.clone(),
            owner: owner.clone().into(),
            mode: FanoutMode::Send { late: false },
            batch: 1000,
            now,
            lease_until: lease,
            expires_at: expires,
        })
        .await
        .unwrap()
        .done
    {}

    // Its slices: every instance claims and records until none is left.
    let start = Arc::new(Barrier::new(INSTANCES));
    let lanes: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (s, start, sub) = (s.clone(), start.clone(), sub.clone());
            tokio::spawn(async move {
                start.wait().await;
                claim_all(&s, &sub, &format!("L{i}"), 100, now).await
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut busy = 0;
    for l in lanes {
        let mine = l.await.unwrap();
        busy += usize::from(!mine.is_empty());
        all.extend(mine);
    }
    let distinct: BTreeSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "a delivery was claimed twice");
    assert_eq!(all.len(), n, "every delivery was claimed");
    assert!(
        busy > 1,
        "the race was not one: a single instance claimed all"
    );
    drop(stores);
    db.drop_now().await;
}
