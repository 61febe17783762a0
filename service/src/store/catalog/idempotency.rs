//! Remembered answers for `Idempotency-Key` ([`crate::store::idempotency`]):
//! one statement text each, for both backends, shared by every instance on
//! PostgreSQL.

use super::Idempotency;
use crate::store::sql::{params, Backend, Row};
use crate::store::{Remembered, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

const COLS: &str = "caller, key, request_hash, status, body, created_at";

fn remembered(r: &Row) -> StoreResult<Remembered> {
    Ok(Remembered {
        caller: r.text(0)?,
        key: r.text(1)?,
        request_hash: r.text(2)?,
        status: u16::try_from(r.int(3)?).unwrap_or(500),
        body: r.bytes(4)?,
        created_at: r.time(5)?,
    })
}

#[async_trait]
impl<B: Backend> Idempotency for B {
    async fn remembered(
        &self,
        caller: &str,
        key: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<Option<Remembered>> {
        let sql = format!(
            "SELECT {COLS} FROM idempotency WHERE caller = $1 AND key = $2 AND created_at >= $3"
        );
        let rows = self.query(&sql, params![caller, key, since]).await?;
        rows.first().map(remembered).transpose()
    }

    async fn remember(
        &self,
        r: &Remembered,
        since: DateTime<Utc>,
        stale: DateTime<Utc>,
    ) -> StoreResult<Remembered> {
        self.execute(
            "DELETE FROM idempotency WHERE created_at < $1 OR (status = 0 AND created_at < $2)",
            params![since, stale],
        )
        .await?;
        let sql = format!(
            "INSERT INTO idempotency ({COLS}) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (caller, key) DO NOTHING"
        );
        let p = params![
            &r.caller,
            &r.key,
            &r.request_hash,
            u32::from(r.status),
            &r.body,
            r.created_at
        ];
        self.execute(&sql, p).await?;
        Ok(self
            .remembered(&r.caller, &r.key, since)
            .await?
            .unwrap_or_else(|| r.clone()))
    }

    async fn settle(&self, r: &Remembered, marker: &[u8]) -> StoreResult<()> {
        let sql = "UPDATE idempotency SET status = $3, body = $4
                   WHERE caller = $1 AND key = $2 AND status = 0 AND body = $5";
        let marker = marker.to_vec();
        let p = params![&r.caller, &r.key, u32::from(r.status), &r.body, &marker];
        self.execute(sql, p).await.map(drop)
    }

    async fn forget(&self, caller: &str, key: &str, marker: &[u8]) -> StoreResult<()> {
        let sql =
            "DELETE FROM idempotency WHERE caller = $1 AND key = $2 AND status = 0 AND body = $3";
        let marker = marker.to_vec();
        self.execute(sql, params![caller, key, &marker])
            .await
            .map(drop)
    }
}
