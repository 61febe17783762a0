//! The records' side of the conformance suite: creators, keys, mangoes,
//! webinars, participants, subscriptions and the delivery history, as the
//! API reads and writes them.

use super::*;

fn fields(from: DateTime<Utc>, mangoes: Vec<MangoId>) -> WebinarFields {
    WebinarFields {
        title: "Launch".into(),
        link: "https://x.example/w".into(),
        from_time: from,
        to_time: from + Duration::hours(1),
        timezone: Some("Asia/Kolkata".into()),
        mango_ids: mangoes,
    }
}

fn person(email: &str) -> NewParticipant {
    NewParticipant {
        name: "P".into(),
        email: email.into(),
        phone: "+1".into(),
        timezone: Some("Europe/Paris".into()),
    }
}

pub fn subscription(creator: &CreatorId, url: &str) -> NewSubscription {
    NewSubscription {
        creator_id: creator.clone(),
        hook_url: url.into(),
        event: "webinar.reminder.all".into(),
        webinar_id: None,
        mango_id: None,
        secret: tminus::signing::new_secret(),
        tuning: Tuning {
            max_concurrency: 4,
            rate_per_second: Some(10),
            batch_size: 1,
            late_budget_ms: 60_000,
            send_early_ms: 0,
        },
    }
}

pub async fn platform_records_round_trip(s: DynStore) {
    let c = s.create_creator("Ada", Some("+05:30")).await.unwrap();
    assert_eq!(s.get_creator(&c.id).await.unwrap().name, "Ada");
    assert_eq!(
        s.list_creators(&PageRequest::all())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert!(matches!(
        s.get_creator(&id("nope")).await,
        Err(StoreError::NotFound)
    ));
    let k = s
        .create_api_key(key(&c.id, "ci", "tmk_ab", "h1"))
        .await
        .unwrap();
    assert_eq!(s.creator_for_key("h1").await.unwrap(), c.id);
    s.revoke_api_key(&c.id, &k.id).await.unwrap();
    assert!(matches!(
        s.creator_for_key("h1").await,
        Err(StoreError::NotFound)
    ));
    assert!(s
        .list_api_keys(&c.id, &PageRequest::all())
        .await
        .unwrap()
        .items[0]
        .revoked_at
        .is_some());
    let m1 = s.create_mango(&c.id, "Course").await.unwrap();
    let m2 = s.create_mango(&c.id, "Book").await.unwrap();
    assert_eq!(
        s.list_mangoes(&c.id, &PageRequest::all())
            .await
            .unwrap()
            .items
            .len(),
        2
    );

    let t0 = now_ms();
    let plan = |from: DateTime<Utc>| {
        vec![
            PlannedReminder {
                label: "30min".into(),
                due_at: from - Duration::minutes(30),
            },
            PlannedReminder {
                label: "15min".into(),
                due_at: from - Duration::minutes(15),
            },
        ]
    };
    let from = t0 + Duration::hours(2);
    let w = s
        .create_webinar(
            &c.id,
            &fields(from, vec![m2.id.clone(), m1.id.clone()]),
            &plan(from),
        )
        .await
        .unwrap();
    assert_eq!(
        w.mangoes,
        vec![m2.id.clone(), m1.id.clone()],
        "in the order given"
    );
    assert_eq!((w.from_time, w.status.as_str()), (from, "scheduled"));
    assert_eq!(
        s.next_reminder_due().await.unwrap(),
        Some(from - Duration::minutes(30))
    );
    // Rescheduling cancels the old start's reminders and arms the new.
    let later = from + Duration::hours(1);
    let w2 = s
        .update_webinar(
            &w.id,
            &fields(later, vec![m1.id.clone()]),
            Some(&plan(later)),
        )
        .await
        .unwrap();
    assert_eq!(w2.mangoes, vec![m1.id.clone()]);
    let rs = s
        .list_reminders(&w.id, &PageRequest::all())
        .await
        .unwrap()
        .items;
    let states: Vec<(&str, &str)> = rs
        .iter()
        .map(|r| (r.label.as_str(), r.status.as_str()))
        .collect();
    assert_eq!(
        states,
        [
            ("30min", "cancelled"),
            ("15min", "cancelled"),
            ("30min", "pending"),
            ("15min", "pending")
        ]
    );
    assert_eq!(
        s.list_webinars(&c.id, &PageRequest::all())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let ended = s.end_webinar(&w.id, false).await.unwrap();
    assert_eq!(ended.status, WebinarStatus::Cancelled);
    assert_eq!(s.next_reminder_due().await.unwrap(), None);
    assert!(matches!(
        s.update_webinar(&w.id, &fields(later, vec![]), None).await,
        Err(StoreError::Conflict(_))
    ));
    s.end_webinar(&w.id, true).await.unwrap();
    assert!(matches!(
        s.get_webinar(&w.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(s
        .list_webinars(&c.id, &PageRequest::all())
        .await
        .unwrap()
        .items
        .is_empty());
}

pub async fn participants_register_once_per_email_and_page_in_order(s: DynStore) {
    let c = s.create_creator("Ada", None).await.unwrap();
    let from = now_ms() + Duration::hours(2);
    let w = s
        .create_webinar(&c.id, &fields(from, vec![]), &[])
        .await
        .unwrap();
    let sum = s
        .register_participants(
            &w.id,
            vec![
                person("b@x.example"),
                person("A@x.example"),
                person("B@X.example"),
            ]
            .into(),
        )
        .await
        .unwrap();
    assert_eq!(
        (sum.created, sum.existing),
        (2, 1),
        "email is case-insensitive"
    );
    let (rec, new) = s
        .register_participant(&w.id, person("a@x.example"))
        .await
        .unwrap();
    assert!(!new);
    assert_eq!(rec.email, "A@x.example", "the registration already there");
    let (rec, new) = s
        .register_participant(&w.id, person("c@x.example"))
        .await
        .unwrap();
    assert!(new);
    assert_eq!(rec.timezone.as_deref(), Some("Europe/Paris"));
    let first = s.list_participants(&w.id, &PageRequest::first(2)).await;
    let first = first.unwrap();
    assert!(first.next.is_some(), "a third one is there");
    let page1 = first.items;
    let emails: Vec<&str> = page1.iter().map(|p| p.email.as_str()).collect();
    // PostgreSQL writes a bulk in the order of the email; the numbers
    // still follow the order sent.
    assert_eq!(emails, ["b@x.example", "A@x.example"], "registration order");
    let after = PageRequest {
        after: first.next,
        limit: 10,
    };
    let page2 = s.list_participants(&w.id, &after).await.unwrap();
    assert_eq!((page2.items.len(), page2.next), (1, None));
    s.unregister_participant(&w.id, &page1[0].id).await.unwrap();
    assert!(matches!(
        s.unregister_participant(&w.id, &page1[0].id).await,
        Err(StoreError::NotFound)
    ));
    let (_, new) = s
        .register_participant(&w.id, person("b@x.example"))
        .await
        .unwrap();
    assert!(new, "unregistered people may register again");
    let all = s.list_participants(&w.id, &PageRequest::first(10)).await;
    assert_eq!(all.unwrap().items.len(), 3);
    s.end_webinar(&w.id, false).await.unwrap();
    assert!(matches!(
        s.register_participants(&w.id, vec![person("d@x.example")].into())
            .await,
        Err(StoreError::Conflict(_))
    ));
}

pub async fn subscriptions_are_idempotent_revivable_and_rotatable(s: DynStore) {
    let c = s.create_creator("Ada", None).await.unwrap();
    let (a, created) = s
        .subscribe(&subscription(&c.id, "https://h.example/1"))
        .await
        .unwrap();
    assert!(created);
    assert_eq!(
        (
            a.tuning.max_concurrency,
            a.tuning.rate_per_second,
            a.tuning.batch_size
        ),
        (4, Some(10), 1)
    );
    let (again, created) = s
        .subscribe(&subscription(&c.id, "https://h.example/1"))
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(again.id, a.id);
    let mut one_webinar = subscription(&c.id, "https://h.example/1");
    one_webinar.webinar_id = Some(id("abc"));
    assert!(
        s.subscribe(&one_webinar).await.unwrap().1,
        "another filter, another subscription"
    );
    assert_eq!(
        s.list_subscriptions(Some(&c.id), None, &PageRequest::all())
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    assert_eq!(
        s.list_subscriptions(None, None, &PageRequest::all())
            .await
            .unwrap()
            .items
            .len(),
        2
    );

    let grace = now_ms() + Duration::hours(24);
    let r = s.rotate_secret(&a.id, "whsec_new", grace).await.unwrap();
    assert_eq!(
        (r.secret.as_str(), r.previous_secret.as_deref()),
        ("whsec_new", Some(a.secret.as_str()))
    );
    assert_eq!(r.previous_until, Some(grace));
    let patch = SubscriptionPatch {
        max_concurrency: Some(2),
        rate_per_second: Some(None),
        batch_size: Some(50),
        late_budget_ms: Some(5_000),
        send_early_ms: Some(120_000),
        enable: false,
    };
    let p = s.update_subscription(&a.id, &patch).await.unwrap();
    assert_eq!(
        (
            p.tuning.max_concurrency,
            p.tuning.rate_per_second,
            p.tuning.batch_size
        ),
        (2, None, 50)
    );
    assert_eq!(
        (p.tuning.late_budget_ms, p.tuning.send_early_ms),
        (5_000, 120_000)
    );

    s.delete_subscription(&a.id).await.unwrap();
    assert!(matches!(
        s.get_subscription(&a.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.delete_subscription(&a.id).await,
        Err(StoreError::NotFound)
    ));
    let (fresh, created) = s
        .subscribe(&subscription(&c.id, "https://h.example/1"))
        .await
        .unwrap();
    assert!(
        created && fresh.id != a.id,
        "a deleted subscription stays deleted"
    );
}

/// The intervals a creator may still subscribe to after `--reminder-offsets`
/// changed: the labels of their reminders still pending, none of another
/// creator's, none fired or cancelled.
pub async fn pending_labels_are_a_creators_reminders_still_to_fire(s: DynStore) {
    let now = now_ms();
    let (w, _) = world(&s, now + Duration::hours(1), now - Duration::seconds(1), 1).await;
    let creator = s.get_webinar(&w).await.unwrap().creator_id;
    let from = now + Duration::days(2);
    let plan = [
        PlannedReminder {
            label: "1day".into(),
            due_at: from - Duration::days(1),
        },
        PlannedReminder {
            label: "2h".into(),
            due_at: from - Duration::hours(2),
        },
    ];
    let later = s
        .create_webinar(&creator, &fields(from, vec![]), &plan)
        .await
        .unwrap();
    let other = s.create_creator("Other", None).await.unwrap();
    let labels = |c: CreatorId| {
        let s = s.clone();
        async move { s.pending_labels(&c).await.unwrap() }
    };
    assert_eq!(labels(creator.clone()).await, ["15min", "1day", "2h"]);
    assert!(labels(other.id).await.is_empty());
    fire(&s, now, now + Duration::hours(1)).await;
    assert_eq!(labels(creator.clone()).await, ["1day", "2h"]);
    s.end_webinar(&later.id, false).await.unwrap();
    assert!(labels(creator).await.is_empty());
}
