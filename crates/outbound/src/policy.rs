//! The address policy and its configuration.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The `[outbound]` configuration section, read by every service that checks or sends to
/// customer URLs (control at creation time, sender at send time).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundConfig {
    /// Address ranges (CIDR) that may be sent to although they are not public, e.g.
    /// `["10.20.0.0/16"]` for receivers inside the deployment's own network. Empty by default:
    /// only public addresses. The local stack and the tests allowlist `127.0.0.0/8`.
    pub allow_cidrs: Vec<String>,
}

/// Why an address or URL may not be sent to. The message is fit for an API error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{address} is a {class} address; only public addresses may receive webhooks")]
    Address { address: IpAddr, class: &'static str },
    #[error("the URL has no host")]
    NoHost,
    #[error("the URL scheme must be http or https")]
    Scheme,
    #[error("host {host} does not resolve: {reason}")]
    Unresolvable { host: String, reason: String },
    #[error("`outbound.allow_cidrs` entry {entry:?} is not a CIDR range: {reason}")]
    BadCidr { entry: String, reason: String },
}

/// Which addresses may be sent to.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    allow: Vec<IpNet>,
}

impl Policy {
    pub fn from_config(config: &OutboundConfig) -> Result<Self, Refused> {
        let allow = config
            .allow_cidrs
            .iter()
            .map(|entry| {
                entry
                    .trim()
                    .parse::<IpNet>()
                    .map_err(|e| Refused::BadCidr { entry: entry.clone(), reason: e.to_string() })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { allow })
    }

    /// A policy that allows exactly these ranges besides public addresses.
    pub fn allowing(allow: Vec<IpNet>) -> Self {
        Self { allow }
    }

    /// Whether `address` may be sent to.
    pub fn check(&self, address: IpAddr) -> Result<(), Refused> {
        let address = canonical(address);
        if self.allow.iter().any(|net| net.contains(&address)) {
            return Ok(());
        }
        match class(address) {
            Some(class) => Err(Refused::Address { address, class }),
            None => Ok(()),
        }
    }
}

/// An IPv4 address written as IPv6 (`::ffff:a.b.c.d`) is judged as the IPv4 address it is.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// The kind of non-public address `address` is; `None` when it is public.
fn class(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => class_v4(v4),
        IpAddr::V6(v6) => class_v6(v6),
    }
}

fn class_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match () {
        _ if ip.is_unspecified() || a == 0 => "unspecified",
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_private() => "private",
        // 169.254.0.0/16, which holds the cloud metadata service 169.254.169.254.
        _ if ip.is_link_local() => "link-local",
        // 100.64.0.0/10: carrier-grade NAT, private in practice.
        _ if a == 100 && (64..128).contains(&b) => "shared",
        _ if ip.is_multicast() => "multicast",
        _ if ip.is_broadcast() => "broadcast",
        // 192.0.0.0/24 (protocol assignments), 198.18.0.0/15 (benchmarking), 240.0.0.0/4.
        _ if a == 192 && b == 0 && c == 0 => "reserved",
        _ if a == 198 && (b == 18 || b == 19) => "reserved",
        _ if a >= 240 => "reserved",
        _ if ip.is_documentation() => "documentation",
        _ => return None,
    })
}

fn class_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    Some(match () {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_multicast() => "multicast",
        // fc00::/7, unique local: IPv6's private range.
        _ if first & 0xfe00 == 0xfc00 => "private",
        // fe80::/10.
        _ if first & 0xffc0 == 0xfe80 => "link-local",
        // fec0::/10, deprecated site-local.
        _ if first & 0xffc0 == 0xfec0 => "private",
        // 2001:db8::/32.
        _ if first == 0x2001 && ip.segments()[1] == 0x0db8 => "documentation",
        // 64:ff9b::/96 (NAT64) and ::/96 (IPv4-compatible) embed an IPv4 address: judge that.
        _ if first == 0x64 && ip.segments()[1] == 0xff9b || ip.segments()[..6] == [0; 6] => {
            let [.., hi, lo] = ip.segments();
            let v4 = Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
            return class_v4(v4);
        }
        _ => return None,
    })
}

/// Checks a URL without resolving its host: the scheme, and the address when the host is an IP
/// literal. Names are checked when resolved ([`check_url_resolved`], and at send time).
pub fn check_url(url: &url::Url, policy: &Policy) -> Result<(), Refused> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refused::Scheme);
    }
    match url.host() {
        None => Err(Refused::NoHost),
        Some(url::Host::Ipv4(v4)) => policy.check(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => policy.check(IpAddr::V6(v6)),
        Some(url::Host::Domain(_)) => Ok(()),
    }
}

/// [`check_url`], then resolves a host name and checks its addresses: what control calls when a
/// subscription is created or its URL changed, so a customer learns at once. Like the sender's
/// resolver, which connects only to the allowed addresses of a name, it refuses a name only when
/// none of its addresses is allowed.
pub async fn check_url_resolved(url: &url::Url, policy: &Policy) -> Result<(), Refused> {
    check_url(url, policy)?;
    let Some(url::Host::Domain(host)) = url.host() else { return Ok(()) };
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| Refused::Unresolvable { host: host.to_owned(), reason: e.to_string() })?;
    let mut first_refusal = None;
    for address in addresses {
        match policy.check(address.ip()) {
            Ok(()) => return Ok(()),
            Err(refused) => {
                first_refusal.get_or_insert(refused);
            }
        }
    }
    Err(first_refusal
        .unwrap_or(Refused::Unresolvable { host: host.to_owned(), reason: "no addresses".into() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(policy: &Policy, address: &str) -> Option<&'static str> {
        match policy.check(address.parse().unwrap()) {
            Ok(()) => None,
            Err(Refused::Address { class, .. }) => Some(class),
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn every_non_public_class_is_refused() {
        let policy = Policy::default();
        for (address, class) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "shared"),
            ("224.0.0.1", "multicast"),
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "unspecified"),
            ("255.255.255.255", "broadcast"),
            ("198.18.0.1", "reserved"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fd00::1", "private"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "link-local"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("2001:db8::1", "documentation"),
        ] {
            assert_eq!(refused(&policy, address), Some(class), "{address}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        let policy = Policy::default();
        for address in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "100.128.0.1", "172.32.0.1"] {
            assert_eq!(refused(&policy, address), None, "{address}");
        }
    }

    #[test]
    fn allowlisted_ranges_pass() {
        let config = OutboundConfig { allow_cidrs: vec!["127.0.0.0/8".into(), "fd00::/8".into()] };
        let policy = Policy::from_config(&config).unwrap();
        assert_eq!(refused(&policy, "127.0.0.1"), None);
        assert_eq!(refused(&policy, "::ffff:127.0.0.1"), None);
        assert_eq!(refused(&policy, "fd12::1"), None);
        assert_eq!(refused(&policy, "10.0.0.1"), Some("private"));
        assert_eq!(refused(&policy, "::1"), Some("loopback"));
    }

    #[test]
    fn a_bad_cidr_names_the_entry() {
        let err =
            Policy::from_config(&OutboundConfig { allow_cidrs: vec!["10.0.0.0/33".into()] }).unwrap_err();
        assert!(matches!(err, Refused::BadCidr { ref entry, .. } if entry == "10.0.0.0/33"), "{err}");
    }

    #[test]
    fn urls_are_checked_by_scheme_and_literal_address() {
        let policy = Policy::default();
        let check = |u: &str| check_url(&url::Url::parse(u).unwrap(), &policy);
        assert!(check("https://hooks.example.com/x").is_ok());
        assert!(check("https://93.184.216.34/x").is_ok());
        assert!(matches!(check("http://169.254.169.254/latest/meta-data"), Err(Refused::Address { .. })));
        assert!(matches!(check("http://[::1]:8080/"), Err(Refused::Address { .. })));
        assert!(matches!(check("http://[::ffff:7f00:1]/"), Err(Refused::Address { .. })));
        assert_eq!(check("ftp://example.com/"), Err(Refused::Scheme));
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_at_creation() {
        let policy = Policy::default();
        let url = url::Url::parse("http://localhost:8080/hook").unwrap();
        assert!(matches!(check_url_resolved(&url, &policy).await, Err(Refused::Address { .. })));
        let allowing = Policy::allowing(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(check_url_resolved(&url, &allowing).await.is_ok());
    }
}
