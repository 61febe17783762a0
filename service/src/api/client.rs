//! Who is asking: the client address that per-client limits are kept for.
//! By default it is the TCP peer. Behind proxies named with
//! `--trusted-proxies`, it is the right-most `X-Forwarded-For` address that
//! is not one of them: each trusted proxy appends the address it received
//! the request from, so everything right of the first untrusted address was
//! written by our own proxies, and everything left of it may be forged.

use super::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use ipnet::IpNet;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The client's address (see the module's header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        // The server gives every request its peer; a request that did not
        // come through it (none in service) counts as one unknown client.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        Ok(ClientAddr(client_addr(
            peer,
            &parts.headers,
            &state.ctx.config.trusted_proxies,
        )))
    }
}

/// The client address of a request from `peer` with these headers.
pub fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    // Several X-Forwarded-For headers read as one list, in order.
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        // Our own proxies write valid addresses: a hop that is not one
        // means a misconfigured proxy, and the last address known is kept.
        let Some(ip) = parse_hop(hop) else {
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `::1` or
/// `[::1]:5678`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(canonical)
}

/// An IPv4 client seen through an IPv6 socket is the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::client_addr;
    use axum::http::HeaderMap;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        let h = xff(&["9.9.9.9"]);
        assert_eq!(client_addr(ip("10.0.0.5"), &h, &[]), ip("10.0.0.5"));
    }

    #[test]
    fn the_right_most_untrusted_address_is_the_client() {
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        // The client forged 6.6.6.6; our proxies added 1.2.3.4 and 10.0.0.7.
        let h = xff(&["6.6.6.6, 1.2.3.4", "10.0.0.7"]);
        assert_eq!(client_addr(ip("10.0.0.5"), &h, &trusted), ip("1.2.3.4"));
    }

    #[test]
    fn an_untrusted_peer_s_forwarded_for_is_ignored() {
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        let h = xff(&["1.2.3.4"]);
        assert_eq!(client_addr(ip("8.8.8.8"), &h, &trusted), ip("8.8.8.8"));
    }

    #[test]
    fn ports_brackets_and_mapped_addresses_are_understood() {
        let trusted = ["127.0.0.1/32".parse().unwrap()];
        let h = xff(&["[2001:db8::1]:443"]);
        assert_eq!(
            client_addr(ip("::ffff:127.0.0.1"), &h, &trusted),
            ip("2001:db8::1")
        );
        let h = xff(&["1.2.3.4:5678"]);
        assert_eq!(client_addr(ip("127.0.0.1"), &h, &trusted), ip("1.2.3.4"));
    }

    #[test]
    fn only_trusted_hops_or_garbage_keep_the_last_known_address() {
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        let h = xff(&["10.0.0.9"]);
        assert_eq!(client_addr(ip("10.0.0.5"), &h, &trusted), ip("10.0.0.9"));
        let h = xff(&["not-an-ip"]);
        assert_eq!(client_addr(ip("10.0.0.5"), &h, &trusted), ip("10.0.0.5"));
        assert_eq!(
            client_addr(ip("10.0.0.5"), &HeaderMap::new(), &trusted),
            ip("10.0.0.5")
        );
    }
}
