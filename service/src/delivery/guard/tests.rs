//! The guard's decisions, one test per form of address an attacker might
//! try (the SSRF campaign); `tests/api/ssrf.rs` shows the same refusals
//! through real delivery attempts.

use super::*;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn url(s: &str) -> url::Url {
    url::Url::parse(s).unwrap()
}

/// Asserts that the guard (on, nothing listed) refuses each address as `what`.
fn refused_as(what: &str, addrs: &[&str]) {
    let on = Policy::on(vec![]);
    for a in addrs {
        let why = on
            .refuses(ip(a))
            .unwrap_or_else(|| panic!("{a} was allowed"));
        assert!(why.what.contains(what), "{a}: {why}");
        let msg = on.check_ip(ip(a)).unwrap_err();
        assert!(msg.contains("refused by the target guard"), "{msg}");
        assert!(
            Policy::off().refuses(ip(a)).is_none(),
            "{a} with the guard off"
        );
    }
}

fn allowed(addrs: &[&str]) {
    for a in addrs {
        assert_eq!(Policy::on(vec![]).refuses(ip(a)), None, "{a}");
    }
}

#[test]
fn ssrf_loopback_is_refused() {
    refused_as("loopback", &["127.0.0.1", "127.255.255.254", "::1"]);
}

#[test]
fn ssrf_private_ranges_are_refused() {
    refused_as(
        "private",
        &[
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.0.1",
            "192.168.255.255",
            "fc00::1",
            "fd12:3456::1",
        ],
    );
    // The edges of 172.16/12 are public.
    allowed(&["172.15.255.255", "172.32.0.0", "11.0.0.1", "192.169.0.1"]);
}

#[test]
fn ssrf_link_local_is_refused() {
    refused_as("link-local", &["169.254.1.1", "fe80::1", "febf::1"]);
}

#[test]
fn ssrf_cgnat_shared_space_is_refused() {
    refused_as("CGNAT", &["100.64.0.1", "100.127.255.255"]);
    allowed(&["100.63.255.255", "100.128.0.0"]);
}

#[test]
fn ssrf_multicast_and_broadcast_are_refused() {
    refused_as("multicast", &["224.0.0.1", "239.255.255.250", "ff02::1"]);
    refused_as("broadcast", &["255.255.255.255"]);
}

#[test]
fn ssrf_unspecified_is_refused() {
    refused_as("unspecified", &["0.0.0.0", "0.1.2.3", "::"]);
}

#[test]
fn ssrf_metadata_addresses_are_refused() {
    refused_as(
        "metadata",
        &[
            "169.254.169.254", // AWS, GCP, Azure, Oracle…
            "169.254.170.2",   // AWS ECS
            "100.100.100.200", // Alibaba
            "168.63.129.16",   // Azure WireServer: a public address
            "fd00:ec2::254",   // AWS over IPv6
        ],
    );
    // Embedded in IPv6, still the metadata service.
    refused_as("metadata", &["::ffff:169.254.169.254"]);
}

#[test]
fn ssrf_ipv4_mapped_ipv6_is_judged_by_its_ipv4() {
    refused_as("loopback", &["::ffff:127.0.0.1", "::ffff:7f00:1"]);
    refused_as("private", &["::ffff:10.0.0.1", "::ffff:192.168.1.1"]);
    let why = classify(ip("::ffff:7f00:1")).unwrap();
    assert_eq!(why.via, Some("127.0.0.1".parse().unwrap()));
    allowed(&["::ffff:8.8.8.8"]);
}

#[test]
fn ssrf_ipv4_compatible_and_translated_ipv6_are_refused() {
    // `::a.b.c.d` (deprecated) and `::ffff:0:a.b.c.d` (SIIT): no receiver
    // lives there, and either may be routed to the IPv4 host.
    refused_as("IPv4-compatible", &["::127.0.0.1", "::8.8.8.8"]);
    refused_as("IPv4-translated", &["::ffff:0:7f00:1"]);
}

#[test]
fn ssrf_nat64_reaching_a_private_ipv4_is_refused() {
    refused_as("loopback", &["64:ff9b::7f00:1", "64:ff9b::127.0.0.1"]);
    refused_as("private", &["64:ff9b::a00:1"]);
    refused_as("NAT64 local-use", &["64:ff9b:1::a00:1"]);
    // An IPv6-only network reaches public IPv4 receivers this way.
    allowed(&["64:ff9b::808:808"]);
}

#[test]
fn ssrf_6to4_reaching_a_private_ipv4_is_refused() {
    refused_as("loopback", &["2002:7f00:1::", "2002:7f00:1::1"]);
    refused_as("private", &["2002:c0a8:101::"]);
    allowed(&["2002:808:808::1"]);
}

#[test]
fn ssrf_teredo_and_documentation_are_refused() {
    refused_as("Teredo", &["2001:0:4136:e378:8000:63bf:3fff:fdd2"]);
    refused_as(
        "documentation",
        &["192.0.2.1", "198.51.100.1", "203.0.113.1", "2001:db8::1"],
    );
}

#[test]
fn ssrf_public_addresses_are_allowed() {
    allowed(&[
        "93.184.216.34",
        "8.8.8.8",
        "1.1.1.1",
        "2606:4700:4700::1111",
    ]);
}

#[test]
fn ssrf_decimal_octal_and_hex_ipv4_spellings_are_refused() {
    // The URL parser (WHATWG rules) reads every spelling of an IPv4 address
    // as that address, so the guard sees the literal 127.0.0.1.
    let on = Policy::on(vec![]);
    for spelling in [
        "http://2130706433/",
        "http://0177.0.0.1/",
        "http://0x7f.0.0.1/",
        "http://0x7f000001/",
        "http://127.1/",
        "http://017700000001/",
    ] {
        let u = url(spelling);
        assert_eq!(u.host_str(), Some("127.0.0.1"), "{spelling}");
        let err = on.check_url(&u).unwrap_err();
        assert!(err.contains("loopback"), "{spelling}: {err}");
    }
    assert!(on.check_url(&url("http://0xa.1/")).is_err(), "10.0.0.1");
}

#[test]
fn ssrf_ip_literal_urls_are_refused_unless_the_guard_is_off() {
    let on = Policy::on(vec![]);
    for u in [
        "http://127.0.0.1:9/x",
        "http://[::1]:9/x",
        "http://[::ffff:127.0.0.1]/",
        "http://[64:ff9b::7f00:1]/",
        "http://[2002:7f00:1::]/",
        "https://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
    ] {
        assert!(on.check_url(&url(u)).is_err(), "{u}");
        assert!(Policy::off().check_url(&url(u)).is_ok(), "{u}");
    }
    assert!(on.check_url(&url("https://example.com/x")).is_ok());
    assert!(on.check_url(&url("https://93.184.216.34/x")).is_ok());
}

#[test]
fn ssrf_localhost_names_are_refused() {
    let on = Policy::on(vec![]);
    for u in [
        "http://localhost/",
        "http://LOCALHOST/",
        "http://localhost./",
        "http://LocalHost.:8080/",
        "http://foo.localhost/",
        "http://a.b.localhost./",
    ] {
        let err = on.check_url(&url(u)).unwrap_err();
        assert!(err.contains("localhost name"), "{u}: {err}");
    }
    for fine in ["http://localhost.example.com/", "http://mylocalhost/"] {
        assert!(on.check_url(&url(fine)).is_ok(), "{fine}");
    }
}

#[test]
fn allow_targets_lets_listed_ranges_through_and_nothing_else() {
    let p = Policy::on(parse_allow(&["127.0.0.0/8".into(), "fd12::/16".into()]).unwrap());
    assert_eq!(p.refuses(ip("127.0.0.1")), None);
    assert_eq!(p.refuses(ip("::ffff:127.0.0.1")), None, "the same host");
    assert_eq!(p.refuses(ip("fd12::1")), None);
    for still in ["::1", "10.0.0.1", "fd13::1", "64:ff9b::7f00:1"] {
        assert!(p.refuses(ip(still)).is_some(), "{still}");
    }
    // A metadata address stays refused even inside a listed range.
    let wide = Policy::on(parse_allow(&["169.254.0.0/16".into()]).unwrap());
    assert_eq!(wide.refuses(ip("169.254.1.1")), None);
    assert!(wide.refuses(ip("169.254.169.254")).is_some());
    let aws6 = Policy::on(parse_allow(&["fd00::/8".into()]).unwrap());
    assert!(aws6.refuses(ip("fd00:ec2::254")).is_some());
}

#[test]
fn allow_targets_parses_cidrs_and_addresses_and_refuses_host_bits() {
    let got = parse_allow(&[" 10.1.0.0/16".into(), "192.168.7.9".into(), "".into()]).unwrap();
    assert_eq!(
        got,
        [
            "10.1.0.0/16".parse().unwrap(),
            "192.168.7.9/32".parse().unwrap()
        ]
    );
    let err = parse_allow(&["10.1.2.3/8".into()]).unwrap_err();
    assert!(err.contains("did you mean 10.0.0.0/8"), "{err}");
    assert!(parse_allow(&["10.0.0.0/33".into()]).is_err());
    assert!(parse_allow(&["intranet".into()]).is_err());
}

/// A lookup that answers from a script, one answer per call (the last one
/// repeats), and counts the calls.
fn scripted(answers: &[&[&str]]) -> (Lookup, Arc<Mutex<usize>>) {
    let answers: Vec<Vec<IpAddr>> = answers
        .iter()
        .map(|a| a.iter().map(|s| ip(s)).collect())
        .collect();
    let calls = Arc::new(Mutex::new(0));
    let seen = calls.clone();
    let lookup: Lookup = Arc::new(move |_host: String| {
        let mut n = seen.lock().unwrap();
        let answer = answers[(*n).min(answers.len() - 1)].clone();
        *n += 1;
        Box::pin(async move { Ok(answer) })
    });
    (lookup, calls)
}

#[tokio::test]
async fn ssrf_a_name_resolving_to_private_addresses_is_refused() {
    let (lookup, _) = scripted(&[&["10.0.0.7", "192.168.1.1"]]);
    let r = GuardedResolver::new(Arc::new(Policy::on(vec![])), lookup);
    let err = r
        .resolve("internal.example.com")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("10.0.0.7, private"), "{err}");
    assert!(err.contains("refused by the target guard"), "{err}");
}

#[tokio::test]
async fn ssrf_the_resolver_keeps_only_allowed_addresses_of_each_answer() {
    // The answer changes between lookups, as in DNS rebinding: each answer
    // is filtered when it is given, and what is returned is what the
    // connector connects to.
    let (lookup, calls) = scripted(&[
        &["93.184.216.34"],
        &["127.0.0.1", "93.184.216.34", "::1"],
        &["169.254.169.254"],
    ]);
    let r = GuardedResolver::new(Arc::new(Policy::on(vec![])), lookup);
    let public: SocketAddr = "93.184.216.34:0".parse().unwrap();
    assert_eq!(r.resolve("rebind.example").await.unwrap(), [public]);
    assert_eq!(r.resolve("rebind.example").await.unwrap(), [public]);
    assert!(r.resolve("rebind.example").await.is_err());
    assert_eq!(*calls.lock().unwrap(), 3);
}
