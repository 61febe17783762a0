//! Deadlines for reading a request's body. A body must be complete within
//! `--body-timeout` of its headers' arrival: a total deadline, not a
//! per-read one, so a client trickling a byte a second is cut like one that
//! sends nothing. A large body (the bulk registration) also gets time at a
//! minimum rate for what it has already sent. Past the deadline the request
//! is answered 408 `request_timeout` and its connection closed.
//!
//! [`ReadDeadline`] says when; [`DeadlineBody`] wraps any body so that
//! reading it fails with [`BodyTimedOut`] past that instant, for code that
//! buffers a body (`extract::body_bytes_within`) or streams it;
//! [`body_error`] is the answer when reading one fails (408 past the
//! deadline, 413 over a limit).

use crate::api::error::ApiError;
use crate::server::Arrived;
use axum::body::Bytes;
use axum::http::StatusCode;
use hyper::body::{Body, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// The error of any boxed body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// When a request's body must have arrived: `grace` after its headers did,
/// plus, with a minimum rate, the time that rate takes for the bytes
/// received so far (a client sending at least that fast is never cut).
#[derive(Clone, Copy, Debug)]
pub struct ReadDeadline {
    start: Instant,
    grace: Duration,
    /// Bytes per second.
    min_rate: Option<u64>,
}

impl ReadDeadline {
    /// `grace` from when the request's headers arrived ([`Arrived`], set by
    /// the server), or from now for a request that did not come through it.
    pub fn new(extensions: &http::Extensions, grace: Duration) -> Self {
        let start = extensions
            .get::<Arrived>()
            .map_or_else(Instant::now, |a| a.0);
        ReadDeadline {
            start,
            grace,
            min_rate: None,
        }
    }

    /// Also allows the time `bytes_per_second` takes for what has arrived.
    pub fn with_min_rate(self, bytes_per_second: u64) -> Self {
        ReadDeadline {
            min_rate: Some(bytes_per_second.max(1)),
            ..self
        }
    }

    /// The instant by which the body must be complete, `received` bytes in.
    pub fn at(&self, received: u64) -> Instant {
        let extra = self.min_rate.map_or(Duration::ZERO, |r| {
            Duration::from_secs_f64(received as f64 / r as f64)
        });
        self.start + self.grace + extra
    }

    /// Wraps `body` so that reading it fails with [`BodyTimedOut`] once the
    /// deadline passes.
    pub fn wrap<B>(self, body: B) -> DeadlineBody<B> {
        DeadlineBody {
            inner: body,
            deadline: self,
            received: 0,
            sleep: Box::pin(tokio::time::sleep_until(self.at(0))),
        }
    }
}

/// The body was not complete by its deadline.
#[derive(Debug, Clone, Copy)]
pub struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for BodyTimedOut {}

/// Whether `e`, or any error it wraps, is a [`BodyTimedOut`].
pub fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if e.is::<BodyTimedOut>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// A body that fails with [`BodyTimedOut`] past its [`ReadDeadline`].
pub struct DeadlineBody<B> {
    inner: B,
    deadline: ReadDeadline,
    received: u64,
    sleep: Pin<Box<Sleep>>,
}

impl<B> Body for DeadlineBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            if let Some(Ok(data)) = frame.as_ref().map(|f| f.as_ref().map(Frame::data_ref)) {
                if let (Some(data), Some(_)) = (data, this.deadline.min_rate) {
                    this.received += data.len() as u64;
                    let at = this.deadline.at(this.received);
                    this.sleep.as_mut().reset(at);
                }
            }
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        match this.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// `413 payload_too_large`, naming the limit `what` went over, in bytes
/// and in KiB or MiB: a client told only "too large" cannot tell by how
/// much, and the limits are stated nowhere else it can see.
pub fn over_limit(what: &str, limit: usize) -> ApiError {
    let unit = match limit {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!(" ({} MiB)", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!(" ({} KiB)", n >> 10),
        _ => String::new(),
    };
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("{what} is over the limit of {limit} bytes{unit}"),
    )
}

/// [`over_limit`] for a whole request body.
pub fn too_large(limit: usize) -> ApiError {
    over_limit("request body", limit)
}

/// Our answer to an error met reading a body wrapped by
/// [`ReadDeadline::wrap`] (and perhaps `http_body_util::Limited` to
/// `limit` bytes), for code that streams a body rather than buffer it: 408
/// past the deadline, 413 over the limit, else 400 `unreadable_body`.
pub fn body_error(e: &(dyn std::error::Error + 'static), limit: usize) -> ApiError {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return too_large(limit);
        }
        cause = c.source();
    }
    if is_timeout(e) {
        ApiError::request_timeout()
    } else {
        ApiError::new(StatusCode::BAD_REQUEST, "unreadable_body", e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn deadline(grace_ms: u64) -> ReadDeadline {
        ReadDeadline::new(&http::Extensions::new(), Duration::from_millis(grace_ms))
    }

    #[test]
    fn a_minimum_rate_extends_the_deadline_by_what_arrived() {
        let d = deadline(1000).with_min_rate(1000);
        assert_eq!(d.at(500) - d.at(0), Duration::from_millis(500));
        let fixed = deadline(1000);
        assert_eq!(fixed.at(1_000_000), fixed.at(0));
    }

    /// A body whose client sends nothing more.
    struct Silent;

    impl Body for Silent {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn a_stalled_body_is_cut_at_the_deadline_and_a_prompt_one_is_not() {
        let got = deadline(50).wrap(Silent).collect().await;
        let e = got.expect_err("cut");
        assert!(is_timeout(&*e));
        let answer = body_error(&*e, 10);
        assert!(matches!(
            answer,
            crate::api::error::ApiError::Client {
                code: "request_timeout",
                close: true,
                ..
            }
        ));

        // Streamed under a size limit too: over it is a 413, not a 408.
        let big = http_body_util::Full::new(Bytes::from(vec![b' '; 100]));
        let limited = http_body_util::Limited::new(deadline(1000).wrap(big), 10);
        let e = limited.collect().await.expect_err("too large");
        let answer = body_error(&*e, 10);
        assert!(matches!(
            answer,
            crate::api::error::ApiError::Client {
                code: "payload_too_large",
                ..
            }
        ));

        let whole = http_body_util::Full::new(Bytes::from_static(b"{}"));
        let got = deadline(1000).wrap(whole).collect().await.unwrap();
        assert_eq!(got.to_bytes(), Bytes::from_static(b"{}"));
    }
}
