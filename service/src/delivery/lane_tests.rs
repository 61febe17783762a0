//! The lane driven one step at a time, as zero2prod drives its worker with
//! `try_execute_task`: a real SQLite store, a real receiver on loopback,
//! and no recorder, so each result is read off the lane's channel as it is
//! reported.

use super::lane::{Lane, Step};
use super::{Dispatcher, LaneSignal, Record};
use crate::clock::Clock;
use crate::config::Config;
use crate::store::{NewSubscription, OneOff, Verdict};
use crate::AppContext;
use axum::http::HeaderMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The webhook-ids a loopback receiver was sent, in order.
type Seen = Arc<Mutex<Vec<String>>>;

/// A receiver that acknowledges every POST; returns its URL.
async fn receiver(seen: Seen) -> String {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |h: HeaderMap| async move {
            let id = h["webhook-id"].to_str().unwrap_or_default().to_owned();
            seen.lock().unwrap().push(id);
            "ok"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/hook")
}

struct Fixture {
    d: Dispatcher,
    records: mpsc::Receiver<Record>,
    sub: crate::store::SubscriptionId,
    _dir: tempfile::TempDir,
}

/// A store with one subscription to `url`, and a dispatcher over it.
async fn fixture(url: &str) -> Fixture {
    fixture_with(url, |_| {}).await
}

/// [`fixture`] with the configuration changed by `change`.
async fn fixture_with(url: &str, change: impl FnOnce(&mut Config)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::defaults();
    change(&mut config);
    config.database = dir.path().join("t.db").display().to_string();
    config.allow_http = true;
    config.allow_private_targets = true;
    config.tick = Duration::from_millis(50);
    let store = crate::store::open(&config.database).await.unwrap();
    let creator = store.create_creator("c", None).await.unwrap();
    let (sub, _) = store
        .subscribe(&NewSubscription {
            creator_id: creator.id,
            hook_url: url.into(),
            event: "webinar.reminder.all".into(),
            webinar_id: None,
            mango_id: None,
            secret: crate::signing::new_secret(),
            tuning: crate::store::Tuning {
                max_concurrency: 4,
                rate_per_second: None,
                batch_size: 1,
                late_budget_ms: 60_000,
                send_early_ms: 0,
            },
        })
        .await
        .unwrap();
    let secrets = crate::secrets::SecretKeys::configured(&config).unwrap();
    let ctx = Arc::new(AppContext {
        config,
        catalog: store.clone(),
        engine: store,
        clock: Clock::system(),
        instance: crate::domain::instance::InstanceId::named("lane-test"),
        admin_token: "t".into(),
        secrets,
        metrics: crate::metrics::Metrics::new(),
        operational: None,
    });
    let (d, records) = Dispatcher::new(
        ctx,
        CancellationToken::new(),
        CancellationToken::new(),
        Arc::new(()),
    )
    .unwrap();
    Fixture {
        d,
        records,
        sub: sub.id,
        _dir: dir,
    }
}

/// Queues a test event for the subscription; returns its webhook-id.
async fn one_off(f: &Fixture) -> crate::store::DeliveryId {
    let ctx = &f.d.inner.ctx;
    let now = ctx.clock.now();
    let one = OneOff {
        id: crate::domain::ids::one_off_webhook_id(),
        subscription_id: f.sub.clone(),
        label: "test".into(),
        payload: b"{}".to_vec(),
        expires_at: now + chrono::Duration::hours(1),
    };
    ctx.catalog.create_one_off(&one, now).await.unwrap();
    one.id
}

/// Steps `lane` until it reports a result, at most `turns` times.
async fn step_until_reported(lane: &mut Lane, f: &mut Fixture, turns: usize) -> Option<Record> {
    for _ in 0..turns {
        if let Ok(r) = f.records.try_recv() {
            return Some(r);
        }
        assert_eq!(lane.step().await, Step::Again, "the lane stopped with work");
    }
    f.records.try_recv().ok()
}

#[tokio::test]
async fn a_step_claims_sends_and_reports_one_delivery() {
    let seen = Seen::default();
    let mut f = fixture(&receiver(seen.clone()).await).await;
    let id = one_off(&f).await;
    let mut lane = Lane::new(f.d.clone(), f.sub.clone(), Arc::new(LaneSignal::default()));
    let reported = tokio::time::timeout(
        Duration::from_secs(10),
        step_until_reported(&mut lane, &mut f, 50),
    )
    .await
    .expect("the lane reported within 10 s");
    match reported {
        Some(Record::Outcome(o)) => {
            assert_eq!(o.delivery_id, id);
            assert_eq!(o.subscription_id, f.sub);
            assert!(matches!(o.verdict, Verdict::Delivered), "{:?}", o.verdict);
        }
        other => panic!("expected the delivery's outcome, got {other:?}"),
    }
    assert_eq!(
        *seen.lock().unwrap(),
        vec![id.to_string()],
        "sent once, under its id"
    );
    lane.finish().await;
}

#[tokio::test]
async fn a_lane_with_nothing_to_do_stops() {
    let seen = Seen::default();
    let f = fixture(&receiver(seen.clone()).await).await;
    let mut lane = Lane::new(f.d.clone(), f.sub.clone(), Arc::new(LaneSignal::default()));
    assert_eq!(lane.step().await, Step::Stop);
    lane.finish().await;
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_lane_stops_once_its_subscription_is_gone_and_sends_nothing() {
    let seen = Seen::default();
    let f = fixture(&receiver(seen.clone()).await).await;
    one_off(&f).await;
    f.d.inner
        .ctx
        .catalog
        .delete_subscription(&f.sub)
        .await
        .unwrap();
    let mut lane = Lane::new(f.d.clone(), f.sub.clone(), Arc::new(LaneSignal::default()));
    assert_eq!(lane.step().await, Step::Stop);
    lane.finish().await;
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_lane_stops_when_the_service_does() {
    let seen = Seen::default();
    let f = fixture(&receiver(seen.clone()).await).await;
    one_off(&f).await;
    f.d.inner.shutdown.cancel();
    let mut lane = Lane::new(f.d.clone(), f.sub.clone(), Arc::new(LaneSignal::default()));
    assert_eq!(lane.step().await, Step::Stop);
    lane.finish().await;
    assert!(seen.lock().unwrap().is_empty());
}

/// A receiver that acknowledges every POST and counts the connections it
/// was sent them on; returns its URL.
async fn counting_receiver(
    peers: Arc<Mutex<std::collections::HashSet<std::net::SocketAddr>>>,
) -> String {
    use axum::extract::ConnectInfo;
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>| async move {
                peers.lock().unwrap().insert(peer);
                "ok"
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, app).await
    });
    format!("http://{addr}/hook")
}

/// Sends `n` one-offs through a lane whose subscription allows 4 at once,
/// with `budget` connections beyond the lane's first; returns how many
/// connections the receiver saw.
async fn connections_used(n: usize, budget: u32) -> usize {
    let peers = Arc::default();
    let url = counting_receiver(Arc::clone(&peers)).await;
    let mut f = fixture_with(&url, |c| c.delivery_connections = budget).await;
    for _ in 0..n {
        one_off(&f).await;
    }
    let mut lane = Lane::new(f.d.clone(), f.sub.clone(), Arc::new(LaneSignal::default()));
    let mut reported = 0;
    let run = async {
        while reported < n {
            assert!(step_until_reported(&mut lane, &mut f, 50).await.is_some());
            reported += 1;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("every delivery reported within 20 s");
    lane.finish().await;
    let used = peers.lock().unwrap().len();
    used
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_at_the_connection_budget_sends_everything_on_its_own_connection() {
    assert_eq!(connections_used(20, 0).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_opens_no_more_connections_than_the_budget_gives_it() {
    let used = connections_used(40, 1).await;
    assert!((1..=2).contains(&used), "{used} connections");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_workers_close_with_their_connections() {
    let peers = Arc::default();
    let url = counting_receiver(Arc::clone(&peers)).await;
    let mut f = fixture(&url).await;
    for _ in 0..20 {
        one_off(&f).await;
    }
    let mut lane = Lane::new(f.d.clone(), f.sub.clone(), Arc::new(LaneSignal::default()));
    for _ in 0..20 {
        assert!(step_until_reported(&mut lane, &mut f, 50).await.is_some());
    }
    assert!(lane.workers() > 1, "the burst opened several connections");
    tokio::time::sleep(super::pool::IDLE_CLOSE + Duration::from_millis(200)).await;
    // Its next turn finds nothing to send, and closes the idle workers.
    lane.step().await;
    assert_eq!(lane.workers(), 0, "idle workers closed");
    lane.finish().await;
}
