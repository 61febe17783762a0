//! The engine's side of the conformance suite: claims, leases, slices,
//! recording and expiry, as several instances would drive them.

use super::*;
use tminus::domain::instance::InstanceId;

pub async fn a_lost_instance_s_slice_is_resumed_without_resending_what_was_recorded(s: DynStore) {
    let t0 = now_ms();
    let (_, sub) = world(&s, t0 + Duration::minutes(15), t0 + Duration::seconds(1), 5).await;
    assert_eq!(
        s.next_reminder_due().await.unwrap(),
        Some(t0 + Duration::seconds(1))
    );
    let now = t0 + Duration::seconds(2);
    assert_eq!(fire(&s, now, t0 + Duration::minutes(15)).await, 5);
    assert_eq!(
        s.subscriptions_with_work().await.unwrap(),
        vec![sub.clone()]
    );

    let a = s
        .claim_deliveries(claim(&sub, now, 100, "A"))
        .await
        .unwrap();
    assert_eq!(a.jobs.len(), 5);
    assert_eq!(a.slices.len(), 1);
    assert!(a.jobs.iter().all(|j| j.attempt == 1 && j.fresh.is_some()));
    // Leased: nobody else gets them.
    assert!(s
        .claim_deliveries(claim(&sub, now, 100, "B"))
        .await
        .unwrap()
        .jobs
        .is_empty());
    let two: Vec<Outcome> = a.jobs[..2].iter().map(|j| delivered(j, now)).collect();
    record(&s, two, &[], now).await;

    // Instance A dies; its lease lapses and B resumes the slice.
    let later = now + Duration::seconds(61);
    let b = s
        .claim_deliveries(claim(&sub, later, 100, "B"))
        .await
        .unwrap();
    let resumed: Vec<&str> = b.jobs.iter().map(|j| j.id.as_str()).collect();
    let expected: Vec<&str> = a.jobs[2..].iter().map(|j| j.id.as_str()).collect();
    assert_eq!(resumed, expected, "same webhook-ids, recorded ones skipped");
    let rest: Vec<Outcome> = b.jobs.iter().map(|j| delivered(j, later)).collect();
    record(&s, rest, &[b.slices[0].0], later).await;

    assert!(s
        .claim_deliveries(deliveries(&sub, later, 100, &"B".into(), later))
        .await
        .unwrap()
        .jobs
        .is_empty());
    assert_eq!(s.next_delivery_due(&sub).await.unwrap(), None);
    let list = s
        .list_deliveries(Listing::of(&sub, None, &PageRequest::first(100)))
        .await
        .unwrap()
        .items;
    assert_eq!(list.len(), 5);
    assert!(list
        .iter()
        .all(|d| d.status == DeliveryStatus::Delivered && d.attempts == 1));
}

pub async fn retries_become_rows_and_unsent_slices_expire_per_delivery(s: DynStore) {
    let t0 = now_ms();
    let start = t0 + Duration::minutes(15);
    let (wid, sub) = world(&s, start, t0 + Duration::seconds(1), 3).await;
    let now = t0 + Duration::seconds(2);
    fire(&s, now, start).await;
    let c = s.claim_deliveries(claim(&sub, now, 1, "A")).await.unwrap();
    assert_eq!(c.jobs.len(), 3, "a slice is leased whole");
    let retry = failed(&c.jobs[0], now);
    record(&s, vec![retry], &[], now).await;
    let d = s.get_delivery(&sub, &c.jobs[0].id).await.unwrap();
    assert_eq!(
        (d.status.as_str(), d.attempts, d.last_status),
        ("pending", 1, Some(500))
    );
    assert_eq!(
        s.next_delivery_due(&sub).await.unwrap(),
        Some(now + Duration::seconds(5))
    );
    let again = s
        .claim_deliveries(deliveries(
            &sub,
            now + Duration::seconds(6),
            10,
            &"A".into(),
            now + Duration::seconds(66),
        ))
        .await
        .unwrap();
    assert_eq!(again.jobs.len(), 1);
    assert_eq!(again.jobs[0].attempt, 2);

    // The webinar starts: everything unsent expires, each with a row.
    let n = s
        .expire_overdue(start + Duration::seconds(61))
        .await
        .unwrap();
    assert_eq!(n, 3);
    let list = s
        .list_deliveries(Listing::of(
            &sub,
            Some(DeliveryStatus::Expired),
            &PageRequest::first(100),
        ))
        .await
        .unwrap()
        .items;
    assert_eq!(list.len(), 3);
    let _ = wid;
}

pub async fn cancelling_drops_pending_slices_and_rows(s: DynStore) {
    let t0 = now_ms();
    let (wid, sub) = world(&s, t0 + Duration::minutes(15), t0 + Duration::seconds(1), 3).await;
    fire(&s, t0 + Duration::seconds(2), t0 + Duration::minutes(15)).await;
    s.end_webinar(&wid, false).await.unwrap();
    let now = t0 + Duration::seconds(3);
    assert!(s
        .claim_deliveries(deliveries(&sub, now, 10, &"A".into(), now))
        .await
        .unwrap()
        .jobs
        .is_empty());
    assert!(s.subscriptions_with_work().await.unwrap().is_empty());
}

pub async fn a_reminder_is_fired_by_one_instance_at_a_time(s: DynStore) {
    let t0 = now_ms();
    let (_, sub) = world(
        &s,
        t0 + Duration::minutes(15),
        t0 + Duration::seconds(1),
        70,
    )
    .await;
    let now = t0 + Duration::seconds(2);
    let lease = now + Duration::seconds(60);
    let a = s
        .claim_due_reminders(reminders(now, now, &"A".into(), lease, 10))
        .await
        .unwrap();
    assert_eq!(a.len(), 1);
    assert!(s
        .claim_due_reminders(reminders(now, now, &"B".into(), lease, 10))
        .await
        .unwrap()
        .is_empty());
    // The next due time is the lease's end: that is when another takes over.
    assert_eq!(s.next_reminder_due().await.unwrap(), Some(lease));
    let expires = t0 + Duration::minutes(15);
    let step = |owner, at| send_step(&s, &a[0].id, owner, at, expires);
    // B does not hold it: nothing happens.
    let p = step("B", now).await;
    assert_eq!((p.created, p.done), (0, true));
    // A's first step is small (64), then A dies.
    assert_eq!(step("A", now).await.created, 64);
    let later = lease + Duration::seconds(1);
    let b = claim_due(&s, "B", later).await;
    assert_eq!(b.len(), 1, "the lapsed fan-out is claimed again");
    assert_eq!(step("A", later).await.created, 0, "A lost it");
    let p = step("B", later).await;
    assert_eq!(p.created, 6, "B resumes after A's cursor");
    assert!(step("B", later).await.done);
    let c = s
        .claim_deliveries(claim(&sub, later, 1000, "B"))
        .await
        .unwrap();
    assert_eq!(c.jobs.len(), 70);
    assert_eq!(c.slices.len(), 2);
    assert_eq!(s.next_reminder_due().await.unwrap(), None);
}

pub async fn a_clean_stop_hands_back_every_lease(s: DynStore) {
    let t0 = now_ms();
    let (_, sub) = world(&s, t0 + Duration::minutes(15), t0 + Duration::seconds(1), 3).await;
    let now = t0 + Duration::seconds(2);
    let lease = now + Duration::seconds(60);
    fire(&s, now, t0 + Duration::minutes(15)).await;
    let a = s
        .claim_deliveries(deliveries(&sub, now, 10, &"A".into(), lease))
        .await
        .unwrap();
    assert_eq!(a.jobs.len(), 3);
    assert_eq!(
        s.release_leases(&"B".into()).await.unwrap(),
        0,
        "B holds nothing"
    );
    assert_eq!(s.release_leases(&"A".into()).await.unwrap(), 1);
    let b = s
        .claim_deliveries(deliveries(&sub, now, 10, &"B".into(), lease))
        .await
        .unwrap();
    let ids = |c: &Claimed| c.jobs.iter().map(|j| j.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&b), ids(&a), "B takes it at once, same webhook-ids");
}

pub async fn two_instances_split_a_fan_out_without_overlap(s: DynStore) {
    let t0 = now_ms();
    let n = 5000;
    let (_, sub) = world(&s, t0 + Duration::minutes(15), t0 + Duration::seconds(1), n).await;
    let now = t0 + Duration::seconds(2);
    assert_eq!(fire(&s, now, t0 + Duration::minutes(15)).await, n);
    let instance = |owner: &'static str| {
        let (s, sub) = (s.clone(), sub.clone());
        tokio::spawn(async move { claim_all(&s, &sub, owner, 500, now).await })
    };
    let (a, b) = (instance("A"), instance("B"));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let mut all: Vec<&DeliveryId> = a.iter().chain(&b).collect();
    let sent = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), sent, "no delivery was claimed twice");
    assert_eq!(sent, n, "every delivery was claimed");
    let delivered = s
        .list_deliveries(Listing::of(
            &sub,
            Some(DeliveryStatus::Delivered),
            &PageRequest::first(10_000),
        ))
        .await
        .unwrap()
        .items;
    assert_eq!(delivered.len(), n);
    assert!(s.subscriptions_with_work().await.unwrap().is_empty());
}

pub async fn a_missed_reminder_is_recorded_per_delivery(s: DynStore) {
    let t0 = now_ms();
    let (_, sub) = world(&s, t0 + Duration::seconds(5), t0 + Duration::seconds(1), 3).await;
    let now = t0 + Duration::minutes(5);
    let p = fan_out(&s, FanoutMode::Missed, now, now).await;
    assert!(p.subscriptions.is_empty(), "nothing to send");
    assert_eq!(p.created, 3);
    let missed = s
        .list_deliveries(Listing::of(
            &sub,
            Some(DeliveryStatus::Missed),
            &PageRequest::first(10),
        ))
        .await
        .unwrap()
        .items;
    assert_eq!(missed.len(), 3);
    assert!(missed.iter().all(|d| d.late && d.attempts == 0));
    let w = s
        .list_reminders(&missed[0].webinar_id.clone().unwrap(), &PageRequest::all())
        .await
        .unwrap()
        .items;
    assert_eq!(w[0].status, ReminderStatus::Missed);
}

pub async fn a_renewed_lease_is_kept_and_one_batch_may_hold_a_delivery_twice(s: DynStore) {
    let t0 = now_ms();
    let (_, sub) = world(&s, t0 + Duration::minutes(15), t0 + Duration::seconds(1), 3).await;
    let now = t0 + Duration::seconds(2);
    fire(&s, now, t0 + Duration::minutes(15)).await;
    let a = s.claim_deliveries(claim(&sub, now, 10, "A")).await.unwrap();
    let slice = a.slices[0].0;
    // A is still working through it at 30 s: it renews; B's renewal of a
    // lease it does not hold changes nothing.
    s.renew_leases(renewal(
        &"A".into(),
        &[slice],
        &[],
        now + Duration::seconds(120),
    ))
    .await
    .unwrap();
    s.renew_leases(renewal(
        &"B".into(),
        &[slice],
        &[],
        now + Duration::seconds(1),
    ))
    .await
    .unwrap();
    let b_at = |secs| {
        let (s, sub) = (s.clone(), sub.clone());
        async move {
            let at = now + Duration::seconds(secs);
            s.claim_deliveries(claim(&sub, at, 10, "B"))
                .await
                .unwrap()
                .jobs
                .len()
        }
    };
    assert_eq!(
        b_at(61).await,
        0,
        "past the first lease, within the renewed one"
    );
    assert_eq!(b_at(121).await, 3, "a lease not renewed lapses");

    // Two outcomes of one delivery in one batch (a replay while in flight):
    // the acknowledgement is what stays.
    let j = &a.jobs[0];
    let retry = Outcome {
        verdict: Verdict::Retry(now + Duration::seconds(5)),
        ..delivered(j, now)
    };
    s.record_outcomes(recording(
        vec![retry, delivered(j, now)].into(),
        &[],
        now,
        now,
    ))
    .await
    .unwrap();
    let d = s.get_delivery(&sub, &j.id).await.unwrap();
    assert_eq!(d.status, DeliveryStatus::Delivered);
}

/// Staging: a reminder claimed ahead of its due instant gets its first
/// participants written as a slice, but is never finished before the
/// instant, and who it is for is decided at the instant.
pub async fn a_reminder_staged_ahead_is_decided_at_its_instant(s: DynStore) {
    let t0 = now_ms();
    let due = t0 + Duration::seconds(10);
    let (wid, sub) = world(&s, t0 + Duration::minutes(15), due, 3).await;
    let ahead = due - Duration::milliseconds(100);
    let lease = ahead + Duration::seconds(60);
    let a = InstanceId::named("A");
    let claim = |horizon| s.claim_due_reminders(reminders(ahead, horizon, &a, lease, 10));
    assert!(claim(ahead).await.unwrap().is_empty(), "not due yet");
    let r = claim(due).await.unwrap();
    assert_eq!(r.len(), 1, "due within the horizon");
    let expires = t0 + Duration::minutes(15);
    let step = |at| send_step(&s, &r[0].id, "A", at, expires);
    let p = step(ahead).await;
    assert_eq!((p.created, p.done), (3, false), "staged");
    let p = step(ahead + Duration::milliseconds(50)).await;
    assert_eq!((p.created, p.done), (0, false), "never finished early");
    let one = |email: &str| NewParticipant {
        name: "Late".into(),
        email: email.into(),
        phone: String::new(),
        timezone: None,
    };
    s.register_participants(&wid, vec![one("late@x.example")].into())
        .await
        .unwrap();
    let p = step(due).await;
    assert_eq!(
        (p.created, p.done),
        (1, true),
        "registered before the instant: included, and no one is left"
    );
    s.register_participants(&wid, vec![one("later@x.example")].into())
        .await
        .unwrap();
    let p = step(due + Duration::milliseconds(1)).await;
    assert_eq!((p.created, p.done), (0, true), "after it: not included");
    let rem = &s
        .list_reminders(&wid, &PageRequest::all())
        .await
        .unwrap()
        .items[0];
    assert_eq!((rem.status.as_str(), rem.fired_at), ("sent", Some(due)));
    let c = s
        .claim_deliveries(deliveries(&sub, ahead, 10, &"A".into(), lease))
        .await
        .unwrap();
    assert_eq!(c.jobs.len(), 4);
    assert!(
        c.jobs
            .iter()
            .all(|j| j.fresh.as_ref().is_some_and(|f| f.due_at == due)),
        "each job carries the instant its lane holds it until"
    );
}
