//! [`Db`] for [`SqliteStore`]: each statement runs on the store's thread,
//! its `$n` placeholders as `?n`, instants as epoch milliseconds. A
//! transaction holds the thread: it serves that transaction's statements
//! alone until it commits or is dropped (a rollback), as the one-call
//! transactions of the engine do.

use super::{Msg, SqliteStore};
use crate::store::sql::{sqlite_placeholders, Backend, Db, Row, Tx, Value};
use crate::store::{Change, StoreError, StoreResult};
use async_trait::async_trait;
use rusqlite::types::{Value as Lite, ValueRef};
use rusqlite::Connection;
use tokio::sync::oneshot;

/// Ids bind as their text, borrowed (nothing copied per row), and read back
/// unchecked: the store wrote them.
macro_rules! lite_ids {
    ($($t:ty),*) => {$(
        impl rusqlite::ToSql for $t {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(rusqlite::types::ToSqlOutput::Borrowed(ValueRef::Text(
                    self.as_str().as_bytes(),
                )))
            }
        }

        impl rusqlite::types::FromSql for $t {
            fn column_result(v: ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                String::column_result(v).map(crate::domain::ids::Id::trusted)
            }
        }
    )*};
}
crate::domain::ids::for_each_id!(lite_ids);
lite_ids!(crate::domain::instance::InstanceId);

/// A slice's id binds and reads as the row's integer.
impl rusqlite::ToSql for crate::store::SliceId {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        self.0.to_sql()
    }
}

impl rusqlite::types::FromSql for crate::store::SliceId {
    fn column_result(v: ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        i64::column_result(v).map(crate::store::SliceId)
    }
}

/// A parameter as SQLite stores it.
fn lite(v: &Value) -> Lite {
    match v {
        Value::Null => Lite::Null,
        Value::Int(n) => Lite::Integer(*n),
        Value::Bool(b) => Lite::Integer(i64::from(*b)),
        Value::Text(s) => Lite::Text(s.clone()),
        Value::Time(t) => Lite::Integer(t.timestamp_millis()),
        Value::Bytes(b) => Lite::Blob(b.clone()),
    }
}

/// A column as the catalog reads it.
fn value(v: ValueRef) -> StoreResult<Value> {
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => Value::Int(n),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
        other => {
            let kind = other.data_type();
            return Err(StoreError::Other(anyhow::anyhow!(
                "a {kind} column the catalog does not read"
            )));
        }
    })
}

/// Runs one statement and gathers its rows.
fn query(c: &Connection, sql: &str, params: Vec<Lite>) -> StoreResult<Vec<Row>> {
    let mut st = c.prepare_cached(sql)?;
    let n = st.column_count();
    let mut rows = st.query(rusqlite::params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let cols = (0..n)
            .map(|i| value(r.get_ref(i)?))
            .collect::<StoreResult<_>>()?;
        out.push(Row(cols));
    }
    Ok(out)
}

#[async_trait]
impl Db for SqliteStore {
    async fn query(&self, sql: &str, params: &[Value]) -> StoreResult<Vec<Row>> {
        let (sql, params) = (sqlite_placeholders(sql), params.iter().map(lite).collect());
        self.run(move |c| query(c, &sql, params)).await
    }

    async fn execute(&self, sql: &str, params: &[Value]) -> StoreResult<u64> {
        let sql = sqlite_placeholders(sql);
        let params: Vec<Lite> = params.iter().map(lite).collect();
        self.run(move |c| execute(c, &sql, params)).await
    }
}

/// What a transaction asks of the thread it holds.
enum Step {
    Query(String, Vec<Lite>, oneshot::Sender<StoreResult<Vec<Row>>>),
    Execute(String, Vec<Lite>, oneshot::Sender<StoreResult<u64>>),
    Commit(oneshot::Sender<StoreResult<()>>),
}

/// Runs one statement that answers no rows but a count.
fn execute(c: &Connection, sql: &str, params: Vec<Lite>) -> StoreResult<u64> {
    let n = c
        .prepare_cached(sql)?
        .execute(rusqlite::params_from_iter(params))?;
    Ok(n as u64)
}

/// On the store's thread: serves one transaction's steps until it commits
/// or its handle is dropped (the sender gone: roll back).
fn serve(
    c: &mut Connection,
    steps: std::sync::mpsc::Receiver<Step>,
    began: oneshot::Sender<StoreResult<()>>,
) {
    if let Err(e) = c.execute_batch("BEGIN IMMEDIATE") {
        let _ = began.send(Err(e.into()));
        return;
    }
    let _ = began.send(Ok(()));
    for step in steps {
        match step {
            Step::Query(sql, p, reply) => {
                let _ = reply.send(query(c, &sql, p));
            }
            Step::Execute(sql, p, reply) => {
                let _ = reply.send(execute(c, &sql, p));
            }
            Step::Commit(reply) => {
                let _ = reply.send(c.execute_batch("COMMIT").map_err(Into::into));
                return;
            }
        }
    }
    if let Err(e) = c.execute_batch("ROLLBACK") {
        tracing::error!(error = %e, "rolling back a catalog transaction");
    }
}

/// An open transaction on the store's thread.
struct SqliteTx {
    steps: std::sync::mpsc::Sender<Step>,
}

/// The thread stopped (or the store was closed) under a transaction.
fn gone() -> StoreError {
    StoreError::Other(anyhow::anyhow!("the SQLite thread has stopped"))
}

impl SqliteTx {
    async fn ask<T>(
        &self,
        step: impl FnOnce(oneshot::Sender<StoreResult<T>>) -> Step,
    ) -> StoreResult<T> {
        let (tx, rx) = oneshot::channel();
        self.steps.send(step(tx)).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

#[async_trait]
impl Db for SqliteTx {
    async fn query(&self, sql: &str, params: &[Value]) -> StoreResult<Vec<Row>> {
        let (sql, params) = (sqlite_placeholders(sql), params.iter().map(lite).collect());
        self.ask(|r| Step::Query(sql, params, r)).await
    }

    async fn execute(&self, sql: &str, params: &[Value]) -> StoreResult<u64> {
        let (sql, params) = (sqlite_placeholders(sql), params.iter().map(lite).collect());
        self.ask(|r| Step::Execute(sql, params, r)).await
    }
}

#[async_trait]
impl Tx for SqliteTx {
    async fn commit(self: Box<Self>) -> StoreResult<()> {
        self.ask(Step::Commit).await
    }

    /// The store's thread serves one transaction at a time: holding this
    /// one already keeps every other waiting.
    async fn serialize_on(&self, _key: &str) -> StoreResult<()> {
        Ok(())
    }

    /// The file is this process's alone (`file`): no other instance shares
    /// it, and this one's own components were told by the caller.
    async fn announce(&self, _change: &Change) -> StoreResult<()> {
        Ok(())
    }
}

#[async_trait]
impl Backend for SqliteStore {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    async fn begin(&self) -> StoreResult<Box<dyn Tx>> {
        let (steps, queue) = std::sync::mpsc::channel();
        let (began, ready) = oneshot::channel();
        let call: super::Call = Box::new(move |c| serve(c, queue, began));
        self.calls.send(Msg::Call(call)).map_err(|_| gone())?;
        ready.await.map_err(|_| gone())??;
        Ok(Box::new(SqliteTx { steps }))
    }

    /// Run once: with one transaction at a time there is no race to lose
    /// and nothing to run again.
    async fn transact<T, F, Fut>(&self, body: F) -> StoreResult<T>
    where
        F: Fn(Box<dyn Tx>) -> Fut + Send + Sync,
        Fut: std::future::Future<Output = StoreResult<T>> + Send,
        T: Send,
    {
        body(self.begin().await?).await
    }
}
