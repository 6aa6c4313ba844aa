//! Production connections for real: the whole pipeline over TLS to Kafka, and PostgreSQL with
//! `sslmode=require` and `verify-full` against the local cluster's certificate.
//!
//! tansu 0.6.0 accepts `--cert` but never wraps its listener in TLS (the acceptor is unused), so
//! the test broker sits behind a TLS terminator that advertises itself: every client connection,
//! bootstrap and metadata-announced alike, is TLS with certificate verification.

use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use openssl::ssl::{Ssl, SslAcceptor, SslFiletype, SslMethod};
use rdkafka::ClientConfig;
use rdkafka::producer::FutureProducer;
use synap_contract::EventType;
use synap_tests::certs::{Certs, make_certs};
use synap_tests::kafka::produce;
use synap_tests::{Receiver, Stack};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{envelope, pro_portal_subscribed};

/// A private broker reachable only through TLS on the returned address.
async fn tls_broker(certs: &Certs) -> (tokio::process::Child, String) {
    let ports = synap_tests::stack::free_ports(2);
    let (plain, tls) = (ports[0], ports[1]);
    let broker = tokio::process::Command::new("tansu")
        .args(["broker", "--listener-url", &format!("tcp://127.0.0.1:{plain}")])
        .args(["--advertised-listener-url", &format!("tcp://127.0.0.1:{tls}")])
        .args(["--storage-engine", "memory://tansu/", "--silent"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("tansu on PATH (scripts/test.sh installs it)");
    let upstream: SocketAddr = format!("127.0.0.1:{plain}").parse().unwrap();
    for _ in 0..100 {
        if TcpStream::connect(upstream).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
    acceptor.set_private_key_file(&certs.key, SslFiletype::PEM).unwrap();
    acceptor.set_certificate_chain_file(&certs.cert).unwrap();
    let acceptor = acceptor.build();
    let listener = TcpListener::bind(("127.0.0.1", tls)).await.unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let ssl = Ssl::new(acceptor.context()).unwrap();
            tokio::spawn(async move {
                let mut tls = tokio_openssl::SslStream::new(ssl, client).unwrap();
                if Pin::new(&mut tls).accept().await.is_err() {
                    return; // a client that refused our certificate
                }
                let Ok(mut broker) = TcpStream::connect(upstream).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut broker).await;
            });
        }
    });
    (broker, format!("127.0.0.1:{tls}"))
}

fn tls_producer(bootstrap: &str, ca: &Path) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("security.protocol", "SSL")
        .set("ssl.ca.location", ca.to_str().unwrap())
        .set("message.timeout.ms", "5000")
        .create()
        .expect("TLS producer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_runs_over_tls_to_kafka() {
    let certs = make_certs();
    let (_broker, bootstrap) = tls_broker(&certs).await;
    // librdkafka properties have dots in their names, so they come from the configuration file.
    let config = certs.ca.with_file_name("synap.toml");
    std::fs::write(
        &config,
        format!(
            "[kafka.properties]\n\"security.protocol\" = \"SSL\"\n\"ssl.ca.location\" = {:?}\n\
             \"ssl.endpoint.identification.algorithm\" = \"https\"\n",
            certs.ca.to_str().unwrap()
        ),
    )
    .unwrap();
    let stack = Stack::start_with(&[
        ("SYNAP_CONFIG", config.to_str().unwrap()),
        ("SYNAP_KAFKA__BOOTSTRAP_SERVERS", &bootstrap),
    ])
    .await;
    let receiver = Receiver::start().await;
    let mut control = stack.control().await;
    let portal = pro_portal_subscribed(&mut control, receiver.url("/hook"), EventType::ExamCompleted).await;

    let ty = EventType::ExamCompleted;
    let payload = envelope(ty, &portal, Some("evt_over_tls"), &ty.example_body());
    produce(&tls_producer(&bootstrap, &certs.ca), &stack.topic("inbound"), &portal, &payload, None).await;
    let received = receiver.wait_for("/hook", 1, Duration::from_secs(30)).await;
    assert_eq!(received[0].header("webhook-id"), Some("evt_over_tls"));

    // The certificate is verified: a client trusting another CA gets nothing through.
    let stranger = tls_producer(&bootstrap, &certs.other_ca);
    let refused = stranger
        .send(
            rdkafka::producer::FutureRecord::to(&stack.topic("inbound")).key("k").payload("x"),
            Duration::from_secs(5),
        )
        .await;
    assert!(refused.is_err(), "a client that cannot verify the broker must not produce");
}

fn database_url(host: &str, params: &str) -> String {
    let base = std::env::var("SYNAP_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://synap:synap@127.0.0.1:5432/synap".into());
    let mut url = url::Url::parse(&base).unwrap();
    url.set_host(Some(host)).unwrap();
    url.set_query(Some(params));
    url.to_string()
}

/// Connects with `url` and reports whether the session is encrypted.
async fn session_is_tls(url: &str) -> Result<bool, String> {
    let config = synap_db::DatabaseConfig { url: url.into(), pool_size: 1 };
    let pool = synap_db::connect(&config).map_err(|e| e.to_string())?;
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let row = client
        .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.get(0))
}

/// Debian's cluster serves TLS with its self-signed "snakeoil" certificate for `localhost`.
const CLUSTER_CERT: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

#[tokio::test]
async fn postgres_connections_use_tls_as_configured() {
    assert_eq!(session_is_tls(&database_url("127.0.0.1", "sslmode=require")).await, Ok(true));
    assert_eq!(session_is_tls(&database_url("127.0.0.1", "sslmode=disable")).await, Ok(false));
    let verified = format!("sslmode=verify-full&sslrootcert={CLUSTER_CERT}");
    assert_eq!(session_is_tls(&database_url("localhost", &verified)).await, Ok(true));

    // Verification is real: the wrong host name, or a CA that did not sign, is refused.
    let wrong_host = session_is_tls(&database_url("127.0.0.1", &verified)).await;
    assert!(wrong_host.is_err(), "127.0.0.1 is not the certificate's name: {wrong_host:?}");
    let other_ca = make_certs().other_ca;
    let params = format!("sslmode=verify-full&sslrootcert={}", other_ca.display());
    let untrusted = session_is_tls(&database_url("localhost", &params)).await;
    assert!(untrusted.is_err(), "a certificate from another CA: {untrusted:?}");
    // verify-ca checks the chain but not the name.
    let chain_only = format!("sslmode=verify-ca&sslrootcert={CLUSTER_CERT}");
    assert_eq!(session_is_tls(&database_url("127.0.0.1", &chain_only)).await, Ok(true));
}
