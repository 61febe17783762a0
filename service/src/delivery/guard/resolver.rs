//! The HTTP client's DNS resolver, with the guard inside it: it looks a
//! name up once and hands the connector only the addresses the [`Policy`]
//! lets through, or an error naming the refusal when none is left.
//!
//! Why a DNS answer that changes between check and connect (rebinding)
//! opens no window: there is no separate check. hyper-util's
//! `HttpConnector` (0.1, `call_async`) asks its resolver once per new
//! connection and connects, happy-eyeballs style, to exactly the socket
//! addresses the resolver returned (it only sets the URL's port on them);
//! it never looks the name up again, and hyper-rustls only wraps the stream
//! it gets. So the addresses filtered here are the very ones connected to.
//! The next connection asks again and that answer is filtered in its turn;
//! a kept-alive connection stays with the address it was opened to. An IP
//! literal skips the resolver (the connector parses it itself), which is
//! why [`Policy::check_url`] runs before every attempt too.
//!
//! How names are looked up is injectable ([`Lookup`]): the system resolver
//! in production ([`system_lookup`]), a script in tests, so the rebinding
//! and "resolves to a private address" cases are tested without DNS.

use super::Policy;
use hyper_util::client::legacy::connect::dns::Name;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// An answer to come: the addresses a name resolves to.
pub type LookupFuture = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;

/// How a host name becomes addresses.
pub type Lookup = Arc<dyn Fn(String) -> LookupFuture + Send + Sync>;

/// The system resolver (`getaddrinfo`, through tokio): /etc/hosts, then DNS.
pub fn system_lookup() -> Lookup {
    Arc::new(|host: String| {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    })
}

/// The resolver the HTTP connector uses: a lookup, filtered by the policy.
#[derive(Clone)]
pub struct GuardedResolver {
    policy: Arc<Policy>,
    lookup: Lookup,
}

impl std::fmt::Debug for GuardedResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedResolver")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl GuardedResolver {
    /// A resolver that asks `lookup` and keeps what `policy` allows.
    pub fn new(policy: Arc<Policy>, lookup: Lookup) -> Self {
        Self { policy, lookup }
    }

    /// Looks `host` up and keeps the allowed addresses, in the order given;
    /// none left is an error that says why the first one was refused.
    pub async fn resolve(&self, host: &str) -> io::Result<Vec<SocketAddr>> {
        let all = (self.lookup)(host.to_owned()).await?;
        if all.is_empty() {
            return Err(io::Error::other(format!("{host} has no address")));
        }
        let mut first_refusal = None;
        let mut allowed = Vec::with_capacity(all.len());
        for ip in all {
            match self.policy.refuses(ip) {
                None => allowed.push(SocketAddr::new(ip, 0)),
                Some(why) => {
                    first_refusal.get_or_insert(format!("{ip}, {why}"));
                }
            }
        }
        if allowed.is_empty() {
            let why = first_refusal.unwrap_or_default();
            return Err(io::Error::other(format!(
                "{host} is refused by the target guard: it resolves only to refused addresses (first: {why})"
            )));
        }
        Ok(allowed)
    }
}

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let me = self.clone();
        Box::pin(async move { Ok(me.resolve(name.as_str()).await?.into_iter()) })
    }
}
