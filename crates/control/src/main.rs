//! `synap-control`: the gRPC control API.

use anyhow::Context;
use clap::Parser;
use std::sync::Arc;
use synap_control::auth::Authenticator;

use synap_control::config::ControlConfig;
use synap_control::kafka_writer::KafkaWriter;
use synap_control::portal_links::PortalLinks;
use synap_control::portal_web::{PortalConfig, PortalWeb};
use synap_control::service::ControlApi;
use synap_db::{DatabaseConfig, EncryptionConfig};
use synap_kafka::KafkaConfig;
use synap_outbound::{OutboundConfig, Policy};
use synap_runtime::{ConfigError, ConfigSource, ServiceArgs, shutdown_token};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = ServiceArgs::parse();
    let source = ConfigSource::load(args.config.as_deref())?;
    let database: DatabaseConfig = source.section("database")?;
    let encryption: EncryptionConfig = source.section("encryption")?;
    let kafka: KafkaConfig = source.section("kafka")?;
    let config: ControlConfig = source.section("control")?;
    let portal: PortalConfig = source.section("portal")?;
    let outbound: OutboundConfig = source.section("outbound")?;
    let telemetry = synap_telemetry::init(&source, "synap-control")?;
    config.check()?;
    portal.check()?;
    let secrets = encryption.secret_box()?;
    let policy = Policy::from_config(&outbound)
        .map_err(|e| ConfigError::Rejected { key: e.config_key(), reason: e.to_string() })?;
    let tls = synap_control::tls::ServerTls::from_config(&config)?;

    telemetry.readiness.require(synap_db::keyring::READINESS);
    telemetry.serve().await?;
    let shutdown = shutdown_token();
    let pool = synap_db::connect(&database)?;
    synap_db::watch_reachable(&telemetry.readiness, &pool, &shutdown);
    // Before serving anything: a wrong key would seal values no other replica can open.
    synap_db::keyring::check_at_start(&pool, &secrets, &telemetry.readiness, &shutdown)
        .await
        .context("checking the encryption keys against the database")?;
    if shutdown.is_cancelled() {
        return Ok(());
    }

    let writer = KafkaWriter::new(&kafka, shutdown.clone())?;
    let mut api = ControlApi::new(&config, pool.clone(), secrets, writer.clone(), policy);
    if portal.enabled() {
        api.portal_links = Some(PortalLinks {
            public_url: portal.public_url.trim_end_matches('/').to_owned(),
            ttl: std::time::Duration::from_secs(portal.link_ttl_seconds),
        });
    }
    let api = Arc::new(api);
    let deliveries =
        Arc::new(synap_control::deliveries::DeliveryApi::new(pool.clone(), &kafka, writer.clone())?);
    let listener = tokio::net::TcpListener::bind(&config.listen_addr)
        .await
        .with_context(|| format!("cannot listen on control.listen_addr {:?}", config.listen_addr))?;
    let web = if portal.enabled() {
        let listener = tokio::net::TcpListener::bind(&portal.listen_addr)
            .await
            .with_context(|| format!("cannot listen on portal.listen_addr {:?}", portal.listen_addr))?;
        let web = PortalWeb::new(portal, api.clone(), deliveries.clone(), pool.clone())?;
        Some(tokio::spawn(synap_control::portal_web::serve(Arc::new(web), listener, shutdown.clone())))
    } else {
        None
    };
    let grpc = synap_control::server::serve(
        api,
        deliveries,
        Authenticator::new(&config.admin_token, pool),
        listener,
        tls,
        std::time::Duration::from_millis(config.call_timeout_ms),
        shutdown.clone(),
    );
    // Either server stopping stops the other: the portal is part of this service, and a portal
    // that failed must not leave a process that looks healthy.
    let served = match web {
        None => grpc.await,
        Some(mut web) => {
            tokio::pin!(grpc);
            let portal_result = |joined: Result<std::io::Result<()>, tokio::task::JoinError>| {
                joined.context("portal task")?.context("portal server")
            };
            tokio::select! {
                served = &mut grpc => {
                    shutdown.cancel();
                    portal_result(web.await).and(served)
                }
                stopped = &mut web => {
                    shutdown.cancel();
                    let served = grpc.await;
                    portal_result(stopped).and(served)
                }
            }
        }
    };
    served?;
    tracing::info!("control stopped");
    telemetry.shutdown();
    // A producer that failed for good stopped the process: the exit says so.
    Ok(writer.flush()?)
}
