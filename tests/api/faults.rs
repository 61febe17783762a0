//! A receiver that misbehaves on purpose, at the level of bytes on the
//! socket, which an HTTP framework would not let a test do. Each path has
//! its own fault for its first attempts and then answers `200`, so a test
//! sees the fault and the recovery: a reset connection, an answer trickled
//! a byte a second, a 100 MB answer, `503` with `Retry-After` as an HTTP
//! date, garbage that is not HTTP, a plain status (500, 410, 302…), no
//! answer at all, and a connection closed once idle. It keeps connections
//! alive as a real server does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a path does wrong.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Resets the connection (RST) once the request has arrived.
    Reset,
    /// Sends a `200` answer one byte a second.
    Trickle,
    /// Answers `200` with a body of this many bytes, as fast as it can.
    Huge(u64),
    /// Answers this status with these extra header lines.
    Status(u16, Vec<(&'static str, String)>),
    /// Answers bytes that are not HTTP, then closes.
    Garbage,
    /// Reads the request and never answers.
    Silent,
    /// Answers `200`, keeping the connection alive as far as the sender
    /// can tell, then closes it after this idle time.
    CloseWhenIdle(Duration),
}

#[derive(Default)]
struct State {
    faults: HashMap<String, (Fault, u32)>,
    /// Requests per path.
    hits: HashMap<String, u32>,
}

/// The running receiver.
#[derive(Clone)]
pub struct FaultReceiver {
    pub base: String,
    state: Arc<Mutex<State>>,
    /// Bytes of answer bodies the `Huge` fault managed to write.
    pub huge_written: Arc<AtomicU64>,
    /// Connections accepted.
    pub accepted: Arc<AtomicU64>,
}

impl FaultReceiver {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = FaultReceiver {
            base: format!("http://{}", listener.local_addr().unwrap()),
            state: Arc::default(),
            huge_written: Arc::default(),
            accepted: Arc::default(),
        };
        let me = r.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                me.accepted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(me.clone().serve(s));
            }
        });
        r
    }

    /// `path` answers with `fault` for its first `times` requests, then 200.
    pub fn on(&self, path: &str, fault: Fault, times: u32) -> String {
        let mut st = self.state.lock().unwrap();
        st.faults.insert(path.to_owned(), (fault, times));
        format!("{}{path}", self.base)
    }

    /// Requests `path` got.
    pub fn hits(&self, path: &str) -> u32 {
        *self.state.lock().unwrap().hits.get(path).unwrap_or(&0)
    }

    /// Reads requests off one connection and answers each as its path says.
    async fn serve(self, mut s: TcpStream) {
        loop {
            let Some(path) = read_request(&mut s).await else {
                return;
            };
            let fault = {
                let mut st = self.state.lock().unwrap();
                let n = st.hits.entry(path.clone()).or_default();
                *n += 1;
                let n = *n;
                st.faults
                    .get(&path)
                    .filter(|(_, times)| n <= *times)
                    .map(|(f, _)| f.clone())
            };
            let keep = match fault {
                None => answer(&mut s, 200, &[], b"ok").await,
                Some(f) => self.misbehave(&mut s, f).await,
            };
            if !keep {
                return;
            }
        }
    }

    /// Carries out a fault; says whether the connection is still usable.
    async fn misbehave(&self, s: &mut TcpStream, fault: Fault) -> bool {
        match fault {
            Fault::Reset => {
                let _ = s.set_zero_linger();
                false
            }
            Fault::Trickle => {
                for b in b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok" {
                    if s.write_all(&[*b]).await.is_err() {
                        return false;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                true
            }
            Fault::Huge(len) => {
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {len}\r\n\r\n");
                if s.write_all(head.as_bytes()).await.is_err() {
                    return false;
                }
                let chunk = vec![b'x'; 64 * 1024];
                let mut left = len;
                while left > 0 {
                    let n = left.min(chunk.len() as u64) as usize;
                    if s.write_all(&chunk[..n]).await.is_err() {
                        return false;
                    }
                    self.huge_written.fetch_add(n as u64, Ordering::SeqCst);
                    left -= n as u64;
                }
                true
            }
            Fault::Status(code, headers) => {
                let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                answer(s, code, &h, b"").await
            }
            Fault::Garbage => {
                let _ = s.write_all(b"THIS IS NOT HTTP\r\n\r\n").await;
                false
            }
            Fault::CloseWhenIdle(after) => {
                if !answer(s, 200, &[], b"ok").await {
                    return false;
                }
                // The next request, if one comes this soon, is still read.
                let mut buf = [0u8; 1];
                matches!(
                    tokio::time::timeout(after, s.peek(&mut buf)).await,
                    Ok(Ok(n)) if n > 0
                )
            }
            Fault::Silent => {
                // Hold the connection until the sender gives up on it.
                let mut buf = [0u8; 1];
                let _ = s.read(&mut buf).await;
                false
            }
        }
    }
}

/// Reads one request; its path, or `None` when the connection ends.
async fn read_request(s: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let path = head.split_whitespace().nth(1)?.to_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())
                .flatten()
        })
        .unwrap_or(0);
    let mut body = buf.len() - head_end;
    while body < len {
        let n = s.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        body += n;
    }
    Some(path)
}

/// Writes a whole answer; says whether the connection is still usable.
async fn answer(s: &mut TcpStream, code: u16, headers: &[(&str, &str)], body: &[u8]) -> bool {
    let mut out = format!("HTTP/1.1 {code} X\r\ncontent-length: {}\r\n", body.len());
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    s.write_all(&bytes).await.is_ok()
}
