//! The happy path's record: deliveries acknowledged on their first attempt
//! read back like any other (listed, fetched, replayed), are never sent again
//! when their slice is taken over, and never expire; a repeat of one changes
//! nothing.

use super::*;

pub async fn acknowledged_first_attempts_read_back_like_rows(s: DynStore) {
    let t0 = now_ms();
    let start = t0 + Duration::minutes(15);
    let (wid, sub) = world(&s, start, t0 + Duration::seconds(1), 6).await;
    let now = t0 + Duration::seconds(2);
    fire(&s, now, start).await;
    let a = s
        .claim_deliveries(claim(&sub, now, 100, "A"))
        .await
        .unwrap();
    assert_eq!(a.jobs.len(), 6);
    let j = &a.jobs;
    // Two batches, out of order, and one failure among them.
    let first = vec![
        delivered(&j[2], now),
        failed(&j[3], now),
        delivered(&j[0], now),
    ];
    record(&s, first, &[], now).await;
    let later = now + Duration::milliseconds(7);
    record(&s, vec![delivered(&j[1], later)], &[], later).await;

    let d = s.get_delivery(&sub, &j[0].id).await.unwrap();
    let f = j[0].fresh.as_ref().unwrap();
    assert_eq!(d.id, j[0].id);
    assert_eq!(d.subscription_id, sub);
    assert_eq!(d.webinar_id.as_ref(), Some(&wid));
    assert_eq!(d.participant_id.as_ref(), Some(&f.participant_id));
    assert_eq!(
        (d.reminder.as_str(), d.status.as_str(), d.attempts, d.late),
        ("15min", "delivered", 1, false)
    );
    assert_eq!((d.due_at, d.expires_at), (f.due_at, f.expires_at));
    assert_eq!((d.last_status, d.last_error.as_deref()), (Some(200), None));
    assert_eq!(d.next_attempt_at, None);
    assert_eq!(d.delivered_at, Some(now));
    let log = d.attempt_log.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].attempt, log[0].started_at, log[0].status_code),
        (1, now, Some(200))
    );
    assert_eq!(
        (log[0].latency_ms, log[0].response.as_deref()),
        (1, Some("OK"))
    );
    // Another subscription's key, or a key never sent, is not found.
    assert!(s.get_delivery(&id("nope"), &j[0].id).await.is_err());
    assert!(s.get_delivery(&sub, &j[5].id).await.is_err());

    // Listed once each, newest first, and filtered like rows.
    let ids = |l: Vec<Delivery>| l.into_iter().map(|d| d.id).collect::<Vec<_>>();
    let all = ids(s
        .list_deliveries(Listing::of(&sub, None, &PageRequest::first(100)))
        .await
        .unwrap()
        .items);
    assert_eq!(all.len(), 4);
    assert_eq!(all[0], j[1].id, "recorded last, listed first");
    // Each listed as it is fetched, naming its own participant.
    let first = PageRequest::first(100);
    for d in s
        .list_deliveries(Listing::of(&sub, None, &first))
        .await
        .unwrap()
        .items
    {
        let got = s.get_delivery(&sub, &d.id).await.unwrap();
        assert!(d.participant_id.is_some(), "{} names its participant", d.id);
        assert_eq!(
            (&d.participant_id, d.status, d.attempts),
            (&got.participant_id, got.status, got.attempts),
            "{}",
            d.id
        );
    }
    assert_eq!(
        walk(&s, &sub, None).await,
        all,
        "a page at a time, each once"
    );
    let done = ids(s
        .list_deliveries(Listing::of(
            &sub,
            Some(DeliveryStatus::Delivered),
            &PageRequest::first(100),
        ))
        .await
        .unwrap()
        .items);
    assert_eq!(done.len(), 3);
    assert_eq!(walk(&s, &sub, Some(DeliveryStatus::Delivered)).await, done);
    let pending = ids(s
        .list_deliveries(Listing::of(
            &sub,
            Some(DeliveryStatus::Pending),
            &PageRequest::first(100),
        ))
        .await
        .unwrap()
        .items);
    assert_eq!(pending, vec![j[3].id.clone()]);
    assert_eq!(
        s.list_deliveries(Listing::of(&sub, None, &PageRequest::first(2)))
            .await
            .unwrap()
            .items
            .len(),
        2
    );

    // A repeat of an acknowledged delivery (sent twice after a lease ran
    // out) that fails changes nothing: it stays delivered, listed once.
    record(&s, vec![failed(&j[0], later)], &[], later).await;
    assert_eq!(
        s.get_delivery(&sub, &j[0].id).await.unwrap().status,
        DeliveryStatus::Delivered
    );
    assert_eq!(
        s.list_deliveries(Listing::of(&sub, None, &PageRequest::first(100)))
            .await
            .unwrap()
            .items
            .len(),
        4
    );

    // A replay gets attempted again and keeps its first attempt.
    let r = s
        .retry_delivery(&retry(&sub, &j[2].id, later, start))
        .await
        .unwrap();
    assert_eq!((r.status.as_str(), r.attempts), ("pending", 1));
    let again = s
        .claim_deliveries(claim(&sub, later, 100, "A"))
        .await
        .unwrap();
    let replayed: Vec<&Job> = again.jobs.iter().filter(|x| x.id == j[2].id).collect();
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0].attempt, 2);
    record(&s, vec![delivered(replayed[0], later)], &[], later).await;
    let d = s.get_delivery(&sub, &j[2].id).await.unwrap();
    assert_eq!((d.status.as_str(), d.attempts), ("delivered", 2));
    let log = d.attempt_log.unwrap();
    assert_eq!(
        log.iter().map(|a| a.attempt).collect::<Vec<_>>(),
        vec![1, 2]
    );
    let all = ids(s
        .list_deliveries(Listing::of(&sub, None, &PageRequest::first(100)))
        .await
        .unwrap()
        .items);
    assert_eq!(all.len(), 4, "{all:?}");
    assert_eq!(all.iter().filter(|x| **x == j[2].id).count(), 1);

    // A lapsed lease: B takes the slice over and gets only the two never
    // attempted (4 and 5); the failed one waits for its retry as a row.
    let over = now + Duration::seconds(61);
    let b = s
        .claim_deliveries(claim(&sub, over, 100, "B"))
        .await
        .unwrap();
    let mut got: Vec<&str> = b.jobs.iter().map(|x| x.id.as_str()).collect();
    got.sort();
    let mut want = vec![j[3].id.as_str(), j[4].id.as_str(), j[5].id.as_str()];
    want.sort();
    assert_eq!(
        got, want,
        "the retry is due too; nothing acknowledged again"
    );

    // The webinar starts: what was never acknowledged expires, each with a
    // row; what was acknowledged stays delivered.
    let n = s
        .expire_overdue(start + Duration::seconds(61))
        .await
        .unwrap();
    assert_eq!(n, 3);
    let expired = s
        .list_deliveries(Listing::of(
            &sub,
            Some(DeliveryStatus::Expired),
            &PageRequest::first(100),
        ))
        .await
        .unwrap()
        .items;
    assert_eq!(expired.len(), 3);
    let done = s
        .list_deliveries(Listing::of(
            &sub,
            Some(DeliveryStatus::Delivered),
            &PageRequest::first(100),
        ))
        .await
        .unwrap()
        .items;
    assert_eq!(done.len(), 3);
}

pub async fn a_delivery_acknowledged_twice_is_listed_once(s: DynStore) {
    let t0 = now_ms();
    let start = t0 + Duration::minutes(15);
    let (_, sub) = world(&s, start, t0 + Duration::seconds(1), 3).await;
    let now = t0 + Duration::seconds(2);
    fire(&s, now, start).await;
    let lease = |at: DateTime<Utc>| at + Duration::seconds(60);
    let a = s
        .claim_deliveries(deliveries(&sub, now, 100, &"A".into(), lease(now)))
        .await
        .unwrap();
    // A stalls past its lease; B takes the slice and sends it all again.
    let over = now + Duration::seconds(61);
    let b = s
        .claim_deliveries(deliveries(&sub, over, 100, &"B".into(), lease(over)))
        .await
        .unwrap();
    assert_eq!(b.jobs.len(), 3);
    for (who, jobs, at) in [("B", &b.jobs, over), ("A", &a.jobs, over)] {
        let done: Vec<Outcome> = jobs.iter().map(|j| delivered(j, at)).collect();
        s.record_outcomes(recording(done.into(), &[], at, at - Duration::days(3)))
            .await
            .unwrap_or_else(|e| panic!("{who}: {e}"));
    }
    let all = s
        .list_deliveries(Listing::of(&sub, None, &PageRequest::first(100)))
        .await
        .unwrap()
        .items;
    assert_eq!(
        all.len(),
        3,
        "{:?}",
        all.iter().map(|d| &d.id).collect::<Vec<_>>()
    );
    assert!(all.iter().all(|d| d.status == DeliveryStatus::Delivered));
    // A replay moves it to a row; it is still listed once.
    s.retry_delivery(&retry(&sub, &a.jobs[0].id, over, start))
        .await
        .unwrap();
    let all = s
        .list_deliveries(Listing::of(&sub, None, &PageRequest::first(100)))
        .await
        .unwrap()
        .items;
    assert_eq!(all.len(), 3);
    let done = s
        .list_deliveries(Listing::of(
            &sub,
            Some(DeliveryStatus::Delivered),
            &PageRequest::first(100),
        ))
        .await
        .unwrap()
        .items;
    assert_eq!(done.len(), 2, "the replayed one is pending");
}

/// The ids of `sub`'s deliveries, read a page of one at a time (rows and
/// receipts alike), checking each page keeps to its limit.
async fn walk(
    s: &DynStore,
    sub: &SubscriptionId,
    status: Option<DeliveryStatus>,
) -> Vec<DeliveryId> {
    let mut page = PageRequest::first(1);
    let mut out = Vec::new();
    loop {
        let p = s
            .list_deliveries(Listing::of(sub, status, &page))
            .await
            .unwrap();
        assert!(p.items.len() <= 1);
        out.extend(p.items.into_iter().map(|d| d.id));
        match p.next {
            None => return out,
            next => page.after = next,
        }
    }
}
