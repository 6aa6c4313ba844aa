//! Certificates made at test time with the openssl CLI: a CA, a server certificate for
//! `localhost` / 127.0.0.1 it signed, a client certificate it signed (mutual TLS), and another
//! CA that signed nothing here.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Certs {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub other_ca: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl CLI");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A certificate for `subject` signed by `ca.pem`, with the extensions of `extensions`.
fn signed(dir: &Path, name: &str, subject: &str, extensions: &str) {
    let (key, csr, pem, ext) =
        (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"), format!("{name}.cnf"));
    openssl(dir, &["req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", &key, "-out", &csr]);
    std::fs::write(dir.join(&ext), extensions).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &pem,
        ],
    );
}

pub fn make_certs() -> Certs {
    let dir = std::env::temp_dir().join(format!("synap-tls-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let self_signed = |name: &str, cn: &str| {
        let subject = format!("/CN={cn}");
        let (key, pem) = (format!("{name}.key"), format!("{name}.pem"));
        openssl(
            &dir,
            &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", &subject]
                .iter()
                .copied()
                .chain(["-keyout", &key, "-out", &pem])
                .collect::<Vec<_>>(),
        );
    };
    self_signed("ca", "Synap Test CA");
    self_signed("other-ca", "Somebody Else's CA");
    signed(&dir, "server", "/CN=localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
    signed(&dir, "client", "/CN=portal-backend", "extendedKeyUsage=clientAuth\n");
    Certs {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        client_cert: dir.join("client.pem"),
        client_key: dir.join("client.key"),
        other_ca: dir.join("other-ca.pem"),
    }
}
