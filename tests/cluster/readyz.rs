//! `/readyz` follows whether PostgreSQL can be reached, not just whether
//! the schema answers: an instance talks to the server through a TCP proxy
//! inside the test, which the test cuts (its listener closed and every open
//! connection dropped) and later restores. `/readyz` answers 503 while the
//! server is unreachable and 200 once it is back; `/healthz` stays 200.

use crate::harness::*;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// A TCP proxy to `upstream` that can be cut and restored.
struct Proxy {
    addr: SocketAddr,
    upstream: String,
    /// The accept loop and every connection's copy.
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let p = Proxy {
            addr: listener.local_addr().unwrap(),
            upstream,
            tasks: Arc::default(),
        };
        p.serve(listener);
        p
    }

    fn serve(&self, listener: TcpListener) {
        let (tasks, upstream) = (self.tasks.clone(), self.upstream.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let copy = tokio::spawn(async move {
                    if let Ok(mut up) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                tasks.lock().unwrap().push(copy.abort_handle());
            }
        });
        self.tasks.lock().unwrap().push(accept.abort_handle());
    }

    /// Closes the listener and every connection through it.
    fn cut(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    /// Listens again on the same address.
    async fn restore(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => return self.serve(l),
                // The aborted listener may not be closed yet.
                Err(e) => assert!(Instant::now() < deadline, "rebinding {}: {e}", self.addr),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn status(http: &reqwest::Client, i: &Instance, path: &str) -> u16 {
    http.get(format!("{}{path}", i.base))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn readyz_is_503_while_the_database_is_unreachable() {
    let _one = crate::ONE_AT_A_TIME.lock().await;
    let db = crate::pg::fresh().await;
    // The server's address, and the schema's URL through the proxy.
    let server: tokio_postgres::Config = db.url.parse().unwrap();
    let host = match &server.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        other => panic!("the tests' PostgreSQL is not reached over TCP: {other:?}"),
    };
    let port = server.get_ports().first().copied().unwrap_or(5432);
    let proxy = Proxy::start(format!("{host}:{port}")).await;
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.addr.port())).unwrap();

    let logs = logs_dir();
    let http = reqwest::Client::new();
    let i = Instance::spawn(url.as_str(), logs.path(), "proxied", &["--tick", "200ms"]);
    wait_healthy(&http, &i).await;
    assert_eq!(status(&http, &i, "/readyz").await, 200);

    proxy.cut();
    until(30, "/readyz to answer 503 while cut", async || {
        assert_eq!(
            status(&http, &i, "/healthz").await,
            200,
            "healthz while cut"
        );
        status(&http, &i, "/readyz").await == 503
    })
    .await;
    // Still unreachable, still not ready; the process is up all along.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(status(&http, &i, "/readyz").await, 503);
    assert_eq!(status(&http, &i, "/healthz").await, 200);

    proxy.restore().await;
    until(30, "/readyz to answer 200 once restored", async || {
        status(&http, &i, "/readyz").await == 200
    })
    .await;
    assert_eq!(status(&http, &i, "/healthz").await, 200);
    drop(i);
    db.drop_now().await;
}
