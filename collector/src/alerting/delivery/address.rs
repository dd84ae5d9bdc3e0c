//! Which addresses a webhook may reach: only globally routable unicast. An allow-list, because
//! a blocklist of private ranges keeps missing forms (NAT64, 6to4, IPv4-compatible IPv6…) that
//! lead back to loopback or the private network. IPv6 forms that carry an IPv4 address are
//! decoded first and the IPv4 address is judged.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use ipnet::{Ipv4Net, Ipv6Net};

/// IPv4 ranges of the IANA special-purpose registry that are not globally reachable.
static V4_NOT_GLOBAL: LazyLock<Vec<(Ipv4Net, &'static str)>> = LazyLock::new(|| {
    [
        ("0.0.0.0/8", "not a unicast address (\"this network\")"),
        ("10.0.0.0/8", "a private address"),
        ("100.64.0.0/10", "a private address (carrier-grade NAT)"),
        ("127.0.0.0/8", "a loopback address"),
        (
            "169.254.0.0/16",
            "a link-local address (cloud metadata lives here)",
        ),
        ("172.16.0.0/12", "a private address"),
        (
            "192.0.0.0/24",
            "an IETF protocol assignment, not a public host",
        ),
        ("192.0.2.0/24", "a documentation address"),
        ("192.88.99.0/24", "a 6to4 relay anycast address"),
        ("192.168.0.0/16", "a private address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("224.0.0.0/4", "not a unicast address (multicast)"),
        ("240.0.0.0/4", "a reserved address (or broadcast)"),
    ]
    .into_iter()
    .map(|(net, why)| (net.parse().expect("valid IPv4 network"), why))
    .collect()
});

/// IPv6 ranges to judge by name before the global unicast check (more precise reasons).
static V6_NAMED: LazyLock<Vec<(Ipv6Net, &'static str)>> = LazyLock::new(|| {
    [
        ("::1/128", "a loopback address"),
        ("::/128", "not a unicast address (unspecified)"),
        ("100::/64", "a discard-only address"),
        ("64:ff9b:1::/48", "a local-use NAT64 address"),
        ("fc00::/7", "a private (unique local) address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"),
        ("ff00::/8", "not a unicast address (multicast)"),
        // Inside 2000::/3 but not public hosts: Teredo, benchmarking, ORCHID and the rest of
        // the IETF protocol block, and the documentation prefixes.
        (
            "2001::/23",
            "an IETF protocol assignment (Teredo, benchmarking…)",
        ),
        ("2001:db8::/32", "a documentation address"),
        ("3fff::/20", "a documentation address"),
    ]
    .into_iter()
    .map(|(net, why)| (net.parse().expect("valid IPv6 network"), why))
    .collect()
});

static V6_GLOBAL_UNICAST: LazyLock<Ipv6Net> =
    LazyLock::new(|| "2000::/3".parse().expect("valid IPv6 network"));

/// Why an address may not be a webhook target, if it may not.
pub fn forbidden_reason(ip: IpAddr) -> Option<String> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4).map(str::to_owned),
        IpAddr::V6(v6) => {
            if let Some((v4, form)) = embedded_v4(v6) {
                return v4_reason(v4).map(|why| format!("{why} ({v4} inside {form})"));
            }
            if let Some((_, why)) = V6_NAMED.iter().find(|(net, _)| net.contains(&v6)) {
                return Some((*why).to_owned());
            }
            if !V6_GLOBAL_UNICAST.contains(&v6) {
                return Some("not a globally routable address".to_owned());
            }
            None
        }
    }
}

fn v4_reason(v4: Ipv4Addr) -> Option<&'static str> {
    V4_NOT_GLOBAL
        .iter()
        .find(|(net, _)| net.contains(&v4))
        .map(|(_, why)| *why)
}

/// The IPv4 address an IPv6 address stands for, and the form's name: mapped (::ffff:a.b.c.d),
/// translated (::ffff:0:a.b.c.d), compatible (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d) and 6to4
/// (2002:AABB:CCDD::). Each reaches the IPv4 host through the OS or a translator on the path.
fn embedded_v4(v6: Ipv6Addr) -> Option<(Ipv4Addr, &'static str)> {
    let s = v6.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some((low, "an IPv4-mapped IPv6 address")),
        [0, 0, 0, 0, 0xffff, 0, _, _] => Some((low, "an IPv4-translated IPv6 address")),
        // ::/128 and ::1 are IPv6's own unspecified and loopback addresses.
        [0, 0, 0, 0, 0, 0, 0, 0 | 1] => None,
        [0, 0, 0, 0, 0, 0, _, _] => Some((low, "an IPv4-compatible IPv6 address")),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some((low, "a NAT64 address")),
        [0x2002, hi, lo, ..] => Some((
            Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8),
            "a 6to4 address",
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_global_unicast_is_allowed() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "192.0.0.8",
            "198.18.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "fec0::1",
            "100::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "::ffff:0:7f00:1",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
        ] {
            assert!(forbidden_reason(ip.parse().unwrap()).is_some(), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(forbidden_reason(ip.parse().unwrap()), None, "{ip}");
        }
    }
}
