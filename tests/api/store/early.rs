//! Capacity plans and early starts at the store: the pending fan-outs are
//! listed with what their plans need; the answer times fold in; an early
//! start covers the participants registered then, once, released at its
//! own instant; the reminder's own steps then skip them for that
//! subscription and send the others (and later registrations) as before.

use super::*;

pub async fn an_early_start_covers_those_registered_then_once(s: DynStore) {
    let t0 = now_ms();
    let due = t0 + Duration::minutes(10);
    let from = due + Duration::minutes(15);
    let (wid, early) = world(&s, from, due, 5).await;
    let creator = s.get_webinar(&wid).await.unwrap().creator_id;
    let plain = subscribe_all(&s, creator, "https://other.example/").await;
    let scope = |early_only| PlanScope {
        webinar: Some(&wid),
        creator: None,
        reminder: None,
        until: from,
        limit: 100,
        early_only,
    };
    let rows = s.pending_fanouts(&scope(false)).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.participants == 5 && r.due_at == due));
    assert!(rows.iter().all(|r| r.answer_us.is_none()));
    // Only subscriptions that allow an early start, when asked.
    assert!(s.pending_fanouts(&scope(true)).await.unwrap().is_empty());
    let patch = SubscriptionPatch {
        send_early_ms: Some(600_000),
        ..Default::default()
    };
    s.update_subscription(&early, &patch).await.unwrap();
    let rows = s.pending_fanouts(&scope(true)).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].subscription_id, early);

    // Answer times: the first mean stands, the next moves it.
    s.fold_answer_times(&[(early.clone(), 200_000, 1_000_000)])
        .await
        .unwrap();
    s.fold_answer_times(&[(early.clone(), 400_000, 500_000)])
        .await
        .unwrap();
    assert_eq!(
        s.get_subscription(&early).await.unwrap().answer_us,
        Some(300_000)
    );

    let start = due - Duration::minutes(1);
    let e = EarlyStart {
        reminder_id: rows[0].reminder_id.clone(),
        subscription_id: early.clone(),
        due_at: due,
        send_at: start,
        now: start,
        expires_at: from,
        batch: 2,
    };
    let last = s.start_early(&e).await.unwrap();
    assert!(last.is_some());
    assert_eq!(s.start_early(&e).await.unwrap(), None, "once");
    let moved = EarlyStart {
        due_at: due + Duration::seconds(1),
        ..e.clone()
    };
    assert_eq!(
        s.start_early(&moved).await.unwrap(),
        None,
        "not for another instant"
    );
    let rem = &s
        .list_reminders(&wid, &PageRequest::all())
        .await
        .unwrap()
        .items[0];
    assert_eq!(
        (rem.status.as_str(), rem.fired_at),
        ("pending", Some(start))
    );

    // Its slices: everyone registered then, released at the early start,
    // due at the reminder's instant.
    let lease = start + Duration::minutes(5);
    let c = s
        .claim_deliveries(deliveries(&early, start, 100, &"A".into(), lease))
        .await
        .unwrap();
    assert_eq!((c.jobs.len(), c.slices.len()), (5, 3), "slices of 2");
    for j in &c.jobs {
        let f = j.fresh.as_ref().unwrap();
        assert_eq!(
            (f.send_at, f.due_at, f.leaves_at()),
            (Some(start), due, start)
        );
    }
    assert!(s
        .claim_deliveries(deliveries(&plain, start, 100, &"A".into(), lease))
        .await
        .unwrap()
        .jobs
        .is_empty());

    // At the instant: the other subscription gets everyone, this one only
    // the registration made since.
    let late = NewParticipant {
        name: "Late".into(),
        email: "late@x.example".into(),
        phone: String::new(),
        timezone: None,
    };
    s.register_participants(&wid, vec![late].into())
        .await
        .unwrap();
    let r = s
        .claim_due_reminders(reminders(due, due, &"A".into(), lease, 10))
        .await
        .unwrap();
    assert_eq!(r.len(), 1);
    let p = send_step(&s, &r[0].id, "A", due, from).await;
    assert!(p.done);
    let c = s
        .claim_deliveries(deliveries(&early, due, 100, &"A".into(), lease))
        .await
        .unwrap();
    assert_eq!(c.jobs.len(), 1, "only the one registered since");
    assert_eq!(
        c.jobs[0].participant.as_ref().unwrap().email,
        "late@x.example"
    );
    assert_eq!(c.jobs[0].fresh.as_ref().unwrap().send_at, None);
    let c = s
        .claim_deliveries(deliveries(&plain, due, 100, &"A".into(), lease))
        .await
        .unwrap();
    assert_eq!(c.jobs.len(), 6);
    let rem = &s
        .list_reminders(&wid, &PageRequest::all())
        .await
        .unwrap()
        .items[0];
    assert_eq!((rem.status.as_str(), rem.fired_at), ("sent", Some(start)));
    assert!(s.pending_fanouts(&scope(false)).await.unwrap().is_empty());
}
