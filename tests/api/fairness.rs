//! Fairness between fan-outs due at one instant: no webinar waits behind
//! another's fan-out. Every webinar's first slice is written before any
//! webinar's second, with staging on (each is staged as it is claimed) and
//! off (the scheduler's rounds, first steps first). The order is read from
//! the store itself: a slice's id is the order it was written in, so the
//! check does not depend on how fast this machine is.

use crate::helpers::*;
use crate::receiver::TestReceiver;
use serde_json::json;
use std::time::Duration;

/// Participants of each large webinar; with slices of [`BATCH`], each
/// large fan-out takes 20 steps.
const LARGE: usize = 200;
const BATCH: u32 = 10;

/// Three large webinars and one of a single participant start together;
/// returns the webinar ids of the slices in the order they were written.
async fn slices_in_order(stage_ahead: Duration) -> (Vec<String>, String) {
    let rx = TestReceiver::start().await;
    let app = spawn_with(|c| {
        c.reminder_offsets = tminus::domain::offset::parse_list("2s").unwrap();
        c.stage_ahead = stage_ahead;
        c.fanout_batch = BATCH;
    })
    .await;
    let (cid, key) = app.creator().await;
    let first = app.parked(&cid, json!({})).await;
    let mut webinars = vec![first.id.clone()];
    for _ in 0..2 {
        webinars.push(app.webinar_at(&cid, first.from, json!({})).await);
    }
    let small = app.webinar_at(&cid, first.from, json!({})).await;
    for w in &webinars {
        app.participants(w, LARGE).await;
    }
    app.participants(&small, 1).await;
    app.subscribe(&key, &rx.url, None).await;

    app.bring(first.from - chrono::Duration::seconds(2), 0.3);
    let total = 3 * LARGE + 1;
    rx.wait_for(total, 60).await;
    app.settled().await;
    assert_eq!(rx.received().len(), total, "each once");

    let order: Vec<String> = rusqlite::Connection::open(&app.db)
        .unwrap()
        .prepare("SELECT webinar_id FROM slices ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    (order, small)
}

/// Checks that the first four slices are of four different webinars, the
/// small one among them, and that the large ones took several steps.
fn each_first_before_any_second(order: &[String], small: &str) {
    assert!(
        order.len() > 3 * (LARGE / BATCH as usize),
        "every large fan-out took {} steps: {} slices",
        LARGE / BATCH as usize,
        order.len()
    );
    let mut firsts = order[..4].to_vec();
    assert!(
        firsts.iter().any(|w| w == small),
        "the small webinar's slice is among the first four: {firsts:?}"
    );
    firsts.sort();
    firsts.dedup();
    assert_eq!(
        firsts.len(),
        4,
        "each webinar's first slice before any second one: {:?}",
        &order[..8]
    );
}

#[tokio::test]
async fn each_webinar_s_first_slice_comes_before_any_second_when_staged() {
    let (order, small) = slices_in_order(Duration::from_secs(60)).await;
    each_first_before_any_second(&order, &small);
}

#[tokio::test]
async fn each_webinar_s_first_slice_comes_before_any_second_in_the_rounds() {
    let (order, small) = slices_in_order(Duration::ZERO).await;
    each_first_before_any_second(&order, &small);
}
