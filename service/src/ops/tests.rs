//! `fanout.predicted_late` end to end through [`super::predicted_late`],
//! the function the capacity plan calls: a real SQLite store, the real
//! dispatcher (lanes, recorder), and a receiver on loopback that checks
//! each signature with the operational secret. (The other events are
//! tested through the running service, in `tests/api/operational.rs`.)

use super::{events::PredictedLate, predicted_late, setup};
use crate::clock::Clock;
use crate::config::Config;
use crate::delivery::Dispatcher;
use crate::store::{DeliveryStatus, Listing, PageRequest, SubscriptionId};
use crate::AppContext;
use axum::body::Bytes;
use axum::http::HeaderMap;
use chrono::Duration;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// What the receiver was sent: each body, and whether its signature held.
type Seen = Arc<Mutex<Vec<(Bytes, bool)>>>;

async fn receiver(seen: Seen) -> String {
    let app = axum::Router::new().route(
        "/ops",
        axum::routing::post(move |h: HeaderMap, body: Bytes| async move {
            let get = |n: &str| h[n].to_str().unwrap_or_default().to_owned();
            let ts = get("webhook-timestamp").parse().unwrap_or_default();
            let ok = crate::signing::verify(
                SECRET,
                &get("webhook-id"),
                ts,
                &body,
                &get("webhook-signature"),
            );
            seen.lock().unwrap().push((body, ok));
            "ok"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/ops")
}

/// A running dispatcher over a store whose operational subscription
/// points at `url`.
async fn service(
    url: &str,
) -> (
    Arc<AppContext>,
    Dispatcher,
    CancellationToken,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::defaults();
    config.database = dir.path().join("t.db").display().to_string();
    config.allow_http = true;
    config.allow_private_targets = true;
    config.tick = std::time::Duration::from_millis(50);
    config.operational_webhook_url = Some(url.into());
    config.operational_webhook_secret = Some(SECRET.into());
    let store = crate::store::open(&config.database).await.unwrap();
    let secrets = crate::secrets::SecretKeys::configured(&config).unwrap();
    let clock = Clock::system();
    let operational = setup::install(&config, &*store, &secrets, clock.now())
        .await
        .unwrap();
    assert!(operational.is_some());
    let ctx = Arc::new(AppContext {
        config,
        catalog: store.clone(),
        engine: store,
        clock,
        instance: crate::domain::instance::InstanceId::named("ops-test"),
        admin_token: "t".into(),
        secrets,
        metrics: crate::metrics::Metrics::new(),
        operational,
    });
    let shutdown = CancellationToken::new();
    let (d, _done) = Dispatcher::start(
        ctx.clone(),
        shutdown.clone(),
        CancellationToken::new(),
        Arc::new(super::Announcer(ctx.clone())),
    )
    .unwrap();
    (ctx, d, shutdown, dir)
}

fn plan(ctx: &AppContext, subscription: &str) -> PredictedLate {
    let due = ctx.clock.now() + Duration::minutes(15);
    PredictedLate {
        webinar_id: "634fc35ddaf58580e2418c40".into(),
        reminder: "15min".into(),
        subscription_id: subscription.into(),
        due_at: due,
        predicted_duration: Duration::seconds(250),
        predicted_last_at: due + Duration::seconds(250),
        budget: Duration::seconds(60),
    }
}

/// The operational subscription's deliveries, once none is pending.
async fn settled(ctx: &AppContext, ops: &SubscriptionId) -> Vec<crate::store::Delivery> {
    for _ in 0..200 {
        let list = ctx
            .catalog
            .list_deliveries(Listing::of(ops, None, &PageRequest::first(100)))
            .await
            .unwrap()
            .items;
        if list.iter().all(|d| d.status != DeliveryStatus::Pending) {
            return list;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("operational deliveries still pending after 10 s");
}

#[tokio::test]
async fn a_fanout_predicted_late_is_announced_once_signed_with_its_figures() {
    let seen = Seen::default();
    let (ctx, d, shutdown, _dir) = service(&receiver(seen.clone()).await).await;
    let ops = ctx.operational.clone().unwrap();
    let p = plan(&ctx, "65a1b2c3d4e5f60718293a4b");
    // The plan is made again and again; the fan-out is announced once.
    predicted_late(&ctx, &d, &p).await;
    predicted_late(&ctx, &d, &p).await;
    let list = settled(&ctx, &ops).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].status, DeliveryStatus::Delivered);
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let (body, signed) = &got[0];
    assert!(
        signed,
        "the signature did not verify with the operational secret"
    );
    let e: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(e["type"], "fanout.predicted_late");
    let data = &e["data"];
    assert_eq!(data["subscription"], "65a1b2c3d4e5f60718293a4b");
    assert_eq!(data["reminder"], "15min");
    assert_eq!(data["predictedDurationMs"], 250_000);
    assert_eq!(data["predictedLatenessMs"], 250_000);
    assert_eq!(data["lateBudgetMs"], 60_000);
    assert_eq!(
        data["dueAt"],
        crate::domain::payload::iso_millis(p.due_at).as_str()
    );
    // As the OpenAPI document's `webhooks` entry lists it.
    let doc = serde_json::to_value(crate::api::openapi::document()).unwrap();
    let schema = &doc["webhooks"]["fanoutPredictedLate"]["post"]["requestBody"]["content"]
        ["application/json"]["schema"]["properties"]["data"]["properties"];
    let mut documented: Vec<&String> = schema.as_object().unwrap().keys().collect();
    let mut sent: Vec<&String> = data.as_object().unwrap().keys().collect();
    documented.sort();
    sent.sort();
    assert_eq!(sent, documented);
    shutdown.cancel();
}

#[tokio::test]
async fn the_operational_subscription_is_never_announced_to_itself() {
    let seen = Seen::default();
    let (ctx, d, shutdown, _dir) = service(&receiver(seen.clone()).await).await;
    let ops = ctx.operational.clone().unwrap();
    predicted_late(&ctx, &d, &plan(&ctx, ops.as_str())).await;
    let list = settled(&ctx, &ops).await;
    assert!(list.is_empty(), "{list:?}");
    shutdown.cancel();
}
