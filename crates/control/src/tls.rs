//! TLS for the control API: every call carries a bearer token, which must not cross the network
//! in the clear.
//!
//! The certificate and key come from files (a Kubernetes TLS Secret, cert-manager's output) and
//! are read again every [`RELOAD_EVERY`]: a renewed certificate is served from then on, without
//! a restart, and a pair that does not load (a half-written file) leaves the previous one in
//! service. A client CA makes every connection present a certificate it issued (mutual TLS).
//! Handshakes run on their own tasks, so a client that stalls in one holds up nobody else.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use synap_runtime::ConfigError;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::config::ControlConfig;

/// How often the certificate files are read again.
pub const RELOAD_EVERY: Duration = Duration::from_secs(60);
/// The longest a client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections handshaken but not yet taken by the server.
const ACCEPTED_BACKLOG: usize = 64;

const CERT_KEY: &str = "control.tls_cert_file";
const KEY_KEY: &str = "control.tls_key_file";
const CLIENT_CA_KEY: &str = "control.tls_client_ca_file";

/// The API's TLS: the acceptor, and the certificate it serves.
pub struct ServerTls {
    acceptor: TlsAcceptor,
    certificate: Arc<CertificateFiles>,
}

impl ServerTls {
    /// The TLS settings of `[control]`; `None` when no certificate is configured (which
    /// [`ControlConfig::check`] allows only with `control.allow_plaintext`). Every error names
    /// the key at fault.
    pub fn from_config(config: &ControlConfig) -> Result<Option<Self>, ConfigError> {
        if config.tls_cert_file.is_empty() {
            return Ok(None);
        }
        let provider = Arc::new(ring::default_provider());
        let certificate = Arc::new(CertificateFiles::load(
            PathBuf::from(&config.tls_cert_file),
            PathBuf::from(&config.tls_key_file),
            provider.clone(),
        )?);
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| rejected(CERT_KEY, e))?;
        let builder = if config.tls_client_ca_file.is_empty() {
            builder.with_no_client_auth()
        } else {
            let path = Path::new(&config.tls_client_ca_file);
            let mut roots = RootCertStore::empty();
            for cert in certificates(CLIENT_CA_KEY, path)? {
                roots.add(cert).map_err(|e| rejected(CLIENT_CA_KEY, format!("{}: {e}", path.display())))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| rejected(CLIENT_CA_KEY, format!("{}: {e}", path.display())))?;
            builder.with_client_cert_verifier(verifier)
        };
        let mut server = builder.with_cert_resolver(certificate.clone());
        // gRPC is HTTP/2; clients such as grpc-go insist on negotiating it.
        server.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Some(Self { acceptor: TlsAcceptor::from(Arc::new(server)), certificate }))
    }

    /// Reads the certificate files again every [`RELOAD_EVERY`] until `shutdown`.
    pub fn watch_files(&self, shutdown: CancellationToken) {
        let certificate = self.certificate.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RELOAD_EVERY);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                match certificate.reload() {
                    Ok(true) => tracing::info!("control TLS certificate reloaded"),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!("control TLS certificate not reloaded, serving the previous one: {e}")
                    }
                }
            }
        });
    }

    /// The TLS connections made on `listener`, until `shutdown`. A failed handshake (a
    /// plaintext client, an unknown CA, no client certificate under mutual TLS) closes that
    /// connection only.
    pub fn incoming(
        &self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> ReceiverStream<io::Result<TlsStream<TcpStream>>> {
        let (tx, rx) = tokio::sync::mpsc::channel(ACCEPTED_BACKLOG);
        let acceptor = self.acceptor.clone();
        tokio::spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(e) => {
                            // Out of file descriptors and the like: wait rather than spin.
                            tracing::warn!("control could not accept a connection: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    if let Some(tls) = handshake(&acceptor, stream, peer).await {
                        let _ = tx.send(Ok(tls)).await;
                    }
                });
            }
        });
        ReceiverStream::new(rx)
    }
}

async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
) -> Option<TlsStream<TcpStream>> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::debug!(%peer, "control TLS handshake failed: {e}");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "control TLS handshake timed out");
            None
        }
    }
}

/// The served certificate and key, as last read from their files.
#[derive(Debug)]
struct CertificateFiles {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    key: Arc<CertifiedKey>,
    /// The files' bytes, to tell whether they changed.
    files: (Vec<u8>, Vec<u8>),
}

impl CertificateFiles {
    fn load(
        cert_path: PathBuf,
        key_path: PathBuf,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, ConfigError> {
        let current = RwLock::new(read_pair(&cert_path, &key_path, &provider)?);
        Ok(Self { cert_path, key_path, provider, current })
    }

    /// Reads the files; when they changed and load, serves them from now on. `Ok(false)`: no
    /// change.
    fn reload(&self) -> Result<bool, ConfigError> {
        let files = (read(CERT_KEY, &self.cert_path)?, read(KEY_KEY, &self.key_path)?);
        if self.current.read().unwrap_or_else(PoisonError::into_inner).files == files {
            return Ok(false);
        }
        let loaded = read_pair(&self.cert_path, &self.key_path, &self.provider)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = loaded;
        Ok(true)
    }
}

impl ResolvesServerCert for CertificateFiles {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(PoisonError::into_inner).key.clone())
    }
}

/// The certificate chain and key from their files, checked to belong together.
fn read_pair(cert_path: &Path, key_path: &Path, provider: &CryptoProvider) -> Result<Loaded, ConfigError> {
    let (cert_pem, key_pem) = (read(CERT_KEY, cert_path)?, read(KEY_KEY, key_path)?);
    let chain = parse_certificates(CERT_KEY, cert_path, &cert_pem)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        rejected(KEY_KEY, format!("{}: no PEM private key (PKCS#8, PKCS#1 or SEC1): {e}", key_path.display()))
    })?;
    let key = CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        rejected(
            KEY_KEY,
            format!("{} does not go with the certificate in {CERT_KEY}: {e}", key_path.display()),
        )
    })?;
    Ok(Loaded { key: Arc::new(key), files: (cert_pem, key_pem) })
}

fn certificates(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    parse_certificates(key, path, &read(key, path)?)
}

fn parse_certificates(
    key: &'static str,
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| rejected(key, format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(rejected(key, format!("{} holds no PEM certificate", path.display())));
    }
    Ok(certs)
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| rejected(key, format!("cannot read {}: {e}", path.display())))
}

fn rejected(key: &'static str, reason: impl ToString) -> ConfigError {
    ConfigError::Rejected { key, reason: reason.to_string() }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// A fresh self-signed certificate and key in `dir`, named `name.pem` and `name.key`.
    fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
        let out = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"])
            .args(["-days", "1", "-subj", &format!("/CN={name}"), "-addext", "subjectAltName=DNS:localhost"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl CLI");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (cert, key)
    }

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("synap-control-tls-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn config(cert: &Path, key: &Path, client_ca: &str) -> ControlConfig {
        ControlConfig {
            tls_cert_file: cert.display().to_string(),
            tls_key_file: key.display().to_string(),
            tls_client_ca_file: client_ca.into(),
            ..Default::default()
        }
    }

    fn rejected_key(result: Result<Option<ServerTls>, ConfigError>) -> (&'static str, String) {
        match result {
            Err(ConfigError::Rejected { key, reason }) => (key, reason),
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn every_bad_file_names_its_key() {
        let dir = temp_dir();
        let (cert, key) = self_signed(&dir, "one");
        let (_, other_key) = self_signed(&dir, "two");
        let missing = dir.join("missing.pem");
        let garbage = dir.join("garbage.pem");
        std::fs::write(&garbage, "not a PEM file\n").unwrap();

        assert!(ServerTls::from_config(&config(&cert, &key, "")).unwrap().is_some());
        assert!(ServerTls::from_config(&config(&cert, &key, &cert.display().to_string())).unwrap().is_some());
        for (cfg, expected, says) in [
            (config(&missing, &key, ""), CERT_KEY, "cannot read"),
            (config(&garbage, &key, ""), CERT_KEY, "no PEM certificate"),
            (config(&cert, &missing, ""), KEY_KEY, "cannot read"),
            (config(&cert, &garbage, ""), KEY_KEY, "no PEM private key"),
            (config(&cert, &other_key, ""), KEY_KEY, "does not go with the certificate"),
            (config(&cert, &key, &missing.display().to_string()), CLIENT_CA_KEY, "cannot read"),
            (config(&cert, &key, &garbage.display().to_string()), CLIENT_CA_KEY, "no PEM certificate"),
        ] {
            let (got, reason) = rejected_key(ServerTls::from_config(&cfg));
            assert_eq!(got, expected, "{reason}");
            assert!(reason.contains(says), "{expected}: {reason}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_renewed_certificate_is_served_and_a_broken_one_is_not() {
        let dir = temp_dir();
        let (cert, key) = self_signed(&dir, "first");
        let files =
            CertificateFiles::load(cert.clone(), key.clone(), Arc::new(ring::default_provider())).unwrap();
        let served =
            |files: &CertificateFiles| files.current.read().unwrap().key.end_entity_cert().unwrap().to_vec();
        let first = served(&files);
        assert!(!files.reload().unwrap(), "unchanged files are not reloaded");

        // Renewal writes a new pair in place.
        let (new_cert, new_key) = self_signed(&dir, "second");
        std::fs::copy(&new_cert, &cert).unwrap();
        std::fs::copy(&new_key, &key).unwrap();
        assert!(files.reload().unwrap());
        let second = served(&files);
        assert_ne!(first, second);

        // Half of a renewal (a new certificate, the old key) keeps the pair that works.
        let (third_cert, _) = self_signed(&dir, "third");
        std::fs::copy(&third_cert, &cert).unwrap();
        let err = files.reload().unwrap_err();
        assert!(err.to_string().contains(KEY_KEY), "{err}");
        assert_eq!(served(&files), second);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
