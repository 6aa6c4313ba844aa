//! One command, one RPC (or several pages of one).

use anyhow::Context as _;
use synap_proto::control::v1 as api;
use synap_proto::control::v1::control_service_client::ControlServiceClient;
use synap_proto::control::v1::delivery_service_client::DeliveryServiceClient;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::args::{self, Command, KeyCommand, Paging, PortalCommand, SubscriptionCommand};
use crate::output::Output;

type Client<F> = ControlServiceClient<InterceptedService<Channel, F>>;

/// Runs `command` on a client of the service it belongs to, each with `interceptor`.
pub async fn run<F: Interceptor + Clone>(
    channel: Channel,
    interceptor: F,
    out: Output,
    command: Command,
) -> anyhow::Result<()> {
    let mut client = ControlServiceClient::with_interceptor(channel.clone(), interceptor.clone());
    match command {
        Command::Delivery(c) => {
            let client = DeliveryServiceClient::with_interceptor(channel, interceptor);
            crate::deliveries::run(client, &out, c).await
        }
        Command::Portal(c) => portal(&mut client, &out, c).await,
        Command::Key(c) => key(&mut client, &out, c).await,
        Command::Subscription(c) => subscription(&mut client, &out, c).await,
        Command::PortalLink { portal, read_only } => {
            let request = api::CreatePortalLinkRequest { portal_id: portal.unwrap_or_default(), read_only };
            let link = client.create_portal_link(request).await?.into_inner();
            out.portal_link(&link);
            Ok(())
        }
        Command::EventTypes { examples } => {
            let types = client.list_event_types(api::ListEventTypesRequest {}).await?.into_inner();
            out.event_types(&types.event_types, examples);
            Ok(())
        }
    }
}

async fn portal<F: Interceptor>(
    client: &mut Client<F>,
    out: &Output,
    command: PortalCommand,
) -> anyhow::Result<()> {
    match command {
        PortalCommand::Upsert { id, plan, features } => {
            let request = api::UpsertPortalRequest { id, plan: args::plan(&plan)? as i32, features };
            out.portal(&client.upsert_portal(request).await?.into_inner());
        }
        PortalCommand::Get { id } => {
            out.portal(&client.get_portal(api::GetPortalRequest { id }).await?.into_inner());
        }
        PortalCommand::List(Paging { page_size, mut page_token, all }) => {
            let mut portals = Vec::new();
            loop {
                let request = api::ListPortalsRequest { page_size, page_token };
                let page = client.list_portals(request).await?.into_inner();
                portals.extend(page.portals);
                page_token = page.next_page_token;
                if !all || page_token.is_empty() {
                    break;
                }
            }
            out.portals(&portals, &page_token);
        }
    }
    Ok(())
}

async fn key<F: Interceptor>(
    client: &mut Client<F>,
    out: &Output,
    command: KeyCommand,
) -> anyhow::Result<()> {
    match command {
        KeyCommand::Create { portal, name } => {
            let created = client.create_api_key(api::CreateApiKeyRequest { portal_id: portal, name }).await?;
            out.created_key(&created.into_inner());
        }
        KeyCommand::List { portal, include_revoked } => {
            let request = api::ListApiKeysRequest { portal_id: portal, include_revoked };
            out.keys(&client.list_api_keys(request).await?.into_inner().api_keys);
        }
        KeyCommand::Revoke { id } => {
            let key = client.revoke_api_key(api::RevokeApiKeyRequest { id }).await?.into_inner();
            out.keys(&[key]);
        }
    }
    Ok(())
}

async fn subscription<F: Interceptor>(
    client: &mut Client<F>,
    out: &Output,
    command: SubscriptionCommand,
) -> anyhow::Result<()> {
    match command {
        SubscriptionCommand::Create {
            portal,
            url,
            types,
            filter,
            description,
            basic_auth,
            disabled,
            request_id,
            signature_scheme,
            options,
            headers,
        } => {
            let request = api::CreateSubscriptionRequest {
                portal_id: portal,
                url,
                event_types: types,
                filter,
                description,
                basic_auth: basic_auth.as_deref().map(args::basic_auth).transpose()?,
                enabled: Some(!disabled),
                request_id,
                ordered: options.ordered,
                max_in_flight: options.max_in_flight,
                rate_limit_per_sec: options.rate_limit_per_sec,
                timeout_ms: options.timeout_ms,
                omit_traceparent: options.no_traceparent,
                signature_scheme: args::signature_scheme(&signature_scheme)? as i32,
                headers: headers.headers()?,
            };
            out.created_subscription(&client.create_subscription(request).await?.into_inner());
        }
        SubscriptionCommand::Get { id } => {
            out.subscription(
                &client.get_subscription(api::GetSubscriptionRequest { id }).await?.into_inner(),
            );
        }
        SubscriptionCommand::List { portal, event_type, state, paging } => {
            let state = state.as_deref().map(args::state).transpose()?.unwrap_or_default();
            let Paging { page_size, mut page_token, all } = paging;
            let mut subscriptions = Vec::new();
            loop {
                let request = api::ListSubscriptionsRequest {
                    portal_id: portal.clone(),
                    page_size,
                    page_token,
                    event_type: event_type.clone(),
                    state: state as i32,
                };
                let page = client.list_subscriptions(request).await?.into_inner();
                subscriptions.extend(page.subscriptions);
                page_token = page.next_page_token;
                if !all || page_token.is_empty() {
                    break;
                }
            }
            out.subscriptions(&subscriptions, &page_token);
        }
        SubscriptionCommand::Update {
            id,
            url,
            types,
            filter,
            clear_filter,
            description,
            basic_auth,
            clear_basic_auth,
            enable,
            disable,
            unordered,
            traceparent,
            options,
            headers,
            clear_headers,
        } => {
            let request = api::UpdateSubscriptionRequest {
                id,
                url,
                event_types: (!types.is_empty()).then_some(api::EventTypeList { codes: types }),
                description,
                basic_auth: basic_auth.as_deref().map(args::basic_auth).transpose()?,
                clear_basic_auth,
                enabled: match (enable, disable) {
                    (true, _) => Some(true),
                    (_, true) => Some(false),
                    _ => None,
                },
                ordered: match (options.ordered, unordered) {
                    (true, _) => Some(true),
                    (_, true) => Some(false),
                    _ => None,
                },
                max_in_flight: options.max_in_flight,
                rate_limit_per_sec: options.rate_limit_per_sec,
                timeout_ms: options.timeout_ms,
                omit_traceparent: match (options.no_traceparent, traceparent) {
                    (true, _) => Some(true),
                    (_, true) => Some(false),
                    _ => None,
                },
                headers: (!headers.is_empty())
                    .then(|| headers.headers().map(|headers| api::CustomHeaderList { headers }))
                    .transpose()?,
                clear_headers,
                filter,
                clear_filter,
                ..Default::default()
            };
            out.subscription(&client.update_subscription(request).await?.into_inner());
        }
        SubscriptionCommand::Delete { id } => {
            client.delete_subscription(api::DeleteSubscriptionRequest { id: id.clone() }).await?;
            out.deleted(&id);
        }
        SubscriptionCommand::Pause { id } => {
            out.subscription(
                &client.pause_subscription(api::PauseSubscriptionRequest { id }).await?.into_inner(),
            );
        }
        SubscriptionCommand::Resume { id } => {
            out.subscription(
                &client.resume_subscription(api::ResumeSubscriptionRequest { id }).await?.into_inner(),
            );
        }
        SubscriptionCommand::RotateSecret { id, overlap, signature_scheme } => {
            let request = api::RotateSigningSecretRequest {
                subscription_id: id,
                overlap: overlap.as_deref().map(args::duration).transpose()?,
                signature_scheme: signature_scheme
                    .as_deref()
                    .map(args::signature_scheme)
                    .transpose()?
                    .unwrap_or_default() as i32,
            };
            out.rotated(&client.rotate_signing_secret(request).await?.into_inner());
        }
        SubscriptionCommand::Test { id, event_type } => {
            let request = api::TestSendRequest { subscription_id: id, event_type };
            out.test_send(&client.test_send(request).await?.into_inner());
        }
        SubscriptionCommand::TestFilter { id, filter, event_type, for_types, body } => {
            let body = match body {
                None => String::new(),
                Some(path) if path.as_os_str() == "-" => std::io::read_to_string(std::io::stdin())
                    .context("reading the body from standard input")?,
                Some(path) => std::fs::read_to_string(&path)
                    .with_context(|| format!("reading the body from {}", path.display()))?,
            };
            let request = api::TestFilterRequest {
                filter,
                event_type,
                body,
                event_types: for_types,
                subscription_id: id.unwrap_or_default(),
            };
            out.test_filter(&client.test_filter(request).await?.into_inner());
        }
    }
    Ok(())
}
