//! The gRPC server: the API behind authentication, plus health and reflection.

use std::net::SocketAddr;

use synap_proto::control::v1::control_service_server::ControlServiceServer;
use tokio_util::sync::CancellationToken;

use crate::auth::Authenticator;
use crate::service::ControlApi;

pub async fn serve(
    api: ControlApi,
    auth: Authenticator,
    listener: tokio::net::TcpListener,
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
    let control = auth.wrap(ControlServiceServer::new(api));
    let addr: SocketAddr = listener.local_addr()?;
    tracing::info!(%addr, "control listening");
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection().build_v1()?)
        // Many clients in use (grpcurl before 1.8.8, Postman, older grpcui) speak only v1alpha.
        .add_service(reflection().build_v1alpha()?)
        .add_service(control)
        .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), async move {
            shutdown.cancelled().await
        })
        .await?;
    Ok(())
}
