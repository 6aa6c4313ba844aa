//! Host names that are never a customer's public endpoint, refused by name before any lookup.
//!
//! Refusing the resolved address already stops a request to an internal host; refusing these
//! names as well means a customer learns at once (a name the local resolver answers may not
//! resolve from control), the resolver is never asked about them (no DNS traffic chosen by a
//! customer towards the operator's internal zones), and a resolver that answers them
//! unexpectedly (a `localhost.` that systemd-resolved maps to 127.0.0.1, an mDNS responder)
//! gains nothing.
//!
//! Names that merely fail to resolve on the internet (`.invalid`, `.test`, `.example`,
//! `.onion`) are not listed: they fail as DNS errors, which is what they are.

use std::fmt;

/// The kind of host name refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameClass {
    /// `localhost` and every name under it (RFC 6761), and the loopback names of common
    /// `/etc/hosts` files.
    Loopback,
    /// Names only the local network answers: mDNS `.local` (RFC 6762), `.internal` (reserved by
    /// ICANN for private use), `home.arpa` (RFC 8375), `service.arpa` (RFC 9665),
    /// `resolver.arpa` (RFC 9462), the private top-level names of RFC 6762 appendix G
    /// (`.intranet`, `.private`, `.corp`, `.home`, `.lan`) and `.localdomain`.
    LocalNetwork,
    /// A name without a dot: the system resolver completes it with the host's search domains
    /// (`metadata`, `postgres`, `kubernetes`), so it names something inside the deployment.
    SingleLabel,
}

impl NameClass {
    pub fn as_str(self) -> &'static str {
        match self {
            NameClass::Loopback => "loopback",
            NameClass::LocalNetwork => "local-network",
            NameClass::SingleLabel => "single-label",
        }
    }
}

impl fmt::Display for NameClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `/etc/hosts` names for loopback that do not end in `.localhost` (Debian, Red Hat).
const LOOPBACK_NAMES: &[&str] = &[
    "localhost.localdomain",
    "localhost4",
    "localhost4.localdomain4",
    "localhost6",
    "localhost6.localdomain6",
    "ip6-localhost",
    "ip6-loopback",
];

/// Suffixes (the name itself or any name under it) answered only inside a network.
const LOCAL_NETWORK_SUFFIXES: &[&str] = &[
    "local",
    "internal",
    "home.arpa",
    "service.arpa",
    "resolver.arpa",
    "intranet",
    "private",
    "corp",
    "home",
    "lan",
    "localdomain",
];

/// The name as DNS compares it: lower case, without the trailing dot of a fully qualified
/// name. The url crate lowercases and maps IDNA already; this covers names from elsewhere too.
pub fn normalise(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// `None` when the name may be looked up.
pub fn classify(host: &str) -> Option<NameClass> {
    let name = normalise(host);
    let under =
        |suffix: &str| name == suffix || name.strip_suffix(suffix).is_some_and(|rest| rest.ends_with('.'));
    if under("localhost") || LOOPBACK_NAMES.contains(&name.as_str()) {
        return Some(NameClass::Loopback);
    }
    if LOCAL_NETWORK_SUFFIXES.iter().any(|suffix| under(suffix)) {
        return Some(NameClass::LocalNetwork);
    }
    if !name.contains('.') {
        return Some(NameClass::SingleLabel);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_in_every_spelling() {
        for host in [
            "localhost",
            "localhost.",
            "LOCALHOST",
            "LocalHost.",
            "api.localhost",
            "a.b.localhost.",
            "localhost.localdomain",
            "localhost6.localdomain6",
            "ip6-localhost",
            "ip6-loopback",
        ] {
            assert_eq!(classify(host), Some(NameClass::Loopback), "{host}");
        }
    }

    #[test]
    fn local_network_names() {
        for host in [
            "printer.local",
            "kube-dns.kube-system.svc.cluster.local.",
            "metadata.google.internal",
            "instance-data.ec2.internal",
            "router.home.arpa",
            "nas.lan",
            "wiki.corp",
            "box.localdomain",
            "Intranet",
        ] {
            assert_ne!(classify(host), None, "{host}");
        }
        assert_eq!(classify("metadata.google.internal"), Some(NameClass::LocalNetwork));
    }

    #[test]
    fn single_labels_are_completed_by_search_domains() {
        for host in ["metadata", "postgres", "kubernetes.", "ip6-allnodes"] {
            assert_eq!(classify(host), Some(NameClass::SingleLabel), "{host}");
        }
    }

    #[test]
    fn public_names_pass() {
        for host in [
            "hooks.example.com",
            "localhost.example.com",
            "mylocalhost.com",
            "local.example.org",
            "internal.acme.io",
            "hooks.acme.example",
            "no-such-host.invalid",
            "lan.party.de",
        ] {
            assert_eq!(classify(host), None, "{host}");
        }
    }
}
