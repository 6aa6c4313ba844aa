//! The connection pool, with TLS as libpq does it: `sslmode` and `sslrootcert` in the URL.

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod, Runtime};
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use openssl::x509::X509;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use postgres_openssl::MakeTlsConnector;
use serde::{Deserialize, Serialize};
use tokio_postgres::config::SslMode;

use crate::DbError;

pub type Pool = deadpool_postgres::Pool;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// libpq-style URL, e.g. `postgres://synap:synap@127.0.0.1:5432/synap`. TLS as in libpq:
    /// `?sslmode=disable|prefer|require|verify-ca|verify-full` (default `prefer`: TLS when the
    /// server offers it, unverified) and `&sslrootcert=/path/ca.pem` (the CA the verifying modes
    /// trust; default: the system's CAs).
    pub url: String,
    /// Most connections this process opens.
    pub pool_size: usize,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self { url: "postgres://synap:synap@127.0.0.1:5432/synap".into(), pool_size: 8 }
    }
}

/// libpq's `sslmode`, including the verifying modes tokio-postgres does not parse itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
    /// Require, and the server's certificate chains to the trusted CA.
    VerifyCa,
    /// Verify-ca, and the certificate names the host connected to.
    VerifyFull,
}

/// A URL split into what tokio-postgres reads and the TLS settings it does not.
#[derive(Debug)]
pub struct ConnectOptions {
    pub pg: tokio_postgres::Config,
    pub tls: TlsMode,
    pub root_cert: Option<String>,
}

impl ConnectOptions {
    pub fn parse(url: &str) -> Result<Self, DbError> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let (mut tls, mut root_cert, mut kept) = (TlsMode::Prefer, None, Vec::new());
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("sslmode", value)) => {
                    tls = match value {
                        "disable" => TlsMode::Disable,
                        "prefer" => TlsMode::Prefer,
                        "require" => TlsMode::Require,
                        "verify-ca" => TlsMode::VerifyCa,
                        "verify-full" => TlsMode::VerifyFull,
                        other => {
                            return Err(DbError::Config(format!(
                                "sslmode {other:?} is not one of disable, prefer, require, verify-ca, verify-full"
                            )));
                        }
                    }
                }
                Some(("sslrootcert", path)) => root_cert = Some(path.to_owned()),
                _ => kept.push(pair),
            }
        }
        let rest = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
        let mut pg = tokio_postgres::Config::from_str(&rest).map_err(|e| DbError::Config(e.to_string()))?;
        pg.ssl_mode(match tls {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
        });
        Ok(Self { pg, tls, root_cert })
    }

    /// The TLS connector for the mode: unverified encryption for prefer/require (as libpq),
    /// chain (and host name) verification against the root certificate for verify-ca
    /// (verify-full).
    pub fn tls_connector(&self) -> Result<MakeTlsConnector, DbError> {
        let tls_error = |e: openssl::error::ErrorStack| DbError::Config(format!("TLS setup: {e}"));
        let mut builder = SslConnector::builder(SslMethod::tls_client()).map_err(tls_error)?;
        match self.tls {
            TlsMode::Disable | TlsMode::Prefer | TlsMode::Require => builder.set_verify(SslVerifyMode::NONE),
            // The connector starts with the system's CAs; a root certificate replaces them, as
            // in libpq, so that only the named CA is trusted.
            TlsMode::VerifyCa | TlsMode::VerifyFull => {
                if let Some(path) = &self.root_cert {
                    builder.set_cert_store(trust_only(path)?);
                }
            }
        }
        let mut connector = MakeTlsConnector::new(builder.build());
        if self.tls == TlsMode::VerifyCa {
            connector.set_callback(|config, _| {
                config.set_verify_hostname(false);
                Ok(())
            });
        }
        Ok(connector)
    }
}

/// A certificate store holding only the certificates of the PEM file at `path`.
fn trust_only(path: &str) -> Result<X509Store, DbError> {
    let unreadable = |why: String| DbError::Config(format!("cannot read sslrootcert {path}: {why}"));
    let pem = std::fs::read(path).map_err(|e| unreadable(e.to_string()))?;
    let certs = X509::stack_from_pem(&pem).map_err(|e| unreadable(e.to_string()))?;
    if certs.is_empty() {
        return Err(unreadable("no certificate in it".into()));
    }
    let mut store = X509StoreBuilder::new().map_err(|e| unreadable(e.to_string()))?;
    for cert in certs {
        store.add_cert(cert).map_err(|e| unreadable(e.to_string()))?;
    }
    Ok(store.build())
}

/// Builds the pool. Connections open lazily, so this succeeds while the database is down.
pub fn connect(config: &DatabaseConfig) -> Result<Pool, DbError> {
    let options = ConnectOptions::parse(&config.url)?;
    let tls = options.tls_connector()?;
    let manager =
        Manager::from_config(options.pg, tls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(manager)
        .max_size(config.pool_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .build()
        .map_err(|e| DbError::Config(e.to_string()))
}

/// Keeps the `postgres` readiness check current: the database answers `SELECT 1`.
pub fn watch_reachable(
    readiness: &synap_telemetry::Readiness,
    pool: &Pool,
    shutdown: &tokio_util::sync::CancellationToken,
) {
    let pool = pool.clone();
    readiness.watch("postgres", synap_telemetry::readiness::CHECK_INTERVAL, shutdown.clone(), move || {
        let pool = pool.clone();
        async move {
            let client = pool.get().await.map_err(|e| e.to_string())?;
            client.simple_query("SELECT 1").await.map_err(|e| e.to_string())?;
            Ok(())
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_tls_settings_are_read_and_the_rest_passes_through() {
        let o = ConnectOptions::parse(
            "postgres://u:p@db:5432/synap?sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(o.tls, TlsMode::VerifyFull);
        assert_eq!(o.root_cert.as_deref(), Some("/etc/ca.pem"));
        assert_eq!(o.pg.get_ssl_mode(), SslMode::Require);
        assert_eq!(o.pg.get_application_name(), Some("x"));
        assert_eq!(o.pg.get_dbname(), Some("synap"));

        let plain = ConnectOptions::parse("postgres://u:p@db/synap").unwrap();
        assert_eq!((plain.tls, plain.pg.get_ssl_mode()), (TlsMode::Prefer, SslMode::Prefer));
        assert_eq!(ConnectOptions::parse("postgres://db/x?sslmode=disable").unwrap().tls, TlsMode::Disable);
    }

    #[test]
    fn an_unknown_sslmode_is_named() {
        let err = ConnectOptions::parse("postgres://db/x?sslmode=verify").unwrap_err().to_string();
        assert!(err.contains("sslmode \"verify\""), "{err}");
        assert!(err.contains("database.url"), "{err}");
    }

    #[test]
    fn a_missing_root_certificate_is_named() {
        let o = ConnectOptions::parse("postgres://db/x?sslmode=verify-full&sslrootcert=/nonexistent.pem")
            .unwrap();
        let err = o.tls_connector().map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("/nonexistent.pem"), "{err}");
    }
}
