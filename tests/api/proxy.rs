//! A real HTTP proxy on loopback in front of a running service, for a
//! client under test (the admin CLI) to call instead of the service: it
//! passes each request on unchanged (method, path and query, headers,
//! body) and the answer back, and notes each request's method and path, so
//! a test can count the calls a client made, such as an import's chunks.

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, Mutex};

/// What the proxy shares with its handler.
struct Inner {
    upstream: String,
    http: reqwest::Client,
    seen: Mutex<Vec<(String, String)>>,
}

/// The proxy's handle: its URL, and the requests it passed on.
pub struct Proxy {
    inner: Arc<Inner>,
    pub url: String,
}

impl Proxy {
    /// A proxy to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Proxy {
        let inner = Arc::new(Inner {
            upstream: upstream.to_owned(),
            http: reqwest::Client::new(),
            seen: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .fallback(pass_on)
            .with_state(inner.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Proxy { inner, url }
    }

    /// How many requests of `method` to `path` it passed on.
    pub fn count(&self, method: &str, path: &str) -> usize {
        let seen = self.inner.seen.lock().unwrap();
        seen.iter()
            .filter(|(m, p)| m == method && p == path)
            .count()
    }
}

async fn pass_on(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body: Bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    inner
        .seen
        .lock()
        .unwrap()
        .push((parts.method.to_string(), parts.uri.path().to_owned()));
    let mut headers = parts.headers.clone();
    headers.remove(http::header::HOST);
    let answer = inner
        .http
        .request(parts.method, format!("{}{target}", inner.upstream))
        .headers(headers)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let mut headers = answer.headers().clone();
    // The body is passed on whole, with a length of its own.
    headers.remove(http::header::TRANSFER_ENCODING);
    headers.remove(http::header::CONTENT_LENGTH);
    let body = answer.bytes().await.unwrap();
    (status, headers, body).into_response()
}
