//! A counting relay between the services and PostgreSQL, for the round
//! trips a run makes: every byte is passed on unchanged, and the frontend's
//! messages are read as they go by. A round trip is a `Sync` (the end of
//! an extended-protocol query, which tokio-postgres sends once per
//! statement) or a simple `Query`: the server answers each with one
//! `ReadyForQuery`, and the client waits for it. Counted on the wire, the
//! figure covers every statement whatever code sent it. Each statement
//! executed (a `Bind` of a prepared statement, or a simple `Query`) is also
//! counted by its text, so a run can say which statements the round trips
//! went to, and the bytes either way give a delivery's traffic. A request for TLS is declined (`N`): the bench's URL asks for
//! none.

use anyhow::Context;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The relay: where the services connect, and what it counted.
pub struct Wire {
    pub addr: SocketAddr,
    counted: Arc<Counted>,
    task: tokio::task::JoinHandle<()>,
}

/// What the relay counted so far: round trips, bytes both ways, and the
/// statements executed by their text.
#[derive(Clone, Debug, Default)]
pub struct WireCounts {
    pub trips: u64,
    pub bytes: u64,
    pub statements: HashMap<String, u64>,
}

/// What the relay counted over every connection: round trips, the bytes
/// passed on either way after the startup message, and the statements
/// executed by their text (whitespace folded, cut at 100 characters).
#[derive(Default)]
struct Counted {
    trips: AtomicU64,
    bytes: AtomicU64,
    statements: Mutex<HashMap<String, u64>>,
}

impl Wire {
    /// Listens on a free loopback port and relays each connection to
    /// `upstream` (host:port).
    pub async fn start(upstream: String) -> anyhow::Result<Wire> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let counted = Arc::new(Counted::default());
        let all = counted.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (up, counted) = (upstream.clone(), all.clone());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&up).await {
                        let _ = relay(client, server, &counted).await;
                    }
                });
            }
        });
        Ok(Wire {
            addr,
            counted,
            task,
        })
    }

    /// What was counted so far, over every connection.
    pub fn counts(&self) -> WireCounts {
        WireCounts {
            trips: self.counted.trips.load(Ordering::Relaxed),
            bytes: self.counted.bytes.load(Ordering::Relaxed),
            statements: self.counted.statements.lock().unwrap().clone(),
        }
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `url` with its host and port replaced by `to`; `None` when the URL does
/// not name them as `@host:port` (the relay is then not used).
pub fn through(url: &str, to: SocketAddr) -> Option<(String, String)> {
    let config: tokio_postgres::Config = url.parse().ok()?;
    let host = match config.get_hosts().first()? {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        _ => return None,
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let named = format!("@{host}:{port}");
    url.contains(&named).then(|| {
        (
            url.replacen(&named, &format!("@{to}"), 1),
            format!("{host}:{port}"),
        )
    })
}

/// Relays one connection both ways until either side closes it, counting
/// the client's round trips once its startup message has gone through.
async fn relay(
    mut client: TcpStream,
    mut server: TcpStream,
    counted: &Counted,
) -> anyhow::Result<()> {
    loop {
        // A startup-phase message: its length, then a code (no type byte).
        let mut head = [0u8; 8];
        client.read_exact(&mut head).await?;
        let len = u32::from_be_bytes(head[..4].try_into()?) as usize;
        let code = u32::from_be_bytes(head[4..].try_into()?);
        if matches!(code, SSL_REQUEST | GSSENC_REQUEST) {
            client.write_all(b"N").await?;
            continue;
        }
        let mut rest = vec![0u8; len.saturating_sub(8)];
        client.read_exact(&mut rest).await?;
        server.write_all(&head).await?;
        server.write_all(&rest).await?;
        break;
    }
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let down = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = sr.read(&mut buf).await?;
            if n == 0 {
                return std::io::Result::Ok(());
            }
            counted.bytes.fetch_add(n as u64, Ordering::Relaxed);
            cw.write_all(&buf[..n]).await?;
        }
    };
    let up = async move {
        let mut frames = Frames::default();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = cr.read(&mut buf).await?;
            if n == 0 {
                return anyhow::Ok(());
            }
            counted.bytes.fetch_add(n as u64, Ordering::Relaxed);
            frames.pending.extend_from_slice(&buf[..n]);
            sw.write_all(&frames.take(counted)).await?;
        }
    };
    tokio::select! {
        r = down => { r.context("server to client")?; }
        r = up => { r?; }
    }
    Ok(())
}

/// The codes of the requests for TLS and for GSS encryption, declined.
const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;

/// One connection's bytes not yet passed on (a message is passed on
/// whole), and the text of each statement it prepared, by name.
#[derive(Default)]
struct Frames {
    pending: Vec<u8>,
    prepared: HashMap<String, String>,
}

impl Frames {
    /// The whole messages received so far, to pass on, counted.
    fn take(&mut self, counted: &Counted) -> Vec<u8> {
        let mut at = 0;
        while let Some(head) = self.pending.get(at..at + 5) {
            let whole = 1 + u32::from_be_bytes(head[1..].try_into().unwrap()) as usize;
            let Some(body) = self.pending.get(at + 5..at + whole) else {
                break;
            };
            if matches!(head[0], b'S' | b'Q') {
                counted.trips.fetch_add(1, Ordering::Relaxed);
            }
            let mut texts = body.split(|b| *b == 0).map(String::from_utf8_lossy);
            let executed = match head[0] {
                b'P' => {
                    let (name, sql) = (texts.next(), texts.next());
                    let key = folded(&sql.unwrap_or_default());
                    self.prepared.insert(name.unwrap_or_default().into(), key);
                    None
                }
                b'B' => texts
                    .nth(1)
                    .and_then(|n| self.prepared.get(n.as_ref()).cloned()),
                b'Q' => texts.next().map(|sql| folded(&sql)),
                _ => None,
            };
            if let Some(sql) = executed {
                *counted.statements.lock().unwrap().entry(sql).or_default() += 1;
            }
            at += whole;
        }
        self.pending.drain(..at).collect()
    }
}

/// A statement's text with its whitespace folded, cut at 100 characters.
fn folded(sql: &str) -> String {
    let words: Vec<&str> = sql.split_whitespace().collect();
    words.join(" ").chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn syncs_and_queries_are_the_round_trips_even_split_across_reads() {
        let mut bytes = Vec::new();
        for m in [
            message(b'P', b"s1\0SELECT\n  1 FROM t\0\0\0"),
            message(b'B', b"\0s1\0\0\0\0\0"),
            message(b'E', b""),
            message(b'S', b""),
            message(b'Q', b"SELECT 1\0"),
            message(b'S', b""),
        ] {
            bytes.extend(m);
        }
        let counted = Counted::default();
        let mut f = Frames::default();
        let mut passed = Vec::new();
        for chunk in bytes.chunks(3) {
            f.pending.extend_from_slice(chunk);
            passed.extend(f.take(&counted));
        }
        assert_eq!(passed, bytes, "every byte passed on, in order");
        assert_eq!(counted.trips.load(Ordering::Relaxed), 3);
        let by_text = counted.statements.lock().unwrap().clone();
        assert_eq!(by_text.get("SELECT  1"), None);
        assert_eq!(by_text.get("SELECT\n  1 FROM t").copied(), None);
        assert_eq!(
            by_text.get("SELECT 1 FROM t").copied(),
            Some(1),
            "{by_text:?}"
        );
        assert_eq!(by_text.get("SELECT 1").copied(), Some(1), "{by_text:?}");
    }

    #[test]
    fn a_url_is_pointed_at_the_relay() {
        let to: SocketAddr = "127.0.0.1:6000".parse().unwrap();
        let (url, up) = through(
            "postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
            to,
        )
        .unwrap();
        assert_eq!(
            url,
            "postgres://postgres@127.0.0.1:6000/test?sslmode=disable"
        );
        assert_eq!(up, "127.0.0.1:5432");
    }
}
