//! A webhook receiver for local demos: prints each request and answers 204.

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;

#[derive(clap::Args)]
pub struct ReceiveArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9999")]
    listen: String,
}

pub async fn run(args: ReceiveArgs) -> anyhow::Result<()> {
    let app = Router::new().fallback(post(print_request));
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    println!("receiver listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn print_request(uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned();
    println!(
        "{} {} webhook-id={} attempt={} portal={} auth={} bytes={}",
        chrono::Utc::now().format("%H:%M:%S%.3f"),
        uri.path(),
        get("webhook-id"),
        get("synap-delivery-attempt"),
        get("synap-portal-id"),
        if headers.contains_key("authorization") { "basic" } else { "none" },
        body.len(),
    );
    println!(
        "  {} {}",
        get("synap-event-type"),
        String::from_utf8_lossy(&body).chars().take(160).collect::<String>()
    );
    StatusCode::NO_CONTENT
}
