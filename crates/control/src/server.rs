//! The gRPC server: the API behind authentication, plus health and reflection, over TLS unless
//! the deployment allowed plaintext.

use std::net::SocketAddr;

use synap_proto::control::v1::control_service_server::ControlServiceServer;
use synap_proto::control::v1::delivery_service_server::DeliveryServiceServer;
use tokio_util::sync::CancellationToken;

use crate::auth::Authenticator;
use crate::call_limit::CallLimit;
use crate::service::ControlApi;
use crate::tls::ServerTls;

pub async fn serve(
    api: std::sync::Arc<ControlApi>,
    deliveries: std::sync::Arc<crate::deliveries::DeliveryApi>,
    auth: Authenticator,
    listener: tokio::net::TcpListener,
    tls: Option<ServerTls>,
    call_limit: std::time::Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<ControlServiceServer<ControlApi>>().await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(synap_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            // google.rpc.BadRequest & co., so that grpcurl can print error details.
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
    };
    // Shared with the web portal, which calls the same implementation.
    // The limit is outside authentication, which may ask the database too.
    let control = CallLimit::new(auth.wrap(ControlServiceServer::from_arc(api)), call_limit);
    let deliveries = CallLimit::new(auth.wrap(DeliveryServiceServer::from_arc(deliveries)), call_limit);
    let addr: SocketAddr = listener.local_addr()?;
    let router = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection().build_v1()?)
        // Many clients in use (grpcurl before 1.8.8, Postman, older grpcui) speak only v1alpha.
        .add_service(reflection().build_v1alpha()?)
        .add_service(control)
        .add_service(deliveries);
    let stopped = shutdown.clone();
    let signal = async move { stopped.cancelled().await };
    match tls {
        Some(tls) => {
            tracing::info!(%addr, "control listening (TLS)");
            tls.watch_files(shutdown.clone());
            router.serve_with_incoming_shutdown(tls.incoming(listener, shutdown), signal).await?;
        }
        None => {
            tracing::warn!(
                %addr,
                "control listening WITHOUT TLS (control.allow_plaintext): bearer tokens cross the network \
                 in the clear; set control.tls_cert_file and control.tls_key_file outside local use"
            );
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            router.serve_with_incoming_shutdown(incoming, signal).await?;
        }
    }
    Ok(())
}
