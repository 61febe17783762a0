//! [`Db`] for [`PgStore`]: each statement on a pooled connection, prepared
//! once per connection; parameters are converted to the types the server
//! says the statement takes, and columns read by the types it answers. A
//! transaction holds one pooled connection from `BEGIN` to `COMMIT`; one
//! dropped unfinished is rolled back before its connection goes back.

use super::notify;
use super::PgStore;
use crate::store::sql::{Backend, Db, Row, Tx, Value};
use crate::store::{Change, StoreError, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::types::{ToSql, Type};

/// Ids bind as their text and read back unchecked: the store wrote them.
macro_rules! pg_ids {
    ($($t:ty),*) => {$(
        impl ToSql for $t {
            fn to_sql(
                &self,
                ty: &Type,
                out: &mut bytes::BytesMut,
            ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
                self.as_str().to_sql(ty, out)
            }

            fn accepts(ty: &Type) -> bool {
                <&str as ToSql>::accepts(ty)
            }

            tokio_postgres::types::to_sql_checked!();
        }

        impl<'a> tokio_postgres::types::FromSql<'a> for $t {
            fn from_sql(
                ty: &Type,
                raw: &'a [u8],
            ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
                String::from_sql(ty, raw).map(crate::domain::ids::Id::trusted)
            }

            fn accepts(ty: &Type) -> bool {
                <String as tokio_postgres::types::FromSql>::accepts(ty)
            }
        }
    )*};
}
crate::domain::ids::for_each_id!(pg_ids);
pg_ids!(crate::domain::instance::InstanceId);

/// A slice's id binds and reads as the row's `bigint`.
impl ToSql for crate::store::SliceId {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.0.to_sql(ty, out)
    }

    fn accepts(ty: &Type) -> bool {
        <i64 as ToSql>::accepts(ty)
    }

    tokio_postgres::types::to_sql_checked!();
}

impl<'a> tokio_postgres::types::FromSql<'a> for crate::store::SliceId {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        i64::from_sql(ty, raw).map(crate::store::SliceId)
    }

    fn accepts(ty: &Type) -> bool {
        <i64 as tokio_postgres::types::FromSql>::accepts(ty)
    }
}

/// A parameter, boxed as the Rust type the server's `ty` takes.
type Param = Box<dyn ToSql + Sync + Send>;

/// `v` as a parameter of type `ty`.
fn param(v: &Value, ty: &Type) -> StoreResult<Param> {
    let p: Param = match (v, ty) {
        (Value::Null, &Type::INT8) => Box::new(None::<i64>),
        (Value::Null, &Type::INT4) => Box::new(None::<i32>),
        (Value::Null, &Type::BOOL) => Box::new(None::<bool>),
        (Value::Null, &Type::TIMESTAMPTZ) => Box::new(None::<DateTime<Utc>>),
        (Value::Null, &Type::BYTEA) => Box::new(None::<Vec<u8>>),
        (Value::Null, _) => Box::new(None::<String>),
        (Value::Int(n), &Type::INT8) => Box::new(*n),
        (Value::Int(n), &Type::INT4) => Box::new(i32::try_from(*n).map_err(wrong)?),
        (Value::Int(n), &Type::INT2) => Box::new(i16::try_from(*n).map_err(wrong)?),
        (Value::Int(n), &Type::BOOL) => Box::new(*n != 0),
        (Value::Bool(b), &Type::BOOL) => Box::new(*b),
        (Value::Text(s), _) => Box::new(s.clone()),
        (Value::Time(t), &Type::TIMESTAMPTZ) => Box::new(*t),
        (Value::Bytes(b), &Type::BYTEA) => Box::new(b.clone()),
        (v, ty) => return Err(wrong(format!("{v:?} as a {ty} parameter"))),
    };
    Ok(p)
}

/// A parameter or a column of a type the catalog does not use: a bug.
fn wrong(e: impl std::fmt::Display) -> StoreError {
    StoreError::Other(anyhow::anyhow!("PostgreSQL value: {e}"))
}

/// Column `i` of `r`, as a [`Value`].
fn column(r: &tokio_postgres::Row, i: usize) -> StoreResult<Value> {
    let ty = r.columns()[i].type_();
    let v = match *ty {
        Type::INT8 => r.try_get::<_, Option<i64>>(i)?.map(Value::Int),
        Type::INT4 => r
            .try_get::<_, Option<i32>>(i)?
            .map(|n| Value::Int(n.into())),
        Type::INT2 => r
            .try_get::<_, Option<i16>>(i)?
            .map(|n| Value::Int(n.into())),
        Type::BOOL => r.try_get::<_, Option<bool>>(i)?.map(Value::Bool),
        Type::TIMESTAMPTZ => r.try_get::<_, Option<DateTime<Utc>>>(i)?.map(Value::Time),
        Type::BYTEA => r.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Bytes),
        _ => r.try_get::<_, Option<String>>(i)?.map(Value::Text),
    };
    Ok(v.unwrap_or(Value::Null))
}

/// A server row as a [`Row`].
fn row(r: &tokio_postgres::Row) -> StoreResult<Row> {
    (0..r.len())
        .map(|i| column(r, i))
        .collect::<StoreResult<_>>()
        .map(Row)
}

/// The statement, prepared on `conn`, and its parameters in its types.
async fn prepare(
    conn: &deadpool_postgres::Object,
    sql: &str,
    params: &[Value],
) -> StoreResult<(tokio_postgres::Statement, Vec<Param>)> {
    let st = conn.prepare_cached(sql).await?;
    let params = params
        .iter()
        .zip(st.params())
        .map(|(v, ty)| param(v, ty))
        .collect::<StoreResult<_>>()?;
    Ok((st, params))
}

/// Borrowed for tokio-postgres's calls.
fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect()
}

#[async_trait]
impl Db for PgStore {
    async fn query(&self, sql: &str, params: &[Value]) -> StoreResult<Vec<Row>> {
        let conn = self.conn().await?;
        let (st, params) = prepare(&conn, sql, params).await?;
        conn.query(&st, &refs(&params))
            .await?
            .iter()
            .map(row)
            .collect()
    }

    async fn execute(&self, sql: &str, params: &[Value]) -> StoreResult<u64> {
        let conn = self.conn().await?;
        let (st, params) = prepare(&conn, sql, params).await?;
        Ok(conn.execute(&st, &refs(&params)).await?)
    }
}

/// An open transaction on one pooled connection.
struct PgTx {
    /// `None` once committed.
    conn: Option<deadpool_postgres::Object>,
    /// Where this store's changes are announced.
    channel: String,
}

impl PgTx {
    fn conn(&self) -> &deadpool_postgres::Object {
        self.conn
            .as_ref()
            .expect("a transaction is used only until it commits")
    }
}

impl Drop for PgTx {
    fn drop(&mut self) {
        // Unfinished (an error, a cancelled request): roll back before the
        // connection goes back to the pool, which does not check.
        if let Some(conn) = self.conn.take() {
            tokio::spawn(async move {
                if conn.batch_execute("ROLLBACK").await.is_err() {
                    let _ = deadpool_postgres::Object::take(conn);
                }
            });
        }
    }
}

#[async_trait]
impl Db for PgTx {
    async fn query(&self, sql: &str, params: &[Value]) -> StoreResult<Vec<Row>> {
        let (st, params) = prepare(self.conn(), sql, params).await?;
        self.conn()
            .query(&st, &refs(&params))
            .await?
            .iter()
            .map(row)
            .collect()
    }

    async fn execute(&self, sql: &str, params: &[Value]) -> StoreResult<u64> {
        let (st, params) = prepare(self.conn(), sql, params).await?;
        Ok(self.conn().execute(&st, &refs(&params)).await?)
    }
}

#[async_trait]
impl Tx for PgTx {
    async fn commit(mut self: Box<Self>) -> StoreResult<()> {
        let conn = self.conn.take().expect("committed once");
        conn.batch_execute("COMMIT").await?;
        Ok(())
    }

    async fn serialize_on(&self, key: &str) -> StoreResult<()> {
        let sql = "SELECT pg_advisory_xact_lock(hashtext($1))";
        self.execute(sql, &[Value::from(key)]).await.map(drop)
    }

    /// A `NOTIFY` on the store's channel, which PostgreSQL delivers to
    /// every listening instance when the transaction commits (and drops
    /// if it rolls back).
    async fn announce(&self, change: &Change) -> StoreResult<()> {
        let Some(payload) = notify::payload(change) else {
            return Ok(());
        };
        let p = [Value::from(&self.channel), Value::from(payload)];
        self.execute("SELECT pg_notify($1, $2)", &p).await.map(drop)
    }
}

#[async_trait]
impl Backend for PgStore {
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    async fn begin(&self) -> StoreResult<Box<dyn Tx>> {
        let conn = self.conn().await?;
        conn.batch_execute("BEGIN").await?;
        let channel = self.channel.clone();
        Ok(Box::new(PgTx {
            conn: Some(conn),
            channel,
        }))
    }

    /// Run again (up to three times) when the server chose the
    /// transaction as a deadlock's victim, or could not serialise it.
    async fn transact<T, F, Fut>(&self, body: F) -> StoreResult<T>
    where
        F: Fn(Box<dyn Tx>) -> Fut + Send + Sync,
        Fut: std::future::Future<Output = StoreResult<T>> + Send,
        T: Send,
    {
        let mut tries = 0;
        loop {
            match body(self.begin().await?).await {
                Err(e) if tries < 3 && super::retryable(&e) => {
                    tries += 1;
                    tracing::warn!(
                        tries,
                        "transaction chosen as a deadlock victim; running it again"
                    );
                }
                done => return done,
            }
        }
    }
}
