//! The address policy and its configuration.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::address::{self, NonPublic};
use crate::names::{self, NameClass};

/// The `[outbound]` configuration section, read by every service that checks or sends to
/// customer URLs (control at creation time, sender at send time).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundConfig {
    /// Address ranges (CIDR) that may be sent to although they are not public, e.g.
    /// `["10.20.0.0/16"]` for receivers inside the deployment's own network. Empty by default:
    /// only public addresses. The local stack and the tests allowlist `127.0.0.0/8`.
    pub allow_cidrs: Vec<String>,
    /// Host names that may be used although they are refused by name (`localhost`, `.local`,
    /// `.internal`, single labels, …): `"hooks.corp.internal"` allows that name,
    /// `".corp.internal"` every name under it. Their addresses must still be public or in
    /// `allow_cidrs`. Empty by default.
    pub allow_hosts: Vec<String>,
}

/// Why an address or URL may not be sent to. The message is fit for an API error: it names
/// what the caller wrote (a host name, an IP literal) but never an address a name resolved to,
/// which would let a customer map the operator's internal DNS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// An IP address the caller wrote.
    #[error("{address} is {class}; only public addresses may receive webhooks")]
    Address { address: IpAddr, class: NonPublic },
    /// A host name whose addresses are all refused.
    #[error("host {host} resolves to {class}; only public addresses may receive webhooks")]
    Resolves { host: String, class: NonPublic },
    /// A host name refused before any lookup.
    #[error("host {host} is a {class} name; only public host names may receive webhooks")]
    Name { host: String, class: NameClass },
    #[error("the URL has no host")]
    NoHost,
    #[error("the URL scheme must be http or https")]
    Scheme,
    #[error("host {host} does not resolve: {reason}")]
    Unresolvable { host: String, reason: String },
    #[error("`outbound.allow_cidrs` entry {entry:?} is not a CIDR range: {reason}")]
    BadCidr { entry: String, reason: String },
    #[error("`outbound.allow_hosts` entry {entry:?} is not a host name: {reason}")]
    BadHost { entry: String, reason: String },
}

impl Refused {
    /// The configuration key a [`Policy::from_config`] error is about.
    pub fn config_key(&self) -> &'static str {
        match self {
            Refused::BadHost { .. } => "outbound.allow_hosts",
            _ => "outbound.allow_cidrs",
        }
    }
}

/// Which addresses and names may be sent to.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    allow: Vec<IpNet>,
    /// Normalised `allow_hosts` entries; a leading `.` allows every name under it.
    allow_hosts: Vec<String>,
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
        let allow_hosts =
            config.allow_hosts.iter().map(|entry| host_entry(entry)).collect::<Result<_, _>>()?;
        Ok(Self { allow, allow_hosts })
    }

    /// A policy that allows exactly these ranges besides public addresses.
    pub fn allowing(allow: Vec<IpNet>) -> Self {
        Self { allow, allow_hosts: Vec::new() }
    }

    /// Whether `address`, written by the caller, may be sent to.
    pub fn check(&self, address: IpAddr) -> Result<(), Refused> {
        match self.verdict(address) {
            Some(class) => Err(Refused::Address { address, class }),
            None => Ok(()),
        }
    }

    /// Why `address` is refused; `None` when it may be sent to.
    fn verdict(&self, address: IpAddr) -> Option<NonPublic> {
        // `::ffff:a.b.c.d` is the IPv4 address it carries, for the allowlist too.
        let canonical = address.to_canonical();
        if self.allow.iter().any(|net| net.contains(&canonical)) {
            return None;
        }
        address::classify(canonical)
    }

    /// Whether the host name `host` may be looked up at all.
    pub fn check_name(&self, host: &str) -> Result<(), Refused> {
        match names::classify(host) {
            Some(class) if !self.allows_host(host) => Err(Refused::Name { host: host.to_owned(), class }),
            _ => Ok(()),
        }
    }

    /// Whether `host` is listed in `outbound.allow_hosts`.
    fn allows_host(&self, host: &str) -> bool {
        let name = names::normalise(host);
        self.allow_hosts.iter().any(|entry| match entry.strip_prefix('.') {
            Some(parent) => name.strip_suffix(parent).is_some_and(|rest| rest.ends_with('.')),
            None => *entry == name,
        })
    }

    /// Resolves `host` and returns the addresses that may be connected to: the one lookup both
    /// control and the sender make. A name some of whose addresses are refused keeps the others.
    ///
    /// The name is checked first, then looked up as fully qualified (with a trailing dot), so
    /// that the resolver's search domains (`ndots:5` in Kubernetes) never turn a customer's
    /// `postgres.synap` into `postgres.synap.svc.cluster.local`, nor `/etc/hosts` answer for
    /// it. Names the operator listed in `outbound.allow_hosts` are looked up the local way
    /// (without the trailing dot, so `localhost.` is the listed `localhost`): their internal
    /// resolution is the point of listing them.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refused> {
        self.check_name(host)?;
        let lookup = if self.allows_host(host) {
            names::normalise(host)
        } else {
            format!("{}.", host.trim_end_matches('.'))
        };
        let found = tokio::net::lookup_host((lookup.as_str(), port))
            .await
            .map_err(|e| Refused::Unresolvable { host: host.to_owned(), reason: e.to_string() })?;
        let mut first_refusal = None;
        let allowed: Vec<SocketAddr> = found
            .filter(|a| match self.verdict(a.ip()) {
                None => true,
                Some(class) => {
                    first_refusal.get_or_insert(class);
                    false
                }
            })
            .collect();
        match first_refusal {
            _ if !allowed.is_empty() => Ok(allowed),
            Some(class) => Err(Refused::Resolves { host: host.to_owned(), class }),
            None => Err(Refused::Unresolvable { host: host.to_owned(), reason: "no addresses".into() }),
        }
    }
}

/// One `outbound.allow_hosts` entry, normalised.
fn host_entry(entry: &str) -> Result<String, Refused> {
    let bad = |reason: &str| Refused::BadHost { entry: entry.to_owned(), reason: reason.to_owned() };
    let (dot, name) = match entry.trim().strip_prefix('.') {
        Some(rest) => (".", rest),
        None => ("", entry.trim()),
    };
    let name = names::normalise(name);
    if name.is_empty() {
        return Err(bad("empty"));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')) {
        return Err(bad("only letters, digits, '-', '_' and '.' (IDNA names in their xn-- form)"));
    }
    if name.split('.').any(str::is_empty) {
        return Err(bad("empty label"));
    }
    Ok(format!("{dot}{name}"))
}

/// Checks a URL without resolving its host: the scheme, the address when the host is an IP
/// literal, the name otherwise. The url crate has already turned every IPv4 spelling
/// (`2130706433`, `0x7f.1`, `0177.0.0.1`) into the address it means. A name's addresses are
/// checked when it is resolved ([`check_url_resolved`], and at send time).
pub fn check_url(url: &url::Url, policy: &Policy) -> Result<(), Refused> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refused::Scheme);
    }
    match url.host() {
        None => Err(Refused::NoHost),
        Some(url::Host::Ipv4(v4)) => policy.check(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => policy.check(IpAddr::V6(v6)),
        Some(url::Host::Domain(host)) => policy.check_name(host),
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
    policy.resolve(host, port).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(policy: &Policy, address: &str) -> Option<String> {
        match policy.check(address.parse().unwrap()) {
            Ok(()) => None,
            Err(Refused::Address { class, .. }) => Some(class.class.to_string()),
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn allowlisted_ranges_pass() {
        let config = OutboundConfig {
            allow_cidrs: vec!["127.0.0.0/8".into(), "fd00::/8".into()],
            ..Default::default()
        };
        let policy = Policy::from_config(&config).unwrap();
        assert_eq!(refused(&policy, "127.0.0.1"), None);
        assert_eq!(refused(&policy, "::ffff:127.0.0.1"), None);
        assert_eq!(refused(&policy, "fd12::1"), None);
        assert_eq!(refused(&policy, "10.0.0.1").as_deref(), Some("private"));
        assert_eq!(refused(&policy, "::1").as_deref(), Some("loopback"));
        // An allowed IPv4 range does not open the tunnels that embed it.
        assert_eq!(refused(&policy, "2002:7f00:1::").as_deref(), Some("loopback"));
    }

    #[test]
    fn bad_entries_name_the_entry() {
        let err = Policy::from_config(&OutboundConfig {
            allow_cidrs: vec!["10.0.0.0/33".into()],
            ..Default::default()
        })
        .unwrap_err();
        assert!(matches!(err, Refused::BadCidr { ref entry, .. } if entry == "10.0.0.0/33"), "{err}");
        for entry in ["", ".", "a b.internal", "x..internal", "http://x.internal"] {
            let err = Policy::from_config(&OutboundConfig {
                allow_hosts: vec![entry.into()],
                ..Default::default()
            })
            .unwrap_err();
            assert!(matches!(err, Refused::BadHost { entry: ref e, .. } if e == entry), "{entry:?}: {err}");
            assert_eq!(err.config_key(), "outbound.allow_hosts", "{err}");
        }
    }

    #[test]
    fn allowed_hosts_lift_the_name_rule_only() {
        let config = OutboundConfig {
            allow_hosts: vec!["Hooks.Corp.Internal.".into(), ".svc.cluster.local".into()],
            ..Default::default()
        };
        let policy = Policy::from_config(&config).unwrap();
        assert_eq!(policy.check_name("hooks.corp.internal"), Ok(()));
        assert_eq!(policy.check_name("hooks.corp.internal."), Ok(()));
        assert_eq!(policy.check_name("receiver.ns.svc.cluster.local"), Ok(()));
        for still_refused in
            ["other.corp.internal", "svc.cluster.local", "evilsvc.cluster.local", "localhost"]
        {
            assert!(matches!(policy.check_name(still_refused), Err(Refused::Name { .. })), "{still_refused}");
        }
    }

    #[test]
    fn urls_are_checked_by_scheme_literal_address_and_name() {
        let policy = Policy::default();
        let check = |u: &str| check_url(&url::Url::parse(u).unwrap(), &policy);
        assert!(check("https://hooks.example.com/x").is_ok());
        assert!(check("https://93.184.216.34/x").is_ok());
        assert_eq!(check("ftp://example.com/"), Err(Refused::Scheme));
        // Every spelling the url crate accepts for an internal address ends as that address.
        for url in [
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]:8080/",
            "https://[::ffff:7f00:1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://2130706433/",
            "https://0x7f.1/",
            "https://0177.0.0.1/",
            "https://0x7f000001/",
            "https://127.1/",
            "https://127.0.0.1./",
            "https://%31%32%37.0.0.1/",
            "https://\u{ff11}\u{ff12}\u{ff17}.0.0.1/",
            "https://0251.0376.0251.0376/",
            "https://[2002:a9fe:a9fe::]/",
            "https://[64:ff9b:1::a9fe:a9fe]/",
            "https://[2001:0:a00:1::a247:27dd]/",
        ] {
            let parsed = url::Url::parse(url).unwrap();
            let err = check_url(&parsed, &policy).unwrap_err();
            assert!(matches!(err, Refused::Address { .. }), "{url} ({parsed}): {err}");
        }
        for url in [
            "https://localhost/",
            "https://localhost./",
            "https://LOCALHOST:8443/",
            "https://api.localhost/",
            "https://localhost.localdomain/",
            "https://ip6-localhost/",
            "https://ip6-loopback/",
            "https://\u{ff4c}\u{ff4f}\u{ff43}\u{ff41}\u{ff4c}\u{ff48}\u{ff4f}\u{ff53}\u{ff54}/",
            "https://localhost%2e/",
            "https://metadata.google.internal/",
            "https://printer.local/",
            "https://metadata/",
        ] {
            let parsed = url::Url::parse(url).unwrap();
            let err = check_url(&parsed, &policy).unwrap_err();
            assert!(matches!(err, Refused::Name { .. }), "{url} ({parsed}): {err}");
        }
    }

    #[tokio::test]
    async fn a_name_resolving_to_a_refused_address_does_not_say_the_address() {
        // `localhost.` is refused by name; lift that rule to see what its addresses do.
        let config = OutboundConfig { allow_hosts: vec!["localhost".into()], ..Default::default() };
        let policy = Policy::from_config(&config).unwrap();
        for spelling in ["http://localhost./", "http://LOCALHOST:1/"] {
            let err = check_url_resolved(&url::Url::parse(spelling).unwrap(), &policy).await;
            assert!(matches!(err, Err(Refused::Resolves { .. })), "{spelling}: {err:?}");
        }
        let url = url::Url::parse("http://localhost:8080/hook").unwrap();
        let err = check_url_resolved(&url, &policy).await.unwrap_err();
        let Refused::Resolves { ref host, class } = err else { panic!("{err}") };
        assert_eq!(host, "localhost");
        assert_eq!(class.class, crate::AddressClass::Loopback);
        let message = err.to_string();
        assert_eq!(
            message,
            "host localhost resolves to a loopback address; only public addresses may receive webhooks"
        );
        assert!(!message.contains("127.") && !message.contains("::1"), "{message}");

        let allowing = Policy::from_config(&OutboundConfig {
            allow_cidrs: vec!["127.0.0.0/8".into(), "::1/128".into()],
            allow_hosts: vec!["localhost".into()],
        })
        .unwrap();
        assert!(check_url_resolved(&url, &allowing).await.is_ok());
        // Without the name allowed, no lookup is made, whatever the ranges.
        let err = check_url_resolved(&url, &Policy::allowing(vec!["127.0.0.0/8".parse().unwrap()])).await;
        assert!(matches!(err, Err(Refused::Name { class: NameClass::Loopback, .. })), "{err:?}");
    }
}
