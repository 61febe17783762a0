//! Reading a bulk body as it arrives: a JSON array, or NDJSON (one object a
//! line), up to 200 000 entries and 64 MiB. Each entry is parsed, typed and
//! validated the moment its bytes are in, and only the validated record is
//! kept: the body is never held whole, nor a parse tree of it, so a bulk of
//! 200 000 costs about its validated records, not five times the body.
//!
//! It refuses as early as it can: a declared `Content-Length` over the
//! limit before a byte is read (413), a body that grows past it when it
//! does (413), and the entry over the maximum count as soon as it arrives
//! (422), without reading the rest. Errors name the entry: `[3].email` in an
//! array, `line 4` for NDJSON that does not parse. An entry is read as any
//! JSON body is (`json_body`): an object, with no key twice.
//!
//! Two halves: [`read`] receives the body on the async side, counts its
//! bytes and hands the chunks over a small channel to the parser, which
//! runs on a blocking thread (`serde_json` reads from a blocking reader).
//! Dropping the future [`read`] returns (a deadline, a client gone) closes
//! the channel, and the parser stops at once.

use super::deadline::ReadDeadline;
use super::extract::{body_error, json_error, over_limit, parse_json, too_large, typed};
use super::json_body::Duplicates;
use crate::api::error::ApiError;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use bytes::Buf;
use http_body_util::BodyExt;
use serde::de::{self, DeserializeOwned, DeserializeSeed, SeqAccess, Visitor};
use std::io::{BufRead, BufReader, Read};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// How the entries are framed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Format {
    /// A JSON array of objects.
    Array,
    /// One JSON object a line (`application/x-ndjson`); blank lines are skipped.
    Lines,
}

/// What one bulk body may hold.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest body, in bytes.
    pub bytes: usize,
    /// Most entries.
    pub entries: usize,
    /// What the entries are, to name in a refusal of their count.
    pub what: &'static str,
}

impl Limits {
    fn count_refused(&self) -> ApiError {
        ApiError::invalid(
            "invalid_batch",
            self.what,
            format!("send between 1 and {} {}", self.entries, self.what),
        )
    }
}

/// Longest NDJSON line: as large as an ordinary request body.
const MAX_LINE: usize = 64 * 1024;

/// Chunks waiting between the body and the parser: a few, so memory stays
/// flat and a parser that stopped stops the reading too.
const IN_FLIGHT: usize = 4;

/// Reads `req`'s body as `format`, typing each entry as `In` and keeping
/// what `check` makes of it, by `deadline` (a client sending too slowly is
/// answered 408). All or nothing: the first bad entry refuses the whole
/// body.
pub async fn read<In, Out>(
    req: Request,
    deadline: ReadDeadline,
    format: Format,
    limits: Limits,
    check: fn(In) -> Result<Out, ApiError>,
) -> Result<Vec<Out>, ApiError>
where
    In: DeserializeOwned + 'static,
    Out: Send + 'static,
{
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.bytes as u64) {
        return Err(too_large(limits.bytes));
    }
    let (chunks, rx) = mpsc::channel::<Bytes>(IN_FLIGHT);
    let parser = tokio::task::spawn_blocking(move || {
        let stop = Arc::new(AtomicBool::new(false));
        let reader = BufReader::with_capacity(64 * 1024, Chunks::new(rx, stop.clone()));
        match format {
            Format::Array => array(reader, stop, limits, check),
            Format::Lines => lines(reader, limits, check),
        }
    });
    let mut body = deadline.wrap(req.into_body());
    let mut total = 0usize;
    let mut refused = None;
    loop {
        // A parser that stopped (a refusal, or too many entries) ends the
        // reading at once, even while the client is still sending.
        let frame = tokio::select! {
            f = body.frame() => f,
            _ = chunks.closed() => break,
        };
        let Some(frame) = frame else { break };
        let data = match frame {
            Ok(f) => match f.into_data() {
                Ok(d) => d,
                Err(_) => continue, // trailers
            },
            Err(e) => {
                refused = Some(body_error(&*e, limits.bytes));
                break;
            }
        };
        total += data.len();
        if total > limits.bytes {
            refused = Some(too_large(limits.bytes));
            break;
        }
        if chunks.send(data).await.is_err() {
            break; // the parser stopped: it has its answer
        }
    }
    // The parser sees the end of the body (or of what was read of it).
    drop(chunks);
    let parsed = parser
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("the bulk parser failed: {e}")))?;
    match refused {
        Some(e) => Err(e),
        None => parsed,
    }
}

/// The body's chunks as a blocking reader for the parser's thread; it
/// ends when the async side stops sending, or when the parser has refused
/// the body (`stop`).
struct Chunks {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
    stop: Arc<AtomicBool>,
}

impl Chunks {
    fn new(rx: mpsc::Receiver<Bytes>, stop: Arc<AtomicBool>) -> Self {
        Self {
            rx,
            current: Bytes::new(),
            stop,
        }
    }
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // serde_json looks for the array's end even after the visitor
        // refused an entry: it must find the end of input, not wait for
        // the rest of a body nobody will read.
        if self.stop.load(Ordering::Relaxed) {
            return Ok(0);
        }
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.current = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

/// A JSON array, entry by entry. A refusal raises `stop`, which ends the
/// input under the parser.
pub(super) fn array<In: DeserializeOwned, Out>(
    reader: impl Read,
    stop: Arc<AtomicBool>,
    limits: Limits,
    check: fn(In) -> Result<Out, ApiError>,
) -> Result<Vec<Out>, ApiError> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut out = Vec::new();
    let mut refusal = None;
    let entries = Entries {
        limits,
        check,
        out: &mut out,
        refusal: &mut refusal,
        stop: &stop,
        typed: PhantomData,
    };
    let parsed = entries.deserialize(&mut de).and_then(|()| de.end());
    if let Some(e) = refusal {
        return Err(e);
    }
    parsed.map_err(|e| json_error(String::new(), e))?;
    if out.is_empty() {
        return Err(limits.count_refused());
    }
    Ok(out)
}

/// The array's visitor: it validates each entry as it comes and keeps the
/// result; the first refusal is left in `refusal` and stops the parse.
struct Entries<'a, In, Out> {
    limits: Limits,
    check: fn(In) -> Result<Out, ApiError>,
    out: &'a mut Vec<Out>,
    refusal: &'a mut Option<ApiError>,
    stop: &'a AtomicBool,
    typed: PhantomData<In>,
}

impl<'de, In: DeserializeOwned, Out> DeserializeSeed<'de> for Entries<'_, In, Out> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, In: DeserializeOwned, Out> Visitor<'de> for Entries<'_, In, Out> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "a JSON array of {}", self.limits.what)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        let dups = Duplicates::default();
        loop {
            let entry = match seq.next_element_seed(dups.seed()) {
                Ok(Some(entry)) => entry,
                Ok(None) => break,
                Err(e) => {
                    if let Some(r) = dups.refusal() {
                        *self.refusal = Some(r.within(&format!("[{i}]")));
                        self.stop.store(true, Ordering::Relaxed);
                    }
                    return Err(e);
                }
            };
            let kept = if i == self.limits.entries {
                Err(self.limits.count_refused())
            } else {
                typed(entry)
                    .and_then(self.check)
                    .map_err(|e| e.within(&format!("[{i}]")))
            };
            match kept {
                Ok(x) => self.out.push(x),
                Err(e) => {
                    *self.refusal = Some(e);
                    self.stop.store(true, Ordering::Relaxed);
                    return Err(de::Error::custom("refused"));
                }
            }
            i += 1;
        }
        Ok(())
    }
}

/// NDJSON, line by line. A line that does not parse is named by its number
/// (`line 4`), an entry that does not validate by its index (`[3].email`).
fn lines<In: DeserializeOwned, Out>(
    mut reader: impl BufRead,
    limits: Limits,
    check: fn(In) -> Result<Out, ApiError>,
) -> Result<Vec<Out>, ApiError> {
    let mut out = Vec::new();
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| {
                ApiError::new(StatusCode::BAD_REQUEST, "unreadable_body", e.to_string())
            })?;
        if n == 0 {
            break;
        }
        number += 1;
        let at = || format!("line {number}");
        if line.len() > MAX_LINE {
            return Err(over_limit("an NDJSON line", MAX_LINE).on(&at()));
        }
        if line.trim_ascii().is_empty() {
            continue;
        }
        if out.len() == limits.entries {
            return Err(limits.count_refused());
        }
        let entry: In = parse_json(&line).map_err(|e| e.on(&at()))?;
        out.push(check(entry).map_err(|e| e.within(&format!("[{}]", out.len())))?);
    }
    if out.is_empty() {
        return Err(limits.count_refused());
    }
    Ok(out)
}

#[cfg(test)]
#[path = "bulk_tests.rs"]
mod tests;
