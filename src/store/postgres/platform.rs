//! SQL for creators, their API keys and their mangoes.

use super::{found, touched};
use crate::domain::ids::new_id;
use crate::store::*;
use crate::store::{ApiKey, Creator, Mango, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::{GenericClient, Row};

fn creator(r: &Row) -> Creator {
    Creator {
        id: r.get(0),
        name: r.get(1),
        timezone: r.get(2),
        created_at: r.get(3),
    }
}

pub async fn create_creator(
    c: &impl GenericClient,
    name: &str,
    tz: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<Creator> {
    let r = c
        .query_one(
            "INSERT INTO creators (id, name, timezone, created_at) VALUES ($1, $2, $3, $4)
             RETURNING id, name, timezone, created_at",
            &[&new_id(), &name, &tz, &now],
        )
        .await?;
    Ok(creator(&r))
}

pub async fn get_creator(c: &impl GenericClient, id: &str) -> StoreResult<Creator> {
    let r = c
        .query_opt(
            "SELECT id, name, timezone, created_at FROM creators WHERE id = $1",
            &[&id],
        )
        .await?;
    Ok(creator(&found(r)?))
}

pub async fn list_creators(c: &impl GenericClient) -> StoreResult<Vec<Creator>> {
    let rows = c
        .query(
            "SELECT id, name, timezone, created_at FROM creators ORDER BY id",
            &[],
        )
        .await?;
    Ok(rows.iter().map(creator).collect())
}

fn api_key(r: &Row) -> ApiKey {
    ApiKey {
        id: r.get(0),
        creator_id: r.get(1),
        name: r.get(2),
        prefix: r.get(3),
        created_at: r.get(4),
        revoked_at: r.get(5),
    }
}

const KEY_COLS: &str = "id, creator_id, name, prefix, created_at, revoked_at";

pub async fn create_api_key(
    c: &impl GenericClient,
    creator_id: &str,
    name: &str,
    prefix: &str,
    hash: &str,
    now: DateTime<Utc>,
) -> StoreResult<ApiKey> {
    get_creator(c, creator_id).await?;
    let r = c
        .query_one(
            &format!(
                "INSERT INTO api_keys (id, creator_id, name, prefix, hash, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING {KEY_COLS}"
            ),
            &[&new_id(), &creator_id, &name, &prefix, &hash, &now],
        )
        .await?;
    Ok(api_key(&r))
}

pub async fn list_api_keys(c: &impl GenericClient, creator_id: &str) -> StoreResult<Vec<ApiKey>> {
    get_creator(c, creator_id).await?;
    let rows = c
        .query(
            &format!("SELECT {KEY_COLS} FROM api_keys WHERE creator_id = $1 ORDER BY id"),
            &[&creator_id],
        )
        .await?;
    Ok(rows.iter().map(api_key).collect())
}

pub async fn revoke_api_key(
    c: &impl GenericClient,
    creator_id: &str,
    key: &str,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    touched(
        c.execute(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3)
             WHERE id = $1 AND creator_id = $2",
            &[&key, &creator_id, &now],
        )
        .await?,
    )
}

pub async fn creator_for_key(c: &impl GenericClient, hash: &str) -> StoreResult<String> {
    let r = c
        .query_opt(
            "SELECT creator_id FROM api_keys WHERE hash = $1 AND revoked_at IS NULL",
            &[&hash],
        )
        .await?;
    Ok(found(r)?.get(0))
}

fn mango(r: &Row) -> Mango {
    Mango {
        id: r.get(0),
        creator_id: r.get(1),
        name: r.get(2),
        created_at: r.get(3),
    }
}

pub async fn create_mango(
    c: &impl GenericClient,
    creator_id: &str,
    name: &str,
    now: DateTime<Utc>,
) -> StoreResult<Mango> {
    get_creator(c, creator_id).await?;
    let r = c
        .query_one(
            "INSERT INTO mangoes (id, creator_id, name, created_at) VALUES ($1, $2, $3, $4)
             RETURNING id, creator_id, name, created_at",
            &[&new_id(), &creator_id, &name, &now],
        )
        .await?;
    Ok(mango(&r))
}

pub async fn list_mangoes(c: &impl GenericClient, creator_id: &str) -> StoreResult<Vec<Mango>> {
    get_creator(c, creator_id).await?;
    let rows = c
        .query(
            "SELECT id, creator_id, name, created_at FROM mangoes WHERE creator_id = $1 ORDER BY id",
            &[&creator_id],
        )
        .await?;
    Ok(rows.iter().map(mango).collect())
}

#[async_trait]
impl Platform for super::PgStore {
    async fn create_creator(&self, name: &str, tz: Option<&str>) -> StoreResult<Creator> {
        create_creator(&**self.conn().await?, name, tz, self.clock.now()).await
    }
    async fn get_creator(&self, id: &str) -> StoreResult<Creator> {
        get_creator(&**self.conn().await?, id).await
    }
    async fn list_creators(&self) -> StoreResult<Vec<Creator>> {
        list_creators(&**self.conn().await?).await
    }
    async fn create_api_key(
        &self,
        creator: &str,
        name: &str,
        prefix: &str,
        hash: &str,
    ) -> StoreResult<ApiKey> {
        create_api_key(
            &**self.conn().await?,
            creator,
            name,
            prefix,
            hash,
            self.clock.now(),
        )
        .await
    }
    async fn list_api_keys(&self, creator: &str) -> StoreResult<Vec<ApiKey>> {
        list_api_keys(&**self.conn().await?, creator).await
    }
    async fn revoke_api_key(&self, creator: &str, key: &str) -> StoreResult<()> {
        revoke_api_key(&**self.conn().await?, creator, key, self.clock.now()).await
    }
    async fn creator_for_key(&self, hash: &str) -> StoreResult<String> {
        creator_for_key(&**self.conn().await?, hash).await
    }
    async fn create_mango(&self, creator: &str, name: &str) -> StoreResult<Mango> {
        create_mango(&**self.conn().await?, creator, name, self.clock.now()).await
    }
    async fn list_mangoes(&self, creator: &str) -> StoreResult<Vec<Mango>> {
        list_mangoes(&**self.conn().await?, creator).await
    }
}
