//! `synapctl`: drives the control API from a terminal or a script. Every RPC has a command;
//! output is a table for people or JSON with `--json`.

mod args;
mod output;
mod run;

use anyhow::Context;
use clap::Parser;
use synap_proto::control::v1::control_service_client::ControlServiceClient;
use tonic::Request;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use crate::args::Cli;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match connect_and_run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // A gRPC error reads best as its code, message and the field at fault.
            match error.downcast_ref::<tonic::Status>() {
                Some(status) => eprintln!("error: {}", output::status(status)),
                None => eprintln!("error: {error:#}"),
            }
            std::process::ExitCode::FAILURE
        }
    }
}

async fn connect_and_run(cli: Cli) -> anyhow::Result<()> {
    let channel = Channel::from_shared(cli.endpoint.clone())
        .context("--endpoint is not a valid URL")?
        .connect()
        .await
        .with_context(|| format!("cannot connect to {}", cli.endpoint))?;
    let token: Option<MetadataValue<_>> = match &cli.token {
        Some(t) => Some(format!("Bearer {t}").parse().context("the token is not a valid header value")?),
        None => None,
    };
    let client = ControlServiceClient::with_interceptor(channel, move |mut req: Request<()>| {
        if let Some(t) = &token {
            req.metadata_mut().insert("authorization", t.clone());
        }
        Ok(req)
    });
    run::run(client, output::Output { json: cli.json }, cli.command).await
}
