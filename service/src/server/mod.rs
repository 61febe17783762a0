//! The HTTP server in front of the API: our own accept loop over the
//! listener, serving the axum router with hyper's HTTP/1.1 connection
//! (HTTP/1.1 only; HTTP/2 is not offered). It owns what `axum::serve` does
//! not offer:
//!
//! - a header deadline (`--header-timeout`): a client that has not sent a
//!   request's complete headers within it is disconnected, and the same
//!   deadline closes an idle keep-alive connection;
//! - a cap on open connections (`--max-connections`, by default from the
//!   open-file limit, see `files`). At the cap, the connection that has
//!   waited longest without a request in progress is closed to admit the new
//!   one (see `admission`), so a slowloris attack does not keep out normal
//!   requests, even from the attacker's own address;
//! - each request's peer address ([`ConnectInfo`]) and arrival instant
//!   ([`Arrived`], from which the body deadline is counted);
//! - a stop with a deadline: on `stop` it stops accepting and asks every
//!   connection to finish its request in progress; on `abort` (the shutdown
//!   deadline) it drops whatever remains.

pub mod admission;
pub mod files;

use admission::{Admission, ConnId};
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

/// When a request's headers were complete: the body deadline counts from it.
#[derive(Clone, Copy, Debug)]
pub struct Arrived(pub tokio::time::Instant);

/// How the server treats its clients.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Deadline for a request's headers, and for an idle keep-alive
    /// connection's next request.
    pub header_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

/// The open connections: who may be evicted, and how to close each.
struct Table {
    admission: Admission,
    /// Cancelling a connection's token closes it at once.
    close: HashMap<ConnId, CancellationToken>,
}

struct Shared {
    table: Mutex<Table>,
    /// Signalled when a connection closes or becomes evictable: the accept
    /// loop may be waiting for room.
    room: Notify,
}

impl Shared {
    fn with<T>(&self, f: impl FnOnce(&mut Table) -> T) -> T {
        f(&mut self.table.lock().expect("connection table lock"))
    }

    fn busy(&self, id: ConnId) {
        self.with(|t| t.admission.busy(id));
    }

    fn idle(&self, id: ConnId) {
        self.with(|t| t.admission.idle(id));
        self.room.notify_one();
    }
}

/// Frees a connection's slot however its task ends (even by a panic).
struct Slot {
    shared: Arc<Shared>,
    id: ConnId,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.with(|t| {
            t.admission.closed(self.id);
            t.close.remove(&self.id);
        });
        self.shared.room.notify_one();
    }
}

/// Serves `app` on `listener` until `stop`, then waits for the open
/// connections to finish their requests, or for `abort` to drop them.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    settings: Settings,
    stop: CancellationToken,
    abort: CancellationToken,
) {
    let shared = Arc::new(Shared {
        table: Mutex::new(Table {
            admission: Admission::new(settings.max_connections),
            close: HashMap::new(),
        }),
        room: Notify::new(),
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_timeout)
        .keep_alive(true);
    let builder = Arc::new(builder);
    let tracker = TaskTracker::new();
    let mut last_warned: Option<tokio::time::Instant> = None;
    loop {
        let Some((stream, peer)) = next_connection(&listener, &shared, &stop).await else {
            break;
        };
        let close = CancellationToken::new();
        let admitted = shared.with(|t| admit(t, &close));
        let Some((id, evicted)) = admitted else {
            // Every slot became busy since the check: refuse this one.
            continue;
        };
        if evicted && last_warned.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            last_warned = Some(tokio::time::Instant::now());
            tracing::warn!(
                max_connections = settings.max_connections,
                "connection cap reached: closing the connections that waited longest without a request"
            );
        }
        let slot = Slot {
            shared: shared.clone(),
            id,
        };
        tracker.spawn(connection(
            stream,
            peer,
            slot,
            app.clone(),
            builder.clone(),
            Ends {
                close,
                stop: stop.clone(),
                abort: abort.clone(),
            },
        ));
    }
    drop(listener);
    tracker.close();
    let open = shared.with(|t| t.admission.open());
    if open > 0 {
        tracing::info!(
            connections = open,
            "not accepting; waiting for requests in progress"
        );
    }
    tracker.wait().await;
    tracing::info!("HTTP connections closed");
}

/// Waits for room (a free slot, or a waiting connection to close), then
/// for a connection; `None` once the server stops.
async fn next_connection(
    listener: &TcpListener,
    shared: &Shared,
    stop: &CancellationToken,
) -> Option<(tokio::net::TcpStream, std::net::SocketAddr)> {
    while !shared.with(|t| t.admission.can_admit()) {
        tokio::select! {
            _ = shared.room.notified() => {}
            _ = stop.cancelled() => return None,
        }
    }
    loop {
        tokio::select! {
            got = listener.accept() => match got {
                Ok(got) => return Some(got),
                Err(e) => {
                    // Out of files, most likely (EMFILE): the connection
                    // stays in the backlog; try again shortly.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                        _ = stop.cancelled() => return None,
                    }
                }
            },
            _ = stop.cancelled() => return None,
        }
    }
}

/// Takes a slot for a new connection, closing the one that waited longest
/// without a request if every slot is taken: its id, and whether one was
/// evicted. `None` if every slot became busy since the check.
fn admit(t: &mut Table, close: &CancellationToken) -> Option<(ConnId, bool)> {
    let (id, evict) = t.admission.admit()?;
    if let Some(old) = evict {
        if let Some(c) = t.close.remove(&old) {
            c.cancel();
        }
    }
    t.close.insert(id, close.clone());
    Some((id, evict.is_some()))
}

/// What ends a connection: its own eviction, the server's stop (finish the
/// request in progress, then close), or the shutdown deadline (close now).
struct Ends {
    close: CancellationToken,
    stop: CancellationToken,
    abort: CancellationToken,
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    app: axum::Router,
    builder: Arc<http1::Builder>,
    ends: Ends,
) {
    // Small JSON answers: send them at once rather than wait for more.
    let _ = stream.set_nodelay(true);
    let shared = slot.shared.clone();
    let id = slot.id;
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        shared.busy(id);
        req.extensions_mut().insert(ConnectInfo(peer));
        req.extensions_mut()
            .insert(Arrived(tokio::time::Instant::now()));
        let mut app = app.clone();
        let shared = shared.clone();
        async move {
            let answer = app.call(req).await;
            shared.idle(id);
            answer
        }
    });
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => Some(r),
        _ = ends.close.cancelled() => None,
        _ = ends.stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                r = conn.as_mut() => Some(r),
                _ = ends.abort.cancelled() => None,
                _ = ends.close.cancelled() => None,
            }
        }
    };
    if let Some(Err(e)) = result {
        // Timeouts and clients going away are routine.
        tracing::debug!(%peer, error = %e, "connection ended");
    }
    drop(slot);
}

/// Connections the kernel completes and holds for the accept loop: a burst
/// of clients connecting at once beyond it has its SYNs dropped, and each
/// of those clients tries again a second later. The standard library's
/// (and tokio's) 128 is too few for a receiver that a fan-out to hundreds
/// of lanes connects to at once; the kernel caps it at `somaxconn`.
pub const BACKLOG: u32 = 4096;

/// Listens on `addr` (a `host:port`, the first address it resolves to)
/// with a backlog of `backlog`, reusing the address as `TcpListener::bind`
/// does. An error names the address: "Address already in use" alone does
/// not say which setting to change.
pub async fn listen(addr: &str, backlog: u32) -> std::io::Result<TcpListener> {
    bind(addr, backlog)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

async fn bind(addr: &str, backlog: u32) -> std::io::Result<TcpListener> {
    let at = tokio::net::lookup_host(addr).await?.next().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "it resolves to no address",
        )
    })?;
    let socket = if at.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(at)?;
    socket.listen(backlog)
}

#[cfg(test)]
mod backlog_tests {
    use super::*;

    /// Three hundred clients connect at once to a listener that accepts
    /// none of them: the kernel holds as many as the backlog it granted
    /// (the one asked for, capped at `somaxconn`) and one more; the rest
    /// have their SYNs dropped and connect only when they send again, a
    /// second later. Where `somaxconn` is at least 300, that shows
    /// [`BACKLOG`] at work (with 128, only 129 connect); where it is lower,
    /// only the kernel's cap shows. The backlog the code asks for is read
    /// off the system call itself: `tests/process/backlog.rs`.
    #[tokio::test]
    async fn a_burst_of_connections_is_held_for_the_accept_loop() {
        let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(128);
        let expected = 300.min(somaxconn.min(BACKLOG as usize) + 1);
        let listener = listen("127.0.0.1:0", BACKLOG).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tries = (0..300).map(|_| {
            tokio::time::timeout(
                std::time::Duration::from_millis(900),
                TcpStream::connect(addr),
            )
        });
        let results = futures_util::future::join_all(tries).await;
        let connected = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
        assert!(
            connected >= expected,
            "{connected} connected before a SYN would be sent again; somaxconn {somaxconn}"
        );
        drop(listener);
    }
}
