//! `synapctl`: drives the control API from a terminal or a script.

mod deliveries;
mod output;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use synap_proto::control::v1 as api;
use synap_proto::control::v1::control_service_client::ControlServiceClient;
use tonic::Request;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The control service's address.
    #[arg(long, env = "SYNAP_ENDPOINT", default_value = "http://127.0.0.1:50051", global = true)]
    endpoint: String,
    /// Bearer token (the admin token or a portal API key).
    #[arg(long, env = "SYNAP_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Portals (admin token only).
    #[command(subcommand)]
    Portal(PortalCommand),
    /// A portal's webhook subscriptions.
    #[command(subcommand, alias = "sub")]
    Subscription(SubscriptionCommand),
    /// The attempt log; sending events again.
    #[command(subcommand)]
    Delivery(deliveries::DeliveryCommand),
}

#[derive(Subcommand)]
enum PortalCommand {
    /// Creates a portal or replaces its plan and features.
    Upsert {
        id: String,
        /// free, starter, pro or enterprise.
        #[arg(long)]
        plan: String,
        /// A custom feature, e.g. `store`; repeat for several.
        #[arg(long = "feature")]
        features: Vec<String>,
    },
    /// Shows one portal.
    Get { id: String },
}

#[derive(Subcommand)]
enum SubscriptionCommand {
    /// Subscribes an endpoint to event types.
    Create {
        #[arg(long)]
        portal: String,
        #[arg(long)]
        url: String,
        /// Event type code; repeat for several.
        #[arg(long = "type", required = true)]
        types: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
        /// `user:password` for HTTP basic authentication.
        #[arg(long)]
        basic_auth: Option<String>,
        /// Create it disabled.
        #[arg(long)]
        disabled: bool,
    },
    /// Lists a portal's subscriptions.
    List {
        #[arg(long)]
        portal: String,
    },
}

fn plan(name: &str) -> anyhow::Result<api::Plan> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "free" => api::Plan::Free,
        "starter" => api::Plan::Starter,
        "pro" => api::Plan::Pro,
        "enterprise" => api::Plan::Enterprise,
        other => bail!("unknown plan {other:?}: use free, starter, pro or enterprise"),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let channel = Channel::from_shared(cli.endpoint.clone())?
        .connect()
        .await
        .with_context(|| format!("cannot connect to {}", cli.endpoint))?;
    let token: Option<MetadataValue<_>> = match &cli.token {
        Some(t) => Some(format!("Bearer {t}").parse().context("token is not a valid header value")?),
        None => None,
    };
    let (delivery_channel, delivery_token) = (channel.clone(), token.clone());
    let mut client = ControlServiceClient::with_interceptor(channel, move |mut req: Request<()>| {
        if let Some(t) = &token {
            req.metadata_mut().insert("authorization", t.clone());
        }
        Ok(req)
    });
    let out = output::Output { json: cli.json };
    match cli.command {
        Command::Portal(PortalCommand::Upsert { id, plan: p, features }) => {
            let portal = client
                .upsert_portal(api::UpsertPortalRequest { id, plan: plan(&p)? as i32, features })
                .await?
                .into_inner();
            out.portals(&[portal]);
        }
        Command::Portal(PortalCommand::Get { id }) => {
            let portal = client.get_portal(api::GetPortalRequest { id }).await?.into_inner();
            out.portals(&[portal]);
        }
        Command::Subscription(SubscriptionCommand::Create {
            portal,
            url,
            types,
            description,
            basic_auth,
            disabled,
        }) => {
            let basic_auth = match basic_auth {
                Some(pair) => {
                    let (username, password) =
                        pair.split_once(':').context("--basic-auth must be user:password")?;
                    Some(api::BasicAuth { username: username.into(), password: password.into() })
                }
                None => None,
            };
            let created = client
                .create_subscription(api::CreateSubscriptionRequest {
                    portal_id: portal,
                    url,
                    event_types: types,
                    description,
                    basic_auth,
                    enabled: Some(!disabled),
                })
                .await?
                .into_inner();
            out.subscriptions(created.subscription.as_slice());
        }
        Command::Subscription(SubscriptionCommand::List { portal }) => {
            let list = client
                .list_subscriptions(api::ListSubscriptionsRequest { portal_id: portal })
                .await?
                .into_inner();
            out.subscriptions(&list.subscriptions);
        }
        Command::Delivery(command) => {
            deliveries::run(command, delivery_channel, delivery_token, &out).await?
        }
    }
    Ok(())
}
