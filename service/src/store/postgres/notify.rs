//! Changes between instances, over LISTEN/NOTIFY: a write that gives other
//! instances something to do (a fan-out's slices, a new schedule) sends a
//! notification in its transaction; every instance keeps one connection
//! listening and turns what it hears into [`Change`]s. After the listening
//! connection is lost and made again, a `Resync` tells the service to look
//! at everything, since notifications sent meanwhile were not heard.

use crate::store::Change;
use std::future::poll_fn;
use tokio::sync::broadcast;
use tokio_postgres::AsyncMessage;
use tokio_postgres_rustls::MakeRustlsConnect;
use tokio_util::sync::CancellationToken;

/// What a notification's payload says: `w:<subscription>`,
/// `c:<subscription>` or `s`.
pub(super) fn parse(payload: &str) -> Option<Change> {
    let id = |sub: &str| crate::domain::ids::Id::trusted(sub.to_owned());
    match payload.split_once(':') {
        Some(("w", sub)) if !sub.is_empty() => Some(Change::Work(id(sub))),
        Some(("c", sub)) if !sub.is_empty() => Some(Change::Subscription(id(sub))),
        None if payload == "s" => Some(Change::Schedule),
        _ => None,
    }
}

/// Sends `payload` to every instance listening on `channel`, when `tx`
/// commits.
pub(super) async fn send(
    tx: &deadpool_postgres::Transaction<'_>,
    channel: &str,
    payload: &str,
) -> crate::store::StoreResult<()> {
    let st = tx.prepare_cached("SELECT pg_notify($1, $2)").await?;
    tx.execute(&st, &[&channel, &payload]).await?;
    Ok(())
}

/// What announces `change` to the other instances; `None` for `Resync`,
/// which a listener tells itself and no one sends.
pub(super) fn payload(change: &Change) -> Option<String> {
    match change {
        Change::Work(sub) => Some(work(sub.as_str())),
        Change::Subscription(sub) => Some(changed(sub.as_str())),
        Change::Schedule => Some(SCHEDULE.to_owned()),
        Change::Resync => None,
    }
}

/// The payload announcing work for a subscription.
pub(super) fn work(sub: &str) -> String {
    format!("w:{sub}")
}

/// The payload announcing a changed subscription.
pub(super) fn changed(sub: &str) -> String {
    format!("c:{sub}")
}

/// The payload announcing a changed schedule.
pub(super) const SCHEDULE: &str = "s";

/// Listens on `channel` until `stop`, reconnecting with a growing pause
/// after a failure.
pub(super) fn listen(
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    channel: String,
    changes: broadcast::Sender<Change>,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let mut pause = std::time::Duration::from_millis(100);
        let mut first = true;
        loop {
            tokio::select! {
                r = session(&config, &tls, &channel, &changes, first) => {
                    if let Err(e) = r {
                        tracing::warn!(error = %e, "lost the PostgreSQL notification connection; reconnecting");
                    }
                }
                _ = stop.cancelled() => return,
            }
            first = false;
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.cancelled() => return,
            }
            pause = (pause * 2).min(std::time::Duration::from_secs(5));
        }
    });
}

/// One listening connection, until it fails.
async fn session(
    config: &tokio_postgres::Config,
    tls: &MakeRustlsConnect,
    channel: &str,
    changes: &broadcast::Sender<Change>,
    first: bool,
) -> anyhow::Result<()> {
    // Bounded waits: a half-open connection fails here, not in hours.
    let patience = std::time::Duration::from_secs(10);
    let (client, mut connection) =
        tokio::time::timeout(patience, config.connect(tls.clone())).await??;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // The connection yields notifications only while it is polled.
    let driver = tokio::spawn(async move {
        loop {
            match poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if tx.send(Ok(n.payload().to_owned())).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    let _ = tx.send(Err(anyhow::Error::from(e)));
                    return;
                }
                None => {
                    let _ = tx.send(Err(anyhow::anyhow!("the connection closed")));
                    return;
                }
            }
        }
    });
    let quoted = channel.replace('"', "\"\"");
    tokio::time::timeout(
        patience,
        client.batch_execute(&format!("LISTEN \"{quoted}\"")),
    )
    .await??;
    if !first {
        let _ = changes.send(Change::Resync);
    }
    let result = loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Ok(payload)) => {
                    // No receiver yet (the service is starting) is no error.
                    if let Some(c) = parse(&payload) {
                        let _ = changes.send(c);
                    }
                }
                Some(Err(e)) => break Err(e),
                None => break Err(anyhow::anyhow!("notification driver stopped")),
            },
            // A keep-alive: a half-open connection shows up as an error here.
            _ = tokio::time::sleep(std::time::Duration::from_secs(10)) => {
                match tokio::time::timeout(patience, client.simple_query("SELECT 1")).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => break Err(e.into()),
                    Err(e) => break Err(e.into()),
                }
            }
        }
    };
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        assert!(matches!(parse(&work("abc")), Some(Change::Work(s)) if s == "abc"));
        assert!(matches!(parse(SCHEDULE), Some(Change::Schedule)));
        assert!(matches!(parse(&changed("abc")), Some(Change::Subscription(s)) if s == "abc"));
        assert!(parse("w:").is_none());
        assert!(parse("c:").is_none());
        assert!(parse("x").is_none());
    }

    #[test]
    fn every_announced_change_is_heard_as_itself() {
        let sub = || crate::domain::ids::Id::trusted("abc".to_owned());
        for c in [
            Change::Work(sub()),
            Change::Subscription(sub()),
            Change::Schedule,
        ] {
            assert_eq!(payload(&c).as_deref().and_then(parse), Some(c));
        }
        assert_eq!(payload(&Change::Resync), None);
    }
}
