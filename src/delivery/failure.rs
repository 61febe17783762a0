//! Why an HTTP attempt failed before an answer came: the connection could
//! not be made, or the request could not be sent or its answer read. It owns
//! the [`Failure`] a sender reports and the short, operator-readable reason
//! the attempt log keeps for it (the innermost cause of the error chain).

/// Any error a connection or an exchange can end in.
pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why an exchange failed, for the attempt log.
pub(super) enum Failure {
    Connect(BoxError),
    Request(BoxError),
}

/// A short, operator-readable reason for a transport failure.
pub(super) fn describe(f: &Failure) -> String {
    let (kind, e) = match f {
        Failure::Connect(e) => ("connection failed", e),
        Failure::Request(e) => ("request failed", e),
    };
    let mut cause = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        cause = s.to_string();
        src = s.source();
    }
    if cause.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {cause}")
    }
}
