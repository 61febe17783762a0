//! The oversight views on both backends: a fan-out due next, running with
//! its progress, then done with its lateness and outcomes, and the failing
//! subscription with its last answer; each limited to one creator.

use super::*;

pub async fn fan_outs_are_watched_due_running_and_done(s: DynStore) {
    let t0 = now_ms();
    let due = t0 + Duration::seconds(1);
    let (_, sub) = world(&s, t0 + Duration::minutes(15), due, 4).await;
    let next = s.next_fanouts(None, 10).await.unwrap();
    assert_eq!(next.len(), 1);
    let f = &next[0];
    assert_eq!((f.participants, f.subscriptions, f.deliveries()), (4, 1, 4));
    assert_eq!(
        (f.reminder.label.as_str(), f.reminder.due_at),
        ("15min", due)
    );
    let other = s.create_creator("D", None).await.unwrap();
    assert!(s
        .next_fanouts(Some(&other.id), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        s.next_fanouts(Some(&f.reminder.creator_id), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let creator = f.reminder.creator_id.clone();

    // Fired: running, nothing sent yet.
    let now = t0 + Duration::seconds(2);
    fire(&s, now, t0 + Duration::minutes(15)).await;
    assert!(s.next_fanouts(None, 10).await.unwrap().is_empty());
    let run = s.running_fanouts(None, 10).await.unwrap();
    assert_eq!(run.len(), 1);
    assert_eq!(
        (
            run[0].counts.total,
            run[0].counts.delivered,
            run[0].remaining()
        ),
        (4, 0, 4)
    );
    assert!(s
        .running_fanouts(Some(&other.id), 10)
        .await
        .unwrap()
        .is_empty());

    // Three acknowledged, one answered 500 and retrying: still running.
    let c = s.claim_deliveries(claim(&sub, now, 10, "A")).await.unwrap();
    assert_eq!(c.jobs.len(), 4);
    let acked: Vec<Outcome> = c.jobs[..3].iter().map(|j| delivered(j, now)).collect();
    record(&s, acked, &[], now).await;
    record(&s, vec![failed(&c.jobs[3], now)], &[c.slices[0].0], now).await;
    let run = s.running_fanouts(Some(&creator), 10).await.unwrap();
    assert_eq!(run.len(), 1);
    assert_eq!((run[0].counts.delivered, run[0].remaining()), (3, 1));
    assert!(run[0].first_at.is_some());

    // The failing subscription, with its last answer.
    let trouble = s.troubled_subscriptions(None, 10).await.unwrap();
    assert_eq!(trouble.len(), 1);
    assert_eq!(trouble[0].subscription.id, sub);
    assert_eq!(trouble[0].status_code, Some(500));
    assert_eq!(trouble[0].error.as_deref(), Some("receiver answered 500"));
    assert!(s
        .troubled_subscriptions(Some(&other.id), 10)
        .await
        .unwrap()
        .is_empty());

    // The retry gets through: done, every delivery acknowledged.
    let later = now + Duration::seconds(6);
    let c = s
        .claim_deliveries(claim(&sub, later, 10, "A"))
        .await
        .unwrap();
    assert_eq!(c.jobs.len(), 1);
    record(&s, vec![delivered(&c.jobs[0], later)], &[], later).await;
    assert!(s.running_fanouts(None, 10).await.unwrap().is_empty());
    let last = s.last_fanouts(None, 10).await.unwrap();
    assert_eq!(last.len(), 1);
    let l = &last[0];
    assert_eq!(
        (
            l.counts.total,
            l.counts.delivered,
            l.counts.failed,
            l.counts.expired,
            l.remaining()
        ),
        (4, 4, 0, 0, 0)
    );
    let (first, last_late) = (l.first_lateness().unwrap(), l.last_lateness().unwrap());
    assert!(
        Duration::zero() <= first && first <= last_late,
        "{first} {last_late}"
    );
    assert!(s
        .last_fanouts(Some(&other.id), 10)
        .await
        .unwrap()
        .is_empty());
}
