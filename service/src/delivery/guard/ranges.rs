//! Which addresses the target guard refuses, and why: a table of blocks
//! (private, loopback, link-local, shared, multicast, reserved…), a list of
//! cloud metadata addresses, and the IPv6 forms that embed an IPv4 address
//! (mapped, NAT64, 6to4), which are judged by the address they embed,
//! because that is the host a connection to them reaches. Pure: no I/O.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why the guard refuses an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Why {
    /// The kind of block, e.g. `loopback`, `private`, `cloud metadata service`.
    pub what: &'static str,
    /// The block the address is in (a metadata address is a block of one).
    pub block: IpNet,
    /// The IPv4 address an IPv6 one embeds, when that is what is refused.
    pub via: Option<Ipv4Addr>,
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.via {
            Some(v4) => write!(f, "reaches {v4}, {} ({})", self.what, self.block),
            None => write!(f, "{} ({})", self.what, self.block),
        }
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)
}

const fn v6(s: [u16; 8], len: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = s;
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), len)
}

/// IPv4 blocks that are not the public Internet (IANA special-purpose
/// registry, the ones a webhook receiver can never legitimately be in).
const V4: &[(Ipv4Net, &str)] = &[
    (v4(0, 0, 0, 0, 8), "\"this network\" (unspecified)"),
    (v4(10, 0, 0, 0, 8), "private"),
    (v4(100, 64, 0, 0, 10), "shared address space (CGNAT)"),
    (v4(127, 0, 0, 0, 8), "loopback"),
    (v4(169, 254, 0, 0, 16), "link-local"),
    (v4(172, 16, 0, 0, 12), "private"),
    (v4(192, 0, 0, 0, 24), "IETF protocol assignments"),
    (v4(192, 0, 2, 0, 24), "documentation"),
    (v4(192, 88, 99, 0, 24), "6to4 relay anycast"),
    (v4(192, 168, 0, 0, 16), "private"),
    (v4(198, 18, 0, 0, 15), "benchmarking"),
    (v4(198, 51, 100, 0, 24), "documentation"),
    (v4(203, 0, 113, 0, 24), "documentation"),
    (v4(224, 0, 0, 0, 4), "multicast"),
    (v4(240, 0, 0, 0, 4), "reserved (broadcast included)"),
];

/// IPv6 blocks refused whole. The IPv4-compatible (`::a.b.c.d`) and
/// IPv4-translated forms are deprecated and Teredo tunnels to an IPv4 host:
/// none is a receiver's address today, and each may reach a private IPv4
/// one, so they are refused without looking inside.
const V6: &[(Ipv6Net, &str)] = &[
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), "unspecified"),
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), "loopback"),
    (
        v6([0, 0, 0, 0, 0, 0, 0, 0], 96),
        "IPv4-compatible (deprecated)",
    ),
    (v6([0, 0, 0, 0, 0xffff, 0, 0, 0], 96), "IPv4-translated"),
    (v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), "NAT64 local-use"),
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), "discard-only"),
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32), "Teredo"),
    (v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48), "benchmarking"),
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), "documentation"),
    (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), "documentation"),
    (
        v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
        "unique local (private)",
    ),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), "link-local"),
    (
        v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
        "site-local (deprecated)",
    ),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "multicast"),
];

/// Cloud metadata services: they hand out the host's credentials, so they
/// are refused even inside a range `--allow-targets` lists. Most lie in
/// blocks refused anyway; Azure's WireServer (168.63.129.16) is the one
/// public address here.
pub const METADATA: &[IpAddr] = &[
    // AWS, GCP, Azure, Oracle, DigitalOcean, Hetzner, OpenStack…
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    // AWS ECS task metadata.
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 2)),
    // Tencent Cloud.
    IpAddr::V4(Ipv4Addr::new(169, 254, 0, 23)),
    // Alibaba Cloud.
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    // Azure WireServer and host DNS.
    IpAddr::V4(Ipv4Addr::new(168, 63, 129, 16)),
    // Oracle Cloud Classic.
    IpAddr::V4(Ipv4Addr::new(192, 0, 0, 192)),
    // AWS over IPv6.
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
];

/// The IPv4 address an IPv6 one stands for, and how: IPv4-mapped
/// (`::ffff:a.b.c.d`, the same host on a dual-stack socket), NAT64's
/// well-known prefix (`64:ff9b::a.b.c.d`, translated to that host) and
/// 6to4 (`2002:AABB:CCDD::`, tunnelled to it).
pub fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    let low = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(low(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return Some(low(s[1], s[2]));
    }
    None
}

/// Whether `ip` (or the IPv4 address it embeds) is a metadata service.
pub fn is_metadata(ip: IpAddr) -> bool {
    let v4 = match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
        IpAddr::V4(_) => None,
    };
    METADATA.contains(&ip) || v4.is_some_and(|v| METADATA.contains(&v))
}

/// Why the guard refuses `ip`, or `None` for a public address.
pub fn classify(ip: IpAddr) -> Option<Why> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Why> {
    if METADATA.contains(&IpAddr::V4(ip)) {
        return Some(Why {
            what: "cloud metadata service",
            block: IpNet::V4(Ipv4Net::new_assert(ip, 32)),
            via: None,
        });
    }
    V4.iter()
        .find(|(n, _)| n.contains(&ip))
        .map(|(n, what)| Why {
            what,
            block: IpNet::V4(*n),
            via: None,
        })
}

fn classify_v6(ip: Ipv6Addr) -> Option<Why> {
    if METADATA.contains(&IpAddr::V6(ip)) {
        return Some(Why {
            what: "cloud metadata service",
            block: IpNet::V6(Ipv6Net::new_assert(ip, 128)),
            via: None,
        });
    }
    if let Some(why) = V6.iter().find(|(n, _)| n.contains(&ip)) {
        return Some(Why {
            what: why.1,
            block: IpNet::V6(why.0),
            via: None,
        });
    }
    let v4 = embedded_v4(ip)?;
    classify_v4(v4).map(|why| Why {
        via: Some(v4),
        ..why
    })
}
