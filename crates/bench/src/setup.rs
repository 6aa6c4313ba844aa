//! Portals and subscriptions, created through the control API as a customer's tooling would
//! (UpsertPortal, CreateSubscription), many calls in flight.

use futures::{StreamExt, TryStreamExt};
use synap_contract::EventType;
use synap_proto::control::v1 as api;
use synap_proto::control::v1::control_service_client::ControlServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::stats::Behaviour;

type Client = ControlServiceClient<InterceptedService<Channel, Bearer>>;

#[derive(Clone)]
pub struct Bearer(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// Calls in flight while setting up: enough to keep control and PostgreSQL busy.
const CONCURRENCY: usize = 16;

/// One subscription to create.
pub struct NewSubscription {
    pub portal: String,
    pub behaviour: Behaviour,
    /// Unique per endpoint: `/<behaviour>/<path>` on the receiver.
    pub path: String,
    pub types: Vec<EventType>,
}

pub struct Setup {
    client: Client,
    receiver_base: String,
}

impl Setup {
    pub async fn connect(control_addr: &str, admin_token: &str, receiver_base: &str) -> anyhow::Result<Self> {
        let channel = Channel::from_shared(format!("http://{control_addr}"))?.connect().await?;
        let token = format!("Bearer {admin_token}").parse()?;
        Ok(Self {
            client: ControlServiceClient::with_interceptor(channel, Bearer(token)),
            receiver_base: receiver_base.to_owned(),
        })
    }

    /// Creates Pro portals with the `store` feature (so every event type routes).
    pub async fn portals(&self, ids: &[String]) -> anyhow::Result<()> {
        futures::stream::iter(ids.iter().cloned())
            .map(|id| {
                let mut client = self.client.clone();
                async move {
                    let request = api::UpsertPortalRequest {
                        id,
                        plan: api::Plan::Pro as i32,
                        features: vec!["store".into()],
                    };
                    client.upsert_portal(request).await.map(|_| ())
                }
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<()>()
            .await?;
        Ok(())
    }

    pub async fn subscriptions(&self, subscriptions: Vec<NewSubscription>) -> anyhow::Result<()> {
        futures::stream::iter(subscriptions)
            .map(|sub| {
                let mut client = self.client.clone();
                let url = format!("{}/{}/{}", self.receiver_base, sub.behaviour.segment(), sub.path);
                async move {
                    let request = api::CreateSubscriptionRequest {
                        portal_id: sub.portal,
                        url,
                        event_types: sub.types.iter().map(|t| t.code().to_owned()).collect(),
                        description: "synap-bench".into(),
                        basic_auth: None,
                        enabled: Some(true),
                        // Unique per portal: a retried setup call creates nothing twice.
                        request_id: sub.path,
                        ..Default::default()
                    };
                    client.create_subscription(request).await.map(|_| ())
                }
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<()>()
            .await?;
        Ok(())
    }
}
