//! The command line.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use synap_proto::control::v1 as api;

#[derive(Parser)]
#[command(version, about)]
pub struct Cli {
    /// The control service's address: `https://host:port` for TLS (production), `http://` for
    /// a control that allows plaintext (the local stack).
    #[arg(long, env = "SYNAP_ENDPOINT", default_value = "http://127.0.0.1:50051", global = true)]
    pub endpoint: String,
    /// PEM CA certificate(s) to verify an `https://` endpoint with, instead of the system's.
    #[arg(long, env = "SYNAP_CA_FILE", global = true)]
    pub ca_file: Option<PathBuf>,
    /// The name to verify the server's certificate against, when it differs from the
    /// endpoint's host (e.g. through `kubectl port-forward`).
    #[arg(long, env = "SYNAP_TLS_SERVER_NAME", global = true)]
    pub tls_server_name: Option<String>,
    /// PEM client certificate, for a control that requires mutual TLS (with --key).
    #[arg(long, env = "SYNAP_CERT_FILE", global = true, requires = "key")]
    pub cert: Option<PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, env = "SYNAP_KEY_FILE", global = true, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Bearer token: the admin token or a portal API key (`sk_…`).
    #[arg(long, env = "SYNAP_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Seconds to wait for the control service: to connect (TCP and TLS) and for each call. A
    /// stalled server or an address that swallows packets ends in an error, not a hung script.
    #[arg(long, env = "SYNAP_TIMEOUT", default_value = "30", value_parser = seconds, global = true)]
    pub timeout: Duration,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Portals and their plans (admin token only).
    #[command(subcommand)]
    Portal(PortalCommand),
    /// Portal API keys (admin token only).
    #[command(subcommand, alias = "keys")]
    Key(KeyCommand),
    /// Webhook subscriptions.
    #[command(subcommand, alias = "sub")]
    Subscription(SubscriptionCommand),
    /// The event types, their plan rule and an example body.
    #[command(alias = "types")]
    EventTypes {
        /// Print each type's example body too.
        #[arg(long)]
        examples: bool,
    },
    /// The attempt log; sending events again.
    #[command(subcommand)]
    Delivery(crate::deliveries::DeliveryCommand),
    /// Prints a single-use sign-in link to the web portal for one portal (admin token, or a
    /// portal key for its own portal). Open it within minutes; it works once.
    PortalLink {
        /// The portal to sign in to; a portal key may leave it out (its own).
        #[arg(long)]
        portal: Option<String>,
        /// The session may look but not change anything.
        #[arg(long)]
        read_only: bool,
    },
}

#[derive(Subcommand)]
pub enum PortalCommand {
    /// Creates a portal or replaces its plan and features.
    Upsert {
        id: String,
        /// free, starter, pro or enterprise.
        #[arg(long)]
        plan: String,
        /// A custom feature, e.g. `store`; repeat for several.
        #[arg(long = "feature")]
        features: Vec<String>,
    },
    /// Shows one portal.
    Get { id: String },
    /// Lists portals.
    List(Paging),
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Creates an API key for a portal and prints its token (shown once).
    Create {
        #[arg(long)]
        portal: String,
        /// What the key is for.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// Lists a portal's API keys.
    List {
        #[arg(long)]
        portal: String,
        /// Include revoked keys.
        #[arg(long)]
        include_revoked: bool,
    },
    /// Revokes an API key at once.
    Revoke { id: String },
}

#[derive(Args)]
pub struct Paging {
    /// Items per page (1–500; default 50).
    #[arg(long, default_value_t = 0)]
    pub page_size: i32,
    /// The page token printed after the previous page.
    #[arg(long, default_value = "")]
    pub page_token: String,
    /// Fetch every page.
    #[arg(long, conflicts_with = "page_token")]
    pub all: bool,
}

/// Per-subscription delivery options; left out means the deployment's default (or, on update,
/// unchanged).
#[derive(Args)]
pub struct DeliveryOptions {
    /// Strict FIFO delivery: one request in flight; a failing event blocks only this
    /// subscription.
    #[arg(long)]
    pub ordered: bool,
    /// Requests in flight at once (1 to 1000).
    #[arg(long)]
    pub max_in_flight: Option<u32>,
    /// Requests started per second (1 to 10000).
    #[arg(long = "rate-limit")]
    pub rate_limit_per_sec: Option<u32>,
    /// Per-request timeout in milliseconds (1 to 30000).
    #[arg(long)]
    pub timeout_ms: Option<u32>,
    /// Send no W3C `traceparent` header to this endpoint.
    #[arg(long)]
    pub no_traceparent: bool,
}

/// Extra request headers sent with every delivery (at most 20).
#[derive(Args)]
pub struct HeaderArgs {
    /// `NAME=VALUE`; repeat for several.
    #[arg(long = "header", value_name = "NAME=VALUE")]
    pub header: Vec<String>,
    /// `NAME=VALUE` whose value is sealed at rest and never shown again; repeat for several.
    #[arg(long = "secret-header", value_name = "NAME=VALUE")]
    pub secret_header: Vec<String>,
}

impl HeaderArgs {
    /// The headers in the order given, plain ones first.
    pub fn headers(&self) -> anyhow::Result<Vec<api::CustomHeader>> {
        let plain = self.header.iter().map(|h| (h, false));
        let secret = self.secret_header.iter().map(|h| (h, true));
        plain
            .chain(secret)
            .map(|(text, secret)| {
                let (name, value) = text.split_once('=').with_context(|| {
                    let option = if secret { "--secret-header" } else { "--header" };
                    format!("{option} takes NAME=VALUE")
                })?;
                Ok(api::CustomHeader { name: name.to_owned(), value: value.to_owned(), secret })
            })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.header.is_empty() && self.secret_header.is_empty()
    }
}

#[derive(Subcommand)]
pub enum SubscriptionCommand {
    /// Subscribes an endpoint to event types and prints its signing secret (shown once).
    Create {
        /// The portal (a portal key may leave it out).
        #[arg(long, default_value = "")]
        portal: String,
        #[arg(long)]
        url: String,
        /// Event type code, a group's wildcard (`user.*`) or `*`; repeat for several.
        #[arg(long = "type", required = true)]
        types: Vec<String>,
        /// Deliver only the events for which this CEL expression is true, e.g.
        /// 'data.exam.id == "exm_1" && data.attempt.scoreFrac < 0.5' (see the README, Filters).
        #[arg(long, default_value = "")]
        filter: String,
        #[arg(long, default_value = "")]
        description: String,
        /// `user:password` for HTTP basic authentication, or `user` with the password in
        /// SYNAP_BASIC_AUTH_PASSWORD.
        #[arg(long)]
        basic_auth: Option<String>,
        /// Create it paused.
        #[arg(long)]
        disabled: bool,
        /// Idempotency key: repeating the command with it returns the first subscription.
        #[arg(long, default_value = "")]
        request_id: String,
        /// How deliveries are signed: v1 (HMAC-SHA256, a `whsec_` secret shown once) or v1a
        /// (Ed25519: Synap keeps the signing key, you verify with the `whpk_` public key).
        #[arg(long, default_value = "v1")]
        signature_scheme: String,
        #[command(flatten)]
        options: DeliveryOptions,
        #[command(flatten)]
        headers: HeaderArgs,
    },
    /// Shows one subscription.
    Get { id: String },
    /// Lists subscriptions, newest first.
    List {
        /// The portal (admins may leave it out to list every portal's).
        #[arg(long, default_value = "")]
        portal: String,
        /// Only those receiving this event type (by its code, its group's wildcard or `*`); or,
        /// given a wildcard, only those listing it.
        #[arg(long = "type", default_value = "")]
        event_type: String,
        /// Only those in this state: active, paused or disabled.
        #[arg(long)]
        state: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Changes the given fields only.
    Update {
        id: String,
        #[arg(long)]
        url: Option<String>,
        /// Replaces the event types (codes, `user.*`, `*`); repeat for several.
        #[arg(long = "type")]
        types: Vec<String>,
        /// Replaces the filter (a CEL expression; see the README, Filters).
        #[arg(long, conflicts_with = "clear_filter")]
        filter: Option<String>,
        /// Removes the filter: every event of the subscription's types is delivered.
        #[arg(long)]
        clear_filter: bool,
        #[arg(long)]
        description: Option<String>,
        /// `user:password` (or `user` with SYNAP_BASIC_AUTH_PASSWORD): replaces the basic-auth
        /// credentials.
        #[arg(long, conflicts_with = "clear_basic_auth")]
        basic_auth: Option<String>,
        /// Removes basic auth.
        #[arg(long)]
        clear_basic_auth: bool,
        /// Resumes deliveries.
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// Pauses deliveries.
        #[arg(long)]
        disable: bool,
        /// Ends strict FIFO delivery (see --ordered).
        #[arg(long, conflicts_with = "ordered")]
        unordered: bool,
        /// Sends the `traceparent` header again (see --no-traceparent).
        #[arg(long, conflicts_with = "no_traceparent")]
        traceparent: bool,
        #[command(flatten)]
        options: DeliveryOptions,
        /// Any --header or --secret-header replaces every extra header (secret values must be
        /// given again).
        #[command(flatten)]
        headers: HeaderArgs,
        /// Removes every extra header.
        #[arg(long, conflicts_with_all = ["header", "secret_header"])]
        clear_headers: bool,
    },
    /// Deletes a subscription.
    Delete { id: String },
    /// Stops deliveries until resumed.
    Pause { id: String },
    /// Restarts deliveries.
    Resume { id: String },
    /// Replaces the signing secret and prints the new one (shown once).
    RotateSecret {
        id: String,
        /// How long the old secret keeps signing, e.g. `90s`, `30m`, `24h`, `7d` (default: the
        /// deployment's, 24 h).
        #[arg(long)]
        overlap: Option<String>,
        /// The new key's scheme, v1 or v1a (default: the current one). `v1a` on a v1
        /// subscription moves it to Ed25519; both signatures are sent during the overlap.
        #[arg(long)]
        signature_scheme: Option<String>,
    },
    /// Sends an example event to the subscription now and shows the endpoint's answer.
    Test {
        id: String,
        /// Event type whose example to send (default: the subscription's first).
        #[arg(long = "type", default_value = "")]
        event_type: String,
    },
    /// Evaluates a filter on an example event (or a given body) as the router would, without
    /// saving or sending anything.
    TestFilter {
        /// A subscription whose filter, types and portal id to use where the options below are
        /// not given.
        id: Option<String>,
        /// The filter to try (default: the subscription's).
        #[arg(long, default_value = "")]
        filter: String,
        /// The event's type (default: the first type of --for, or of the subscription).
        #[arg(long = "type", default_value = "")]
        event_type: String,
        /// The types to check the filter against, as a subscription lists them (`user.*`, `*`);
        /// repeat for several (default: the subscription's, or --type alone).
        #[arg(long = "for")]
        for_types: Vec<String>,
        /// A file with the event body as JSON, instead of the type's example (`-`: standard input).
        #[arg(long)]
        body: Option<std::path::PathBuf>,
    },
}

pub fn plan(name: &str) -> anyhow::Result<api::Plan> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "free" => api::Plan::Free,
        "starter" => api::Plan::Starter,
        "pro" => api::Plan::Pro,
        "enterprise" => api::Plan::Enterprise,
        other => bail!("unknown plan {other:?}: use free, starter, pro or enterprise"),
    })
}

pub fn state(name: &str) -> anyhow::Result<api::SubscriptionState> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "active" => api::SubscriptionState::Active,
        "paused" => api::SubscriptionState::Paused,
        "disabled" => api::SubscriptionState::Disabled,
        other => bail!("unknown state {other:?}: use active, paused or disabled"),
    })
}

/// `v1` or `v1a`.
pub fn signature_scheme(name: &str) -> anyhow::Result<api::SignatureScheme> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "v1" => api::SignatureScheme::V1,
        "v1a" => api::SignatureScheme::V1a,
        other => bail!("unknown signature scheme {other:?}: use v1 or v1a"),
    })
}

/// `user:password`, or `user` alone with the password in `SYNAP_BASIC_AUTH_PASSWORD` (keeps it
/// out of the shell history and the process list).
pub fn basic_auth(value: &str) -> anyhow::Result<api::BasicAuth> {
    let (username, password) = match value.split_once(':') {
        Some((user, password)) => (user.to_owned(), password.to_owned()),
        None => (
            value.to_owned(),
            std::env::var("SYNAP_BASIC_AUTH_PASSWORD")
                .context("--basic-auth USER needs SYNAP_BASIC_AUTH_PASSWORD set, or use USER:PASSWORD")?,
        ),
    };
    Ok(api::BasicAuth { username, password })
}

/// `--timeout`: seconds above 0, at most an hour; fractions allowed (`0.5`).
fn seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text.trim().parse().map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(seconds > 0.0 && seconds <= 3600.0) {
        return Err(format!("{text} is not above 0 and at most 3600 seconds"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// `90s`, `30m`, `24h`, `7d` or plain seconds.
pub fn duration(text: &str) -> anyhow::Result<prost_types::Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: i64 = number.parse().with_context(|| format!("{text:?} is not a duration like 24h"))?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => bail!("unknown duration unit {other:?}: use s, m, h or d"),
    };
    Ok(prost_types::Duration { seconds: n * factor, nanos: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("90").unwrap().seconds, 90);
        assert_eq!(duration("30m").unwrap().seconds, 1800);
        assert_eq!(duration("24h").unwrap().seconds, 86_400);
        assert_eq!(duration("7d").unwrap().seconds, 604_800);
        assert!(duration("1w").is_err() && duration("h").is_err());
    }

    #[test]
    fn timeouts() {
        assert_eq!(seconds("30"), Ok(Duration::from_secs(30)));
        assert_eq!(seconds("0.5"), Ok(Duration::from_millis(500)));
        for refused in ["0", "-1", "3601", "NaN", "inf", "", "ten"] {
            assert!(seconds(refused).is_err(), "{refused:?}");
        }
        let cli = Cli::try_parse_from(["synapctl", "--timeout", "0", "event-types"]);
        let error = cli.err().expect("--timeout 0 is refused").to_string();
        assert!(error.contains("--timeout"), "{error}");
    }

    #[test]
    fn headers_and_schemes() {
        let args = HeaderArgs {
            header: vec!["X-Tenant=acme=eu".into()],
            secret_header: vec!["X-Key=s3cr3t".into()],
        };
        let headers = args.headers().unwrap();
        assert_eq!(
            (headers[0].name.as_str(), headers[0].value.as_str(), headers[0].secret),
            ("X-Tenant", "acme=eu", false)
        );
        assert_eq!((headers[1].name.as_str(), headers[1].secret), ("X-Key", true));
        let bad = HeaderArgs { header: vec![], secret_header: vec!["X-Key".into()] };
        assert!(bad.headers().unwrap_err().to_string().contains("--secret-header takes NAME=VALUE"));
        assert_eq!(signature_scheme("V1A").unwrap(), api::SignatureScheme::V1a);
        assert!(signature_scheme("v2").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
