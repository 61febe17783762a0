//! What recording says of subscriptions' health, for the operational
//! webhooks: a failure announced at most once an hour, a recovery only
//! after an announced failure, a success in the same call winning; and the
//! operational subscription, which no list shows and whose once-only
//! events are queued once.

use super::*;

/// An outcome of `sub` at `at`: acknowledged, or answered 500.
fn outcome(sub: &SubscriptionId, ok: bool, at: DateTime<Utc>) -> Outcome {
    Outcome {
        delivery_id: id("msg_000000000000000000000001"),
        subscription_id: sub.clone(),
        attempt: Attempt {
            attempt: 1,
            started_at: at,
            status_code: Some(if ok { 200 } else { 500 }),
            latency_ms: 1,
            error: None,
            response: None,
        },
        verdict: if ok {
            Verdict::Delivered
        } else {
            Verdict::Retry(at + Duration::seconds(5))
        },
        fresh: None,
        batch: None,
    }
}

async fn changes(s: &DynStore, outcomes: Vec<Outcome>, at: DateTime<Utc>) -> HealthChanges {
    s.record_outcomes(recording(outcomes.into(), &[], at, at - Duration::days(3)))
        .await
        .unwrap()
}

pub async fn failures_are_announced_once_an_hour_and_recoveries_after_them(s: DynStore) {
    let t0 = now_ms();
    let c = s.create_creator("C", None).await.unwrap();
    let a = subscribe_all(&s, c.id.clone(), "https://a.example/").await;
    let b = subscribe_all(&s, c.id, "https://b.example/").await;
    let none = HealthChanges::default();
    // The first failure is announced; the next ones of the same run not.
    let got = changes(&s, vec![outcome(&a, false, t0)], t0).await;
    assert_eq!(got.failing, vec![a.clone()]);
    let t1 = t0 + Duration::seconds(10);
    assert_eq!(changes(&s, vec![outcome(&a, false, t1)], t1).await, none);
    // A success ends it: recovered, since the first failure.
    let t2 = t0 + Duration::seconds(20);
    let got = changes(&s, vec![outcome(&a, true, t2)], t2).await;
    assert_eq!(got.recovered, vec![(a.clone(), t0)]);
    assert!(got.failing.is_empty());
    // Failing again within the hour: not announced, nor its recovery.
    let t3 = t0 + Duration::minutes(30);
    assert_eq!(changes(&s, vec![outcome(&a, false, t3)], t3).await, none);
    let t4 = t3 + Duration::seconds(1);
    assert_eq!(changes(&s, vec![outcome(&a, true, t4)], t4).await, none);
    // A run held back by the hour is announced at its first failure after
    // the hour.
    let t5 = t0 + Duration::minutes(50);
    assert_eq!(changes(&s, vec![outcome(&a, false, t5)], t5).await, none);
    let t6 = t0 + Duration::minutes(61);
    let got = changes(&s, vec![outcome(&a, false, t6)], t6).await;
    assert_eq!(got.failing, vec![a.clone()]);
    let t7 = t6 + Duration::seconds(1);
    let got = changes(&s, vec![outcome(&a, true, t7)], t7).await;
    assert_eq!(got.recovered, vec![(a.clone(), t5)]);
    // A success and a failure in one call: healthy, nothing to announce.
    let got = changes(&s, vec![outcome(&b, false, t7), outcome(&b, true, t7)], t7).await;
    assert_eq!(got, none);
    assert_eq!(s.get_subscription(&b).await.unwrap().failing_since, None);
    // A 410: disabled as gone, and not announced as failing as well.
    let gone = Outcome {
        verdict: Verdict::Gone,
        ..outcome(&b, false, t7)
    };
    let got = changes(&s, vec![gone], t7).await;
    assert_eq!(got.disabled, vec![(b.clone(), Disabled::Gone)]);
    assert!(got.failing.is_empty(), "{got:?}");
    // Failing too long: disabled as such.
    let t8 = t7 + Duration::days(4);
    let got = changes(&s, vec![outcome(&a, false, t7)], t7).await;
    assert_eq!(got.failing, Vec::<SubscriptionId>::new());
    let got = changes(&s, vec![outcome(&a, false, t8)], t8).await;
    assert_eq!(got.disabled, vec![(a, Disabled::FailingTooLong)]);
    assert!(got.failing.is_empty(), "disabled, not failing: {got:?}");
}

pub async fn the_operational_subscription_is_in_no_list_and_its_events_go_once(s: DynStore) {
    let now = now_ms();
    let c = s.create_creator("C", None).await.unwrap();
    let theirs = subscribe_all(&s, c.id.clone(), "https://a.example/").await;
    assert!(s.operational_subscription().await.unwrap().is_none());
    let n = NewSubscription {
        creator_id: id(OPERATIONAL_CREATOR),
        hook_url: "https://platform.example/ops".into(),
        event: OPERATIONAL_EVENT.into(),
        webinar_id: None,
        mango_id: None,
        secret: tminus::signing::new_secret(),
        tuning: PLAIN,
    };
    let (ops, made) = s.make_operational(&n).await.unwrap();
    assert!(made);
    let (again, made) = s.make_operational(&n).await.unwrap();
    assert_eq!((again.id.clone(), made), (ops.id.clone(), false));
    // In no list, its creator nowhere.
    let subs = s
        .list_subscriptions(None, None, &PageRequest::all())
        .await
        .unwrap()
        .items;
    assert_eq!(
        subs.iter().map(|x| x.id.clone()).collect::<Vec<_>>(),
        vec![theirs]
    );
    let creators = s.list_creators(&PageRequest::all()).await.unwrap().items;
    assert_eq!(creators.len(), 1);
    assert!(matches!(
        s.get_creator(&id(OPERATIONAL_CREATOR)).await,
        Err(StoreError::NotFound)
    ));
    // Pointed elsewhere, turned off and on.
    let moved = s
        .point_operational(&ops.id, Some("https://platform.example/v2"))
        .await
        .unwrap();
    assert_eq!(moved.hook_url, "https://platform.example/v2");
    let off = s.point_operational(&ops.id, None).await.unwrap();
    assert_eq!(off.status, SubscriptionStatus::Disabled);
    assert_eq!(off.hook_url, "https://platform.example/v2");
    // Disabled, yet in no one's trouble list.
    assert!(s.troubled_subscriptions(None, 10).await.unwrap().is_empty());
    let on = s
        .point_operational(&ops.id, Some(off.hook_url.as_str()))
        .await
        .unwrap();
    assert_eq!(on.status, SubscriptionStatus::Active);
    // An event with a key of its own is queued once.
    let one = OneOff {
        id: id("msg_0123456789abcdef01234567"),
        subscription_id: ops.id.clone(),
        label: "fanout.finished".into(),
        payload: b"{}".to_vec(),
        expires_at: now + Duration::hours(1),
    };
    assert!(s.queue_operational(&one, now).await.unwrap());
    assert!(!s.queue_operational(&one, now).await.unwrap());
    assert_eq!(s.subscriptions_with_work().await.unwrap(), vec![ops.id]);
}
