//! Which IP addresses are public.
//!
//! Built from the IANA special-purpose registries (IPv4 and IPv6) and the IPv6 address space
//! registry. The rule of thumb: a webhook receiver is a unicast host a customer runs on the
//! internet. Anything else (this host, the operator's own network, an anycast service that
//! answers at whichever instance is nearest, a translator or tunnel that forwards to an address
//! of its own choosing) is refused, and an address that carries an IPv4 address inside it is
//! judged by that IPv4 address as well.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The kind of non-public address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressClass {
    /// `0.0.0.0/8`, `::`: "this host", which the kernel turns into loopback.
    Unspecified,
    Loopback,
    /// RFC 1918, unique local `fc00::/7`, deprecated site-local `fec0::/10`.
    Private,
    /// `169.254.0.0/16` (the cloud metadata service 169.254.169.254), `fe80::/10`.
    LinkLocal,
    /// `100.64.0.0/10`, carrier-grade NAT: private in practice.
    Shared,
    Multicast,
    Broadcast,
    Documentation,
    Benchmarking,
    /// Well-known anycast service addresses (6to4 relays, PCP, TURN, AMT, AS112): they reach the
    /// nearest instance of a service, which may be the operator's own.
    Anycast,
    /// `100::/64`, discard-only.
    Discard,
    /// `64:ff9b:1::/48`: a translator inside the operator's network that may map it to any
    /// IPv4 address, private ones included.
    LocalTranslation,
    /// Reserved, unassigned or otherwise not routable on the internet.
    Reserved,
}

impl AddressClass {
    pub fn as_str(self) -> &'static str {
        match self {
            AddressClass::Unspecified => "unspecified",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::LinkLocal => "link-local",
            AddressClass::Shared => "shared",
            AddressClass::Multicast => "multicast",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Documentation => "documentation",
            AddressClass::Benchmarking => "benchmarking",
            AddressClass::Anycast => "anycast",
            AddressClass::Discard => "discard",
            AddressClass::LocalTranslation => "local-use NAT64",
            AddressClass::Reserved => "reserved",
        }
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The IPv6 forms that carry an IPv4 address, which decides where a packet ends up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Embedding {
    /// `64:ff9b::/96`, the well-known NAT64 prefix (RFC 6052).
    Nat64,
    /// `::/96`, deprecated IPv4-compatible addresses.
    Ipv4Compatible,
    /// `::ffff:0:0:0/96`, SIIT IPv4-translated addresses (RFC 2765).
    Ipv4Translated,
    /// `2002::/16`: a 6to4 host sends such a packet inside IPv4 to the embedded address.
    SixToFour,
    /// `2001::/32`: a Teredo client talks to the embedded server and, unobfuscated, client.
    Teredo,
}

impl Embedding {
    fn as_str(self) -> &'static str {
        match self {
            Embedding::Nat64 => "NAT64",
            Embedding::Ipv4Compatible => "IPv4-compatible",
            Embedding::Ipv4Translated => "IPv4-translated",
            Embedding::SixToFour => "6to4",
            Embedding::Teredo => "Teredo",
        }
    }
}

/// Why an address is not public: its class, and the IPv6 form it was found inside, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NonPublic {
    pub class: AddressClass,
    pub via: Option<Embedding>,
}

impl NonPublic {
    fn plain(class: AddressClass) -> Self {
        Self { class, via: None }
    }
}

/// "a link-local address", or "a 6to4 address embedding a link-local IPv4 address".
impl fmt::Display for NonPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.via {
            None => write!(f, "{} {} address", article(self.class.as_str()), self.class),
            Some(via) => write!(
                f,
                "{} {} address embedding {} {} IPv4 address",
                article(via.as_str()),
                via.as_str(),
                article(self.class.as_str()),
                self.class
            ),
        }
    }
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u', 'I']) { "an" } else { "a" }
}

/// `None` when `address` is public.
pub fn classify(address: IpAddr) -> Option<NonPublic> {
    match address {
        IpAddr::V4(v4) => classify_v4(v4).map(NonPublic::plain),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddressClass> {
    use AddressClass::*;
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        // 0.0.0.0/8, "this network".
        (0, _, _) => Unspecified,
        (127, _, _) => Loopback,
        (10, _, _) | (192, 168, _) => Private,
        (172, 16..=31, _) => Private,
        (169, 254, _) => LinkLocal,
        (100, 64..=127, _) => Shared,
        // 192.0.0.0/24, IETF protocol assignments: DS-Lite, NAT64 discovery, PCP and TURN
        // anycast (192.0.0.9, .10), none of them a customer's host.
        (192, 0, 0) => Reserved,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Documentation,
        (198, 18..=19, _) => Benchmarking,
        // 192.88.99.0/24: the deprecated 6to4 relay anycast (RFC 7526); 192.52.193.0/24: AMT
        // relays; 192.31.196.0/24 and 192.175.48.0/24: AS112 DNS sinks.
        (192, 88, 99) | (192, 52, 193) | (192, 31, 196) | (192, 175, 48) => Anycast,
        (224..=239, _, _) => Multicast,
        _ if ip.is_broadcast() => Broadcast,
        // 240.0.0.0/4, reserved for future use.
        (240..=255, _, _) => Reserved,
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<NonPublic> {
    use AddressClass::*;
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    let embedded = |via, inner: Ipv4Addr| classify_v4(inner).map(|class| NonPublic { class, via: Some(via) });
    let plain = |class| Some(NonPublic::plain(class));
    match s {
        [0, 0, 0, 0, 0, 0, 0, 0] => plain(Unspecified),
        [0, 0, 0, 0, 0, 0, 0, 1] => plain(Loopback),
        // ::ffff:0:0/96, IPv4-mapped: the IPv4 address itself, nothing else.
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => classify_v4(v4(hi, lo)).map(NonPublic::plain),
        [0, 0, 0, 0, 0, 0, hi, lo] => embedded(Embedding::Ipv4Compatible, v4(hi, lo)),
        [0, 0, 0, 0, 0xffff, 0, hi, lo] => embedded(Embedding::Ipv4Translated, v4(hi, lo)),
        // 64:ff9b::/96 must not carry a non-public IPv4 address (RFC 6052), so one that does is
        // refused; a public one is where the operator's NAT64 gateway would go anyway.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => embedded(Embedding::Nat64, v4(hi, lo)),
        [0x64, 0xff9b, 1, ..] => plain(LocalTranslation),
        [0x2002, hi, lo, ..] => embedded(Embedding::SixToFour, v4(hi, lo)),
        // Teredo: the server's IPv4 address, then the client's, stored inverted (RFC 4380).
        [0x2001, 0, server_hi, server_lo, _, _, client_hi, client_lo] => {
            embedded(Embedding::Teredo, v4(server_hi, server_lo))
                .or_else(|| embedded(Embedding::Teredo, v4(!client_hi, !client_lo)))
        }
        // 2001:2::/48, benchmarking (RFC 5180).
        [0x2001, 2, 0, ..] => plain(Benchmarking),
        // The rest of 2001::/23, IETF protocol assignments: PCP, TURN and DNS-SD anycast
        // (2001:1::1-3), AMT (2001:3::/32), AS112 (2001:4:112::/48) are anycast services;
        // ORCHID (2001:10::/28, 2001:20::/28) and DRIP (2001:30::/28) are identifiers that are
        // not routable at the IP layer.
        [0x2001, 0x0000..=0x01ff, ..] => plain(match s[1] {
            1 | 3 | 4 => Anycast,
            _ => Reserved,
        }),
        [0x2001, 0x0db8, ..] => plain(Documentation),
        // 3fff::/20, documentation (RFC 9637).
        [0x3fff, 0x0000..=0x0fff, ..] => plain(Documentation),
        // 2620:4f:8000::/48, AS112 direct delegation.
        [0x2620, 0x004f, 0x8000, ..] => plain(Anycast),
        // Outside 2000::/3 nothing is global unicast today.
        [first, ..] if first & 0xe000 != 0x2000 => plain(match first {
            0xff00..=0xffff => Multicast,
            0xfc00..=0xfdff | 0xfec0..=0xfeff => Private,
            0xfe80..=0xfebf => LinkLocal,
            // 100::/64, discard-only (RFC 6666); the rest of 100::/8 is reserved.
            0x0100 if s[1..4] == [0, 0, 0] => Discard,
            // 5f00::/16 (SRv6 segment ids), 64:ff9b::/32 outside the two NAT64 ranges, …
            _ => Reserved,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(address: &str) -> Option<String> {
        classify(address.parse().unwrap()).map(|n| n.to_string())
    }

    #[test]
    fn ipv4_special_purpose_ranges() {
        for (address, expected) in [
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "unspecified"),
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "shared"),
            ("100.127.255.255", "shared"),
            ("192.0.0.9", "reserved"),
            ("192.0.0.170", "reserved"),
            ("192.0.2.1", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.9", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("198.19.255.255", "benchmarking"),
            ("192.88.99.1", "anycast"),
            ("192.52.193.1", "anycast"),
            ("192.31.196.1", "anycast"),
            ("192.175.48.6", "anycast"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.254", "reserved"),
            ("255.255.255.255", "broadcast"),
        ] {
            assert_eq!(
                class(address).as_deref(),
                Some(&*format!("{} {expected} address", article(expected))),
                "{address}"
            );
        }
    }

    #[test]
    fn ipv6_special_purpose_ranges() {
        for (address, expected) in [
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("fd00::1", "private"),
            ("fc00::1", "private"),
            ("fec0::1", "private"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("ff02::1", "multicast"),
            ("100::1", "discard"),
            ("100:0:0:1::1", "reserved"),
            ("64:ff9b:1::a00:1", "local-use NAT64"),
            ("64:ff9b:1:ffff::808:808", "local-use NAT64"),
            ("64:ff9b:0:0:1::808:808", "reserved"),
            ("5f00::1", "reserved"),
            ("2001:2::1", "benchmarking"),
            ("2001:1::1", "anycast"),
            ("2001:3::1", "anycast"),
            ("2001:4:112::1", "anycast"),
            ("2001:10::1", "reserved"),
            ("2001:20::1", "reserved"),
            ("2001:30::1", "reserved"),
            ("2001:1ff::1", "reserved"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("3fff:fff::1", "documentation"),
            ("2620:4f:8000::1", "anycast"),
        ] {
            assert_eq!(
                class(address).as_deref(),
                Some(&*format!("{} {expected} address", article(expected))),
                "{address}"
            );
        }
    }

    #[test]
    fn ipv4_inside_ipv6_is_judged_by_the_ipv4_address() {
        for (address, expected) in [
            // IPv4-mapped is the IPv4 address itself.
            ("::ffff:127.0.0.1", "a loopback address"),
            ("::ffff:7f00:1", "a loopback address"),
            ("::ffff:169.254.169.254", "a link-local address"),
            ("::10.0.0.1", "an IPv4-compatible address embedding a private IPv4 address"),
            ("::ffff:0:a9fe:a9fe", "an IPv4-translated address embedding a link-local IPv4 address"),
            ("64:ff9b::a9fe:a9fe", "a NAT64 address embedding a link-local IPv4 address"),
            ("64:ff9b::127.0.0.1", "a NAT64 address embedding a loopback IPv4 address"),
            ("2002:a9fe:a9fe::", "a 6to4 address embedding a link-local IPv4 address"),
            ("2002:7f00:1::1", "a 6to4 address embedding a loopback IPv4 address"),
            ("2002:c058:6301::", "a 6to4 address embedding an anycast IPv4 address"),
            // Teredo server 10.0.0.1, client 93.184.216.34 (stored inverted).
            ("2001:0:a00:1:0:0:a247:27dd", "a Teredo address embedding a private IPv4 address"),
            // Server public (93.184.216.34), client 169.254.169.254 inverted.
            ("2001:0:5db8:d822::5601:5601", "a Teredo address embedding a link-local IPv4 address"),
        ] {
            assert_eq!(class(address).as_deref(), Some(expected), "{address}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for address in [
            "93.184.216.34",
            "1.1.1.1",
            "100.128.0.1",
            "172.32.0.1",
            "192.0.1.1",
            "192.88.98.1",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            // Public IPv4 addresses in every IPv6 form.
            "::ffff:93.184.216.34",
            "64:ff9b::5db8:d822",
            "2002:5db8:d822::1",
            "::ffff:0:5db8:d822",
            // Teredo: server 93.184.216.34, client 1.1.1.1 (inverted: fefe:fefe).
            "2001:0:5db8:d822::fefe:fefe",
            "2001:200::1",
        ] {
            assert_eq!(class(address), None, "{address}");
        }
    }
}
