//! [`Db`] for [`SqliteStore`]: each statement runs on the store's thread,
//! its `$n` placeholders as `?n`, instants as epoch milliseconds.

use super::SqliteStore;
use crate::store::sql::{sqlite_placeholders, Db, Row, Value};
use crate::store::{StoreError, StoreResult};
use async_trait::async_trait;
use rusqlite::types::{Value as Lite, ValueRef};
use rusqlite::Connection;

/// A parameter as SQLite stores it.
fn lite(v: &Value) -> Lite {
    match v {
        Value::Null => Lite::Null,
        Value::Int(n) => Lite::Integer(*n),
        Value::Bool(b) => Lite::Integer(i64::from(*b)),
        Value::Text(s) => Lite::Text(s.clone()),
        Value::Time(t) => Lite::Integer(t.timestamp_millis()),
    }
}

/// A column as the catalog reads it.
fn value(v: ValueRef) -> StoreResult<Value> {
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => Value::Int(n),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
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
        self.run(move |c| {
            let n = c
                .prepare_cached(&sql)?
                .execute(rusqlite::params_from_iter(params))?;
            Ok(n as u64)
        })
        .await
    }
}
