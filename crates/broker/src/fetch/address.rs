//! Which network addresses a request's URL may reach: public unicast only. Pure functions over
//! addresses and URLs, no I/O; the resolver and the redirect policy ([`super::guard`]) call them
//! for every name, every literal address and every redirect hop.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is not public, for the error message; `None` when it is public.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => v6_class(v6),
    }
}

fn v4_class(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let class = match (a, b, c) {
        (0, ..) => "unspecified (0.0.0.0/8)",
        (127, ..) => "loopback",
        (10, ..) | (172, 16..=31, _) | (192, 168, _) => "private",
        (169, 254, _) => "link-local (cloud metadata)",
        (100, 64..=127, _) => "shared address space (CGNAT)",
        (192, 0, 0) => "IETF protocol assignments",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, ..) => "multicast",
        (240..=255, ..) => "reserved or broadcast",
        _ => return None,
    };
    Some(class)
}

fn v6_class(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = embedded_v4(ip) {
        return v4_class(v4);
    }
    let s = ip.segments();
    let class = match s[0] {
        _ if ip.is_unspecified() => "unspecified (::)",
        _ if ip.is_loopback() => "loopback",
        0xfc00..=0xfdff => "unique local (private)",
        0xfe80..=0xfebf => "link-local",
        0xfec0..=0xfeff => "site-local",
        0xff00..=0xffff => "multicast",
        0x2001 if s[1] == 0x0db8 => "documentation",
        0x2001 if s[1] == 0 => "Teredo tunnel",
        0x0000..=0x1fff => "reserved",
        _ => return None,
    };
    Some(class)
}

/// The IPv4 address an IPv6 address carries: mapped (`::ffff:a.b.c.d`), compatible
/// (`::a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`) or 6to4 (`2002:AABB:CCDD::`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, ..] => Some(tail()),
        [0, 0, 0, 0, 0, 0, hi, _] if hi != 0 => Some(tail()),
        [0x64, 0xff9b, 0, 0, 0, 0, ..] => Some(tail()),
        [0x2002, hi, lo, ..] => {
            Some(Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8))
        }
        _ => None,
    }
}

/// The literal address in a URL's host (`http://10.0.0.1/`, `http://[::1]/`), if it is one.
pub fn literal_host(url: &reqwest::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_unicast_addresses_pass() {
        let table: &[(&str, &str, bool)] = &[
            ("public v4", "93.184.216.34", true),
            ("public v4 next to CGNAT", "100.128.0.1", true),
            ("public v4 next to 172.16/12", "172.32.0.1", true),
            ("unspecified", "0.0.0.0", false),
            ("this network", "0.1.2.3", false),
            ("loopback", "127.0.0.1", false),
            ("loopback, other end", "127.255.255.254", false),
            ("private 10/8", "10.1.2.3", false),
            ("private 172.16/12", "172.31.255.255", false),
            ("private 192.168/16", "192.168.0.10", false),
            ("cloud metadata", "169.254.169.254", false),
            ("CGNAT", "100.64.0.1", false),
            ("documentation", "203.0.113.9", false),
            ("benchmarking", "198.18.0.1", false),
            ("multicast", "224.0.0.1", false),
            ("broadcast", "255.255.255.255", false),
            ("public v6", "2606:4700::1111", true),
            ("v6 unspecified", "::", false),
            ("v6 loopback", "::1", false),
            ("v4-mapped loopback", "::ffff:127.0.0.1", false),
            ("v4-mapped metadata", "::ffff:169.254.169.254", false),
            ("v4-mapped public", "::ffff:93.184.216.34", true),
            ("v4-compatible private", "::10.0.0.1", false),
            ("NAT64 of loopback", "64:ff9b::7f00:1", false),
            ("6to4 of private", "2002:c0a8:0001::1", false),
            ("unique local (AWS metadata v6)", "fd00:ec2::254", false),
            ("link-local v6", "fe80::1", false),
            ("multicast v6", "ff02::1", false),
            ("documentation v6", "2001:db8::1", false),
            ("Teredo", "2001:0:4136:e378::1", false),
        ];
        for (name, text, public) in table {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(non_public(ip).is_none(), *public, "{name}: {text} -> {:?}", non_public(ip));
        }
    }

    #[test]
    fn literal_hosts_are_found_in_any_spelling() {
        let table: &[(&str, Option<&str>)] = &[
            ("http://127.0.0.1:8080/x", Some("127.0.0.1")),
            ("http://[::1]/x", Some("::1")),
            ("http://[::ffff:7f00:1]/", Some("::ffff:127.0.0.1")),
            ("http://2130706433/", Some("127.0.0.1")),
            ("http://0x7f.1/", Some("127.0.0.1")),
            ("http://user@10.0.0.1/", Some("10.0.0.1")),
            ("http://example.com/", None),
        ];
        for (url, want) in table {
            let got = literal_host(&reqwest::Url::parse(url).unwrap());
            assert_eq!(got, want.map(|w| w.parse().unwrap()), "{url}");
        }
    }
}
