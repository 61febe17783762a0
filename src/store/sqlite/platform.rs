//! SQL for creators, their API keys and their mangoes.

use super::{at, at_opt, ms, touched};
use super::{own, own_opt};
use crate::domain::ids::new_id;
use crate::store::*;
use crate::store::{ApiKey, Creator, Mango, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

fn creator(r: &Row) -> rusqlite::Result<Creator> {
    Ok(Creator {
        id: r.get(0)?,
        name: r.get(1)?,
        timezone: r.get(2)?,
        created_at: at(r.get(3)?),
    })
}

pub fn create_creator(
    c: &Connection,
    name: &str,
    tz: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<Creator> {
    let id = new_id();
    c.execute(
        "INSERT INTO creators (id, name, timezone, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![id, name, tz, ms(now)],
    )?;
    get_creator(c, &id)
}

pub fn get_creator(c: &Connection, id: &str) -> StoreResult<Creator> {
    Ok(c.query_row(
        "SELECT id, name, timezone, created_at FROM creators WHERE id = ?1",
        [id],
        creator,
    )?)
}

pub fn list_creators(c: &Connection) -> StoreResult<Vec<Creator>> {
    let mut st = c.prepare("SELECT id, name, timezone, created_at FROM creators ORDER BY id")?;
    let rows = st.query_map([], creator)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

fn api_key(r: &Row) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: r.get(0)?,
        creator_id: r.get(1)?,
        name: r.get(2)?,
        prefix: r.get(3)?,
        created_at: at(r.get(4)?),
        revoked_at: at_opt(r.get(5)?),
    })
}

const KEY_COLS: &str = "id, creator_id, name, prefix, created_at, revoked_at";

pub fn create_api_key(
    c: &Connection,
    creator_id: &str,
    name: &str,
    prefix: &str,
    hash: &str,
    now: DateTime<Utc>,
) -> StoreResult<ApiKey> {
    get_creator(c, creator_id)?;
    let id = new_id();
    c.execute(
        "INSERT INTO api_keys (id, creator_id, name, prefix, hash, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id, creator_id, name, prefix, hash, ms(now)],
    )?;
    Ok(c.query_row(
        &format!("SELECT {KEY_COLS} FROM api_keys WHERE id = ?1"),
        [&id],
        api_key,
    )?)
}

pub fn list_api_keys(c: &Connection, creator_id: &str) -> StoreResult<Vec<ApiKey>> {
    get_creator(c, creator_id)?;
    let mut st = c.prepare(&format!(
        "SELECT {KEY_COLS} FROM api_keys WHERE creator_id = ?1 ORDER BY id"
    ))?;
    let rows = st
        .query_map([creator_id], api_key)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub fn revoke_api_key(
    c: &Connection,
    creator_id: &str,
    key_id: &str,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    touched(c.execute(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?3)
         WHERE id = ?1 AND creator_id = ?2",
        params![key_id, creator_id, ms(now)],
    )?)
}

pub fn creator_for_key(c: &Connection, hash: &str) -> StoreResult<String> {
    c.query_row(
        "SELECT creator_id FROM api_keys WHERE hash = ?1 AND revoked_at IS NULL",
        [hash],
        |r| r.get(0),
    )
    .optional()?
    .ok_or(crate::store::StoreError::NotFound)
}

fn mango(r: &Row) -> rusqlite::Result<Mango> {
    Ok(Mango {
        id: r.get(0)?,
        creator_id: r.get(1)?,
        name: r.get(2)?,
        created_at: at(r.get(3)?),
    })
}

pub fn create_mango(
    c: &Connection,
    creator_id: &str,
    name: &str,
    now: DateTime<Utc>,
) -> StoreResult<Mango> {
    get_creator(c, creator_id)?;
    let id = new_id();
    c.execute(
        "INSERT INTO mangoes (id, creator_id, name, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![id, creator_id, name, ms(now)],
    )?;
    Ok(c.query_row(
        "SELECT id, creator_id, name, created_at FROM mangoes WHERE id = ?1",
        [&id],
        mango,
    )?)
}

pub fn list_mangoes(c: &Connection, creator_id: &str) -> StoreResult<Vec<Mango>> {
    get_creator(c, creator_id)?;
    let mut st = c.prepare(
        "SELECT id, creator_id, name, created_at FROM mangoes WHERE creator_id = ?1 ORDER BY id",
    )?;
    let rows = st
        .query_map([creator_id], mango)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

#[async_trait]
impl Platform for super::SqliteStore {
    async fn create_creator(&self, name: &str, tz: Option<&str>) -> StoreResult<Creator> {
        let now = self.clock.now();
        let (name, tz) = (own(name), own_opt(tz));
        self.run(move |c| create_creator(c, &name, tz.as_deref(), now))
            .await
    }
    async fn get_creator(&self, id: &str) -> StoreResult<Creator> {
        let id = own(id);
        self.run(move |c| get_creator(c, &id)).await
    }
    async fn list_creators(&self) -> StoreResult<Vec<Creator>> {
        self.run(|c| list_creators(c)).await
    }
    async fn create_api_key(
        &self,
        creator: &str,
        name: &str,
        prefix: &str,
        hash: &str,
    ) -> StoreResult<ApiKey> {
        let now = self.clock.now();
        let (creator, name, prefix, hash) = (own(creator), own(name), own(prefix), own(hash));
        self.run(move |c| create_api_key(c, &creator, &name, &prefix, &hash, now))
            .await
    }
    async fn list_api_keys(&self, creator: &str) -> StoreResult<Vec<ApiKey>> {
        let creator = own(creator);
        self.run(move |c| list_api_keys(c, &creator)).await
    }
    async fn revoke_api_key(&self, creator: &str, key: &str) -> StoreResult<()> {
        let now = self.clock.now();
        let (creator, key) = (own(creator), own(key));
        self.run(move |c| revoke_api_key(c, &creator, &key, now))
            .await
    }
    async fn creator_for_key(&self, hash: &str) -> StoreResult<String> {
        let hash = own(hash);
        self.run(move |c| creator_for_key(c, &hash)).await
    }
    async fn create_mango(&self, creator: &str, name: &str) -> StoreResult<Mango> {
        let now = self.clock.now();
        let (creator, name) = (own(creator), own(name));
        self.run(move |c| create_mango(c, &creator, &name, now))
            .await
    }
    async fn list_mangoes(&self, creator: &str) -> StoreResult<Vec<Mango>> {
        let creator = own(creator);
        self.run(move |c| list_mangoes(c, &creator)).await
    }
}
