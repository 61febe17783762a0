//! One statement text for both backends: the catalog's SQL is written once,
//! with `$1`-style placeholders, against [`Db`], and each backend runs it in
//! its own dialect. Parameters and columns travel as [`Value`]s, so one row
//! mapper per type reads either backend's rows; the two store instants
//! differently (SQLite: epoch milliseconds, PostgreSQL: `timestamptz`), and
//! [`Row::time`] reads both, so neither schema changes. This module owns the
//! shape of that exchange; the executors are `sqlite::db` and `postgres::db`.

use super::{Change, StoreError, StoreResult};
use crate::domain::ids::Id;
use crate::domain::status::{
    DeliveryStatus, ReminderStatus, Status, SubscriptionStatus, WebinarStatus,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A statement parameter or a column value, in terms both backends speak.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Bool(bool),
    Text(String),
    /// An instant: milliseconds in SQLite, `timestamptz` in PostgreSQL.
    Time(DateTime<Utc>),
    /// A body as sent: a BLOB, or `bytea`.
    Bytes(Vec<u8>),
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_owned())
    }
}

impl From<&String> for Value {
    fn from(s: &String) -> Self {
        Value::Text(s.clone())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}

impl<T: Id> From<&T> for Value {
    fn from(id: &T) -> Self {
        Value::Text(id.as_str().to_owned())
    }
}

impl<T: Id> From<&Option<T>> for Value {
    fn from(v: &Option<T>) -> Self {
        v.as_ref().into()
    }
}

macro_rules! status_values {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(s: $t) -> Self {
                Value::Text(s.as_str().to_owned())
            }
        }
    )*};
}
status_values!(
    WebinarStatus,
    ReminderStatus,
    DeliveryStatus,
    SubscriptionStatus
);

impl From<&Vec<u8>> for Value {
    fn from(b: &Vec<u8>) -> Self {
        Value::Bytes(b.clone())
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Int(n)
    }
}

impl From<u32> for Value {
    fn from(n: u32) -> Self {
        Value::Int(n.into())
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<DateTime<Utc>> for Value {
    fn from(t: DateTime<Utc>) -> Self {
        Value::Time(t)
    }
}

impl From<&Option<String>> for Value {
    fn from(v: &Option<String>) -> Self {
        v.as_deref().into()
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// Parameters from a list of anything that is a [`Value`].
macro_rules! params {
    ($($v:expr),* $(,)?) => {
        &[$($crate::store::sql::Value::from($v)),*][..]
    };
}
pub(crate) use params;

/// One result row, its columns in the statement's order.
#[derive(Clone, Debug, Default)]
pub struct Row(pub Vec<Value>);

impl Row {
    fn col(&self, i: usize) -> StoreResult<&Value> {
        self.0.get(i).ok_or_else(|| bad(i, "missing"))
    }

    /// Whether column `i` is null.
    pub fn is_null(&self, i: usize) -> StoreResult<bool> {
        Ok(matches!(self.col(i)?, Value::Null))
    }

    /// A text column.
    pub fn text(&self, i: usize) -> StoreResult<String> {
        self.opt_text(i)?.ok_or_else(|| bad(i, "null"))
    }

    /// An id column: one the store wrote, so taken unchecked.
    pub fn id<T: Id>(&self, i: usize) -> StoreResult<T> {
        self.text(i).map(T::trusted)
    }

    /// A nullable id column.
    pub fn opt_id<T: Id>(&self, i: usize) -> StoreResult<Option<T>> {
        Ok(self.opt_text(i)?.map(T::trusted))
    }

    /// A status column: one of its enum's words, or a store error.
    pub fn status<T: Status>(&self, i: usize) -> StoreResult<T> {
        let word = self.text(i)?;
        T::parse(&word)
            .ok_or_else(|| anyhow::anyhow!("unknown {} status {word:?} in the store", T::OF).into())
    }

    /// A nullable text column.
    pub fn opt_text(&self, i: usize) -> StoreResult<Option<String>> {
        match self.col(i)? {
            Value::Null => Ok(None),
            Value::Text(s) => Ok(Some(s.clone())),
            _ => Err(bad(i, "not text")),
        }
    }

    /// An integer column.
    pub fn int(&self, i: usize) -> StoreResult<i64> {
        match self.col(i)? {
            Value::Int(n) => Ok(*n),
            Value::Bool(b) => Ok(i64::from(*b)),
            _ => Err(bad(i, "not an integer")),
        }
    }

    /// A nullable integer column.
    pub fn opt_int(&self, i: usize) -> StoreResult<Option<i64>> {
        match self.col(i)? {
            Value::Null => Ok(None),
            _ => self.int(i).map(Some),
        }
    }

    /// A binary column (a BLOB, or `bytea`).
    pub fn bytes(&self, i: usize) -> StoreResult<Vec<u8>> {
        match self.col(i)? {
            Value::Bytes(b) => Ok(b.clone()),
            _ => Err(bad(i, "not bytes")),
        }
    }

    /// A boolean column (SQLite keeps them as 0 and 1).
    pub fn bool(&self, i: usize) -> StoreResult<bool> {
        Ok(self.int(i)? != 0)
    }

    /// An instant, stored either way.
    pub fn time(&self, i: usize) -> StoreResult<DateTime<Utc>> {
        self.opt_time(i)?.ok_or_else(|| bad(i, "null"))
    }

    /// A nullable instant.
    pub fn opt_time(&self, i: usize) -> StoreResult<Option<DateTime<Utc>>> {
        match self.col(i)? {
            Value::Null => Ok(None),
            Value::Time(t) => Ok(Some(*t)),
            Value::Int(ms) => Ok(Some(
                DateTime::from_timestamp_millis(*ms).unwrap_or_default(),
            )),
            _ => Err(bad(i, "not an instant")),
        }
    }
}

/// A column that is not what its mapper expects: a bug, not a client error.
fn bad(i: usize, what: &str) -> StoreError {
    StoreError::Other(anyhow::anyhow!("column {i}: {what}"))
}

/// Runs the catalog's statements on one backend. Statements use `$1`,
/// `$2`… (rewritten for SQLite); everything else in their text is SQL both
/// backends accept (`RETURNING`, `ON CONFLICT`, `COALESCE`).
#[async_trait]
pub trait Db: Send + Sync {
    /// The rows a statement answers.
    async fn query(&self, sql: &str, params: &[Value]) -> StoreResult<Vec<Row>>;
    /// How many rows a statement changed.
    async fn execute(&self, sql: &str, params: &[Value]) -> StoreResult<u64>;

    /// The one row a statement answers, or `NotFound`.
    async fn query_one(&self, sql: &str, params: &[Value]) -> StoreResult<Row> {
        self.query(sql, params)
            .await?
            .into_iter()
            .next()
            .ok_or(StoreError::NotFound)
    }
}

/// Statements in one transaction: committed by [`Tx::commit`], rolled back
/// when dropped without it. While one is open on SQLite, the store's thread
/// serves it alone: code holding a `Tx` must not call the store itself.
#[async_trait]
pub trait Tx: Db {
    /// Makes the transaction's writes durable and visible.
    async fn commit(self: Box<Self>) -> StoreResult<()>;

    /// Waits for any other transaction serialised on `key`, and keeps
    /// them waiting until this one ends: two identical writes at once make
    /// one row. Each backend says how it serialises.
    async fn serialize_on(&self, key: &str) -> StoreResult<()>;

    /// Tells every instance sharing the store, when this transaction
    /// commits, what it changed (new work for a subscription, a changed
    /// subscription, a changed schedule), so their lanes and schedulers
    /// act on it. Each backend says how it tells them.
    async fn announce(&self, change: &Change) -> StoreResult<()>;
}

/// A backend the catalog is written against: its statements, its
/// transactions and its clock.
#[async_trait]
pub trait Backend: Db + 'static {
    /// The run's one notion of now, for `created_at` and the like.
    fn now(&self) -> DateTime<Utc>;

    /// Opens a transaction.
    async fn begin(&self) -> StoreResult<Box<dyn Tx>>;

    /// Runs `body` in a transaction of its own ([`Backend::begin`]);
    /// `body` commits. Each backend says whether a failed transaction may
    /// simply be run again.
    async fn transact<T, F, Fut>(&self, body: F) -> StoreResult<T>
    where
        F: Fn(Box<dyn Tx>) -> Fut + Send + Sync,
        Fut: std::future::Future<Output = StoreResult<T>> + Send,
        T: Send;
}

/// `$1`-style placeholders as SQLite's `?1`. A `$` followed by a digit
/// means nothing else in the catalog's statements (no dollar quoting).
pub fn sqlite_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

/// Fails with `NotFound` when an update touched nothing.
pub fn touched(n: u64) -> StoreResult<()> {
    if n == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

#[cfg(test)]
#[path = "sql_tests.rs"]
mod tests;
