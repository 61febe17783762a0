//! The store's conformance suite: every scenario runs against both
//! backends, straight through the `Store` trait: a real SQLite file, and a
//! fresh schema on the real PostgreSQL server (`tests/common/pg.rs`).

mod early;
mod engine;
mod happy_path;
mod health;
mod history;
mod lists;
mod oversight;
mod race;
mod records;
mod remembered;
mod sessions;
mod trips;
mod upkeep;

use crate::pg;

pub use chrono::{DateTime, Duration, Utc};
pub use tminus::store::*;

async fn sqlite() -> (DynStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path().join("s.db").to_str().unwrap())
        .await
        .unwrap();
    (store, dir)
}

/// One test per scenario and backend: `store::sqlite::<name>` and
/// `store::postgres::<name>`.
macro_rules! on_both {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                let (s, _dir) = super::sqlite().await;
                super::$module::$name(s).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            #[ignore = "needs PostgreSQL: scripts/test runs it"]
            async fn $name() {
                let db = super::pg::fresh().await;
                let s = super::open(&db.url).await.unwrap();
                super::$module::$name(s).await;
                db.drop_now().await;
            })*
        }
    };
}

on_both!(
    early::an_early_start_covers_those_registered_then_once,
    engine::a_lost_instance_s_slice_is_resumed_without_resending_what_was_recorded,
    engine::retries_become_rows_and_unsent_slices_expire_per_delivery,
    engine::cancelling_drops_pending_slices_and_rows,
    engine::a_reminder_is_fired_by_one_instance_at_a_time,
    engine::a_clean_stop_hands_back_every_lease,
    engine::two_instances_split_a_fan_out_without_overlap,
    engine::a_missed_reminder_is_recorded_per_delivery,
    engine::a_renewed_lease_is_kept_and_one_batch_may_hold_a_delivery_twice,
    engine::a_reminder_staged_ahead_is_decided_at_its_instant,
    lists::every_list_pages_in_its_order,
    records::platform_records_round_trip,
    records::participants_register_once_per_email_and_page_in_order,
    records::subscriptions_are_idempotent_revivable_and_rotatable,
    records::pending_labels_are_a_creators_reminders_still_to_fire,
    history::test_events_replays_and_batches_are_recorded,
    history::failing_endpoints_are_disabled,
    happy_path::acknowledged_first_attempts_read_back_like_rows,
    happy_path::a_delivery_acknowledged_twice_is_listed_once,
    remembered::the_first_answer_is_kept_for_a_day,
    remembered::a_reservation_holds_the_key_until_settled_forgotten_or_stale,
    sessions::a_session_lives_until_ended_expired_or_its_key_revoked,
    upkeep::queue_figures_read_the_store,
    upkeep::pruning_spares_fan_outs_with_work_left,
    upkeep::pruning_takes_what_is_older_than_the_cutoff_and_nothing_newer,
    oversight::fan_outs_are_watched_due_running_and_done,
    health::failures_are_announced_once_an_hour_and_recoveries_after_them,
    health::the_operational_subscription_is_in_no_list_and_its_events_go_once,
);

/// A creator, a webinar starting at `from` with one reminder due at `due`,
/// `n` participants and one subscription to everything: (webinar, sub).
pub async fn world(
    s: &DynStore,
    from: DateTime<Utc>,
    due: DateTime<Utc>,
    n: usize,
) -> (WebinarId, SubscriptionId) {
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
    s.register_participants(&w.id, people.into()).await.unwrap();
    (w.id, subscribe_all(s, c.id, "https://hook.example/").await)
}

/// A subscription's plain settings: four requests at once, no rate cap,
/// one payload a POST, a minute's lateness budget, no early start.
pub const PLAIN: Tuning = Tuning {
    max_concurrency: 4,
    rate_per_second: None,
    batch_size: 1,
    late_budget_ms: 60_000,
    send_early_ms: 0,
};

/// A new subscription of `creator` to every reminder of every webinar.
pub async fn subscribe_all(s: &DynStore, creator: CreatorId, url: &str) -> SubscriptionId {
    let sub = NewSubscription {
        creator_id: creator,
        hook_url: url.into(),
        event: "webinar.reminder.all".into(),
        webinar_id: None,
        mango_id: None,
        secret: tminus::signing::new_secret(),
        tuning: PLAIN,
    };
    let (sub, created) = s.subscribe(&sub).await.unwrap();
    assert!(created);
    sub.id
}

/// Claims the due reminder and fans it out completely, to send.
pub async fn fire(s: &DynStore, now: DateTime<Utc>, expires: DateTime<Utc>) -> usize {
    fan_out(s, FanoutMode::Send { late: false }, now, expires)
        .await
        .created
}

/// Claims the reminders due at `now` as `owner`, with a minute's lease.
pub async fn claim_due(s: &DynStore, owner: &str, now: DateTime<Utc>) -> Vec<DueReminder> {
    s.claim_due_reminders(reminders(
        now,
        now,
        &owner.into(),
        now + Duration::seconds(60),
        10,
    ))
    .await
    .unwrap()
}

/// Claims the due reminder as "A" and fans it out completely in `mode`:
/// everything created, and every subscription told of work, over all steps.
pub async fn fan_out(
    s: &DynStore,
    mode: FanoutMode,
    now: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> FanoutProgress {
    let due = claim_due(s, "A", now).await;
    assert_eq!(due.len(), 1);
    let mut all = FanoutProgress::default();
    loop {
        let p = s
            .fanout_batch(&FanoutStep {
                reminder_id: due[0].id.clone(),
                owner: "A".into(),
                mode,
                batch: 1000,
                now,
                lease_until: now + Duration::seconds(60),
                expires_at: expires,
            })
            .await
            .unwrap();
        all.created += p.created;
        all.subscriptions.extend(p.subscriptions);
        if p.done {
            all.done = true;
            return all;
        }
    }
}

/// One fan-out step, to send, of reminder `id` as `owner` at `at`.
pub async fn send_step(
    s: &DynStore,
    id: &ReminderId,
    owner: &str,
    at: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> FanoutProgress {
    s.fanout_batch(&FanoutStep {
        reminder_id: id.clone(),
        owner: owner.into(),
        mode: FanoutMode::Send { late: false },
        batch: 1000,
        now: at,
        lease_until: at + Duration::seconds(60),
        expires_at: expires,
    })
    .await
    .unwrap()
}

/// Now, at the store's precision (milliseconds).
pub fn now_ms() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap()
}

pub fn delivered(j: &Job, now: DateTime<Utc>) -> Outcome {
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

/// Records `outcomes` at `at` and closes the `done` slices, disabling
/// subscriptions failing for three days; returns the ones disabled.
pub async fn record(
    s: &DynStore,
    outcomes: Vec<Outcome>,
    done: &[SliceId],
    at: DateTime<Utc>,
) -> Vec<SubscriptionId> {
    s.record_outcomes(recording(outcomes.into(), done, at, at - Duration::days(3)))
        .await
        .unwrap()
        .disabled_ids()
}

/// An attempt of `j` answered 500, to be retried 5 s after `now`.
pub fn failed(j: &Job, now: DateTime<Utc>) -> Outcome {
    Outcome {
        verdict: Verdict::Retry(now + Duration::seconds(5)),
        attempt: Attempt {
            status_code: Some(500),
            error: Some("receiver answered 500".into()),
            ..delivered(j, now).attempt
        },
        ..delivered(j, now)
    }
}

/// Claims `sub`'s deliveries as `owner`, `limit` at a time, and records
/// each as delivered, until none is left; returns the ids it claimed.
pub async fn claim_all(
    s: &DynStore,
    sub: &SubscriptionId,
    owner: &str,
    limit: u32,
    now: DateTime<Utc>,
) -> Vec<DeliveryId> {
    let mut mine = Vec::new();
    loop {
        let c = s
            .claim_deliveries(claim(sub, now, limit, owner))
            .await
            .unwrap();
        if c.jobs.is_empty() {
            return mine;
        }
        let done: Vec<SliceId> = c.slices.iter().map(|x| x.0).collect();
        let out: Vec<Outcome> = c.jobs.iter().map(|j| delivered(j, now)).collect();
        record(s, out, &done, now).await;
        mine.extend(c.jobs.into_iter().map(|j| j.id));
    }
}

/// An id as the store would hand it out: the suite names ids the API would
/// refuse ("nope", "msg_test1") to see the store answer for them.
pub fn id<T: tminus::domain::ids::Id>(s: &str) -> T {
    T::trusted(s.to_owned())
}

/// A claim of `sub`'s deliveries due at `now`: at most `limit`, held by
/// `owner` for a minute.
pub fn claim(sub: &SubscriptionId, now: DateTime<Utc>, limit: u32, owner: &str) -> DeliveryClaim {
    deliveries(sub, now, limit, &owner.into(), now + Duration::seconds(60))
}

/// A claim of `sub`'s deliveries due at `now`: at most `limit`, held by
/// `owner` until `lease_until`.
pub fn deliveries(
    sub: &SubscriptionId,
    now: DateTime<Utc>,
    limit: u32,
    owner: &InstanceId,
    lease_until: DateTime<Utc>,
) -> DeliveryClaim {
    DeliveryClaim {
        subscription_id: sub.clone(),
        now,
        limit,
        owner: owner.clone(),
        lease_until,
    }
}

/// A claim of the reminders due by `horizon`, or whose lease lapsed by
/// `now`: at most `limit`, held by `owner` until `lease_until`.
pub fn reminders(
    now: DateTime<Utc>,
    horizon: DateTime<Utc>,
    owner: &InstanceId,
    lease_until: DateTime<Utc>,
    limit: u32,
) -> ReminderClaim {
    ReminderClaim {
        now,
        horizon,
        owner: owner.clone(),
        lease_until,
        limit,
    }
}

/// `outcomes` recorded at `now`, finishing `done_slices`; subscriptions
/// failing since before `disable_before` are disabled.
pub fn recording(
    outcomes: std::sync::Arc<[Outcome]>,
    done_slices: &[SliceId],
    now: DateTime<Utc>,
    disable_before: DateTime<Utc>,
) -> Recording {
    Recording {
        outcomes,
        done_slices: done_slices.to_vec(),
        now,
        disable_before,
    }
}

/// The leases `owner` holds on `slices` and `rows`, extended to `until`.
pub fn renewal(
    owner: &InstanceId,
    slices: &[SliceId],
    rows: &[DeliveryId],
    until: DateTime<Utc>,
) -> Renewal {
    Renewal {
        owner: owner.clone(),
        slices: slices.to_vec(),
        deliveries: rows.to_vec(),
        until,
    }
}

/// An API key of `creator` to store, named `name`, listed by `prefix`.
pub fn key<'a>(
    creator: &'a CreatorId,
    name: &'a str,
    prefix: &'a str,
    hash: &'a str,
) -> NewApiKey<'a> {
    NewApiKey {
        creator_id: creator,
        name,
        prefix,
        hash,
    }
}

/// Delivery `id` of `sub` made due again at `now`, to live until `expires_at`.
pub fn retry(
    sub: &SubscriptionId,
    id: &DeliveryId,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Retry {
    Retry {
        subscription_id: sub.clone(),
        delivery_id: id.clone(),
        now,
        expires_at,
    }
}
