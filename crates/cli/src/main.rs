//! `synapctl`: drives the control API from a terminal or a script. Every RPC has a command;
//! output is a table for people or JSON with `--json`.

mod args;
mod deliveries;
mod output;
mod run;

use anyhow::Context;
use clap::Parser;
use tonic::Request;
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::args::Cli;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let timeout = cli.timeout;
    match connect_and_run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // A gRPC error reads best as its code, message and the field at fault.
            match error.downcast_ref::<tonic::Status>() {
                Some(status) if timed_out(status) => {
                    eprintln!("error: no answer within {} (--timeout)", seconds(timeout))
                }
                Some(status) => eprintln!("error: {}", output::status(status)),
                None => eprintln!("error: {error:#}"),
            }
            std::process::ExitCode::FAILURE
        }
    }
}

/// `--timeout` in a message: `30 s`, `0.5 s`.
fn seconds(timeout: std::time::Duration) -> String {
    format!("{} s", timeout.as_secs_f64())
}

/// The call ran out of `--timeout`: tonic's client-side deadline ends it as `CANCELLED`,
/// "Timeout expired". (A `DEADLINE_EXCEEDED` is the server's own, and printed as it came.)
fn timed_out(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Cancelled && status.message() == tonic::TimeoutExpired(()).to_string()
}

async fn connect_and_run(cli: Cli) -> anyhow::Result<()> {
    let channel = connect(&cli).await?;
    let token: Option<MetadataValue<_>> = match &cli.token {
        Some(t) => Some(format!("Bearer {t}").parse().context("the token is not a valid header value")?),
        None => None,
    };
    let authorize = move |mut req: Request<()>| {
        if let Some(t) = &token {
            req.metadata_mut().insert("authorization", t.clone());
        }
        Ok(req)
    };
    run::run(channel, authorize, output::Output { json: cli.json }, cli.command).await
}

/// A channel to `--endpoint`: TLS for `https://`, verified with `--ca-file` (or the system's
/// roots) and presenting `--cert` when given. Connecting, and every call on the channel, end
/// after `--timeout`.
async fn connect(cli: &Cli) -> anyhow::Result<Channel> {
    let mut endpoint = Channel::from_shared(cli.endpoint.clone())
        .context("--endpoint is not a valid URL")?
        .timeout(cli.timeout);
    let https = cli.endpoint.starts_with("https://");
    if https {
        let mut tls = ClientTlsConfig::new();
        tls = match &cli.ca_file {
            Some(path) => tls.ca_certificate(Certificate::from_pem(read(path, "--ca-file")?)),
            None => tls.with_native_roots(),
        };
        if let Some(name) = &cli.tls_server_name {
            tls = tls.domain_name(name);
        }
        if let (Some(cert), Some(key)) = (&cli.cert, &cli.key) {
            tls = tls.identity(Identity::from_pem(read(cert, "--cert")?, read(key, "--key")?));
        }
        endpoint = endpoint.tls_config(tls).context("TLS settings")?;
    } else if cli.ca_file.is_some() || cli.cert.is_some() || cli.tls_server_name.is_some() {
        anyhow::bail!(
            "--ca-file, --cert and --tls-server-name are for an https:// endpoint; {} is not one",
            cli.endpoint
        );
    }
    // Bounded here, not with the endpoint's `connect_timeout`: that covers the TCP connection
    // only, and a server that accepts it but never finishes the TLS handshake would hang us.
    match tokio::time::timeout(cli.timeout, endpoint.connect()).await {
        Ok(connected) => connected.map_err(|e| {
            // The cause (an unknown CA, a certificate required, a plaintext server) is a few
            // sources down; `{:#}` shows the whole chain.
            anyhow::Error::new(e).context(format!("cannot connect to {}", cli.endpoint))
        }),
        Err(_) => anyhow::bail!(
            "cannot connect to {}: not connected within {} (--timeout)",
            cli.endpoint,
            seconds(cli.timeout)
        ),
    }
}

fn read(path: &std::path::Path, option: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{option}: cannot read {}", path.display()))
}
