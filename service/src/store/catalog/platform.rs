//! Creators, their API keys and their mangoes: one statement text and one
//! row mapper each, for both backends (see [`crate::store::sql`]).

use super::Platform;
use super::OPERATIONAL_CREATOR;
use crate::store::decode::from_row;
use crate::store::sql::{params, touched, Backend, Row};
use crate::store::{
    ApiKey, ApiKeyId, Creator, CreatorId, Mango, MangoId, NewApiKey, PageRequest, Paged,
    StoreResult,
};
use async_trait::async_trait;

const CREATOR_COLS: &str = "id, name, timezone, created_at";
const KEY_COLS: &str = "id, creator_id, name, prefix, created_at, revoked_at";
const MANGO_COLS: &str = "id, creator_id, name, created_at";

fn creator(r: &Row) -> StoreResult<Creator> {
    Ok(from_row!(
        r,
        Creator {
            id,
            name,
            timezone,
            created_at
        }
    ))
}

fn api_key(r: &Row) -> StoreResult<ApiKey> {
    Ok(from_row!(
        r,
        ApiKey {
            id,
            creator_id,
            name,
            prefix,
            created_at,
            revoked_at
        }
    ))
}

fn mango(r: &Row) -> StoreResult<Mango> {
    Ok(from_row!(
        r,
        Mango {
            id,
            creator_id,
            name,
            created_at
        }
    ))
}

/// Reads one record from a row.
type Read<T> = fn(&Row) -> StoreResult<T>;

/// A page of a creator's rows of a table (its name, the columns its
/// reader takes, the reader), in id order (`id` gives the cursor); a
/// missing creator is `NotFound`.
async fn owned_page<B: Backend, T>(
    b: &B,
    (table, cols, read): (&str, &str, Read<T>),
    creator_id: &CreatorId,
    page: &PageRequest,
    id: fn(&T) -> String,
) -> StoreResult<Paged<T>> {
    b.get_creator(creator_id).await?;
    let sql = format!(
        "SELECT {cols} FROM {table}
         WHERE creator_id = $1 AND (CAST($2 AS TEXT) IS NULL OR id > $2) ORDER BY id LIMIT $3"
    );
    let p = params![creator_id, page.after_id()?, page.fetch()];
    let rows = b.query(&sql, p).await?;
    let rows = rows.iter().map(read).collect::<StoreResult<_>>()?;
    Ok(Paged::of(rows, page, id))
}

#[async_trait]
impl<B: Backend> Platform for B {
    async fn create_creator(&self, name: &str, tz: Option<&str>) -> StoreResult<Creator> {
        let sql = format!(
            "INSERT INTO creators ({CREATOR_COLS}) VALUES ($1, $2, $3, $4) RETURNING {CREATOR_COLS}"
        );
        creator(
            &self
                .query_one(&sql, params![&CreatorId::new(), name, tz, self.now()])
                .await?,
        )
    }

    async fn get_creator(&self, id: &CreatorId) -> StoreResult<Creator> {
        // The operational subscription's owner is no one's to see.
        let sql = format!("SELECT {CREATOR_COLS} FROM creators WHERE id = $1 AND id != $2");
        creator(
            &self
                .query_one(&sql, params![id, OPERATIONAL_CREATOR])
                .await?,
        )
    }

    async fn list_creators(&self, page: &PageRequest) -> StoreResult<Paged<Creator>> {
        let sql = format!(
            "SELECT {CREATOR_COLS} FROM creators
             WHERE (CAST($1 AS TEXT) IS NULL OR id > $1) AND id != $3 ORDER BY id LIMIT $2"
        );
        let p = params![page.after_id()?, page.fetch(), OPERATIONAL_CREATOR];
        let rows = self.query(&sql, p).await?;
        let rows = rows.iter().map(creator).collect::<StoreResult<_>>()?;
        Ok(Paged::of(rows, page, |c: &Creator| c.id.to_string()))
    }

    async fn create_api_key(&self, key: NewApiKey<'_>) -> StoreResult<ApiKey> {
        let NewApiKey {
            creator_id,
            name,
            prefix,
            hash,
        } = key;
        self.get_creator(creator_id).await?;
        let sql = format!(
            "INSERT INTO api_keys (id, creator_id, name, prefix, hash, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {KEY_COLS}"
        );
        let p = params![&ApiKeyId::new(), creator_id, name, prefix, hash, self.now()];
        api_key(&self.query_one(&sql, p).await?)
    }

    async fn list_api_keys(
        &self,
        creator_id: &CreatorId,
        page: &PageRequest,
    ) -> StoreResult<Paged<ApiKey>> {
        let keys = ("api_keys", KEY_COLS, api_key as Read<ApiKey>);
        owned_page(self, keys, creator_id, page, |k| k.id.to_string()).await
    }

    async fn revoke_api_key(&self, creator_id: &CreatorId, key_id: &ApiKeyId) -> StoreResult<()> {
        let sql = "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3)
                   WHERE id = $1 AND creator_id = $2";
        touched(
            self.execute(sql, params![key_id, creator_id, self.now()])
                .await?,
        )
    }

    async fn creator_for_key(&self, hash: &str) -> StoreResult<CreatorId> {
        let sql = "SELECT creator_id FROM api_keys WHERE hash = $1 AND revoked_at IS NULL";
        self.query_one(sql, params![hash]).await?.id(0)
    }

    async fn create_mango(&self, creator_id: &CreatorId, name: &str) -> StoreResult<Mango> {
        self.get_creator(creator_id).await?;
        let sql = format!(
            "INSERT INTO mangoes ({MANGO_COLS}) VALUES ($1, $2, $3, $4) RETURNING {MANGO_COLS}"
        );
        mango(
            &self
                .query_one(&sql, params![&MangoId::new(), creator_id, name, self.now()])
                .await?,
        )
    }

    async fn list_mangoes(
        &self,
        creator_id: &CreatorId,
        page: &PageRequest,
    ) -> StoreResult<Paged<Mango>> {
        let mangoes = ("mangoes", MANGO_COLS, mango as Read<Mango>);
        owned_page(self, mangoes, creator_id, page, |m| m.id.to_string()).await
    }
}
