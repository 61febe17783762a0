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
    assert_eq!(s.remember(&first, now - day).await.unwrap(), first);
    // A second answer for the same key keeps the first.
    let kept = s
        .remember(&answer("a", "k", "h2", now), now - day)
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
    assert_eq!(s.remember(&fresh, later - day).await.unwrap(), fresh);
}
