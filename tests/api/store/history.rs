//! The delivery history's side of the conformance suite: test events,
//! replays, batches and their members, and endpoints disabled for failing.

use super::records::subscription;
use super::*;

pub async fn test_events_replays_and_batches_are_recorded(s: DynStore) {
    let t0 = now_ms();
    let (_, sub) = world(&s, t0 + Duration::minutes(15), t0 + Duration::seconds(1), 4).await;
    let one_off = OneOff {
        id: id("msg_test1"),
        subscription_id: sub.clone(),
        label: "test".into(),
        payload: b"{\"hello\":1}".to_vec(),
        expires_at: t0 + Duration::hours(1),
    };
    let d = s.create_one_off(&one_off, t0).await.unwrap();
    assert_eq!((d.status.as_str(), d.attempts), ("pending", 0));
    let c = s.claim_deliveries(claim(&sub, t0, 10, "A")).await.unwrap();
    assert_eq!(c.jobs.len(), 1);
    assert_eq!(c.jobs[0].payload.as_deref(), Some(&b"{\"hello\":1}"[..]));
    record(&s, vec![delivered(&c.jobs[0], t0)], &[], t0).await;
    // A replay of a delivered delivery: due now again, same id, attempt 2.
    let r = s
        .retry_delivery(&retry(&sub, &id("msg_test1"), t0, t0 + Duration::hours(2)))
        .await
        .unwrap();
    assert_eq!(
        (r.status.as_str(), r.expires_at),
        ("pending", t0 + Duration::hours(2))
    );
    let c = s.claim_deliveries(claim(&sub, t0, 10, "A")).await.unwrap();
    assert_eq!(c.jobs[0].attempt, 2);
    record(&s, vec![delivered(&c.jobs[0], t0)], &[], t0).await;
    let d = s.get_delivery(&sub, &id("msg_test1")).await.unwrap();
    let log = d.attempt_log.unwrap();
    assert_eq!(log.iter().map(|a| a.attempt).collect::<Vec<_>>(), [1, 2]);
    assert!(matches!(
        s.get_delivery(&id("other"), &id("msg_test1")).await,
        Err(StoreError::NotFound)
    ));

    // A batch of the fan-out's four: one row for the batch, four members.
    let now = t0 + Duration::seconds(2);
    fire(&s, now, t0 + Duration::minutes(15)).await;
    let c = s.claim_deliveries(claim(&sub, now, 10, "A")).await.unwrap();
    assert_eq!(c.jobs.len(), 4);
    let members: Vec<Member> = c
        .jobs
        .iter()
        .map(|j| (j.id.clone(), j.fresh.clone().unwrap()))
        .collect();
    let batch = Outcome {
        delivery_id: id("msg_bbatch"),
        batch: Some((b"[...]".to_vec(), members)),
        ..delivered(&c.jobs[0], now)
    };
    record(&s, vec![batch], &[c.slices[0].0], now).await;
    let b = s.get_delivery(&sub, &id("msg_bbatch")).await.unwrap();
    assert_eq!(
        (b.status.as_str(), b.participant_id.as_ref()),
        ("delivered", None)
    );
    let carried = s
        .list_deliveries(Listing::of(
            &sub,
            Some(DeliveryStatus::Batched),
            &PageRequest::first(10),
        ))
        .await
        .unwrap()
        .items;
    assert_eq!(carried.len(), 4);
    assert!(carried
        .iter()
        .all(|d| d.batch_id.as_ref().map(|b| b.as_str()) == Some("msg_bbatch")));
    assert!(s.subscriptions_with_work().await.unwrap().is_empty());
}

pub async fn failing_endpoints_are_disabled(s: DynStore) {
    let t0 = now_ms();
    let (_, sub) = world(&s, t0 + Duration::minutes(15), t0 + Duration::seconds(1), 2).await;
    let now = t0 + Duration::seconds(2);
    fire(&s, now, t0 + Duration::minutes(15)).await;
    let c = s.claim_deliveries(claim(&sub, now, 10, "A")).await.unwrap();
    let fail = |j: &Job, v: Verdict| Outcome {
        verdict: v,
        attempt: Attempt {
            status_code: Some(503),
            ..delivered(j, now).attempt
        },
        ..delivered(j, now)
    };
    let disabled = record(
        &s,
        vec![fail(&c.jobs[0], Verdict::Retry(now + Duration::seconds(5)))],
        &[],
        now,
    )
    .await;
    assert!(disabled.is_empty());
    assert_eq!(
        s.get_subscription(&sub).await.unwrap().failing_since,
        Some(now)
    );
    // Failing since `now`, and the limit moved past it: disabled.
    let much_later = now + Duration::days(4);
    let disabled = record(
        &s,
        vec![fail(&c.jobs[1], Verdict::Retry(much_later))],
        &[],
        much_later,
    )
    .await;
    assert_eq!(disabled, vec![sub.clone()]);
    let got = s.get_subscription(&sub).await.unwrap();
    assert_eq!(got.status, SubscriptionStatus::Disabled);
    assert!(
        s.subscriptions_with_work().await.unwrap().is_empty(),
        "a disabled endpoint gets no work"
    );
    // Re-subscribing revives it; a 410 disables it at once.
    let c2 = s
        .list_subscriptions(None, None, &PageRequest::all())
        .await
        .unwrap()
        .items[0]
        .creator_id
        .clone();
    let (revived, created) = s
        .subscribe(&subscription(&c2, "https://hook.example/"))
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(
        (revived.status.as_str(), revived.failing_since),
        ("active", None)
    );
    let disabled = record(&s, vec![fail(&c.jobs[0], Verdict::Gone)], &[], much_later).await;
    assert_eq!(disabled, vec![sub.clone()]);
    assert_eq!(
        s.get_subscription(&sub)
            .await
            .unwrap()
            .disabled_reason
            .as_deref(),
        Some("receiver answered 410 Gone")
    );
}
