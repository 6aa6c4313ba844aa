//! Helpers of the control-plane tests: clients with any token, the stack's database, error
//! details.

use synap_proto::control::v1 as api;
use synap_proto::control::v1::control_service_client::ControlServiceClient;
use synap_tests::Stack;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic_types::StatusExt;

/// Sends `authorization: Bearer <token>`, or nothing.
#[derive(Clone)]
pub struct Bearer(Option<String>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(token) = &self.0 {
            request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        Ok(request)
    }
}

pub type Client = ControlServiceClient<InterceptedService<Channel, Bearer>>;

/// A control client that authenticates with `token` (none: no metadata at all).
pub async fn client(stack: &Stack, token: Option<&str>) -> Client {
    ControlServiceClient::with_interceptor(stack.control_channel().await, Bearer(token.map(str::to_owned)))
}

pub fn admin_token() -> &'static str {
    synap_tests::stack::ADMIN_TOKEN
}

/// The URL of the stack's own database (see `Stack`).
pub fn database_url(stack: &Stack) -> String {
    let admin = std::env::var("SYNAP_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://synap:synap@127.0.0.1:5432/synap".into());
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&format!("synap_{}", stack.id));
    url.into()
}

/// A connection to the stack's own database, to look at what is stored.
pub async fn database(stack: &Stack) -> tokio_postgres::Client {
    let (client, connection) =
        tokio_postgres::connect(&database_url(stack), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// The status code and the field named by its `google.rpc.BadRequest` details.
pub fn bad_field(status: &tonic::Status) -> (tonic::Code, String) {
    let field = status
        .get_details_bad_request()
        .and_then(|b| b.field_violations.first().map(|v| v.field.clone()))
        .unwrap_or_else(|| panic!("no BadRequest details in {status:?}"));
    (status.code(), field)
}

pub async fn upsert(client: &mut Client, id: &str, plan: api::Plan, features: &[&str]) -> api::Portal {
    client
        .upsert_portal(api::UpsertPortalRequest {
            id: id.into(),
            plan: plan as i32,
            features: features.iter().map(|f| f.to_string()).collect(),
        })
        .await
        .expect("upsert portal")
        .into_inner()
}

/// A valid create request for `portal` to `url`; change fields to make it invalid.
pub fn create_request(portal: &str, url: &str, types: &[&str]) -> api::CreateSubscriptionRequest {
    api::CreateSubscriptionRequest {
        portal_id: portal.into(),
        url: url.into(),
        event_types: types.iter().map(|t| t.to_string()).collect(),
        description: "control test".into(),
        basic_auth: None,
        enabled: None,
        request_id: String::new(),
        ..Default::default()
    }
}

pub async fn create(
    client: &mut Client,
    request: api::CreateSubscriptionRequest,
) -> api::CreateSubscriptionResponse {
    client.create_subscription(request).await.expect("create subscription").into_inner()
}
