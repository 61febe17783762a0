//! The store's conformance story: the engine's claims, leases, slices,
//! recording and expiry, driven straight through the `Store` trait against a
//! real database file.

use chrono::{DateTime, Duration, Utc};
use tminus::store::*;

async fn sqlite() -> (DynStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path().join("s.db").to_str().unwrap())
        .await
        .unwrap();
    (store, dir)
}

/// A creator, a webinar starting at `from` with one reminder due at `due`,
/// `n` participants and one subscription to everything: (webinar, sub).
async fn world(
    s: &DynStore,
    from: DateTime<Utc>,
    due: DateTime<Utc>,
    n: usize,
) -> (String, String) {
    let c = s.create_creator("C", Some("+05:30")).await.unwrap();
    let fields = WebinarFields {
        title: "T".into(),
        link: "https://x.example/".into(),
        from_time: from,
        to_time: from + Duration::hours(1),
        timezone: None,
        mango_ids: vec![],
    };
    let plan = [PlannedReminder {
        label: "15min".into(),
        due_at: due,
    }];
    let w = s.create_webinar(&c.id, &fields, &plan).await.unwrap();
    let people: Vec<NewParticipant> = (0..n)
        .map(|i| NewParticipant {
            name: format!("P{i}"),
            email: format!("p{i}@x.example"),
            phone: String::new(),
            timezone: None,
        })
        .collect();
    s.register_participants(&w.id, people).await.unwrap();
    let sub = NewSubscription {
        creator_id: c.id,
        hook_url: "https://hook.example/".into(),
        event: "webinar.reminder.all".into(),
        webinar_id: None,
        mango_id: None,
        secret: tminus::signing::new_secret(),
        max_concurrency: 4,
        rate_per_second: None,
        batch_size: 1,
    };
    let (sub, created) = s.subscribe(&sub).await.unwrap();
    assert!(created);
    (w.id, sub.id)
}

/// Claims the due reminder and fans it out completely.
async fn fire(s: &DynStore, now: DateTime<Utc>, expires: DateTime<Utc>) -> usize {
    let due = s
        .claim_due_reminders(now, "A", now + Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    let mut created = 0;
    loop {
        let p = s
            .fanout_batch(
                &due[0].id,
                FanoutMode::Send { late: false },
                1000,
                now,
                now + Duration::seconds(60),
                expires,
            )
            .await
            .unwrap();
        created += p.created;
        if p.done {
            return created;
        }
    }
}

/// Now, at the store's precision (milliseconds).
fn now_ms() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap()
}

fn delivered(j: &Job, now: DateTime<Utc>) -> Outcome {
    Outcome {
        delivery_id: j.id.clone(),
        subscription_id: j.subscription_id.clone(),
        attempt: Attempt {
            attempt: j.attempt,
            started_at: now,
            status_code: Some(200),
            latency_ms: 1,
            error: None,
            response: Some("OK".into()),
        },
        verdict: Verdict::Delivered,
        fresh: j.fresh.clone(),
        batch: None,
    }
}

#[tokio::test]
async fn a_lost_instance_s_slice_is_resumed_without_resending_what_was_recorded() {
    let (s, _dir) = sqlite().await;
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
        .claim_deliveries(&sub, now, 100, "A", now + Duration::seconds(60))
        .await
        .unwrap();
    assert_eq!(a.jobs.len(), 5);
    assert_eq!(a.slices.len(), 1);
    assert!(a.jobs.iter().all(|j| j.attempt == 1 && j.fresh.is_some()));
    // Leased: nobody else gets them.
    assert!(s
        .claim_deliveries(&sub, now, 100, "B", now + Duration::seconds(60))
        .await
        .unwrap()
        .jobs
        .is_empty());
    let two: Vec<Outcome> = a.jobs[..2].iter().map(|j| delivered(j, now)).collect();
    s.record_outcomes(&two, &[], now, now - Duration::days(3))
        .await
        .unwrap();

    // Instance A dies; its lease lapses and B resumes the slice.
    let later = now + Duration::seconds(61);
    let b = s
        .claim_deliveries(&sub, later, 100, "B", later + Duration::seconds(60))
        .await
        .unwrap();
    let resumed: Vec<&str> = b.jobs.iter().map(|j| j.id.as_str()).collect();
    let expected: Vec<&str> = a.jobs[2..].iter().map(|j| j.id.as_str()).collect();
    assert_eq!(resumed, expected, "same webhook-ids, recorded ones skipped");
    let rest: Vec<Outcome> = b.jobs.iter().map(|j| delivered(j, later)).collect();
    s.record_outcomes(&rest, &[b.slices[0].0], later, later - Duration::days(3))
        .await
        .unwrap();

    assert!(s
        .claim_deliveries(&sub, later, 100, "B", later)
        .await
        .unwrap()
        .jobs
        .is_empty());
    assert_eq!(s.next_delivery_due(&sub).await.unwrap(), None);
    let list = s.list_deliveries(&sub, None, 100).await.unwrap();
    assert_eq!(list.len(), 5);
    assert!(list
        .iter()
        .all(|d| d.status == "delivered" && d.attempts == 1));
}

#[tokio::test]
async fn retries_become_rows_and_unsent_slices_expire_per_delivery() {
    let (s, _dir) = sqlite().await;
    let t0 = now_ms();
    let start = t0 + Duration::minutes(15);
    let (wid, sub) = world(&s, start, t0 + Duration::seconds(1), 3).await;
    let now = t0 + Duration::seconds(2);
    fire(&s, now, start).await;
    let c = s
        .claim_deliveries(&sub, now, 1, "A", now + Duration::seconds(60))
        .await
        .unwrap();
    assert_eq!(c.jobs.len(), 3, "a slice is leased whole");
    let retry = Outcome {
        verdict: Verdict::Retry(now + Duration::seconds(5)),
        attempt: Attempt {
            status_code: Some(500),
            error: Some("receiver answered 500".into()),
            ..delivered(&c.jobs[0], now).attempt
        },
        ..delivered(&c.jobs[0], now)
    };
    s.record_outcomes(&[retry], &[], now, now - Duration::days(3))
        .await
        .unwrap();
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
        .claim_deliveries(
            &sub,
            now + Duration::seconds(6),
            10,
            "A",
            now + Duration::seconds(66),
        )
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
    let list = s.list_deliveries(&sub, Some("expired"), 100).await.unwrap();
    assert_eq!(list.len(), 3);
    let _ = wid;
}

#[tokio::test]
async fn cancelling_drops_pending_slices_and_rows() {
    let (s, _dir) = sqlite().await;
    let t0 = now_ms();
    let (wid, sub) = world(&s, t0 + Duration::minutes(15), t0 + Duration::seconds(1), 3).await;
    fire(&s, t0 + Duration::seconds(2), t0 + Duration::minutes(15)).await;
    s.end_webinar(&wid, false).await.unwrap();
    let now = t0 + Duration::seconds(3);
    assert!(s
        .claim_deliveries(&sub, now, 10, "A", now)
        .await
        .unwrap()
        .jobs
        .is_empty());
    assert!(s.subscriptions_with_work().await.unwrap().is_empty());
}
