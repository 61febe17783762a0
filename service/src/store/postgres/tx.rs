//! Running a body in a transaction on a pooled connection, retried when the
//! server picks it as a deadlock's victim. Macros, not functions: the body
//! borrows the caller's arguments across awaits, which a closure returning
//! a future cannot.

/// Runs `$body` with `$tx` bound to a transaction on a pooled connection,
/// and commits it when the body succeeds. A transaction the server chose
/// as a deadlock's victim is run again (up to three times).
macro_rules! in_tx {
    ($self:ident, |$tx:ident| $body:expr) => {
        transact!($self, conn, |$tx| $body)
    };
}

/// [`in_tx!`] for a claim: on a connection of the claims' pool, whose
/// commits do not wait for the disk. A claim lost in a server crash is only
/// claimed again; everything sent under it is recorded by a later, durable
/// commit, which makes this one durable too (the log is written in order).
macro_rules! in_claim_tx {
    ($self:ident, |$tx:ident| $body:expr) => {
        transact!($self, claim_conn, |$tx| $body)
    };
}

macro_rules! transact {
    ($self:ident, $conn:ident, |$tx:ident| $body:expr) => {{
        let mut tries = 0;
        loop {
            let result: StoreResult<_> = async {
                let mut conn = $self.$conn().await?;
                let $tx = conn.transaction().await?;
                let out = $body;
                $tx.commit().await?;
                Ok(out)
            }
            .await;
            match result {
                Err(e) if tries < 3 && $crate::store::postgres::retryable(&e) => {
                    tries += 1;
                    tracing::warn!(
                        tries,
                        "transaction chosen as a deadlock victim (or not serialisable); running it again"
                    );
                }
                done => break done,
            }
        }
    }};
}
