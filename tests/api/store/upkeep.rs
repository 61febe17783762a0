//! The operators' side of the conformance suite (`store::Upkeep`): the
//! figures `/metrics` reads at scrape time, the test that a fan-out is
//! over, and retention's deletes, which spare a fan-out with work left.

use super::*;

pub async fn queue_figures_read_the_store(s: DynStore) {
    let t0 = now_ms();
    let start = t0 + Duration::minutes(15);
    let (wid, sub) = world(&s, start, t0 + Duration::seconds(1), 3).await;
    let q = s.queue_figures(t0).await.unwrap();
    assert_eq!(q.due_next_hour, 1, "{q:?}");
    assert_eq!((q.queued, q.retrying, q.failing), (0, 0, 0), "{q:?}");
    assert_eq!(q.subscriptions, vec![(SubscriptionStatus::Active, 1)]);
    // Far from its due time, a reminder is not counted.
    let q = s.queue_figures(t0 - Duration::hours(2)).await.unwrap();
    assert_eq!(q.due_next_hour, 0);

    let now = t0 + Duration::seconds(2);
    fire(&s, now, start).await;
    let q = s.queue_figures(now).await.unwrap();
    assert_eq!((q.due_next_hour, q.queued, q.retrying), (0, 3, 0), "{q:?}");
    let c = s.claim_deliveries(claim(&sub, now, 10, "A")).await.unwrap();
    let slice = c.slices[0].0;
    let outcomes = c.jobs.iter().map(|j| failed(j, now)).collect();
    record(&s, outcomes, &[slice], now).await;
    let q = s.queue_figures(now).await.unwrap();
    assert_eq!((q.queued, q.retrying, q.failing), (0, 3, 1), "{q:?}");
    let reminder = c.jobs[0].fresh.as_ref().unwrap().reminder_id.clone();
    assert!(
        s.fanout_finished(&reminder, &wid).await.unwrap(),
        "no slice left: the fan-out proper is over, a retry pending or not"
    );
}

pub async fn pruning_spares_fan_outs_with_work_left(s: DynStore) {
    let t0 = now_ms();
    let start = t0 + Duration::minutes(15);
    let (wid, sub) = world(&s, start, t0 + Duration::seconds(1), 3).await;
    let now = t0 + Duration::seconds(2);
    fire(&s, now, start).await;
    let c = s.claim_deliveries(claim(&sub, now, 10, "A")).await.unwrap();
    let slice = c.slices[0].0;
    let mut outcomes = vec![failed(&c.jobs[0], now)];
    outcomes.extend(c.jobs[1..].iter().map(|j| delivered(j, now)));
    record(&s, outcomes, &[slice], now).await;

    // Everything is older than this, but one delivery is still pending.
    let before = t0 + Duration::days(2);
    let all = || async {
        let mut p = s.prune_history(&sub, cut(before)).await.unwrap();
        p.add(s.prune_slices(0, cut(before)).await.unwrap().0);
        p.reminders += s.prune_reminders(before, 100).await.unwrap();
        p
    };
    assert_eq!(all().await, Pruned::default(), "a fan-out with work left");
    assert_eq!(listed(&s, &sub).await, 3);

    // The retry is given up: the fan-out is settled, and goes whole.
    assert_eq!(
        s.expire_overdue(start + Duration::seconds(61))
            .await
            .unwrap(),
        1
    );
    let p = all().await;
    assert_eq!((p.slices, p.reminders), (1, 1), "{p:?}");
    // The two acknowledged on their first attempt are one receipt on
    // either backend, not rows; the one given up is a row.
    assert_eq!((p.deliveries, p.receipts), (1, 1), "{p:?}");
    assert_eq!(listed(&s, &sub).await, 0, "{p:?}");
    assert_eq!(all().await, Pruned::default(), "nothing twice");
    let reminders = s
        .list_reminders(&wid, &PageRequest::first(10))
        .await
        .unwrap();
    assert!(reminders.items.is_empty(), "the finished reminder went too");
}

/// How many deliveries a subscription lists.
async fn listed(s: &DynStore, sub: &SubscriptionId) -> usize {
    s.list_deliveries(Listing::of(sub, None, &PageRequest::first(100)))
        .await
        .unwrap()
        .items
        .len()
}

/// History is pruned by when it was recorded, strictly before the cutoff,
/// subscription by subscription: two subscriptions' deliveries recorded a
/// second apart, and cutoffs at and a millisecond after each.
pub async fn pruning_takes_what_is_older_than_the_cutoff_and_nothing_newer(s: DynStore) {
    let t0 = now_ms();
    let start = t0 + Duration::minutes(15);
    let (_, a) = world(&s, start, t0 + Duration::seconds(1), 3).await;
    let creator = s.get_subscription(&a).await.unwrap().creator_id;
    let b = subscribe_all(&s, creator, "https://other.example/").await;
    let now = t0 + Duration::seconds(2);
    fire(&s, now, start).await;
    // Each subscription's three deliveries, recorded a second apart.
    let (ta, tb) = (now, now + Duration::seconds(1));
    for (sub, at) in [(&a, ta), (&b, tb)] {
        let c = s.claim_deliveries(claim(sub, now, 10, "A")).await.unwrap();
        let done: Vec<SliceId> = c.slices.iter().map(|x| x.0).collect();
        record(
            &s,
            c.jobs.iter().map(|j| delivered(j, at)).collect(),
            &done,
            at,
        )
        .await;
    }
    let (s, a, b) = (&s, &a, &b);
    let prune = |before| async move {
        for sub in [a, b] {
            s.prune_history(sub, cut(before)).await.unwrap();
        }
        (listed(s, a).await, listed(s, b).await)
    };
    let ms = Duration::milliseconds(1);
    assert_eq!(prune(ta).await, (3, 3), "nothing is older than A's record");
    assert_eq!(prune(ta + ms).await, (0, 3), "A's are older; B's are not");
    assert_eq!(prune(tb).await, (0, 3), "B's are not older than the cutoff");
    assert_eq!(prune(tb + ms).await, (0, 0));
}

/// At most 100 of what was made before `before`.
fn cut(before: DateTime<Utc>) -> Cutoff {
    Cutoff { before, limit: 100 }
}
