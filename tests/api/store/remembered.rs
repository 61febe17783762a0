//! Answers remembered for `Idempotency-Key`: the first kept per (caller,
//! key), none older than the window returned, old ones forgotten.

use super::*;

fn answer(caller: &str, key: &str, hash: &str, at: DateTime<Utc>) -> Remembered {
    Remembered {
        caller: caller.into(),
        key: key.into(),
        request_hash: hash.into(),
        status: 201,
        body: br#"{"id":"x"}"#.to_vec(),
        created_at: at,
    }
}

pub async fn the_first_answer_is_kept_for_a_day(s: DynStore) {
    // Whole milliseconds: what both backends keep.
    let now = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    let day = Duration::hours(24);
    assert_eq!(s.remembered("a", "k", now - day).await.unwrap(), None);
    let first = answer("a", "k", "h1", now);
    assert_eq!(
        s.remember(&first, now - day, now - day).await.unwrap(),
        first
    );
    // A second answer for the same key keeps the first.
    let kept = s
        .remember(&answer("a", "k", "h2", now), now - day, now - day)
        .await
        .unwrap();
    assert_eq!(kept, first);
    assert_eq!(
        s.remembered("a", "k", now - day).await.unwrap(),
        Some(first)
    );
    // Keys are per caller.
    assert_eq!(s.remembered("b", "k", now - day).await.unwrap(), None);
    // A day later it is gone, and remembering anew forgets it.
    let later = now + day + Duration::seconds(1);
    assert_eq!(s.remembered("a", "k", later - day).await.unwrap(), None);
    let fresh = answer("a", "k", "h3", later);
    assert_eq!(
        s.remember(&fresh, later - day, later - day).await.unwrap(),
        fresh
    );
}

/// A reservation (status 0, a marker as its body) holds the key: another
/// request gets the reservation back, not its own; settling turns it into
/// the answer; forgetting frees the key; a stale one gives way.
pub async fn a_reservation_holds_the_key_until_settled_forgotten_or_stale(s: DynStore) {
    let now = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    let (day, stale) = (Duration::hours(24), Duration::minutes(5));
    let marker = b"pending:1".to_vec();
    let pending = Remembered {
        status: 0,
        body: marker.clone(),
        ..answer("a", "k", "h1", now)
    };
    let remember = |r: Remembered, at: DateTime<Utc>| {
        let s = s.clone();
        async move { s.remember(&r, at - day, at - stale).await.unwrap() }
    };
    assert_eq!(remember(pending.clone(), now).await, pending);
    let other = Remembered {
        body: b"pending:2".to_vec(),
        ..pending.clone()
    };
    assert_eq!(
        remember(other.clone(), now).await,
        pending,
        "held by the first"
    );
    // Settled with another marker: nothing changes.
    s.settle(&answer("a", "k", "h1", now), b"pending:2")
        .await
        .unwrap();
    assert_eq!(remember(other.clone(), now).await, pending);
    s.settle(&answer("a", "k", "h1", now), &marker)
        .await
        .unwrap();
    assert_eq!(
        remember(other.clone(), now).await,
        answer("a", "k", "h1", now)
    );
    // Forgotten: the key is free again.
    let mine = Remembered {
        key: "k2".into(),
        ..pending.clone()
    };
    remember(mine.clone(), now).await;
    s.forget("a", "k2", &marker).await.unwrap();
    let next = Remembered {
        key: "k2".into(),
        ..other.clone()
    };
    assert_eq!(remember(next.clone(), now).await, next);
    // Five minutes on, a reservation never settled gives way.
    let later = now + stale + Duration::milliseconds(1);
    let after = Remembered {
        key: "k2".into(),
        created_at: later,
        ..pending
    };
    assert_eq!(remember(after.clone(), later).await, after);
}
