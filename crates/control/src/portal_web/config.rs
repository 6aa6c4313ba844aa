//! The `[portal]` configuration section: where the web portal listens, the URL its sign-in links
//! use, how long sign-ins last, the cookie, embedding and theme.

use serde::{Deserialize, Serialize};
use synap_runtime::ConfigError;

/// Most a sign-in link may live: it is a bearer credential in a URL.
const MAX_LINK_TTL_SECONDS: u64 = 60 * 60;
/// Most a session may live (a week).
const MAX_SESSION_TTL_SECONDS: u64 = 7 * 24 * 60 * 60;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PortalConfig {
    /// The portal's origin as browsers reach it, e.g. `https://webhooks.synap.example` (sign-in
    /// links start with it, and changes must come from it). No path: the page lives at its root. Empty: no portal is served
    /// and CreatePortalLink is UNAVAILABLE.
    pub public_url: String,
    /// Address the portal's HTTP server listens on (plain HTTP: put it behind the TLS-terminating
    /// ingress or proxy that `public_url` names).
    pub listen_addr: String,
    /// How long a sign-in link may be opened (once).
    pub link_ttl_seconds: u64,
    /// How long a session lasts after sign-in; then the user needs a new link.
    pub session_ttl_seconds: u64,
    /// SameSite of the session cookie: `strict` (default), `lax`, or `none` (needed when the
    /// portal is shown in an iframe of another site; adds `Partitioned`).
    pub cookie_same_site: SameSite,
    /// Origins that may show the portal in a frame (CSP `frame-ancestors`), e.g.
    /// `["https://app.synap.example"]`. Empty: no site may frame it.
    pub frame_ancestors: Vec<String>,
    /// The name in the page's header and title.
    pub title: String,
    /// Theme colours (`#rgb` or `#rrggbb`).
    pub accent_color: String,
    pub background_color: String,
    pub text_color: String,
    /// A PNG, SVG, JPEG or WebP file shown in the header; empty for none. Read at start.
    pub logo_file: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SameSite {
    Strict,
    Lax,
    None,
}

impl Default for PortalConfig {
    fn default() -> Self {
        Self {
            public_url: String::new(),
            listen_addr: "0.0.0.0:8080".into(),
            link_ttl_seconds: 5 * 60,
            session_ttl_seconds: 8 * 60 * 60,
            cookie_same_site: SameSite::Strict,
            frame_ancestors: Vec::new(),
            title: "Webhooks".into(),
            accent_color: "#2454c6".into(),
            background_color: "#ffffff".into(),
            text_color: "#1b1f24".into(),
            logo_file: String::new(),
        }
    }
}

fn rejected(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Rejected { key, reason: reason.into() }
}

impl PortalConfig {
    /// Whether the deployment serves the portal.
    pub fn enabled(&self) -> bool {
        !self.public_url.is_empty()
    }

    /// The public URL, checked: `https://`, or `http://` on a loopback host (a browser keeps
    /// `Secure` cookies only from those); an origin, with no path, query or fragment.
    pub fn public_url(&self) -> Result<url::Url, ConfigError> {
        const KEY: &str = "portal.public_url";
        let url =
            url::Url::parse(&self.public_url).map_err(|e| rejected(KEY, format!("is not a URL: {e}")))?;
        let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
            return Err(rejected(
                KEY,
                "must be https:// (http:// only on localhost): the session cookie is Secure",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            return Err(rejected(KEY, "must have no query, fragment or credentials"));
        }
        // The page loads /assets and calls /api from the root of its origin.
        if url.path() != "/" {
            return Err(rejected(
                KEY,
                "must be an origin without a path, e.g. https://webhooks.synap.example",
            ));
        }
        Ok(url)
    }

    /// Refuses values the portal cannot run with, naming the key.
    pub fn check(&self) -> Result<(), ConfigError> {
        if !self.enabled() {
            return Ok(());
        }
        self.public_url()?;
        if self.link_ttl_seconds == 0 || self.link_ttl_seconds > MAX_LINK_TTL_SECONDS {
            return Err(rejected("portal.link_ttl_seconds", format!("must be 1 to {MAX_LINK_TTL_SECONDS}")));
        }
        if self.session_ttl_seconds == 0 || self.session_ttl_seconds > MAX_SESSION_TTL_SECONDS {
            return Err(rejected(
                "portal.session_ttl_seconds",
                format!("must be 1 to {MAX_SESSION_TTL_SECONDS}"),
            ));
        }
        for origin in &self.frame_ancestors {
            check_origin(origin).map_err(|reason| rejected("portal.frame_ancestors", reason))?;
        }
        for (key, value) in [
            ("portal.accent_color", &self.accent_color),
            ("portal.background_color", &self.background_color),
            ("portal.text_color", &self.text_color),
        ] {
            if !is_hex_color(value) {
                return Err(rejected(key, format!("{value:?} is not a colour like #2454c6")));
            }
        }
        if self.title.is_empty() || self.title.len() > 64 || self.title.chars().any(char::is_control) {
            return Err(rejected("portal.title", "must be 1 to 64 characters without control characters"));
        }
        Ok(())
    }

    /// The CSP `frame-ancestors` value.
    pub fn frame_ancestors_source(&self) -> String {
        if self.frame_ancestors.is_empty() { "'none'".into() } else { self.frame_ancestors.join(" ") }
    }
}

/// A frame ancestor is an origin (`https://host[:port]`) or `'self'`: nothing that could end the
/// CSP directive or add another (`;`, `,`, white space) gets into the header.
fn check_origin(origin: &str) -> Result<(), String> {
    if origin == "'self'" {
        return Ok(());
    }
    let url = url::Url::parse(origin)
        .map_err(|_| format!("{origin:?} is not an origin like https://app.example"))?;
    let bare =
        url.path() == "/" && !origin.ends_with('/') && url.query().is_none() && url.fragment().is_none();
    if !matches!(url.scheme(), "https" | "http") || !bare || !url.username().is_empty() {
        return Err(format!(
            "{origin:?} is not an origin like https://app.example (scheme, host, port only)"
        ));
    }
    if origin.bytes().any(|b| !b.is_ascii_graphic() || b == b';' || b == b',' || b == b'\'') {
        return Err(format!("{origin:?} contains a character an origin cannot have"));
    }
    Ok(())
}

fn is_hex_color(value: &str) -> bool {
    value
        .strip_prefix('#')
        .is_some_and(|hex| matches!(hex.len(), 3 | 6) && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(config: &PortalConfig) -> &'static str {
        match config.check() {
            Err(ConfigError::Rejected { key, .. }) => key,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn off_unless_a_public_url_is_set() {
        assert!(!PortalConfig::default().enabled());
        assert!(PortalConfig::default().check().is_ok());
    }

    #[test]
    fn bad_values_name_their_key() {
        let base = PortalConfig { public_url: "https://hooks.example".into(), ..Default::default() };
        assert!(base.check().is_ok());
        assert!(PortalConfig { public_url: "http://127.0.0.1:8080".into(), ..base.clone() }.check().is_ok());
        for url in
            ["http://hooks.example", "ftp://x", "https://h.example/?a", "nonsense", "https://u:p@h.example"]
        {
            assert_eq!(
                key_of(&PortalConfig { public_url: url.into(), ..base.clone() }),
                "portal.public_url",
                "{url}"
            );
        }
        for origin in [
            "https://a.example; script-src *",
            "https://a.example/path",
            "https://a.example/",
            "*",
            "javascript:alert(1)",
            "https://a.example,https://b.example",
        ] {
            let config = PortalConfig { frame_ancestors: vec![origin.into()], ..base.clone() };
            assert_eq!(key_of(&config), "portal.frame_ancestors", "{origin}");
        }
        let framed = PortalConfig {
            frame_ancestors: vec![
                "https://app.example".into(),
                "'self'".into(),
                "http://localhost:3000".into(),
            ],
            ..base.clone()
        };
        assert!(framed.check().is_ok());
        assert_eq!(framed.frame_ancestors_source(), "https://app.example 'self' http://localhost:3000");
        assert_eq!(base.frame_ancestors_source(), "'none'");
        for colour in ["red", "#12345", "#12345g", "#fff;}body{x:y", ""] {
            let config = PortalConfig { accent_color: colour.into(), ..base.clone() };
            assert_eq!(key_of(&config), "portal.accent_color", "{colour}");
        }
        assert_eq!(key_of(&PortalConfig { link_ttl_seconds: 0, ..base.clone() }), "portal.link_ttl_seconds");
        assert_eq!(
            key_of(&PortalConfig { session_ttl_seconds: 0, ..base.clone() }),
            "portal.session_ttl_seconds"
        );
        assert_eq!(key_of(&PortalConfig { title: "a\nb".into(), ..base }), "portal.title");
    }
}
