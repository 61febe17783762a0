//! Dashboard and portal sessions as the store keeps them (`Sessions`): a
//! session lives until it is ended, until it expires, or until the API key
//! it was opened with is revoked; ending one leaves the others; expired
//! rows go when a session starts.

use super::*;
use tminus::domain::ids::Id;

/// A session id for a test's name for it (the store checks no shape).
fn sid(name: &str) -> SessionId {
    SessionId::trusted(name.to_owned())
}

fn session(
    id: &str,
    creator: Option<&Creator>,
    key: Option<&str>,
    at: DateTime<Utc>,
) -> SessionRecord {
    SessionRecord {
        id: sid(id),
        creator_id: creator.map(|c| c.id.clone()),
        key_hash: key.map(str::to_owned),
        created_at: at,
        expires_at: at + Duration::hours(12),
    }
}

pub async fn a_session_lives_until_ended_expired_or_its_key_revoked(s: DynStore) {
    let now = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    let c = s.create_creator("C", None).await.unwrap();
    let k1 = s
        .create_api_key(key(&c.id, "one", "tmk_1", "hash-1"))
        .await
        .unwrap();
    s.create_api_key(key(&c.id, "two", "tmk_2", "hash-2"))
        .await
        .unwrap();
    let all = [
        session("op", None, None, now),
        session("link", Some(&c), None, now),
        session("key1", Some(&c), Some("hash-1"), now),
        session("key1b", Some(&c), Some("hash-1"), now),
        session("key2", Some(&c), Some("hash-2"), now),
    ];
    for x in &all {
        s.start_session(x).await.unwrap();
    }
    let live = |id: &'static str, at: DateTime<Utc>| {
        let s = s.clone();
        async move { s.session_live(&sid(id), at).await.unwrap() }
    };
    for x in ["op", "link", "key1", "key1b", "key2"] {
        assert!(live(x, now).await, "{x}");
    }
    assert!(!live("unknown", now).await);
    // Ended: that one only, and for good.
    s.end_session(&sid("op"), now).await.unwrap();
    s.end_session(&sid("op"), now + Duration::seconds(1))
        .await
        .unwrap();
    s.end_session(&sid("unknown"), now).await.unwrap();
    assert!(!live("op", now).await);
    assert!(live("link", now).await);
    // A revoked key: every session it opened, and no other.
    s.revoke_api_key(&c.id, &k1.id).await.unwrap();
    assert!(!live("key1", now).await && !live("key1b", now).await);
    assert!(live("key2", now).await && live("link", now).await);
    // Expired at its end, not before.
    let end = now + Duration::hours(12);
    assert!(live("link", end - Duration::milliseconds(1)).await);
    assert!(!live("link", end).await);
    // A session started after that forgets the expired ones: a later
    // clock cannot bring them back.
    s.start_session(&session("next", None, None, end))
        .await
        .unwrap();
    assert!(live("next", end).await);
    assert!(!live("link", now).await, "the expired row is gone");
}
