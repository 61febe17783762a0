//! The target guard: tminus connects only to public addresses, unless the
//! operator turns the guard off (`--allow-private-targets`) or lists the
//! internal ranges it may reach (`--allow-targets`). A hook URL comes from
//! an integrator, so without the guard anyone with an API key could make
//! tminus POST into the network it runs in (SSRF).
//!
//! Two checks, one [`Policy`]:
//! - a URL's host before any lookup ([`Policy::check_url`]): an IP literal
//!   (the URL parser has already turned `2130706433`, `0177.0.0.1`,
//!   `0x7f.0.0.1` and `127.1` into `127.0.0.1`) and `localhost` names
//!   (`localhost`, `LOCALHOST`, `localhost.`, `foo.localhost`). Run at
//!   subscribe time (a 422 early) and before every attempt;
//! - every address a name resolves to, inside the HTTP client's resolver
//!   ([`resolver::GuardedResolver`]), which is why a DNS answer that
//!   changes between check and connect opens no window (see there).
//!
//! What counts as refused, and why, is in [`ranges`]. The decisions are
//! pure; the resolver is the only I/O.

pub mod ranges;
pub mod resolver;

use ipnet::IpNet;
use std::net::IpAddr;

pub use ranges::{classify, Why};
pub use resolver::{system_lookup, GuardedResolver, Lookup};

/// What the guard lets through.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Policy {
    /// `--allow-private-targets`: the guard is off.
    pub allow_private: bool,
    /// `--allow-targets`: ranges allowed despite the guard (never a
    /// metadata address).
    pub allow: Vec<IpNet>,
}

impl Policy {
    /// `--allow-private-targets` and the parsed `--allow-targets`.
    pub fn configured(config: &crate::config::Config) -> Result<Self, String> {
        Ok(Policy {
            allow_private: config.allow_private_targets,
            allow: parse_allow(&config.allow_targets)?,
        })
    }

    /// The guard off: everything goes (tests, demos).
    pub fn off() -> Self {
        Self {
            allow_private: true,
            allow: Vec::new(),
        }
    }

    /// The guard on, with these ranges allowed.
    pub fn on(allow: Vec<IpNet>) -> Self {
        Self {
            allow_private: false,
            allow,
        }
    }

    /// Whether an address refused by the guard is in a listed range. An
    /// IPv4-mapped address is the IPv4 host itself, so it is matched as that.
    fn listed(&self, ip: IpAddr) -> bool {
        let mapped = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        self.allow
            .iter()
            .any(|n| n.contains(&ip) || mapped.is_some_and(|m| n.contains(&m)))
    }

    /// Why `ip` may not be connected to, or `None` when it may.
    pub fn refuses(&self, ip: IpAddr) -> Option<Why> {
        if self.allow_private {
            return None;
        }
        let why = classify(ip)?;
        if !ranges::is_metadata(ip) && self.listed(ip) {
            return None;
        }
        Some(why)
    }

    /// Refuses `ip` with a message for the attempt log.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), String> {
        match self.refuses(ip) {
            None => Ok(()),
            Some(why) => Err(format!(
                "target address {ip} is refused by the target guard: {why}"
            )),
        }
    }

    /// Checks what can be judged of a URL without a lookup: an IP literal
    /// host, and `localhost` names, which RFC 6761 reserves for loopback
    /// (whatever /etc/hosts or a resolver would say about `foo.localhost`).
    pub fn check_url(&self, url: &url::Url) -> Result<(), String> {
        if self.allow_private {
            return Ok(());
        }
        match url.host() {
            Some(url::Host::Ipv4(v4)) => self.check_ip(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => self.check_ip(IpAddr::V6(v6)),
            Some(url::Host::Domain(d)) if is_localhost(d) => Err(format!(
                "target host {d} is refused by the target guard: a localhost name"
            )),
            _ => Ok(()),
        }
    }
}

/// `localhost` and its subdomains, in any case, with or without the
/// trailing dot of a fully qualified name.
pub fn is_localhost(host: &str) -> bool {
    let h = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    h == "localhost" || h.ends_with(".localhost")
}

/// Parses `--allow-targets`: CIDRs such as `10.1.0.0/16` or `fd12::/48`, or
/// single addresses. A CIDR with host bits set (`10.1.2.3/8`) is refused:
/// it most likely meant one host, and silently widening it would allow
/// more than intended.
pub fn parse_allow(list: &[String]) -> Result<Vec<IpNet>, String> {
    let mut out = Vec::new();
    for raw in list.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let net = match raw.parse::<IpAddr>() {
            Ok(ip) => IpNet::from(ip),
            Err(_) => raw.parse::<IpNet>().map_err(|_| {
                format!("allow-targets: {raw:?} is not a CIDR such as 10.1.0.0/16 or an address")
            })?,
        };
        if net.trunc() != net {
            return Err(format!(
                "allow-targets: {raw} has host bits set; did you mean {}?",
                net.trunc()
            ));
        }
        out.push(net);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
