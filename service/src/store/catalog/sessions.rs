//! Dashboard and portal sessions as the store keeps them ([`Sessions`]),
//! one statement text each for both backends, shared by every instance on
//! PostgreSQL: the signed cookie names a session (by the hash of its
//! nonce), and a page opens only while its row is there, not ended
//! (logout), not expired, and the API key that opened it (a portal login)
//! not revoked: revoking a key ends its portal sessions at their next
//! request, on every instance, with nothing to update. Expired rows are
//! deleted when a session starts (an index on the expiry finds them), so
//! the table holds at most the sessions of the last 12 hours.

use super::Sessions;
use crate::store::sql::{params, Backend};
use crate::store::{CreatorId, SessionId, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A session to record.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionRecord {
    /// The session's id (a hash of the cookie's nonce, never the cookie).
    pub id: SessionId,
    /// The creator whose portal it opens; `None` for the operator.
    pub creator_id: Option<CreatorId>,
    /// The hash of the API key it was opened with, if any (a portal login;
    /// not a portal link, nor the admin token).
    pub key_hash: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[async_trait]
impl<B: Backend> Sessions for B {
    async fn start_session(&self, s: &SessionRecord) -> StoreResult<()> {
        self.execute(
            "DELETE FROM sessions WHERE expires_at <= $1",
            params![s.created_at],
        )
        .await?;
        let sql = "INSERT INTO sessions (id, creator_id, key_hash, created_at, expires_at)
                   VALUES ($1, $2, $3, $4, $5)";
        let p = params![
            &s.id,
            &s.creator_id,
            &s.key_hash,
            s.created_at,
            s.expires_at
        ];
        self.execute(sql, p).await?;
        Ok(())
    }

    async fn session_live(&self, id: &SessionId, now: DateTime<Utc>) -> StoreResult<bool> {
        let sql = "SELECT s.id FROM sessions s
                   WHERE s.id = $1 AND s.ended_at IS NULL AND s.expires_at > $2
                     AND (s.key_hash IS NULL OR EXISTS (SELECT 1 FROM api_keys k
                          WHERE k.hash = s.key_hash AND k.revoked_at IS NULL))";
        Ok(!self.query(sql, params![id, now]).await?.is_empty())
    }

    async fn end_session(&self, id: &SessionId, now: DateTime<Utc>) -> StoreResult<()> {
        let sql = "UPDATE sessions SET ended_at = COALESCE(ended_at, $2) WHERE id = $1";
        self.execute(sql, params![id, now]).await?;
        Ok(())
    }
}
