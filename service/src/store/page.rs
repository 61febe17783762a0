//! Paging through a list, the one way every list pages: a [`PageRequest`]
//! (the previous page's cursor and a limit) in, a [`Paged`] (the items and
//! the next cursor) out. The store owns the cursors, since only it knows
//! each list's order: a list ordered by id takes the last id as its cursor;
//! one ordered by another key (a webinar's start, a reminder's due time, a
//! delivery's creation) takes that key and the id, packed here into one
//! opaque token, so a page boundary holds even if the row moves meanwhile.

use super::{StoreError, StoreResult};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};

/// Items a page holds when the caller does not say.
pub const DEFAULT_LIMIT: u32 = 100;
/// The most items one page holds.
pub const MAX_LIMIT: u32 = 1000;

/// Which page to read: the items after `after` (the `next` of the page
/// before; none for the first page), at most `limit` of them.
#[derive(Clone, Debug, PartialEq)]
pub struct PageRequest {
    pub after: Option<String>,
    pub limit: u32,
}

impl PageRequest {
    /// The first `limit` items.
    pub fn first(limit: u32) -> Self {
        Self { after: None, limit }
    }

    /// Everything at once: for the store's own checks and the tools, never
    /// an API answer.
    pub fn all() -> Self {
        Self::first(u32::MAX)
    }

    /// The statement's `LIMIT`: one more than the page, so that whether a
    /// next page exists is known without asking again.
    pub fn fetch(&self) -> i64 {
        i64::from(self.limit) + 1
    }

    /// The cursor as an id, for lists ordered by id (or by a key the id
    /// leads to, such as a participant's registration number).
    pub fn after_id(&self) -> StoreResult<Option<&str>> {
        match self.after.as_deref().filter(|a| !a.is_empty()) {
            None => Ok(None),
            Some(a) if crate::domain::ids::is_id(a) => Ok(Some(a)),
            Some(_) => Err(StoreError::InvalidCursor),
        }
    }

    /// The cursor as an instant, a text key and an id, for lists ordered by
    /// an instant (see [`key_cursor`]).
    pub fn after_key(&self) -> StoreResult<Option<Key>> {
        match self.after.as_deref().filter(|a| !a.is_empty()) {
            None => Ok(None),
            Some(a) => parse_key(a).map(Some).ok_or(StoreError::InvalidCursor),
        }
    }
}

/// One page: its items, and the cursor of the next page (none on the last).
#[derive(Clone, Debug)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl<T> Paged<T> {
    /// The page of `rows` (up to [`PageRequest::fetch`] of them, in the
    /// list's order): the first `limit`, and, when there were more, the
    /// cursor of the last one kept.
    pub fn of(mut rows: Vec<T>, req: &PageRequest, cursor: impl Fn(&T) -> String) -> Self {
        let more = rows.len() > req.limit as usize;
        rows.truncate(req.limit as usize);
        let next = if more { rows.last().map(cursor) } else { None };
        Self { items: rows, next }
    }

    /// Changes each item, keeping the cursor.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Paged<U> {
        Paged {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }
}

/// A position in a list ordered by (instant, text, id): the text is empty
/// where the list has no such column.
#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    pub at: DateTime<Utc>,
    pub text: String,
    pub id: String,
}

/// The cursor of a row at (`at`, `text`, `id`): opaque to the caller.
pub fn key_cursor(at: DateTime<Utc>, text: &str, id: &str) -> String {
    let plain = format!("{}\n{text}\n{id}", at.timestamp_millis());
    URL_SAFE_NO_PAD.encode(plain)
}

fn parse_key(cursor: &str) -> Option<Key> {
    let plain = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let mut parts = plain.splitn(3, '\n');
    let ms: i64 = parts.next()?.parse().ok()?;
    let text = parts.next()?.to_owned();
    let id = parts.next()?.to_owned();
    let ok = |s: &str| !s.is_empty() && s.len() <= 200 && !s.contains(char::is_control);
    if !ok(&id) || text.contains(char::is_control) {
        return None;
    }
    Some(Key {
        at: DateTime::from_timestamp_millis(ms)?,
        text,
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_cursor_reads_back() {
        let at = DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
        let c = key_cursor(at, "30min", "msg_abc");
        let req = PageRequest {
            after: Some(c),
            limit: 5,
        };
        let k = req.after_key().unwrap().unwrap();
        assert_eq!(
            (k.at, k.text.as_str(), k.id.as_str()),
            (at, "30min", "msg_abc")
        );
    }

    #[test]
    fn a_bad_cursor_is_refused_not_ignored() {
        for bad in ["!!", "abc", &URL_SAFE_NO_PAD.encode("x\n\nid")] {
            let req = PageRequest {
                after: Some(bad.into()),
                limit: 5,
            };
            assert!(matches!(req.after_key(), Err(StoreError::InvalidCursor)));
            assert!(matches!(req.after_id(), Err(StoreError::InvalidCursor)));
        }
    }

    #[test]
    fn one_row_more_than_the_limit_means_a_next_page() {
        let req = PageRequest::first(2);
        let p = Paged::of(vec![1, 2, 3], &req, |n| n.to_string());
        assert_eq!((p.items, p.next), (vec![1, 2], Some("2".into())));
        let p = Paged::of(vec![1, 2], &req, |n| n.to_string());
        assert_eq!((p.items, p.next), (vec![1, 2], None));
    }
}
