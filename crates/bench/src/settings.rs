//! Every setting the benchmark gives the services, in one place. Anything not listed here is the
//! product default of `deploy/synap.example.toml`: the figures describe the shipped
//! configuration, and a tuning experiment is one `--service-env KEY=VALUE` away.

/// Settings that tie the services to this run (addresses, names, credentials). Not tuning.
pub fn wiring(run: &RunWiring) -> Vec<(String, String)> {
    [
        ("SYNAP_KAFKA__BOOTSTRAP_SERVERS", run.bootstrap.as_str()),
        ("SYNAP_KAFKA__TOPIC_PREFIX", run.topic_prefix.as_str()),
        ("SYNAP_DATABASE__URL", run.database_url.as_str()),
        ("SYNAP_ENCRYPTION__KEY", run.encryption_key.as_str()),
        ("SYNAP_CONTROL__ADMIN_TOKEN", run.admin_token.as_str()),
        ("SYNAP_CONTROL__LISTEN_ADDR", run.control_addr.as_str()),
        // The benchmark's own control on loopback; production serves TLS.
        ("SYNAP_CONTROL__ALLOW_PLAINTEXT", "true"),
        // The receiver is plain HTTP on loopback, which the outbound address policy refuses
        // unless allowlisted.
        ("SYNAP_CONTROL__ALLOW_HTTP_URLS", "true"),
        ("SYNAP_OUTBOUND__ALLOW_CIDRS", "[\"127.0.0.0/8\"]"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Settings the benchmark states explicitly because they weigh on the figures: JSON logs at
/// `info`, as `deploy/synap.example.toml` recommends for production (the compiled-in format is
/// text). The sender logs one line per attempt, so log volume is part of a delivery's cost.
pub const DEFAULTS: &[(&str, &str)] = &[("SYNAP_LOG__FORMAT", "json"), ("SYNAP_LOG__FILTER", "info")];

pub struct RunWiring {
    pub bootstrap: String,
    pub topic_prefix: String,
    pub database_url: String,
    pub encryption_key: String,
    pub admin_token: String,
    pub control_addr: String,
}

/// The environment of every service: wiring, then [`DEFAULTS`], then the user's overrides
/// (later entries win, so an override replaces a default of the same name).
pub fn service_env(run: &RunWiring, overrides: &[(String, String)]) -> Vec<(String, String)> {
    let mut env = wiring(run);
    env.extend(DEFAULTS.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    for (key, value) in overrides {
        env.retain(|(k, _)| k != key);
        env.push((key.clone(), value.clone()));
    }
    env
}

/// Parses `KEY=VALUE` from the command line.
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    let (key, value) = s.split_once('=').ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))?;
    if key.is_empty() {
        return Err(format!("empty key in {s:?}"));
    }
    Ok((key.to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_defaults() {
        let run = RunWiring {
            bootstrap: "b".into(),
            topic_prefix: "p.".into(),
            database_url: "d".into(),
            encryption_key: "k".into(),
            admin_token: "t".into(),
            control_addr: "c".into(),
        };
        let env = service_env(&run, &[parse_key_value("SYNAP_LOG__FILTER=warn").unwrap()]);
        let filters: Vec<_> = env.iter().filter(|(k, _)| k == "SYNAP_LOG__FILTER").collect();
        assert_eq!(filters, [&("SYNAP_LOG__FILTER".to_string(), "warn".to_string())]);
        assert!(parse_key_value("novalue").is_err());
        assert_eq!(parse_key_value("A=b=c").unwrap(), ("A".into(), "b=c".into()));
    }
}
