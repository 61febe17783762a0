//! A listener whose connections count themselves open until dropped: the
//! benchmark's receiver (plain and HTTPS) reports how many connections the
//! service opened to it, and the most at once.

use std::pin::Pin;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

pub struct Counting {
    pub(in crate::bench) inner: TcpListener,
    pub(in crate::bench) conns: Arc<Conns>,
}

/// An accepted connection; its drop counts it closed.
pub struct Counted {
    io: TcpStream,
    conns: Arc<Conns>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.conns.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl axum::serve::Listener for Counting {
    type Io = Counted;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Counted, Self::Addr) {
        let (io, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        let open = self.conns.open.fetch_add(1, Ordering::Relaxed) + 1;
        self.conns.peak.fetch_max(open, Ordering::Relaxed);
        let conns = self.conns.clone();
        (Counted { io, conns }, addr)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Connections open now, and the most open at once since the last reset.
#[derive(Default)]
pub(super) struct Conns {
    pub(super) open: AtomicUsize,
    pub(super) peak: AtomicUsize,
}
