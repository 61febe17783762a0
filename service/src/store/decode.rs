//! Typed reading of the catalog's rows, written once for both backends: each
//! column type knows how it is read ([`Column`]: text, integers, flags,
//! instants, ids, statuses, and `Option` of any for a nullable column), and
//! a struct reads from a row with its fields named in the statement's
//! column order ([`from_row!`]). A mapper then names each field once and
//! lets its type choose how the column is read: no column number and no
//! reading method to keep in step with the `SELECT` by hand.

use super::sql::Row;
use super::StoreResult;
use crate::domain::ids::Id;
use crate::domain::status::{DeliveryStatus, ReminderStatus, SubscriptionStatus, WebinarStatus};
use chrono::{DateTime, Utc};

/// A value one column is read as.
pub trait Column: Sized {
    fn read(r: &Row, i: usize) -> StoreResult<Self>;
}

impl Column for String {
    fn read(r: &Row, i: usize) -> StoreResult<Self> {
        r.text(i)
    }
}

impl Column for i64 {
    fn read(r: &Row, i: usize) -> StoreResult<Self> {
        r.int(i)
    }
}

/// Counts and settings the store wrote from a `u32`.
impl Column for u32 {
    fn read(r: &Row, i: usize) -> StoreResult<Self> {
        Ok(r.int(i)? as u32)
    }
}

/// HTTP statuses.
impl Column for u16 {
    fn read(r: &Row, i: usize) -> StoreResult<Self> {
        Ok(r.int(i)? as u16)
    }
}

impl Column for bool {
    fn read(r: &Row, i: usize) -> StoreResult<Self> {
        r.bool(i)
    }
}

impl Column for DateTime<Utc> {
    fn read(r: &Row, i: usize) -> StoreResult<Self> {
        r.time(i)
    }
}

/// A nullable column.
impl<T: Column> Column for Option<T> {
    fn read(r: &Row, i: usize) -> StoreResult<Self> {
        match r.is_null(i)? {
            true => Ok(None),
            false => T::read(r, i).map(Some),
        }
    }
}

macro_rules! id_columns {
    ($($t:ty),*) => {$(
        impl Column for $t {
            fn read(r: &Row, i: usize) -> StoreResult<Self> {
                r.text(i).map(<$t as Id>::trusted)
            }
        }
    )*};
}
crate::domain::ids::for_each_id!(id_columns);

macro_rules! status_columns {
    ($($t:ty),*) => {$(
        impl Column for $t {
            fn read(r: &Row, i: usize) -> StoreResult<Self> {
                r.status(i)
            }
        }
    )*};
}
status_columns!(
    DeliveryStatus,
    ReminderStatus,
    SubscriptionStatus,
    WebinarStatus
);

/// A struct read from a row, its fields named in the columns' order from
/// column `at` (0 when not given): each field's type chooses how its
/// column is read ([`Column`]; `get r` reads a `rusqlite` row with its own
/// `get`). Fields after `;` are given as expressions.
macro_rules! from_row {
    (@read column $r:expr, $i:expr) => { $crate::store::decode::Column::read($r, $i)? };
    (@read get $r:expr, $i:expr) => { $r.get($i)? };
    (@with $how:ident $r:expr, at $at:expr,
        $ty:ident { $($f:ident),* $(,)? $(; $($g:ident: $e:expr),* $(,)?)? }) => {{
        let next = std::cell::Cell::new($at);
        $ty {
            $($f: $crate::store::decode::from_row!(@read $how $r, next.replace(next.get() + 1)),)*
            $($($g: $e,)*)?
        }
    }};
    (@with $how:ident $r:expr, $($rest:tt)*) => {
        $crate::store::decode::from_row!(@with $how $r, at 0, $($rest)*)
    };
    (get $r:ident, $($rest:tt)*) => { $crate::store::decode::from_row!(@with get $r, $($rest)*) };
    ($r:expr, $($rest:tt)*) => { $crate::store::decode::from_row!(@with column $r, $($rest)*) };
}
pub(crate) use from_row;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::WebinarId;
    use crate::store::sql::Value;

    struct Sample {
        webinar: WebinarId,
        gone: Option<String>,
        n: u32,
        status: DeliveryStatus,
        at: DateTime<Utc>,
        extra: i64,
    }

    fn sample(r: &Row) -> StoreResult<Sample> {
        Ok(from_row!(r, Sample { webinar, gone, n, status, at; extra: 1 }))
    }

    #[test]
    fn a_struct_reads_its_columns_in_the_order_its_fields_are_named() {
        let at = DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
        let mut r = Row(vec![
            Value::Text("w_1".into()),
            Value::Null,
            Value::Int(7),
            Value::Text("delivered".into()),
            Value::Int(at.timestamp_millis()),
        ]);
        let s = sample(&r).unwrap();
        assert_eq!((s.webinar.as_str(), s.gone, s.n), ("w_1", None, 7));
        assert_eq!(
            (s.status, s.at, s.extra),
            (DeliveryStatus::Delivered, at, 1)
        );
        r.0.swap(0, 1);
        assert!(sample(&r).is_err(), "a null column is no id");
        let tail = || -> StoreResult<(u32, DeliveryStatus)> {
            let t = from_row!(&r, at 2, Tail { n, status });
            Ok((t.n, t.status))
        };
        assert_eq!(tail().unwrap(), (7, DeliveryStatus::Delivered));
    }

    struct Tail {
        n: u32,
        status: DeliveryStatus,
    }
}
